"""The hunk isolation search against simulated oracles: a guilty set, interactions, unresolved
subsets, budgets, rounds of k, flaky verdicts and results already in the store."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisector.isolation import HunkIsolation, IsolationResult, aggregate, repeats_for, section
from bisector.search import Verdict, rounds_needed

Oracle = Callable[[frozenset[int]], Verdict]


def drive(search: HunkIsolation, oracle: Oracle, k: int = 1,
          seen: list[list[frozenset[int]]] | None = None) -> IsolationResult:
    """The driver's loop: a round of up to k subsets, each run and observed."""
    while batch := search.next_probes(k):
        if seen is not None:
            seen.append(batch)
        for cand in batch:
            search.observe_probe(cand, {"t": oracle(cand)})
    return search.result()


def causes(*groups: frozenset[int], needs: tuple[int, int] | None = None,
           failed: set[frozenset[int]] | None = None) -> Oracle:
    """Fails when any group is applied whole; `needs` (call, helper): the call without its
    helper is unresolved. `failed` collects every subset seen failing."""
    def oracle(cand: frozenset[int]) -> Verdict:
        if needs and needs[0] in cand and needs[1] not in cand:
            return Verdict.UNTESTABLE
        if any(g <= cand for g in groups):
            if failed is not None:
                failed.add(cand)
            return Verdict.BAD
        return Verdict.GOOD
    return oracle


def bound(n: int, g: int) -> int:
    """The prefix bisection's cost: ceil(log2 n) + 1 per guilty unit, and C - S once."""
    return g * (math.ceil(math.log2(n)) + 1) + 1


sizes_and_guilty = st.integers(1, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), min_size=1,
                                            max_size=min(n, 3))))


@settings(max_examples=200, deadline=None)
@given(sizes_and_guilty)
def test_monotone_guilty_set_is_found_exactly_within_the_bound(case: tuple[int, set[int]]) -> None:
    n, guilty = case
    result = drive(HunkIsolation(n, ["t"], max_probes=None), causes(frozenset(guilty)))
    assert result.hunks == guilty
    assert result.probes <= bound(n, len(guilty))
    assert result.verified is True
    assert result.minimal


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), min_size=2, max_size=2,
                                             unique=True))))
def test_a_call_and_the_helper_it_needs_come_out_as_one_set(case: tuple[int, list[int]]) -> None:
    n, (call, helper) = case
    oracle = causes(frozenset({call, helper}), needs=(call, helper))
    result = drive(HunkIsolation(n, ["t"], max_probes=None), oracle)
    assert result.hunks == {call, helper}
    assert result.minimal
    assert result.probes <= bound(n, 2) + 2  # and S minus each unit, once unresolved was seen


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 400).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), min_size=2, max_size=2,
                                             unique=True))))
def test_two_independent_causes_are_both_reverted(case: tuple[int, list[int]]) -> None:
    """P + {a} fails, but C - {a} still fails through b: S must hold both for C - S to pass."""
    n, (a, b) = case
    result = drive(HunkIsolation(n, ["t"], max_probes=None),
                   causes(frozenset({a}), frozenset({b})))
    assert result.hunks == {a, b}
    assert result.verified is True


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**32 - 1), st.integers(1, 60))
def test_never_names_a_set_it_has_not_seen_fail(n: int, seed: int, budget: int) -> None:
    """Any oracle at all (random verdicts, P good and C bad): the answer is C or made of sets
    seen failing (one per cause searched), and the budget holds."""
    failed: set[frozenset[int]] = set()

    def oracle(cand: frozenset[int]) -> Verdict:
        verdict = random.Random(hash((seed, cand))).choice(list(Verdict))
        if verdict is Verdict.BAD:
            failed.add(cand)
        return verdict

    result = drive(HunkIsolation(n, ["t"], max_probes=budget), oracle)
    parts = [f for f in failed if f <= result.hunks]
    assert result.hunks == frozenset(range(n)) or frozenset().union(*parts) == result.hunks
    assert result.probes <= budget
    if not result.minimal:
        assert result.reason


def test_a_change_that_does_not_come_apart_ends_saying_so() -> None:
    """Every proper subset unresolved: no set is named but the whole change, within budget."""
    result = drive(HunkIsolation(50, ["t"], max_probes=100), lambda c: Verdict.UNTESTABLE)
    assert result.hunks == frozenset(range(50))
    assert not result.minimal
    assert result.probes < 100
    assert "could not isolate below 50 hunks" in result.reason


def test_the_budget_stops_with_the_best_set_so_far() -> None:
    failed: set[frozenset[int]] = set()
    search = HunkIsolation(2000, ["t"], max_probes=5)
    result = drive(search, causes(frozenset({1234}), failed=failed))
    assert result.probes == 5
    assert not result.minimal
    assert 1234 in result.hunks and result.hunks in failed
    below = len(result.hunks)
    assert result.reason == f"probe budget (5) spent: could not isolate below {below} hunks"
    assert search.open_tests() == []


@pytest.mark.parametrize("k", [2, 3, 7])
def test_rounds_of_k_find_the_same_set_in_fewer_rounds(k: int) -> None:
    n, guilty = 2000, frozenset({7, 1500})
    rounds: list[list[frozenset[int]]] = []
    result = drive(HunkIsolation(n, ["t"], max_probes=None), causes(guilty), k=k, seen=rounds)
    assert result.hunks == guilty
    assert all(1 <= len(r) <= k and len(set(r)) == len(r) for r in rounds)
    assert len(rounds) <= 2 * (rounds_needed(n, k) + 1) + 1
    one_at_a_time: list[list[frozenset[int]]] = []
    drive(HunkIsolation(n, ["t"], max_probes=None), causes(guilty), seen=one_at_a_time)
    assert len(rounds) < len(one_at_a_time)


def test_the_traceback_hunks_go_first() -> None:
    """A guilty hunk among the 4 the traceback names costs a handful of probes, not 12."""
    search = HunkIsolation(2000, ["t"], priority=[3, 1500, 9, 10], max_probes=None)
    result = drive(search, causes(frozenset({1500})))
    assert result.hunks == {1500}
    assert result.probes <= math.ceil(math.log2(4)) + 3


def test_flaky_failures_are_confirmed_before_a_subset_is_bad() -> None:
    """A test failing falsely 10 % of the time: exact in at least 95 % of seeded trials."""
    exact = 0
    for trial in range(40):
        rng = random.Random(trial)
        guilty = frozenset({rng.randrange(500)})
        truth = causes(guilty)

        def oracle(cand: frozenset[int], truth: Oracle = truth,
                   rng: random.Random = rng) -> Verdict:
            verdict = truth(cand)
            return Verdict.BAD if verdict is Verdict.GOOD and rng.random() < 0.1 else verdict

        result = drive(HunkIsolation(500, ["t"], flake_rate=0.1, max_probes=200), oracle)
        exact += result.hunks == guilty
    assert exact >= 38


def test_repeats_for_a_flake_rate() -> None:
    assert repeats_for(0.0) == 1
    assert repeats_for(0.1) == 3
    assert 0.3 ** repeats_for(0.3) <= 0.001


def test_results_from_the_store_are_not_probed_again() -> None:
    """Known results of every test (observe) count as a verdict; a probe is never proposed
    for a subset already settled, and a subset known for one test only is still probed."""
    search = HunkIsolation(8, ["a", "b"], max_probes=None)
    first = search.next_probes(1)[0]
    search.observe("a", first, Verdict.BAD)
    assert search.next_probes(1) == [first]
    search.observe("b", first, Verdict.BAD)
    assert first not in search.next_probes(1)
    assert search.probes == 0


def test_a_probe_of_several_tests_is_bad_only_when_all_fail() -> None:
    assert aggregate({"a": Verdict.BAD, "b": Verdict.BAD}) is Verdict.BAD
    assert aggregate({"a": Verdict.BAD, "b": Verdict.GOOD}) is Verdict.GOOD
    assert aggregate({"a": Verdict.BAD, "b": Verdict.UNTESTABLE}) is Verdict.UNTESTABLE
    assert aggregate({}) is Verdict.UNTESTABLE


def test_section_cuts_inside_the_interval() -> None:
    assert section(0, 10, 1) == [5]
    assert section(0, 2, 3) == [1]
    assert section(4, 5, 2) == []


def test_a_single_unit_needs_no_probe() -> None:
    search = HunkIsolation(1, ["t"])
    assert search.next_probes(2) == []
    assert search.result().hunks == {0}
