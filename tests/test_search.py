from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bisector.search import Bisection, DagBisection, Search, Track, Verdict, max_probes


def run(n: int, culprit: int, untestable: frozenset[int] = frozenset(), *,
        max_untestable: int | None = None) -> tuple[Bisection, int]:
    b = Bisection(n, ["t"], max_untestable=max_untestable)
    probes = 0
    while (i := b.next_probe()) is not None:
        assert i not in b.probed, "a commit was probed twice"
        probes += 1
        if i in untestable:
            verdict = Verdict.UNTESTABLE
        else:
            verdict = Verdict.BAD if i >= culprit else Verdict.GOOD
        b.observe_probe(i, {"t": verdict})
        assert probes <= n
    return b, probes


@settings(max_examples=300)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_finds_every_culprit_within_log2_probes(case: tuple[int, int]) -> None:
    n, culprit = case
    b, probes = run(n, culprit)
    assert b.tracks["t"].culprit == culprit
    assert probes <= max_probes(n)


@st.composite
def identifiable(draw):
    n = draw(st.integers(1, 300))
    culprit = draw(st.integers(0, n - 1))
    skipped = draw(st.frozensets(st.integers(0, max(n - 2, 0)), max_size=n))
    # identifiable: the culprit and the commit before it (or the good end) can be tested
    return n, culprit, skipped - {culprit, culprit - 1}


@settings(max_examples=300)
@given(identifiable())
def test_finds_the_culprit_whenever_untestable_commits_leave_it_identifiable(case) -> None:
    n, culprit, skipped = case
    b, _ = run(n, culprit, skipped)
    assert b.tracks["t"].culprit == culprit


@given(identifiable())
def test_an_ambiguous_answer_always_brackets_the_culprit(case) -> None:
    n, culprit, skipped = case
    assume(culprit > 0)
    skipped = skipped | {culprit - 1}
    b, _ = run(n, culprit, skipped)
    track = b.tracks["t"]
    assert culprit in track.suspects
    assert all(i in track.untestable for i in track.suspects if i != track.hi)


def test_a_long_untestable_stretch_costs_logarithmic_probes() -> None:
    n = 1000
    stretch = frozenset(range(400, 600))  # the midpoint sits inside 200 untestable commits
    for culprit in (100, 450, 700):
        b, probes = run(n, culprit, stretch, max_untestable=24)
        untestable_probes = sum(1 for i in b.probed if i in stretch)
        assert untestable_probes <= 24
        assert culprit in b.tracks["t"].suspects
        if culprit not in stretch:
            assert b.tracks["t"].culprit == culprit
            assert probes <= max_probes(n) + 2 * 8 + 2


def test_several_tests_get_their_own_culprits() -> None:
    n, culprits = 64, {"a": 10, "b": 40, "c": 40}
    b = Bisection(n, culprits)
    probes = 0
    while (i := b.next_probe()) is not None:
        probes += 1
        verdicts = {t: Verdict.BAD if i >= c else Verdict.GOOD for t, c in culprits.items()}
        b.observe_probe(i, verdicts)
    assert {t: tr.culprit for t, tr in b.tracks.items()} == culprits
    assert probes <= 2 * max_probes(n)


def test_known_results_narrow_before_any_probe() -> None:
    b = Bisection(100, ["t"])
    b.observe("t", 30, Verdict.GOOD)
    b.observe("t", 40, Verdict.BAD)
    assert 30 < b.next_probe() < 40


def test_contradictions_are_kept_not_trusted() -> None:
    track = Track(10)
    track.observe(5, Verdict.BAD)
    track.observe(7, Verdict.GOOD)
    assert track.inconsistent == [(7, Verdict.GOOD)] and track.hi == 5


def test_every_search_reports_a_contradiction_with_its_test() -> None:
    line = Bisection(10, ["t", "u"])
    line.observe_probe(5, {"t": Verdict.BAD, "u": Verdict.GOOD})
    line.observe_probe(7, {"t": Verdict.GOOD, "u": Verdict.BAD})
    line.observe_probe(2, {"t": Verdict.GOOD, "u": Verdict.BAD})
    assert line.inconsistent == [("t", 7, Verdict.GOOD), ("u", 2, Verdict.BAD)]
    # a graph: b branches off a, both merged at m; bad at b, then good at m (b's descendant)
    commits = ["a", "b", "c", "m"]
    parents = {"b": ("a",), "c": ("a",), "m": ("c", "b")}
    dag = DagBisection(commits, parents, ["t"])
    dag.observe_probe(1, {"t": Verdict.BAD})
    dag.observe_probe(3, {"t": Verdict.GOOD})  # kept as flake evidence, not applied
    dag.observe_probe(0, {"t": Verdict.GOOD})
    dag.observe_probe(2, {"t": Verdict.BAD})  # no suspect left among c's ancestors
    assert dag.inconsistent == [("t", 3, Verdict.GOOD), ("t", 2, Verdict.BAD)]
    assert dag.suspects("t") == [1]  # never none left: the contradictions were not applied


def test_the_searches_share_their_budget_bookkeeping() -> None:
    from bisector.bayes import FlakySearch
    from bisector.flakiness import Rates

    searches: list[Search[int]] = [
        Bisection(8, ["t"], max_untestable=2),
        DagBisection([str(i) for i in range(8)], {str(i): (str(i - 1),) for i in range(1, 8)},
                     ["t"], max_untestable=2),
        FlakySearch(8, ["t"], {"t": Rates(0.1, 0.0)}, max_untestable=2),
    ]
    for search in searches:
        for point in (3, 4):
            assert not search.budget_spent
            search.observe_probe(point, {"t": Verdict.UNTESTABLE})
        assert search.budget_spent and search.next_probes(2) == []
        assert search.suspects("t")[-1] == 7, type(search).__name__


@st.composite
def dags(draw):
    """A random commit graph in topological order: each commit has 1 or 2 earlier parents."""
    n = draw(st.integers(2, 60))
    parents: dict[str, tuple[str, ...]] = {"c0": ()}
    for i in range(1, n):
        first = draw(st.integers(0, i - 1))
        ps = [f"c{first}"]
        if i > 1 and draw(st.booleans()):
            second = draw(st.integers(0, i - 1))
            if second != first:
                ps.append(f"c{second}")
        parents[f"c{i}"] = tuple(ps)
    commits = [f"c{i}" for i in range(n)]
    # the bad end must descend from everything in range: add a final merge of all tips
    tips = set(commits) - {p for ps in parents.values() for p in ps}
    commits.append("bad")
    parents["bad"] = tuple(sorted(tips))
    return commits, parents


def _ancestors(parents: dict[str, tuple[str, ...]], sha: str) -> set[str]:
    seen, todo = set(), [sha]
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo.extend(parents.get(c, ()))
    return seen


@settings(max_examples=200)
@given(dags(), st.data())
def test_dag_bisection_finds_the_culprit_on_any_graph(graph, data) -> None:
    from bisector.search import DagBisection

    commits, parents = graph
    culprit = data.draw(st.sampled_from(commits))
    b = DagBisection(commits, parents, ["t"])
    probes = 0
    while (i := b.next_probe()) is not None:
        probes += 1
        bad = culprit in _ancestors(parents, commits[i])
        b.observe_probe(i, {"t": Verdict.BAD if bad else Verdict.GOOD})
        assert probes <= len(commits)
    assert [commits[i] for i in b.suspects("t")] == [culprit]


# -- k probes per round (--jobs K) -------------------------------------------------------------

@settings(max_examples=400)
@given(st.integers(1, 8), st.integers(1, 600).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_k_way_rounds_are_within_log_k_plus_1(k: int, case: tuple[int, int]) -> None:
    from bisector.search import rounds_needed

    n, culprit = case
    b = Bisection(n, ["t"])
    rounds = 0
    while points := b.next_probes(k):
        assert len(points) <= k and len(set(points)) == len(points)
        assert not set(points) & b.probed, "a commit was probed twice"
        rounds += 1
        for i in points:
            b.observe_probe(i, {"t": Verdict.BAD if i >= culprit else Verdict.GOOD})
        assert rounds <= n
    assert b.tracks["t"].culprit == culprit
    assert rounds <= rounds_needed(n, k)


def test_rounds_needed() -> None:
    from bisector.search import rounds_needed

    assert [rounds_needed(200, k) for k in (1, 2, 4, 8)] == [8, 5, 4, 3]
    assert rounds_needed(1, 3) == 0 and rounds_needed(2, 1) == 1


@settings(max_examples=150)
@given(st.integers(2, 6), dags(), st.data())
def test_dag_k_way_rounds_find_the_culprit(k: int, graph, data) -> None:
    from bisector.search import DagBisection

    commits, parents = graph
    culprit = data.draw(st.sampled_from(commits))
    b = DagBisection(commits, parents, ["t"])
    rounds = 0
    while points := b.next_probes(k):
        assert len(points) <= k
        rounds += 1
        for i in points:
            bad = culprit in _ancestors(parents, commits[i])
            b.observe_probe(i, {"t": Verdict.BAD if bad else Verdict.GOOD})
        assert rounds <= len(commits)
    assert [commits[i] for i in b.suspects("t")] == [culprit]


# -- the head start beside the bad end's check (ADR 26) ------------------------------------------

def rounds_after(n: int, k: int, first: list[int], culprit: int) -> int:
    """Rounds a k-way search of n suspects takes after `first` ran, culprit isolated."""
    b = Bisection(n, ["t"])
    for i in first:
        b.observe("t", i, Verdict.BAD if i >= culprit else Verdict.GOOD)
    rounds = 0
    while points := b.next_probes(k):
        assert not set(points) & set(first), "a head-start commit was probed again"
        rounds += 1
        for i in points:
            b.observe_probe(i, {"t": Verdict.BAD if i >= culprit else Verdict.GOOD})
    assert b.tracks["t"].culprit == culprit
    return rounds


@settings(max_examples=300)
@given(st.integers(2, 6), st.integers(1, 300).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_a_head_start_never_costs_a_round_over_checking_the_good_end_first(
        k: int, case: tuple[int, int]) -> None:
    from bisector.search import head_start, rounds_needed

    n, culprit = case
    first = head_start(n, k - 1, k)
    assert first == sorted(set(first)) and all(0 <= i < n - 1 for i in first)
    assert len(first) <= k - 1
    assert rounds_after(n, k, first, culprit) <= rounds_needed(n, k)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 3), st.integers(2, 50))
def test_a_single_head_start_is_the_best_single_cut(k: int, n: int) -> None:
    """Against every place one probe could go: none leaves fewer rounds on average."""
    from bisector.search import head_start

    def mean(first: list[int]) -> float:
        return sum(rounds_after(n, k, first, c) for c in range(n)) / n

    best = min(mean([i]) for i in range(n - 1))
    assert mean(head_start(n, 1, k)) == pytest.approx(best)


def test_head_start_at_two_jobs() -> None:
    """63 candidates (64 commits): 27 suspects take 3 ternary rounds, 36 take 4; 159: 81 and
    78 take 4 each, where the good end's check first and then 5 rounds would take 6."""
    from bisector.search import head_start

    assert head_start(63, 1, 2) == [26]
    assert {rounds_after(63, 2, [26], c) for c in range(27)} == {3}
    assert max(rounds_after(63, 2, [26], c) for c in range(27, 63)) == 4
    assert head_start(159, 1, 2) == [80]
    assert max(rounds_after(159, 2, [80], c) for c in range(159)) == 4
    assert head_start(1, 1, 2) == [] and head_start(50, 0, 2) == []
    assert head_start(10_000, 8, 9) == [1110, 2221, 3332, 4443, 5554, 6665, 7776, 8887]
    assert head_start(2, 1, 4) == [0]


def equal_sections_mean(n: int, k: int) -> float:
    """The rounds an equal n-section (the search before ADR 26) takes, on average."""
    if n < 2:
        return 0.0
    ends = [*sorted({(j * n) // (k + 1) for j in range(1, k + 1)} - {0}), n]
    sizes = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    return 1 + sum(s * equal_sections_mean(s, k) for s in sizes if s) / n


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3), st.integers(2, 120))
def test_rounds_cut_in_powers_are_never_more_on_average_than_equal_sections(k: int, n: int
                                                                            ) -> None:
    from bisector.search import rounds_needed

    rounds = [rounds_after(n, k, [], c) for c in range(n)]
    assert max(rounds) <= rounds_needed(n, k)
    assert sum(rounds) / n <= equal_sections_mean(n, k) + 1e-9


def test_thirty_six_suspects_in_rounds_of_two() -> None:
    """9, 9 and 18 (3.39 rounds on average) rather than 12, 12 and 12 (3.5)."""
    from bisector.search import round_cuts

    assert round_cuts(36, 2) == (9, 9)
    mean = sum(rounds_after(36, 2, [], c) for c in range(36)) / 36
    assert mean == pytest.approx(122 / 36) and equal_sections_mean(36, 2) == 3.5
    assert round_cuts(1, 2) is None and round_cuts(100, 5) is None
