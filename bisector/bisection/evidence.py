"""What is known of each test at each commit, and what it means for the bisection; pure.

Outcomes per (test, commit), from the store and from probes, newest last; the reference
failure (the exception type seen at the bad end), against which a failure of another kind
counts as untestable; verdicts, tallies and flakiness estimates. No I/O: the prober feeds it,
the searches and the conclusion read it through these methods only.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..flakiness import Estimate, Learnt, estimate, tally
from ..model import Outcome, TestResult
from ..search import Verdict
from ..signature import exception_type


def verdict_of(result: TestResult | str) -> Verdict:
    """A result (or a bare outcome) as `git bisect` reads it; a collection error is untestable."""
    outcome = Outcome(result.outcome if isinstance(result, TestResult) else result)
    if outcome is Outcome.PASSED:
        return Verdict.GOOD
    if outcome.is_bad and (not isinstance(result, TestResult) or result.phase != "collect"):
        return Verdict.BAD
    return Verdict.UNTESTABLE


class Evidence:
    """Outcomes per (test, sha), newest last, and the failure each test is bisected for."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], list[TestResult]] = {}
        # per test, the exception type of the failure being bisected (from the bad end)
        self._reference: dict[str, str | None] = {}
        # (test, sha) -> the message of a failure of another kind seen there, first seen first
        self._other: dict[tuple[str, str], str] = {}

    def add(self, result: TestResult, sha: str) -> None:
        self._seen.setdefault((result.nodeid, sha), []).append(result)

    def results(self, test: str, sha: str) -> list[TestResult]:
        return list(self._seen.get((test, sha), []))

    def latest(self, test: str, sha: str) -> TestResult | None:
        found = self._seen.get((test, sha))
        return found[-1] if found else None

    def set_references(self, tests: Iterable[str], bad_sha: str) -> None:
        """Per test, the exception type of its latest failure at the bad end: the failure
        being bisected, which failures of another kind are told from."""
        for t in tests:
            failing = [r for r in self._seen.get((t, bad_sha), [])
                       if verdict_of(r) is Verdict.BAD]
            self._reference[t] = exception_type(failing[-1].message) if failing else None

    def verdict(self, test: str, result: TestResult, sha: str) -> Verdict:
        """verdict_of, where a failure of another kind than the one bisected is untestable:
        it is evidence of another problem at that commit, not of this culprit."""
        verdict = verdict_of(result)
        if verdict is Verdict.BAD and (kind := self._another_kind(test, result)):
            self._other.setdefault((test, sha), result.message or kind)
            return Verdict.UNTESTABLE
        return verdict

    def _another_kind(self, test: str, result: TestResult) -> str | None:
        """The exception type of a failure of another kind than the one bisected, else None."""
        reference = self._reference.get(test)
        kind = exception_type(result.message)
        return kind if reference and kind and kind != reference else None

    def patched_verdict(self, test: str, result: TestResult) -> Verdict:
        """The same rule for a patched tree (an isolation probe): a failure of another kind
        than the one bisected is unresolved, not this failure. Not noted as a failure at a
        commit: the tree is no commit of the history."""
        verdict = verdict_of(result)
        if verdict is Verdict.BAD and self._another_kind(test, result):
            return Verdict.UNTESTABLE
        return verdict

    def failed(self, test: str, result: TestResult, sha: str) -> bool | None:
        """The flake-aware search's reading of a result: failed, passed, or None (untestable)."""
        verdict = self.verdict(test, result, sha)
        return None if verdict is Verdict.UNTESTABLE else verdict is Verdict.BAD

    def counts(self, test: str, sha: str) -> tuple[int, int]:
        """(failures, passes) of a test at a commit, failed rerun attempts counted."""
        return tally((self.failed(test, r, sha), r.reruns)
                     for r in self._seen.get((test, sha), []))

    def estimate(self, test: str, line: list[str]) -> Estimate:
        return estimate([self.counts(test, sha) for sha in line])

    def prior(self, test: str, before: list[str]) -> Learnt:
        """What the runs before the range (history up to the good end, and the end checks
        there) say of the test's false-failure rate, as a prior the search goes on learning
        from: runs read as good count, a fix inside that history is not read as flakes."""
        est = self.estimate(test, before)
        return Learnt().known(est.false_fails, est.good_runs - est.false_fails)

    def _testable(self, test: str, sha: str) -> list[tuple[TestResult, Verdict]]:
        """The runs of the test at sha that tell something, with their verdicts, in order."""
        return [(r, v) for r in self._seen.get((test, sha), [])
                if (v := self.verdict(test, r, sha)) is not Verdict.UNTESTABLE]

    def only(self, test: str, sha: str, verdict: Verdict, below: int) -> bool:
        """Every testable run of the test at sha gave `verdict`, and fewer than `below` did."""
        verdicts = [v for _, v in self._testable(test, sha)]
        return set(verdicts) == {verdict} and len(verdicts) < below

    def short_of(self, test: str, sha: str, verdict: Verdict, need: int) -> bool:
        """Another run is wanted: every testable run at sha gave `verdict` (or there is none)
        and fewer than `need` did. A commit whose runs disagree wants none: it is not
        confirmed, however many more agree."""
        verdicts = [v for _, v in self._testable(test, sha)]
        return set(verdicts) <= {verdict} and len(verdicts) < need

    def disagreeing(self, test: str, sha: str, verdict: Verdict) -> TestResult | None:
        """The latest testable run at sha that did not give `verdict`, if any."""
        other = [r for r, v in self._testable(test, sha) if v is not verdict]
        return other[-1] if other else None

    def agreeing(self, test: str, sha: str, verdict: Verdict) -> int:
        """How many runs of the test at sha gave `verdict`, or 0 when any testable run there
        gave another: a commit with disagreeing runs is not settled, however many agree."""
        verdicts = [v for _, v in self._testable(test, sha)]
        return len(verdicts) if set(verdicts) == {verdict} else 0

    def settled(self, tests: list[str], shas: dict[str, int], bad_sha: str
                ) -> dict[str, dict[str, Verdict]]:
        """Per test, the commits of `shas` (bad end aside) whose runs all agree, with that
        verdict, in the order they were first seen; disagreeing runs (flaky) are not trusted."""
        out: dict[str, dict[str, Verdict]] = {t: {} for t in tests}
        for (nodeid, sha), results in self._seen.items():
            if nodeid in out and sha in shas and sha != bad_sha:
                verdicts = {self.verdict(nodeid, r, sha) for r in results}
                if len(verdicts) == 1:
                    out[nodeid][sha] = verdicts.pop()
        return out

    def last_failure(self, test: str, sha: str) -> TestResult | None:
        """The latest run of the test at sha that failed as bisected, if any."""
        failing = [r for r in self._seen.get((test, sha), [])
                   if self.verdict(test, r, sha) is Verdict.BAD]
        return failing[-1] if failing else None

    def other_failures(self) -> list[str]:
        """A note per (test, commit) where a failure of another kind was counted untestable."""
        return [f"another failure seen at {sha[:10]}: {message} ({t}); counted as "
                "untestable for this test" for (t, sha), message in self._other.items()]
