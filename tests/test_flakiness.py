"""The flakiness estimator: steps are regressions or fixes, disagreement is flakiness."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bisector.flakiness import DETERMINISTIC_RATE, RATE_FLOOR, estimate, wilson

P, F = (0, 1), (1, 0)


def test_a_one_way_switch_is_a_regression_not_flakiness() -> None:
    est = estimate([P, P, P, F, F])
    assert (est.step, est.fix, est.flaky) == (3, False, False)
    assert est.rates().false_fail == DETERMINISTIC_RATE


def test_a_fix_is_not_flakiness_either() -> None:
    est = estimate([F, F, P, P])
    assert (est.step, est.fix, est.flaky) == (2, True, False)


def test_a_failure_at_the_newest_commit_alone_reads_as_a_regression() -> None:
    assert estimate([P, P, P, F]).step == 3


def test_disagreeing_runs_on_one_commit_are_flakiness() -> None:
    est = estimate([P, (1, 3), P, P])  # one failure among four runs of commit 1
    assert est.flaky and est.flipped == (1,)
    assert (est.false_fails, est.good_runs) == (1, 7)
    rates = est.rates()
    assert rates.false_fail == 1 / 7 and rates.false_pass == RATE_FLOOR


def test_isolated_failures_between_passes_are_false_failures() -> None:
    est = estimate([P, F, P, P, F, P, P, P, P, P])
    assert est.step is None and est.flipped == (1, 4)
    assert est.false_fail_rate == 0.2


def test_false_passes_after_a_regression() -> None:
    est = estimate([P, P, P, F, F, P, F, F, F])
    assert est.step == 3 and est.false_passes == 1 and est.bad_runs == 6


def test_wilson_interval_matches_the_textbook() -> None:
    ci = wilson(21, 100)  # 0.21: 95% Wilson interval 0.142-0.300
    assert round(ci.low, 3) == 0.142 and round(ci.high, 3) == 0.300
    assert wilson(0, 0).low == 0.0 and wilson(0, 0).high == 1.0
    assert wilson(0, 10).low == 0.0 and 0.25 < wilson(0, 10).high < 0.35


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_every_run_is_read_once(commits: list[tuple[int, int]]) -> None:
    est = estimate(commits)
    assert est.runs == sum(f + p for f, p in commits)
    assert 0 <= est.false_fails <= est.good_runs and 0 <= est.false_passes <= est.bad_runs
    # flakes are the fewest runs any single step (or none) leaves disagreeing
    assert est.false_fails + est.false_passes <= min(sum(f for f, _ in commits),
                                                     sum(p for _, p in commits))
    assert all(0 <= i < len(commits) for i in est.flipped)
