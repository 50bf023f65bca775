"""find-break: pick tests and range, reuse what the store knows, probe the rest, confirm.

Every probe is stored as an ordinary run (trigger `probe`), so a second bisection over the same
commits, or the same command after a crash or `kill -9`, reuses it instead of running it again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import environment
from .errors import BisectError, GitError
from .executors import Probe, ProbeOutcome
from .gitrepo import Repository
from .history import HistoryStore
from .model import BisectResult, Finding, Outcome, Run, TestResult, Trigger
from .queries import open_history, regressions_at_head
from .search import Bisection, DagBisection, Verdict, max_probes

Executor = Callable[[Probe], ProbeOutcome]
Progress = Callable[[str], None]


def verdict_of(result: TestResult | str) -> Verdict:
    outcome = Outcome(result.outcome if isinstance(result, TestResult) else result)
    if outcome is Outcome.PASSED:
        return Verdict.GOOD
    if outcome.is_bad and (not isinstance(result, TestResult) or result.phase != "collect"):
        return Verdict.BAD
    return Verdict.UNTESTABLE


@dataclass
class _Evidence:
    """Outcomes per (test, sha) from the store and from probes, newest last."""

    seen: dict[tuple[str, str], list[TestResult]] = field(default_factory=dict)

    def add(self, result: TestResult, sha: str) -> None:
        self.seen.setdefault((result.nodeid, sha), []).append(result)

    def latest(self, nodeid: str, sha: str) -> TestResult | None:
        found = self.seen.get((nodeid, sha))
        return found[-1] if found else None


class Finder:
    def __init__(self, repo: Repository, store: HistoryStore, executor: Executor, *,
                 progress: Progress | None = None, max_untestable: int | None = None,
                 env_extra: str = "") -> None:
        self.repo = repo
        self.store = store
        self.executor = executor
        self.progress = progress or (lambda _msg: None)
        self.max_untestable = max_untestable
        self.evidence = _Evidence()
        self.runs = 0
        self.reused = 0
        self.env_key = environment.current(repo.root, extra=env_extra).key
        self.journal_id: int | None = None

    # -- choosing what to bisect ------------------------------------------------------------

    def plan(self, tests: list[str], good: str | None, bad: str, lookback: int
             ) -> tuple[list[str], str, str]:
        bad_sha = self.repo.resolve(bad)
        if not tests or good is None:
            report = regressions_at_head(self.repo, self.store, lookback, bad_sha)
            regs = report.regressions
            if tests:
                regs = [r for r in regs if r.nodeid in tests]
            if not tests:
                if not regs:
                    raise BisectError(
                        f"nothing to bisect: no test fails at {bad_sha[:10]} that passed within "
                        f"the last {lookback} tracked commits",
                        hint="name the tests and give --good REV",
                    )
                tests = [r.nodeid for r in regs]
            if good is None:
                if not regs:
                    raise BisectError(
                        "no tracked pass of these tests within the lookback window",
                        hint="give --good REV (a commit where they passed)",
                    )
                positions = {sha: i for i, sha in enumerate(report.window)}
                good = max((r.last_good for r in regs), key=lambda s: positions[s])
        good_sha = self.repo.resolve(good)
        if good_sha == bad_sha:
            raise BisectError("good and bad are the same commit", hint="give an older --good")
        if not self.repo.is_ancestor(good_sha, bad_sha):
            if self.repo.is_shallow():
                raise GitError("the range is not in this shallow clone",
                               hint="run `git fetch --unshallow`")
            raise BisectError(
                f"good {good_sha[:10]} is not an ancestor of bad {bad_sha[:10]}",
                hint="give a good commit on bad's history, e.g. `git merge-base GOOD BAD`",
            )
        return list(dict.fromkeys(tests)), good_sha, bad_sha

    # -- evidence ---------------------------------------------------------------------------

    def _load_known(self, shas: list[str], tests: list[str]) -> None:
        ids = self.store.tests()
        wanted = [ids[t] for t in tests if t in ids]
        if not wanted:
            return
        rows = self.store.results_at(shas, env_key=self.env_key, test_ids=wanted)
        rows.sort(key=lambda r: (r.started_at, r.run_id))
        for row in rows:
            if row.outcome == Outcome.UNTESTABLE:
                continue  # a timeout or a broken setup back then may not be one now: run again
            self.evidence.add(TestResult(row.nodeid, Outcome(row.outcome), 0.0, row.signature,
                                         row.message, row.reruns, "call"), row.sha)

    def _probe(self, sha: str, tests: list[str], why: str) -> dict[str, TestResult]:
        self.progress(f"probe {self.runs + 1}: {sha[:10]} ({why}), {len(tests)} test(s)")
        outcome = self.executor(Probe(sha, tuple(tests)))
        self.runs += 1
        run = Run(
            sha=sha, dirty=False, branch=None, environment=outcome.environment,
            trigger=Trigger.PROBE, host=_host(), started_at=outcome.started_at,
            finished_at=outcome.finished_at, exit_status=outcome.exit_status,
            results=tuple(outcome.results.values()),
        )
        run_id = self.store.record_run(run, commits=self.repo.commits([sha]).values())
        if self.journal_id is not None:
            self.store.add_probe(self.journal_id, run_id, sha, why)
        for result in outcome.results.values():
            self.evidence.add(result, sha)
        return outcome.results

    def _results_at(self, sha: str, tests: list[str], why: str) -> dict[str, TestResult]:
        """Known results where the store has them; a probe for the rest."""
        out: dict[str, TestResult] = {}
        missing = []
        for t in tests:
            known = self.evidence.latest(t, sha)
            if known is not None:
                out[t] = known
            else:
                missing.append(t)
        if out and not missing:
            self.reused += 1
        if missing:
            out.update(self._probe(sha, missing, why))
        return out

    # -- the search -------------------------------------------------------------------------

    def run(self, tests: list[str], good_sha: str, bad_sha: str, *, first_parent: bool = True
            ) -> BisectResult:
        started = time.monotonic()
        notes: list[str] = []
        log = [f"git bisect start {bad_sha} {good_sha}"]
        mode = "first-parent" if first_parent else "full-dag"
        key = hashlib.sha256(json.dumps([good_sha, bad_sha, sorted(tests), mode,
                                         self.env_key]).encode()).hexdigest()[:32]
        self.journal_id, resumed = self.store.start_bisection(
            key, good_sha, bad_sha, tests, mode, time.time())
        if resumed:
            notes.append(f"resumed an interrupted bisection: {resumed} of its probes are reused")
            self.progress(f"resuming: {resumed} probes of an interrupted run are in the store")
        try:
            result = self._run(tests, good_sha, bad_sha, first_parent, notes, log, started)
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):  # Ctrl-C: stays resumable
                self.store.finish_bisection(self.journal_id, "failed",
                                            {"error": str(exc)}, time.time())
            raise
        self.store.finish_bisection(self.journal_id, "done", {
            t.nodeid: (t.culprit.sha if t.culprit else list(t.suspects))
            for t in result.findings
        }, time.time())
        return result

    def _run(self, tests: list[str], good_sha: str, bad_sha: str, first_parent: bool,
             notes: list[str], log: list[str], started: float) -> BisectResult:
        self._load_known([good_sha, bad_sha], tests)
        at_bad = self._results_at(bad_sha, tests, "check bad end")
        at_good = self._results_at(good_sha, tests, "check good end")
        live = []
        for t in tests:
            vb, vg = verdict_of(at_bad[t]), verdict_of(at_good[t])
            if vb is Verdict.UNTESTABLE and vg is Verdict.UNTESTABLE:
                notes.append(f"{t}: cannot be run at either end ({at_bad[t].message})")
            elif vb is not Verdict.BAD:
                notes.append(f"{t}: does not fail at bad {bad_sha[:10]} "
                             f"({at_bad[t].outcome}): nothing to find")
            elif vg is Verdict.BAD:
                notes.append(f"{t}: already fails at good {good_sha[:10]}: give an older --good")
            else:
                live.append(t)
        if not live:
            raise BisectError("nothing to bisect: " + "; ".join(notes))

        candidates, suspects = self._search(live, good_sha, bad_sha, first_parent, log, notes)
        if first_parent:
            self._into_merges(live, suspects, log, notes)
        findings = self._confirm(live, suspects)
        return BisectResult(
            good=good_sha, bad=bad_sha, candidates=candidates, findings=tuple(findings),
            probes_run=self.runs, probes_reused=self.reused,
            seconds=time.monotonic() - started, bisect_log=tuple(log), notes=tuple(notes),
        )

    def _search(self, tests: list[str], good_sha: str, bad_sha: str, first_parent: bool,
                log: list[str], notes: list[str]) -> tuple[int, dict[str, tuple[str, ...]]]:
        """Bisect good..bad for tests known to pass at good and fail at bad.

        Returns the number of candidates and, per test, the commits still suspected, oldest
        first: one commit when the culprit is isolated.
        """
        parents: dict[str, tuple[str, ...]] = {}
        if first_parent:
            candidates = self.repo.range(good_sha, bad_sha, first_parent=True)
        else:
            candidates, parents = self.repo.graph(good_sha, bad_sha)
        if not candidates or candidates[-1] != bad_sha:
            raise GitError(f"cannot list commits {good_sha[:10]}..{bad_sha[:10]}",
                           hint="run `git fetch --unshallow` if this is a shallow clone")
        self._load_known(candidates, tests)
        index = {sha: i for i, sha in enumerate(candidates)}
        search: Bisection | DagBisection
        if first_parent:
            search = Bisection(len(candidates), tests, max_untestable=self.max_untestable)
        else:
            search = DagBisection(candidates, parents, tests, max_untestable=self.max_untestable)
        known_commits = set()
        for (nodeid, sha), results in self.evidence.seen.items():
            if nodeid in tests and sha in index and sha != bad_sha:
                verdicts = {verdict_of(r) for r in results}
                if len(verdicts) == 1:  # disagreeing runs (flaky) are not trusted here
                    search.observe(nodeid, index[sha], verdicts.pop())
                    known_commits.add(sha)
        self.reused += len(known_commits)
        while (i := search.next_probe()) is not None:
            sha = candidates[i]
            open_tests = search.open_tests()
            results = self._results_at(sha, open_tests, f"{len(candidates)} candidates")
            verdicts = {t: verdict_of(results[t]) for t in open_tests}
            search.observe_probe(i, verdicts)
            first = verdicts[open_tests[0]]
            log.append(f"git bisect {'skip' if first is Verdict.UNTESTABLE else first} {sha}")
        if search.budget_spent:
            notes.append(f"stopped after {search.untestable_probes} untestable probes: "
                         "culprits are bracketed, not isolated")
        if isinstance(search, DagBisection):
            return len(candidates), {
                t: tuple(candidates[i] for i in search.suspect_list(t)) for t in tests
            }
        return len(candidates), {
            t: tuple(candidates[i] for i in search.tracks[t].suspects) for t in tests
        }

    def _into_merges(self, tests: list[str], suspects: dict[str, tuple[str, ...]],
                     log: list[str], notes: list[str], depth: int = 0) -> None:
        """A merge found on a first-parent line: look for the culprit inside its branch.

        Recursive, so a branch merged into a branch is followed too: every line searched is a
        first-parent line, on which "fails from the culprit on" holds, unlike a date-ordered
        list of the whole graph.
        """
        if depth > 20:
            return
        isolated = {s[0] for t, s in suspects.items() if t in tests and len(s) == 1}
        infos = self.repo.commits(sorted(isolated))
        for sha, info in infos.items():
            if len(info.parents) < 2:
                continue
            group = [t for t in tests if suspects[t] == (sha,)]
            mainline, branch = info.parents[0], info.parents[1]
            at_tip = self._results_at(branch, group, "merged branch tip")
            inside = [t for t in group if verdict_of(at_tip[t]) is Verdict.BAD]
            alone = [t for t in group if t not in inside]
            if alone:
                notes.append(f"merge {sha[:10]} is the culprit of {', '.join(alone)}: its "
                             "branch passes alone, the combination breaks")
            if not inside:
                continue
            try:
                base = self.repo.merge_base(mainline, branch)
            except GitError:  # unrelated histories (a subtree merge): the merge is the answer
                notes.append(f"merge {sha[:10]} joins unrelated histories: not searched inside")
                continue
            notes.append(f"merge {sha[:10]} is the first bad commit on the first-parent line; "
                         f"searched its branch {base[:10]}..{branch[:10]}")
            _, found = self._search(inside, base, branch, True, log, notes)
            suspects.update(found)
            self._into_merges(inside, suspects, log, notes, depth + 1)

    def _confirm(self, tests: list[str], suspects: dict[str, tuple[str, ...]]
                 ) -> list[Finding]:
        """Run each culprit and its parent once more; an inconsistency is reported, not hidden."""
        by_culprit: dict[str, list[str]] = {}
        for t in tests:
            if len(suspects[t]) == 1:
                by_culprit.setdefault(suspects[t][0], []).append(t)
        infos = self.repo.commits(sorted(by_culprit))
        confirmations: dict[str, tuple[TestResult, TestResult]] = {}
        for sha, group in sorted(by_culprit.items()):
            again = self._probe(sha, group, "confirm culprit")
            before = self._probe(infos[sha].parents[0], group, "confirm parent")
            for t in group:
                confirmations[t] = (again[t], before[t])
        findings = []
        for t in tests:
            if len(suspects[t]) != 1:
                untestable = sum(
                    1 for s in suspects[t][:-1]
                    if (r := self.evidence.latest(t, s)) and verdict_of(r) is Verdict.UNTESTABLE
                )
                findings.append(Finding(
                    t, None, suspects[t],
                    note=f"culprit is one of {len(suspects[t])} commits "
                         f"{suspects[t][0][:10]}..{suspects[t][-1][:10]}; {untestable} of them "
                         "are untestable",
                ))
                continue
            sha = suspects[t][0]
            again, before = confirmations[t]
            confirmed = verdict_of(again) is Verdict.BAD and verdict_of(before) is Verdict.GOOD
            note = None
            if not confirmed:
                note = (f"not confirmed: run again, the culprit gave {again.outcome} and its "
                        f"parent {before.outcome}; the test may be flaky")
            findings.append(Finding(
                t, infos.get(sha), suspects[t], signature=again.signature or None,
                message=again.message, confirmed=confirmed, note=note,
                files=tuple(self.repo.changed_files(sha)),
            ))
        return findings


def find_break(
    repo_path: Path,
    *,
    tests: list[str],
    good: str | None = None,
    bad: str = "HEAD",
    lookback: int | None = None,
    history_db: str | None = None,
    first_parent: bool = True,
    timeout: float | None = None,
    max_untestable: int | None = None,
    setup: str | None = None,
    test_files: list[Path] | None = None,
    progress: Progress | None = None,
) -> BisectResult:
    """The whole find-break, as the CLI and the plugin's auto-bisect both run it."""
    from .executors.local import LocalExecutor

    with open_history(repo_path, history_db, lookback) as (repo, store, settings):
        extra = _read_test_files(repo, test_files or [])
        try:  # probes start pytest where the user did, so node ids mean the same
            subdir = Path(repo_path).resolve().relative_to(repo.root).as_posix()
        except ValueError:
            subdir = ""
        with LocalExecutor(repo, timeout=timeout, setup=setup or settings.setup,
                           extra_files=extra, subdir="" if subdir == "." else subdir
                           ) as executor:
            finder = Finder(repo, store, executor.run, progress=progress,
                            env_extra=executor.fingerprint_extra)
            if extra and not tests:
                tests = executor.collect(repo.resolve(bad), sorted(extra))
                if not tests:
                    raise BisectError("no tests collected from " + ", ".join(sorted(extra)),
                                      hint="check the --test-file paths")
            names, good_sha, bad_sha = finder.plan(tests, good, bad, settings.lookback)
            if max_untestable is None:
                span = len(repo.range(good_sha, bad_sha, first_parent=first_parent))
                max_untestable = 2 * max_probes(span) + 4
            finder.max_untestable = max_untestable
            return finder.run(names, good_sha, bad_sha, first_parent=first_parent)


def _read_test_files(repo: Repository, paths: list[Path]) -> dict[str, bytes]:
    """--test-file: the user's file, laid at the same place in every probe's checkout."""
    out = {}
    for path in paths:
        full = path.resolve()
        try:
            rel = full.relative_to(repo.root)
        except ValueError:
            raise BisectError(f"--test-file {path} is outside the repository",
                              hint="give a file inside the checkout") from None
        out[rel.as_posix()] = full.read_bytes()
    return out


def _host() -> str:
    import socket

    return socket.gethostname()

