from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bisector.model import Outcome
from bisector.regressions import detect

P, F, E, S = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED


def _window(n: int) -> tuple[list[str], dict[str, int]]:
    shas = [f"c{i}" for i in range(n)]  # c0 is HEAD
    return shas, {s: i for i, s in enumerate(shas)}


def test_last_good_and_first_bad_are_the_nearest_tracked_commits() -> None:
    shas, pos = _window(6)
    obs = {"t": {"c1": [F], "c2": [S], "c3": [F], "c4": [P], "c5": [P]}}
    [r] = detect(shas, pos, obs, {"t": (F, "sig", "boom")})
    assert (r.last_good, r.first_bad, r.candidates) == ("c4", "c3", 1)
    assert r.signature == "sig" and r.message == "boom"


def test_not_a_regression_without_a_pass_in_the_window() -> None:
    shas, pos = _window(4)
    obs = {"t": {"c1": [F], "c2": [E], "c3": [S]}}
    assert detect(shas, pos, obs, {"t": (F, None, None)}) == []


def test_a_commit_with_both_outcomes_counts_as_a_pass() -> None:
    shas, pos = _window(3)
    obs = {"t": {"c1": [F, P]}}
    [r] = detect(shas, pos, obs, {"t": (E, None, None)})
    assert (r.last_good, r.first_bad) == ("c1", "c0")


def test_untracked_gaps_count_as_candidates() -> None:
    shas = ["h", "a", "b"]
    pos = {"h": 0, "a": 5, "b": 9}
    [r] = detect(shas, pos, {"t": {"b": [P]}}, {"t": (F, None, None)})
    assert (r.last_good, r.first_bad, r.candidates) == ("b", "h", 9)


outcomes = st.sampled_from([P, F, E, S, Outcome.XFAILED])


@given(st.lists(st.lists(outcomes, max_size=3), min_size=1, max_size=30))
def test_detection_agrees_with_a_linear_scan(history: list[list[Outcome]]) -> None:
    shas, pos = _window(len(history) + 1)
    obs = {"t": {shas[i + 1]: o for i, o in enumerate(history) if o}}
    found = detect(shas, pos, obs, {"t": (F, None, None)})
    good = [i + 1 for i, o in enumerate(history) if P in o]
    if not good:
        assert found == []
        return
    [r] = found
    assert r.last_good == shas[good[0]]
    bad_between = [i + 1 for i, o in enumerate(history[: good[0] - 1]) if set(o) & {F, E}]
    expected_first_bad = shas[bad_between[-1]] if bad_between else shas[0]
    assert r.first_bad == expected_first_bad
    assert pos[r.last_good] > pos[r.first_bad]
