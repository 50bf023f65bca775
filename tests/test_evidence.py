"""bisection.evidence: what the confirmation may reuse (#15)."""

from __future__ import annotations

from bisector.bisection.evidence import Evidence
from bisector.model import Outcome, TestResult
from bisector.search import Verdict

T = "test_m.py::test_one"


def result(outcome: Outcome, message: str | None = None, phase: str = "call") -> TestResult:
    return TestResult(T, outcome, 0.01, None, message, phase=phase)


def test_agreeing_counts_runs_that_all_gave_the_verdict() -> None:
    ev = Evidence()
    assert ev.agreeing(T, "c1", Verdict.BAD) == 0
    ev.add(result(Outcome.FAILED, "AssertionError: x"), "c1")
    assert ev.agreeing(T, "c1", Verdict.BAD) == 1
    ev.add(result(Outcome.FAILED, "AssertionError: y"), "c1")
    assert ev.agreeing(T, "c1", Verdict.BAD) == 2
    assert ev.agreeing(T, "c1", Verdict.GOOD) == 0


def test_one_disagreeing_run_settles_nothing() -> None:
    """A pass among failures is a flake: however many failures agree, the culprit must be
    run again (or searched as flaky), never confirmed from the store."""
    ev = Evidence()
    for outcome in (Outcome.FAILED, Outcome.FAILED, Outcome.PASSED):
        ev.add(result(outcome, "AssertionError: x" if outcome is Outcome.FAILED else None), "c1")
    assert ev.agreeing(T, "c1", Verdict.BAD) == 0
    assert ev.agreeing(T, "c1", Verdict.GOOD) == 0


def test_untestable_runs_neither_count_nor_disagree() -> None:
    ev = Evidence()
    ev.add(result(Outcome.PASSED), "c0")
    ev.add(result(Outcome.UNTESTABLE, "cannot build"), "c0")
    ev.add(result(Outcome.ERROR, "ImportError: x", phase="collect"), "c0")
    assert ev.agreeing(T, "c0", Verdict.GOOD) == 1


def test_a_failure_of_another_kind_is_not_agreement() -> None:
    ev = Evidence()
    ev.add(result(Outcome.FAILED, "AssertionError: x"), "bad")
    ev.set_references([T], "bad")
    ev.add(result(Outcome.FAILED, "AssertionError: x"), "c1")
    ev.add(result(Outcome.FAILED, "KeyError: 'k'"), "c1")
    assert ev.agreeing(T, "c1", Verdict.BAD) == 1
