"""What one bisection is about: its tests, its range and its mode, fixed before any probe.

Tests and ends come from the caller (flags, a session, the nightly) or, where left out, from
the history: the tests failing at the bad end that passed within the lookback window, and the
newest commit where they all passed as the good end. The `Plan` is frozen; its journal key is
what makes the same bisection, run again, resume.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..errors import BisectError, GitError
from ..gitrepo import Repository
from ..history import HistoryStore
from ..model import RegressionReport
from ..nodeids import usable
from ..queries import regressions_at_head
from .prober import Prober


@dataclass(frozen=True, slots=True)
class Plan:
    tests: tuple[str, ...]
    good: str
    bad: str
    first_parent: bool = True
    notes: tuple[str, ...] = ()  # what planning left out, and why

    @property
    def mode(self) -> str:
        return "first-parent" if self.first_parent else "full-dag"

    def journal_key(self, env_key: str) -> str:
        """The same tests, range, mode and environment: the same bisection, resumable."""
        return hashlib.sha256(json.dumps([self.good, self.bad, sorted(self.tests), self.mode,
                                          env_key]).encode()).hexdigest()[:32]


def make_plan(repo: Repository, store: HistoryStore, tests: list[str], good: str | None,
              bad: str, lookback: int, *, first_parent: bool = True) -> Plan:
    """A plan from flags, completed from the history where tests or good are left out."""
    bad_sha = repo.resolve(bad)
    notes: list[str] = []
    if tests:  # named by a caller that read them (a session, the nightly, a collection)
        tests, refused = usable(tests, "the tests to bisect")
        notes.extend(refused)
        if not tests:
            raise BisectError("nothing to bisect: " + "; ".join(refused),
                              hint="name the tests by their node ids")
    if not tests or good is None:
        report = regressions_at_head(repo, store, lookback, bad_sha)
        tests, good = _from_history(report, tests, good, lookback, notes)
    good_sha = repo.resolve(good)
    _check_range(repo, good_sha, bad_sha)
    return Plan(tuple(dict.fromkeys(tests)), good_sha, bad_sha, first_parent, tuple(notes))


def tests_of_files(prober: Prober, sha: str, files: list[str]) -> list[str]:
    """--test-file without node ids: the node ids of the files' tests, from one probe of the
    whole files at the bad commit (read from its JUnit XML, whatever the project's options do
    to pytest's output). That probe is stored and counted as any, and is the bad-end check
    too. A run that yields no test at all is an error that quotes pytest's reason."""
    tests, outcome, results = prober.probe_files(sha, files)
    if not tests:
        why = (outcome.problem
               or "; ".join(dict.fromkeys(r.message or r.outcome for r in results.values()))
               or "pytest reported no test")
        raise BisectError(f"cannot collect the tests of {', '.join(files)} at bad "
                          f"{sha[:10]}: {why}",
                          hint="make the probes' environment run them (--setup, "
                               "--pytest-arg), or check the --test-file paths")
    return tests


def _from_history(report: RegressionReport, tests: list[str], good: str | None,
                  lookback: int, notes: list[str]) -> tuple[list[str], str]:
    """The tests (when none were named) and the good end (when not given) the history says."""
    if not tests:  # a skipped id is news only when the store chose the tests
        notes.extend(report.notes)
    regs = report.regressions
    if tests:
        regs = [r for r in regs if r.nodeid in tests]
    elif not regs:
        raise BisectError(
            f"nothing to bisect: no test fails at {report.head[:10]} that passed within "
            f"the last {lookback} tracked commits" + "".join(f" ({n})" for n in report.notes),
            hint="name the tests and give --good REV",
        )
    else:
        tests = [r.nodeid for r in regs]
    if good is not None:
        return tests, good
    if not regs:
        raise BisectError("no tracked pass of these tests within the lookback window",
                          hint="give --good REV (a commit where they passed)")
    positions = {sha: i for i, sha in enumerate(report.window)}
    good = max((r.last_good for r in regs), key=lambda s: positions[s])
    # only the regressions: a test that never passed in the window has no culprit
    regressed = {r.nodeid for r in regs}
    notes.extend(f"{t}: not bisected, no tracked pass within the last {lookback} tracked "
                 "commits" for t in tests if t not in regressed)
    return [t for t in tests if t in regressed], good


def _check_range(repo: Repository, good_sha: str, bad_sha: str) -> None:
    if good_sha == bad_sha:
        raise BisectError("good and bad are the same commit", hint="give an older --good")
    if not repo.is_ancestor(good_sha, bad_sha):
        if repo.is_shallow():
            raise GitError("the range is not in this shallow clone",
                           hint="run `git fetch --unshallow`")
        raise BisectError(
            f"good {good_sha[:10]} is not an ancestor of bad {bad_sha[:10]}",
            hint="give a good commit on bad's history, e.g. `git merge-base GOOD BAD`",
        )
