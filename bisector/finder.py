"""find-break: pick tests and range, reuse what the store knows, probe the rest, confirm.

Every probe is stored as an ordinary run (trigger `probe`), so a second bisection over the same
commits, or the same command after a crash or `kill -9`, reuses it instead of running it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .bayes import FlakySearch
from .errors import BisectError, ConfigError, GitError
from .executors import Probe, ProbeOutcome

if TYPE_CHECKING:
    from .executors.factory import ExecutorOptions
from .flakiness import Estimate, Learnt, Rates, estimate, tally, wilson
from .gitrepo import Repository
from .history import HistoryStore
from .history.store import MissingStore
from .model import BisectResult, Finding, Outcome, Run, TestResult, Trigger
from .nodeids import usable
from .queries import open_store, regressions_at_head
from .search import Bisection, DagBisection, Verdict
from .search import max_probes as plain_probes
from .signature import exception_type

# History read before the good end to estimate how flaky a test is.
RATE_WINDOW = 50
# An end that contradicts the user (fails at --good, passes at --bad) is believed only after
# this many runs there all contradict: the first run and up to two more.
END_RUNS = 3

Executor = Callable[[Probe], ProbeOutcome]
# Runs a round of probes at once (--jobs K), in the order given.
RoundRunner = Callable[[list[Probe]], list[ProbeOutcome]]
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
                 env_key: str, confidence: float = 0.99, max_probes: int | None = None,
                 jobs: int = 1, run_round: RoundRunner | None = None) -> None:
        self.repo = repo
        self.store = store
        self.executor = executor
        # --jobs K: the searches propose K commits per round and run_round runs them at once
        self.jobs = max(1, jobs) if run_round is not None else 1
        self.run_round = run_round
        self.rounds = 0
        self.progress = progress or (lambda _msg: None)
        self.max_untestable = max_untestable
        self.evidence = _Evidence()
        self.runs = 0
        self.reused = 0
        # Which stored runs are comparable: the executor's environment (an interpreter, or a
        # suite's container) decides.
        self.env_key = env_key
        self.journal_id: int | None = None
        self.confidence = confidence
        self.max_probes = max_probes
        self.loaded: set[str] = set()
        self.plan_notes: list[str] = []
        # per test, the exception type of the failure being bisected (from the bad end)
        self.reference: dict[str, str | None] = {}
        self.other_failures: dict[tuple[str, str], str] = {}
        # per test, its verdicts as `git bisect` lines, in the order that replays them
        self.trails: dict[str, list[str]] = {}
        # per test searched inside a merged branch: the first-parent merge that brought it in
        self.merged_by: dict[str, str] = {}
        # ids the store has never seen: stored from their first result that is not untestable
        self.unseen: set[str] = set()
        # when the first probe started, if before `run` (the --test-file probe at bad), and the
        # probes recorded before the journal existed, to put in it when it does
        self.began: float | None = None
        self.unjournaled: list[tuple[int, str, str]] = []

    # -- choosing what to bisect ------------------------------------------------------------

    def plan(self, tests: list[str], good: str | None, bad: str, lookback: int
             ) -> tuple[list[str], str, str]:
        bad_sha = self.repo.resolve(bad)
        if tests:  # named by a caller that read them (a session, the nightly, a collection)
            tests, refused = usable(tests, "the tests to bisect")
            self.plan_notes.extend(refused)
            if not tests:
                raise BisectError("nothing to bisect: " + "; ".join(refused),
                                  hint="name the tests by their node ids")
        if not tests or good is None:
            report = regressions_at_head(self.repo, self.store, lookback, bad_sha)
            if not tests:  # a skipped id is news only when the store chose the tests
                self.plan_notes.extend(report.notes)
            regs = report.regressions
            if tests:
                regs = [r for r in regs if r.nodeid in tests]
            if not tests:
                if not regs:
                    raise BisectError(
                        f"nothing to bisect: no test fails at {bad_sha[:10]} that passed within "
                        f"the last {lookback} tracked commits"
                        + "".join(f" ({note})" for note in report.notes),
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
                # only the regressions: a test that never passed in the window has no culprit
                regressed = {r.nodeid for r in regs}
                for t in tests:
                    if t not in regressed:
                        self.plan_notes.append(f"{t}: not bisected, no tracked pass within "
                                               f"the last {lookback} tracked commits")
                tests = [t for t in tests if t in regressed]
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
        """Stored results at these commits, each commit loaded once (evidence is counted)."""
        shas = [s for s in dict.fromkeys(shas) if s not in self.loaded]
        self.loaded.update(shas)
        ids = self.store.tests()
        wanted = [ids[t] for t in tests if t in ids]
        if not wanted or not shas:
            return
        rows = self.store.results_at(shas, env_key=self.env_key, test_ids=wanted)
        rows.sort(key=lambda r: (r.started_at, r.run_id))
        for row in rows:
            if row.outcome == Outcome.UNTESTABLE:
                continue  # a timeout or a broken setup back then may not be one now: run again
            self.evidence.add(TestResult(row.nodeid, Outcome(row.outcome), 0.0, row.signature,
                                         row.message, row.reruns, "call"), row.sha)

    def _probe(self, sha: str, tests: list[str], why: str) -> dict[str, TestResult]:
        return self._probe_round([(sha, tests, why)])[0]

    def _probe_round(self, requests: list[tuple[str, list[str], str]]
                     ) -> list[dict[str, TestResult]]:
        """One round: these probes at once (one executor each), then recorded in order.

        Only this thread writes the store; the executors' threads only run tests. Without
        --jobs the probes run one by one, each recorded before the next starts: a Ctrl-C then
        loses only the probe it interrupts.
        """
        if len(requests) > 1 and (self.run_round is None or len(requests) > self.jobs):
            return [self._probe_round([request])[0] for request in requests]
        probes = []
        for sha, tests, why in requests:
            self.progress(f"probe {self.runs + len(probes) + 1}: {sha[:10]} ({why}), "
                          f"{len(tests)} test(s)")
            probes.append(Probe(sha, tuple(tests)))
        if len(probes) > 1:
            assert self.run_round is not None
            outcomes = self.run_round(probes)
        else:
            outcomes = [self.executor(probes[0])]
        self.rounds += 1
        return [self._record(sha, why, outcome)
                for (sha, _, why), outcome in zip(requests, outcomes, strict=True)]

    def _record(self, sha: str, why: str, outcome: ProbeOutcome) -> dict[str, TestResult]:
        """A probe's outcome as a stored run (and in the journal), and as evidence."""
        self.runs += 1
        kept = tuple(r for r in outcome.results.values() if not self._held_back(r))
        run = Run(
            sha=sha, dirty=False, branch=None, environment=outcome.environment,
            trigger=Trigger.PROBE, host=outcome.host or _host(), started_at=outcome.started_at,
            finished_at=outcome.finished_at, exit_status=outcome.exit_status,
            results=kept,
        )
        if kept or not outcome.results:  # a run of held-back ids only is not stored
            run_id = self.store.record_run(run, commits=self.repo.commits([sha]).values())
            if self.journal_id is not None:
                self.store.add_probe(self.journal_id, run_id, sha, why)
            else:
                self.unjournaled.append((run_id, sha, why))
        for result in outcome.results.values():
            self.evidence.add(result, sha)
        return outcome.results

    def probe_files(self, sha: str, files: list[str]) -> list[str]:
        """--test-file without node ids: run the whole files at the bad commit, and return the
        node ids of their tests, read from the probe's JUnit XML.

        This one probe is how bisector learns the files' tests, whatever the project's options
        do to pytest's output, and it is the bad-end check as well: `run` finds its results as
        evidence and does not run the bad end again. It is counted and stored as any probe.
        A run that yields no test at all is an error that quotes pytest's reason.
        """
        self.began = time.monotonic()
        self.progress(f"probe {self.runs + 1}: {sha[:10]} (check bad end, list the tests of "
                      f"{', '.join(files)})")
        outcome = self.executor(Probe(sha, tuple(files), whole_files=True))
        self.rounds += 1
        tests = [t for t, r in outcome.results.items()  # not a file that did not collect
                 if t not in files and r.outcome is not Outcome.UNTESTABLE
                 and r.phase != "collect"]
        # earlier stored runs of these tests at this commit are evidence too, loaded first so
        # that `run` does not load this probe's results a second time
        self._load_known([sha], tests)
        results = self._record(sha, "check bad end", outcome)
        if not tests:
            why = (outcome.problem
                   or "; ".join(dict.fromkeys(r.message or r.outcome for r in results.values()))
                   or "pytest reported no test")
            raise BisectError(f"cannot collect the tests of {', '.join(files)} at bad "
                              f"{sha[:10]}: {why}",
                              hint="make the probes' environment run them (--setup, "
                                   "--pytest-arg), or check the --test-file paths")
        return tests

    def _held_back(self, result: TestResult) -> bool:
        """An untestable result of an id the store has never seen is not stored: a mistyped id
        that no end can run must not become a test (a column of `bisector history` for good).
        Its first result that is not untestable makes it known, and stored from then on."""
        if result.nodeid not in self.unseen:
            return False
        if result.outcome is Outcome.UNTESTABLE:
            return True
        self.unseen.discard(result.nodeid)
        return False

    def _results_at(self, sha: str, tests: list[str], why: str) -> dict[str, TestResult]:
        """Known results where the store has them; a probe for the rest."""
        return self._results_round([(sha, tests, why)])[0]

    def _results_round(self, requests: list[tuple[str, list[str], str]]
                       ) -> list[dict[str, TestResult]]:
        """`_results_at` for several commits: what is unknown runs as one round."""
        found: list[dict[str, TestResult]] = []
        wanted: list[tuple[str, list[str], str]] = []
        slots: list[int] = []
        for slot, (sha, tests, why) in enumerate(requests):
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
                wanted.append((sha, missing, why))
                slots.append(slot)
            found.append(out)
        if wanted:
            for slot, results in zip(slots, self._probe_round(wanted), strict=True):
                found[slot].update(results)
        return found

    # -- the search -------------------------------------------------------------------------

    def run(self, tests: list[str], good_sha: str, bad_sha: str, *, first_parent: bool = True
            ) -> BisectResult:
        started = time.monotonic()
        notes: list[str] = list(self.plan_notes)
        log = [_start_line(bad_sha, good_sha, first_parent)]
        mode = "first-parent" if first_parent else "full-dag"
        key = hashlib.sha256(json.dumps([good_sha, bad_sha, sorted(tests), mode,
                                         self.env_key]).encode()).hexdigest()[:32]
        self.journal_id, resumed = self.store.start_bisection(
            key, good_sha, bad_sha, tests, mode, time.time())
        for run_id, sha, why in self.unjournaled:  # the --test-file probe, run before it
            self.store.add_probe(self.journal_id, run_id, sha, why)
        self.unjournaled.clear()
        if self.began is not None:  # the time of every probe is the bisection's
            started = self.began
        if resumed:
            notes.append(f"resumed an interrupted bisection: {resumed} of its probes are reused")
            self.progress(f"resuming: {resumed} probes of an interrupted run are in the store")
        try:
            result = self._run(tests, good_sha, bad_sha, first_parent, notes, log, started)
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM): the journal says so now, and the next run resumes it. A
            # store that cannot be written now leaves the row running, resumed all the same.
            with contextlib.suppress(Exception):
                self.store.finish_bisection(self.journal_id, "interrupted",
                                            {"error": "interrupted"}, time.time())
            raise
        except BaseException as exc:
            self.store.finish_bisection(self.journal_id, "failed",
                                        {"error": str(exc)}, time.time())
            raise
        result = replace(self._with_owners(result, bad_sha), journal_id=self.journal_id,
                         bisect_log=self._replayable(log, result.findings))
        self.store.finish_bisection(self.journal_id, "done", {
            t.nodeid: (t.culprit.sha if t.culprit else list(t.suspects))
            for t in result.findings
        }, time.time())
        return result

    def _with_owners(self, result: BisectResult, bad_sha: str) -> BisectResult:
        """Each culprit's owners (`owners.culprit_owners`), by the CODEOWNERS of the bad
        commit (who owns it now)."""
        from .owners import culprit_owners, parse

        if not any(f.culprit for f in result.findings):
            return result
        text = self.repo.codeowners(bad_sha)
        rules, problems = parse(text) if text is not None else ([], [])
        findings = tuple(
            replace(f, owners=culprit_owners(f.files, rules, f.culprit.author_name,
                                             f.culprit.author_email)) if f.culprit else f
            for f in result.findings)
        return replace(result, findings=findings, notes=(*result.notes, *problems))

    def _mark(self, test: str, verdict: Verdict, sha: str) -> None:
        """One verdict on the test's trail, the `git bisect` line that replays it."""
        self.trails.setdefault(test, []).append(_bisect_line(verdict, sha))

    def _replayable(self, log: list[str], findings: tuple[Finding, ...]) -> tuple[str, ...]:
        """The `bisect_log`: the lines that make `git bisect replay` end on the culprit.

        One `git bisect` names one commit, so the log follows one test: the first with a
        culprit (else the first). A culprit the search confirmed ends that test's trail. One the
        flake-aware search named replays from its conclusion (the culprit bad, its parent good),
        its runs (`log` after the start line) kept as comments above it: a flaky test's runs
        disagree, and `git bisect` would take each as final. Verdicts carry the comments
        `git bisect log` writes, and the log ends on the first bad commit, as git's does.
        """
        lead = next((f for f in findings if f.culprit), findings[0] if findings else None)
        if lead is None:
            return tuple(log[:1])
        trail = self.trails.get(lead.nodeid, [])
        culprit = lead.culprit
        comments = [f"# the verdicts of {lead.nodeid}"]
        searched = (trail[-1:] == [_bisect_line(Verdict.BAD, culprit.sha)] if culprit
                    else lead.verdict == "bracketed")  # not the flake-aware search's answer
        if searched:
            live = trail
        else:
            comments += [f"# searched before: {line.removeprefix('git bisect ')}"
                         for line in trail]
            comments += [f"# flake-aware probe: {line.removeprefix('git bisect ')}"
                         for line in log[1:] if line.startswith("git bisect ")]
            live = []
            if culprit is not None:
                comments.append("# the flake-aware search's verdict: the culprit and its parent")
                live = [_bisect_line(Verdict.GOOD, culprit.parents[0]),
                        _bisect_line(Verdict.BAD, culprit.sha)]
        infos = self.repo.commits(sorted({line.split()[-1] for line in live}))
        out = [log[0], *comments]
        for line in live:
            word, sha = line.split()[-2:]
            info = infos.get(sha)
            out += [f"# {word}: [{sha}] {info.subject if info else ''}".rstrip(), line]
        if culprit is not None:
            out.append(f"# first bad commit: [{culprit.sha}] {culprit.subject}".rstrip())
        return tuple(out)

    def _run(self, tests: list[str], good_sha: str, bad_sha: str, first_parent: bool,
             notes: list[str], log: list[str], started: float) -> BisectResult:
        # the first-parent line through the range, and some history before it for the rates
        line_range = self.repo.range(good_sha, bad_sha, first_parent=True)
        line = list(reversed(self.repo.first_parent(good_sha, limit=RATE_WINDOW))) + line_range
        self._load_known(line, tests)
        self.unseen = set(tests) - set(self.store.tests())
        at_bad, at_good = self._results_round([(bad_sha, tests, "check bad end"),
                                               (good_sha, tests, "check good end")])
        self._recheck_ends(tests, good_sha, bad_sha, line)
        live, flaky = [], []
        for t in tests:
            if self._estimate(t, line).flaky:
                if self._counts(t, bad_sha)[0]:
                    flaky.append(t)
                else:
                    notes.append(f"{t}: does not fail at bad {bad_sha[:10]}: nothing to find")
                continue
            vb, vg = self._verdict(t, at_bad[t], bad_sha), self._verdict(t, at_good[t], good_sha)
            if vb is Verdict.UNTESTABLE and vg is Verdict.UNTESTABLE:
                notes.append(f"{t}: cannot be run at either end ({at_bad[t].message})")
            elif vb is not Verdict.BAD:
                notes.append(f"{t}: does not fail at bad {bad_sha[:10]} "
                             f"({at_bad[t].outcome}): nothing to find")
            elif vg is Verdict.BAD:
                notes.append(f"{t}: already fails at good {good_sha[:10]}: give an older --good")
            else:
                live.append(t)
        if not live and not flaky:
            raise BisectError("nothing to bisect: " + "; ".join(notes))

        findings: dict[str, Finding] = {}
        candidates = len(line_range)
        if live:
            candidates, suspects = self._search(live, good_sha, bad_sha, first_parent, notes)
            if first_parent:
                self._into_merges(live, suspects, notes)
            for f in self._confirm(live, suspects):
                if f.culprit is not None and not f.confirmed:
                    notes.append(f"{f.nodeid}: {f.culprit.short} was not confirmed ({f.note}); "
                                 "searched again as a flaky test")
                    flaky.append(f.nodeid)
                else:
                    findings[f.nodeid] = f
        if flaky:
            for f in self._flaky_search(flaky, good_sha, line_range, line, log, notes):
                findings[f.nodeid] = f
        for (t, sha), message in self.other_failures.items():
            notes.append(f"another failure seen at {sha[:10]}: {message} ({t}); counted as "
                         "untestable for this test")
        return BisectResult(
            good=good_sha, bad=bad_sha, candidates=candidates,
            findings=tuple(findings[t] for t in tests if t in findings),
            probes_run=self.runs, probes_reused=self.reused,
            seconds=time.monotonic() - started, bisect_log=tuple(log), notes=tuple(notes),
            rounds=self.rounds, jobs=self.jobs,
        )

    def _references(self, tests: list[str], bad_sha: str) -> None:
        """Per test, the exception type of its latest failure at the bad end: the failure
        being bisected, which failures of another kind are told from."""
        for t in tests:
            failing = [r for r in self.evidence.seen.get((t, bad_sha), [])
                       if verdict_of(r) is Verdict.BAD]
            self.reference[t] = exception_type(failing[-1].message) if failing else None

    def _only(self, t: str, sha: str, verdict: Verdict) -> bool:
        """Every testable run of t at sha gave `verdict`, and fewer than END_RUNS did."""
        verdicts = [v for v in (self._verdict(t, r, sha)
                                for r in self.evidence.seen.get((t, sha), []))
                    if v is not Verdict.UNTESTABLE]
        return set(verdicts) == {verdict} and len(verdicts) < END_RUNS

    def _recheck_ends(self, tests: list[str], good_sha: str, bad_sha: str,
                      line: list[str]) -> None:
        """Run an end again while it contradicts the user, until it agrees or has contradicted
        END_RUNS times: one failure at --good (or pass at --bad) may be a flake.

        Nothing runs when the ends agree. The good end is run again for a test that fails at
        both ends (unless history already shows it flaky: the flaky search takes it anyway);
        the bad end only when no test fails there (a test of a --test-file that passes at bad
        is no contradiction, the refusal of the whole bisection is). A re-run that agrees
        leaves both outcomes stored at one commit: flakiness, which `_estimate` sees and the
        flaky search starts from, its rates learnt from these runs.
        """
        flaky = {t for t in tests if self._estimate(t, line).flaky}
        for _ in range(END_RUNS):  # a round at most per re-run (an untestable one counts)
            self._references(tests, bad_sha)
            requests = []
            fails_at_bad = [t for t in tests if self._counts(t, bad_sha)[0]]
            if not fails_at_bad:
                group = [t for t in tests if self._only(t, bad_sha, Verdict.GOOD)]
                if group:
                    requests.append((bad_sha, group, "recheck bad end"))
            group = [t for t in fails_at_bad
                     if t not in flaky and self._only(t, good_sha, Verdict.BAD)]
            if group:
                requests.append((good_sha, group, "recheck good end"))
            if not requests:
                break
            self._probe_round(requests)
        self._references(tests, bad_sha)

    # -- evidence for the flake-aware search ------------------------------------------------

    def _verdict(self, test: str, result: TestResult, sha: str) -> Verdict:
        """verdict_of, where a failure of another kind than the one bisected is untestable:
        it is evidence of another problem at that commit, not of this culprit."""
        verdict = verdict_of(result)
        if verdict is Verdict.BAD:
            reference = self.reference.get(test)
            kind = exception_type(result.message)
            if reference and kind and kind != reference:
                self.other_failures.setdefault((test, sha), result.message or kind)
                return Verdict.UNTESTABLE
        return verdict

    def _failed(self, test: str, result: TestResult, sha: str) -> bool | None:
        """The flake-aware search's reading of a result: failed, passed, or None (untestable)."""
        verdict = self._verdict(test, result, sha)
        return None if verdict is Verdict.UNTESTABLE else verdict is Verdict.BAD

    def _counts(self, test: str, sha: str) -> tuple[int, int]:
        return tally((self._failed(test, r, sha), r.reruns)
                     for r in self.evidence.seen.get((test, sha), []))

    def _estimate(self, test: str, line: list[str]) -> Estimate:
        return estimate([self._counts(test, sha) for sha in line])

    def _prior(self, test: str, before: list[str]) -> Learnt:
        """What the runs before the range (history up to the good end, and the end checks
        there) say of the test's false-failure rate, as a prior the search goes on learning
        from: runs read as good count, a fix inside that history is not read as flakes."""
        est = self._estimate(test, before)
        return Learnt().known(est.false_fails, est.good_runs - est.false_fails)

    def _flaky_search(self, tests: list[str], good_sha: str, candidates: list[str],
                      line: list[str], log: list[str], notes: list[str]) -> list[Finding]:
        """The flake-aware search over the first-parent line, then its verdicts.

        The culprit and its parent are run once more when the search is sure; if that shakes
        its confidence the search goes on, within the same probe budget.
        """
        index = {sha: i for i, sha in enumerate(candidates)}
        before = line[:len(line) - len(candidates)]  # up to the good end: all good commits
        rates: dict[str, Rates | Learnt] = {t: self._prior(t, before) for t in tests}
        search = FlakySearch(len(candidates), tests, rates, confidence=self.confidence,
                             max_probes=self.max_probes, max_untestable=self.max_untestable)
        for t in tests:
            for sha in candidates:
                f, p = self._counts(t, sha)
                if f:
                    search.observe(t, index[sha], True, f)
                if p:
                    search.observe(t, index[sha], False, p)
        self.progress(f"flake-aware search over {len(candidates)} commits for {len(tests)} "
                      "test(s), false-failure rates learnt from the runs, starting from "
                      + ", ".join(f"{search.posteriors[t].current_rates().false_fail:.2f}"
                                  for t in tests))

        def observe(i: int, group: list[str], results: dict[str, TestResult]) -> None:
            sha = candidates[i]
            outcomes = {t: self._failed(t, results[t], sha) for t in group}
            search.observe_probe(i, outcomes)
            for t in group:  # failed rerun attempts count too, as in `_counts`
                if outcomes[t] is not None and results[t].reruns:
                    search.observe(t, i, True, results[t].reruns)
            first = outcomes[group[0]]
            word = "skip" if first is None else ("bad" if first else "good")
            log.append(f"git bisect {word} {sha}")

        def probe(i: int, group: list[str], why: str) -> None:
            observe(i, group, self._probe(candidates[i], group, why))

        confirmed: set[str] = set()
        for _ in range(3):
            while points := search.next_probes(self.jobs):
                group = search.open_tests()
                why = f"flake-aware, {len(candidates)} candidates"
                rounds = self._probe_round([(candidates[i], group, why) for i in points])
                for i, results in zip(points, rounds, strict=True):
                    observe(i, group, results)
            pending: dict[int, list[str]] = {}
            for t in tests:
                b = search.belief(t)
                if b.culprit is not None and b.probability >= self.confidence \
                        and t not in confirmed:
                    parent = candidates[b.culprit - 1] if b.culprit else good_sha
                    if min(sum(self._counts(t, candidates[b.culprit])),
                           sum(self._counts(t, parent))) >= 2:
                        confirmed.add(t)  # the search ran both again itself: sure with that
                    else:
                        pending.setdefault(b.culprit, []).append(t)
            if not pending:
                break
            for i, group in sorted(pending.items()):
                if i > 0:  # the culprit and its parent: one round with --jobs
                    again, before = self._probe_round([
                        (candidates[i], group, "confirm culprit"),
                        (candidates[i - 1], group, "confirm parent")])
                    observe(i, group, again)
                    observe(i - 1, group, before)
                else:
                    probe(i, group, "confirm culprit")
                    self._probe(good_sha, group, "confirm parent")
                confirmed.update(group)
            if all(search.belief(t).probability >= self.confidence for t in tests):
                break
        if search.budget_spent:
            notes.append(f"the flake-aware search spent its budget of {search.max_probes} "
                         "probes" if search.probes >= search.max_probes else
                         f"stopped after {search.untestable_probes} untestable probes")

        findings = []
        for t in tests:
            b = search.belief(t)
            est = self._estimate(t, line)
            interval = est.false_fail_interval()
            common = dict(confidence=b.probability, false_fail_rate=est.false_fail_rate,
                          false_fail_interval=(interval.low, interval.high))
            if b.probability >= self.confidence and b.culprit is not None:
                sha = candidates[b.culprit]
                failing = [r for r in self.evidence.seen.get((t, sha), [])
                           if self._verdict(t, r, sha) is Verdict.BAD]
                last = failing[-1] if failing else None
                findings.append(Finding(
                    t, self.repo.commits([sha]).get(sha), (sha,),
                    signature=last.signature if last else None,
                    message=last.message if last else None,
                    traceback=last.traceback if last else None,
                    confirmed=t in confirmed, files=tuple(self.repo.changed_files(sha)),
                    note=f"culprit {sha[:10]} with confidence {b.probability:.3f}",
                    verdict="culprit", **common,  # type: ignore[arg-type]
                ))
            elif b.probability >= self.confidence:
                fails = runs = 0
                for sha in line:  # no culprit: every run on the line was on a good commit
                    f, p = self._counts(t, sha)
                    fails, runs = fails + f, runs + f + p
                ci = wilson(fails, runs)
                rate = fails / runs if runs else 0.0
                findings.append(Finding(
                    t, None, (), verdict="flaky", confidence=b.probability,
                    false_fail_rate=rate, false_fail_interval=(ci.low, ci.high),
                    note=f"no culprit: test is flaky at both ends (false-failure rate "
                         f"{rate:.2f}, 95% CI {ci.low:.2f}-{ci.high:.2f}; confidence "
                         f"{b.probability:.3f})",
                ))
            else:
                hi = min(b.high, len(candidates) - 1)
                lo = min(b.low, hi)
                tail = " (or no culprit at all)" if b.high >= len(candidates) else ""
                findings.append(Finding(
                    t, None, tuple(candidates[lo:hi + 1]), verdict="inconclusive",
                    note=f"inconclusive after {search.probes} probes: the range is "
                         f"{candidates[lo][:10]}..{candidates[hi][:10]}{tail}; the most likely "
                         f"answer has probability {b.probability:.2f}",
                    **common,  # type: ignore[arg-type]
                ))
        return findings

    def _search(self, tests: list[str], good_sha: str, bad_sha: str, first_parent: bool,
                notes: list[str]) -> tuple[int, dict[str, tuple[str, ...]]]:
        """Bisect good..bad for tests known to pass at good and fail at bad.

        Returns the number of candidates and, per test, the commits still suspected, oldest
        first: one commit when the culprit is isolated. Each test's verdicts go to its trail.
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
        settled: dict[str, dict[str, Verdict]] = {t: {} for t in tests}
        for (nodeid, sha), results in self.evidence.seen.items():
            if nodeid in tests and sha in index and sha != bad_sha:
                verdicts = {self._verdict(nodeid, r, sha) for r in results}
                if len(verdicts) == 1:  # disagreeing runs (flaky) are not trusted here
                    verdict = verdicts.pop()
                    search.observe(nodeid, index[sha], verdict)
                    settled[nodeid][sha] = verdict
        # What history settled goes into each test's trail too: good and skip oldest first,
        # bad newest first, since `git bisect bad X` moves refs/bisect/bad to X even when an
        # older commit is already bad.
        for t in tests:
            known = sorted(settled[t], key=index.__getitem__)
            bads = [sha for sha in known if settled[t][sha] is Verdict.BAD]
            for sha in [s for s in known if s not in bads] + bads[::-1]:
                self._mark(t, settled[t][sha], sha)
        self.reused += len({sha for by_sha in settled.values() for sha in by_sha})
        while points := search.next_probes(self.jobs):
            open_tests = search.open_tests()
            why = f"bisect, {_left(search, open_tests)} of {len(candidates)} candidates left"
            rounds = self._results_round([(candidates[i], open_tests, why) for i in points])
            for i, results in zip(points, rounds, strict=True):
                sha = candidates[i]
                verdicts = {t: self._verdict(t, results[t], sha) for t in open_tests}
                search.observe_probe(i, verdicts)
                for t, verdict in verdicts.items():
                    self._mark(t, verdict, sha)
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
                     notes: list[str], depth: int = 0) -> None:
        """A merge found on a first-parent line: look for the culprit inside its branch.

        Recursive, so a branch merged into a branch is followed too: every line searched is a
        first-parent line, on which "fails from the culprit on" holds, unlike a date-ordered
        list of the whole graph. Each test found inside keeps the outermost merge, the one on
        the line first searched (`merged_by`): where the break entered that line.
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
            self._load_known([branch], group)  # a rerun reuses the tip's stored result
            at_tip = self._results_at(branch, group, "merged branch tip")
            inside = [t for t in group if self._verdict(t, at_tip[t], branch) is Verdict.BAD]
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
            for t in inside:
                self.merged_by.setdefault(t, sha)
                # the branch search's ends, for the replay: the tip as probed, and the merge
                # base good as an ancestor of the good first parent (the search takes it so)
                self._mark(t, Verdict.GOOD, base)
                self._mark(t, Verdict.BAD, branch)
            _, found = self._search(inside, base, branch, True, notes)
            suspects.update(found)
            self._into_merges(inside, suspects, notes, depth + 1)

    def _confirm(self, tests: list[str], suspects: dict[str, tuple[str, ...]]
                 ) -> list[Finding]:
        """Run each culprit and its parent once more; an inconsistency is reported, not hidden."""
        by_culprit: dict[str, list[str]] = {}
        for t in tests:
            if len(suspects[t]) == 1:
                by_culprit.setdefault(suspects[t][0], []).append(t)
        merges = {self.merged_by[t] for t in tests if t in self.merged_by}
        infos = self.repo.commits(sorted({*by_culprit, *merges}))
        confirmations: dict[str, tuple[TestResult, TestResult]] = {}
        for sha, group in sorted(by_culprit.items()):
            again, before = self._probe_round([(sha, group, "confirm culprit"),
                                               (infos[sha].parents[0], group, "confirm parent")])
            for t in group:
                confirmations[t] = (again[t], before[t])
        findings = []
        for t in tests:
            merge = infos.get(self.merged_by[t]) if t in self.merged_by else None
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
                    verdict="bracketed", merge=merge,
                ))
                continue
            sha = suspects[t][0]
            again, before = confirmations[t]
            confirmed = (self._verdict(t, again, sha) is Verdict.BAD
                         and self._verdict(t, before, infos[sha].parents[0]) is Verdict.GOOD)
            note = None
            if confirmed:  # the trail ends on the culprit, after its parent
                self._mark(t, Verdict.GOOD, infos[sha].parents[0])
                self._mark(t, Verdict.BAD, sha)
            else:
                note = (f"not confirmed: run again, the culprit gave {again.outcome} and its "
                        f"parent {before.outcome}; the test may be flaky")
            findings.append(Finding(
                t, infos.get(sha), suspects[t], signature=again.signature or None,
                message=again.message, traceback=again.traceback, confirmed=confirmed, note=note,
                files=tuple(self.repo.changed_files(sha)),
                confidence=1.0 if confirmed else None, merge=merge,
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
    max_untestable: int | None = None,
    progress: Progress | None = None,
    confidence: float = 0.99,
    max_probes: int | None = None,
    probes: ExecutorOptions | None = None,
) -> BisectResult:
    """The whole find-break, as the CLI, the nightly and the plugin's auto-bisect run it.
    `probes` says where and how probes run (`executors.factory`: local by default, checked
    when made); [tool.bisector] fills in the setup and pytest options it leaves out."""
    from .executors.factory import ExecutorOptions, build_executor, layout

    options = (probes or ExecutorOptions()).for_tests(tests)
    if max_untestable is not None and max_untestable < 1:  # 0 would end every search at once
        raise ConfigError(f"--max-untestable must be at least 1, not {max_untestable}",
                          hint="give 1 or more, or leave it out for the default")
    with contextlib.ExitStack() as stack:
        repo = stack.enter_context(Repository(repo_path))
        for rev in (bad, good):  # bad revisions fail before a store is created
            if rev is not None:
                repo.resolve(rev)
        try:  # without --good the range comes from the history: it must exist to plan from
            store, settings = stack.enter_context(open_store(repo, history_db, lookback,
                                                             create=good is not None))
        except MissingStore as err:
            raise BisectError(f"nothing to bisect: {err.message}",
                              hint="record history with pytest --track-history, or name the "
                                   "tests and give --good REV") from None
        place = layout(repo, repo_path, options.test_files)
        executor = stack.enter_context(build_executor(repo, options, place, settings, progress))
        finder = Finder(repo, store, executor.run, progress=progress,
                        env_key=executor.env_key(), confidence=confidence,
                        max_probes=max_probes, jobs=options.jobs, run_round=executor.run_round)
        if options.whole_files:  # the files' tests, from a probe of them at the bad end
            tests = finder.probe_files(repo.resolve(bad), place.test_paths())
        names, good_sha, bad_sha = finder.plan(tests, good, bad, settings.lookback)
        if max_untestable is None:
            span = len(repo.range(good_sha, bad_sha, first_parent=first_parent))
            max_untestable = 2 * plain_probes(span) + 4
        finder.max_untestable = max_untestable
        return finder.run(names, good_sha, bad_sha, first_parent=first_parent)


def _left(search: Bisection | DagBisection, tests: list[str]) -> int:
    """The commits some open test still suspects: what a probe of this round narrows."""
    return len({i for t in tests for i in search.suspect_list(t)})


def _start_line(bad: str, good: str, first_parent: bool) -> str:
    """`git bisect start` as `git bisect log` writes it: replay reads the arguments only when
    single-quoted, and `--first-parent` (git 2.29+) walks the line that bisector searched."""
    args = ["--first-parent"] if first_parent else []
    return "git bisect start " + " ".join(f"'{arg}'" for arg in [*args, bad, good])


def _bisect_line(verdict: Verdict, sha: str) -> str:
    word = "skip" if verdict is Verdict.UNTESTABLE else verdict.value
    return f"git bisect {word} {sha}"


def _host() -> str:
    import socket

    return socket.gethostname()

