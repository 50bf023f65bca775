from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector.cli import main
from bisector.gitrepo import Repository
from bisector.history import HistoryStore
from bisector.model import Outcome, Run, TestResult
from bisector.reports.stats import sparkline, stats_json
from bisector.stats import (
    Named,
    compute_stats,
    hours_to_detection,
    introduced_by,
    mean,
    named_culprits,
    per_100,
    seconds_to_culprit,
)

from .conftest import git
from .store_helpers import make_run

T0 = 1_700_000_000
HOUR = 3600


def at(i: float) -> int:
    """The commit time of main's i-th commit (hourly)."""
    return int(T0 + i * HOUR)


def commit_at(repo: Path, when: int, message: str, files: dict[str, str] | None = None) -> str:
    for name, text in (files or {message: message}).items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    env_date = f"@{when} +0000"
    subprocess.run(["git", "commit", "-q", "--no-gpg-sign", "-m", message], cwd=repo,
                   check=True, env=_dated(env_date))
    return git(repo, "rev-parse", "HEAD")


def _dated(date: str) -> dict[str, str]:
    import os

    return {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}


@dataclass
class History:
    repo: Path
    db: str
    main: list[str]  # c0..c9; main[6] is the merge of the feature branch
    b1: str
    side: str


def _results(i: int) -> tuple[TestResult, ...]:
    """Outcomes at main's i-th commit: test_a broken by c3, test_b by the merge (b1)."""
    def res(name: str, bad: bool, duration: float) -> TestResult:
        return TestResult(f"t.py::{name}", Outcome.FAILED if bad else Outcome.PASSED, duration)

    return (
        res("test_a", i >= 3, 0.5),
        res("test_b", i >= 6, 0.5),
        res("test_flaky", i == 4, 0.1),
        res("test_slow", False, 4.0 if i == 9 else 2.0),
        TestResult("t.py::test_skip", Outcome.SKIPPED, 0.0),
    )


def _run(sha: str, started: float, results: tuple[TestResult, ...], *,
         dirty: bool = False) -> Run:
    return make_run(sha, dirty=dirty, started=started, results=results, seconds=5,
                    exit_status=1)


def _bisect(store: HistoryStore, key: str, started: float, seconds: float, result: object,
            status: str = "done") -> None:
    bid, _ = store.start_bisection(key, "g", "b", ["t"], "first-parent", started)
    store.finish_bisection(bid, status, result, started + seconds)


@pytest.fixture
def history(repo: Path, tmp_path: Path) -> History:
    """Main c0..c9, hourly from T0; c6 merges a branch (b1, b2) forked at c4; an unmerged side
    branch off c7. Tracked at c0, c2-c6, c8, c9 (c5 twice), a dirty run at c9. Bisections:
    test_a -> c3 (twice), test_b -> b1, test_x -> c1, test_y -> the side branch, and some that
    name no culprit."""
    main = [commit_at(repo, at(i), f"c{i}") for i in range(6)]
    git(repo, "checkout", "-q", "-b", "feature", main[4])
    b1 = commit_at(repo, at(4) + 1200, "b1")
    commit_at(repo, at(4) + 2400, "b2")
    git(repo, "checkout", "-q", "main")
    env = _dated(f"@{at(6)} +0000")
    subprocess.run(["git", "merge", "-q", "--no-ff", "--no-gpg-sign", "-m", "merge feature",
                    "feature"], cwd=repo, check=True, env=env)
    main.append(git(repo, "rev-parse", "HEAD"))
    main.append(commit_at(repo, at(7), "c7"))
    git(repo, "checkout", "-q", "-b", "side")
    side = commit_at(repo, at(7) + 600, "s1")
    git(repo, "checkout", "-q", "main")
    main += [commit_at(repo, at(i), f"c{i}") for i in (8, 9)]

    db = f"sqlite:///{repo.parent / 'h.db'}"
    with HistoryStore.open(db) as store:
        for i in (0, 2, 3, 4, 5, 6, 8, 9):
            store.record_run(_run(main[i], at(i) + 60, _results(i)))
        # a later clean run at c5 where test_flaky fails: it is c5's latest
        flaky_at_c5 = tuple(
            TestResult(r.nodeid, Outcome.FAILED, r.duration) if r.nodeid == "t.py::test_flaky"
            else r for r in _results(5))
        store.record_run(_run(main[5], at(5) + 120, flaky_at_c5))
        everything_fails = tuple(TestResult(r.nodeid, Outcome.FAILED, 100.0)
                                 for r in _results(9))
        store.record_run(_run(main[9], at(9) + 300, everything_fails, dirty=True))

        _bisect(store, "a1", at(3) + 2 * HOUR, 30, {"t.py::test_a": main[3]})
        _bisect(store, "b", at(4) + 1200 + 10 * HOUR, 60,
                {"t.py::test_b": b1, "t.py::test_c": [main[7], main[8]]})
        _bisect(store, "a2", at(3) + 5 * HOUR, 10, {"t.py::test_a": main[3]})
        _bisect(store, "failed", at(8), 5, {"error": "boom"}, status="failed")
        _bisect(store, "x", at(1) + HOUR, 20, {"t.py::test_x": main[1]})
        _bisect(store, "y", at(8), 1000, {"t.py::test_y": side})
        _bisect(store, "none", at(9), 7, {"t.py::test_z": [main[8], main[9]]})
        store.start_bisection("open", "g", "b", ["t"], "first-parent", at(9))
    return History(repo=repo, db=db, main=main, b1=b1, side=side)


def _stats(h: History, **kwargs: object):
    with Repository(h.repo) as repo, HistoryStore.open(h.db) as store:
        return compute_stats(repo, store, **kwargs)  # type: ignore[arg-type]


# -- the figures on a known history ----------------------------------------------------------

def test_last_eight_commits(history: History) -> None:
    s = _stats(history, commits=8)
    m = history.main
    assert (s.size, s.first.sha, s.last.sha) == (8, m[2], m[9])
    # c3 (named twice) and b1 (in the branch c6 merged); c1 is older, the side branch unmerged
    assert s.regressions == 2
    assert s.regressions_per_100_commits == 25.0
    assert s.mean_hours_to_detection == pytest.approx((2 + 10) / 2)  # first bisection of c3
    assert s.mean_seconds_to_culprit == pytest.approx((30 + 60 + 10) / 3)
    assert [(p.sha, p.failed, p.passed, p.regressions) for p in s.trend] == [
        (m[2], 0, 4, 0), (m[3], 1, 3, 1), (m[4], 2, 2, 0), (m[5], 2, 2, 0),
        (m[6], 2, 2, 1), (m[8], 2, 2, 0), (m[9], 2, 2, 0),
    ]
    assert s.tracked_commits == 7
    assert [(t.nodeid, t.mean_seconds, t.max_seconds, t.runs) for t in s.slowest] == [
        ("t.py::test_slow", 2.25, 4.0, 8),  # the dirty run's 100 s are not evidence
        ("t.py::test_a", 0.5, 0.5, 8),
        ("t.py::test_b", 0.5, 0.5, 8),
        ("t.py::test_flaky", pytest.approx(0.1), pytest.approx(0.1), 8),
    ]
    assert [f.nodeid for f in s.flaky] == ["t.py::test_flaky"]
    assert s.flaky[0].runs == 8


def test_default_window_reaches_the_older_culprit(history: History) -> None:
    s = _stats(history)  # 100 commits: all ten of main
    assert (s.commits, s.days, s.size, s.first.sha) == (100, None, 10, history.main[0])
    assert s.regressions == 3  # c1 now too; still not the unmerged side branch
    assert s.regressions_per_100_commits == 30.0
    assert s.mean_hours_to_detection == pytest.approx((2 + 10 + 1) / 3)
    assert s.mean_seconds_to_culprit == pytest.approx((30 + 60 + 10 + 20) / 4)
    assert [p.sha for p in s.trend][:2] == [history.main[0], history.main[2]]
    # c1, the culprit of test_x, has no whole run: its regression is marked where a run
    # first saw it (c2), not dropped with the chart's ▼ promising what it never draws
    assert [(p.sha, p.regressions) for p in s.trend][:3] == [
        (history.main[0], 0), (history.main[2], 1), (history.main[3], 1)]
    assert sum(p.regressions for p in s.trend) == s.regressions


def test_window_by_days(history: History) -> None:
    # now is an hour after c9; 4.5 hours back reach c9, c8, c7 and the merge (c6)
    s = _stats(history, days=4.5 / 24, now=at(10))
    m = history.main
    assert (s.commits, s.size, s.first.sha, s.last.sha) == (None, 4, m[6], m[9])
    assert s.regressions == 1  # b1: committed before the window, brought in by the merge
    assert s.regressions_per_100_commits == 25.0
    assert s.mean_hours_to_detection == pytest.approx(10.0)
    assert s.mean_seconds_to_culprit == pytest.approx(60.0)
    assert [p.sha for p in s.trend] == [m[6], m[8], m[9]]
    everything = _stats(history, days=1000, now=at(10))
    assert everything.size == 10 and everything.regressions == 3


def test_culprits_outside_the_window_are_not_counted(history: History) -> None:
    s = _stats(history, commits=2)  # c8, c9: no culprit there
    assert (s.regressions, s.regressions_per_100_commits) == (0, 0.0)
    assert s.mean_hours_to_detection is None and s.mean_seconds_to_culprit is None
    assert all(p.regressions == 0 for p in s.trend)


def test_a_window_of_nothing(history: History) -> None:
    s = _stats(history, days=0.5, now=at(9) + 10 * 24 * HOUR)
    assert (s.size, s.first, s.last, s.trend, s.regressions) == (0, None, None, (), 0)
    data = stats_json(s)
    assert data["window"]["from"] is None and data["regressions_per_100_commits"] == 0.0


def test_json_shape(history: History) -> None:
    data = stats_json(_stats(history, commits=8))
    assert list(data) == ["schema", "window", "regressions", "regressions_per_100_commits",
                          "mean_hours_to_detection", "mean_seconds_to_culprit", "flaky",
                          "slowest", "trend"]
    window = data["window"]
    assert {k: window[k] for k in ("commits", "days", "tracked_commits")} == {
        "commits": 8, "days": None, "tracked_commits": 7}
    m = history.main
    assert window["from"] == {"sha": m[2], "subject": "c2", "author": "Test Author",
                              "author_email": "author@example.invalid",
                              "committed_at": "2023-11-15T00:13:20+00:00", "short": m[2][:10]}
    assert window["to"]["sha"] == m[9]
    assert data["mean_hours_to_detection"] == 6.0
    assert data["mean_seconds_to_culprit"] == 33.33
    [flaky] = data["flaky"]
    assert set(flaky) >= {"test", "false_fail_rate", "false_fail_interval", "runs"}
    assert flaky["test"] == "t.py::test_flaky" and len(flaky["false_fail_interval"]) == 2
    assert data["slowest"][0] == {"test": "t.py::test_slow", "mean_seconds": 2.25,
                                  "max_seconds": 4.0, "runs": 8}
    assert data["trend"][1] == {"sha": m[3], "short": m[3][:10],
                                "committed_at": "2023-11-15T01:13:20+00:00",
                                "failed": 1, "passed": 3, "regressions": 1}
    json.dumps(data)


# -- the command ------------------------------------------------------------------------------

def test_cli_json(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stats", "--commits", "8", "--json", "-C", str(history.repo),
                 "--history-db", history.db])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["regressions"] == 2 and data["window"]["commits"] == 8
    assert data == stats_json(_stats(history, commits=8))


def test_cli_text(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stats", "--commits", "8", "-C", str(history.repo), "--history-db",
                 history.db])
    out = capsys.readouterr().out
    assert code == 0
    m = history.main
    assert f"the last 8 first-parent commits, 7 tracked: {m[2][:10]}..{m[9][:10]}" in out
    assert "regressions   2 (25 per 100 commits)" in out
    assert "6.0 h mean" in out and "33.3 s mean bisection" in out
    assert "▁▅█████ per tracked commit" in out
    assert "t.py::test_flaky" in out and "t.py::test_slow" in out and "2.250" in out


def test_cli_days(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stats", "--days", "100000", "--json", "-C", str(history.repo),
                 "--history-db", history.db])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["window"]["commits"] is None and data["window"]["days"] == 100000
    assert data["regressions"] == 3


def test_commits_and_days_together_are_a_usage_error(
        history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["stats", "--commits", "5", "--days", "2", "-C", str(history.repo)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("bisector: error: --commits and --days cannot be combined: "
                   "give one of them to choose the window\n")


@pytest.mark.parametrize("args", [["--commits", "0"], ["--days", "0"], ["--days", "-1"]])
def test_out_of_range_windows_are_refused(args: list[str], repo: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", *args, "-C", str(repo)]) == 2
    assert "Invalid value" in capsys.readouterr().err


def test_empty_store(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit_at(repo, T0, "only")
    db = str(tmp_path / "empty.db")
    HistoryStore.open(f"sqlite:///{db}").close()  # readers need a store: an empty one
    assert main(["stats", "-C", str(repo), "--history-db", db]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["no tracked runs in the window (the last 1 first-parent commit)"]
    assert main(["stats", "--json", "-C", str(repo), "--history-db", db]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["window"]["tracked_commits"] == 0 and data["trend"] == []
    assert data["mean_hours_to_detection"] is None and data["slowest"] == []


# -- the pure parts ---------------------------------------------------------------------------

def test_named_culprits_reads_only_finished_culprits() -> None:
    rows = [
        {"id": 1, "status": "done", "started_at": 10.0, "finished_at": 15.0,
         "result": json.dumps({"a": "c1", "b": ["c2", "c3"]})},
        {"id": 2, "status": "failed", "started_at": 1.0, "finished_at": 2.0,
         "result": json.dumps({"error": "x"})},
        {"id": 3, "status": "running", "started_at": 1.0, "finished_at": None, "result": None},
        {"id": 4, "status": "done", "started_at": 1.0, "finished_at": 2.0, "result": "{oops"},
    ]
    assert named_culprits(rows) == [Named(1, "a", "c1", 10.0, 15.0)]


def test_detection_counts_the_first_bisection_per_test_and_culprit() -> None:
    named = [Named(1, "a", "c", 7200.0, 7300.0), Named(2, "a", "c", 3600.0, 3700.0),
             Named(2, "b", "c", 3600.0, 3700.0), Named(3, "d", "unknown", 0.0, 1.0)]
    assert hours_to_detection(named, {"c": 0}) == [1.0, 1.0]
    assert seconds_to_culprit(named) == [100.0, 100.0, 1.0]
    assert mean([]) is None and mean([1.0, 2.0]) == 1.5


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 1, 2, 4]) == "▁▄▅█"


@given(st.integers(0, 500), st.integers(1, 10_000), st.integers(0, 50), st.integers(0, 50))
def test_per_100_is_bounded_and_monotone(r: int, n: int, more_r: int, more_n: int) -> None:
    value = per_100(r, n)
    assert 0 <= value <= 100 * r
    assert per_100(r + more_r, n) >= value  # more regressions: never a smaller rate
    assert per_100(r, n + more_n) <= value  # a longer window with as many: never larger
    assert per_100(r, 0) == 0.0


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, tuple[str, ...]], list[str], int]:
    """A commit graph (each commit's parents are older), a first-parent line from the newest
    commit, oldest first, and how many of its newest commits make the window."""
    n = draw(st.integers(1, 25))
    parents: dict[str, tuple[str, ...]] = {"0": ()}
    for i in range(1, n):
        first = draw(st.integers(0, i - 1))
        ps = [str(first)]
        if draw(st.booleans()):
            second = draw(st.integers(0, i - 1))
            if second != first:
                ps.append(str(second))
        if draw(st.integers(0, 5)) == 0:
            ps = []  # another root
        parents[str(i)] = tuple(ps)
    line = [str(n - 1)]
    while parents[line[-1]]:
        line.append(parents[line[-1]][0])
    line.reverse()
    return parents, line, draw(st.integers(1, len(line)))


def _ancestors(parents: dict[str, tuple[str, ...]], sha: str | None) -> set[str]:
    seen: set[str] = set()
    stack = [sha] if sha is not None else []
    while stack:
        x = stack.pop()
        if x not in seen:
            seen.add(x)
            stack.extend(parents[x])
    return seen


@given(dags())
def test_introduced_by_names_the_first_parent_commit_that_brought_each_commit(
        dag: tuple[dict[str, tuple[str, ...]], list[str], int]) -> None:
    parents, full_line, k = dag
    line = full_line[-k:]
    before = parents[line[0]][0] if parents[line[0]] else None
    in_range = _ancestors(parents, line[-1]) - _ancestors(parents, before)
    owner = introduced_by(line, {x: parents[x] for x in in_range})
    assert set(owner) == in_range
    for x, by in owner.items():
        i = line.index(by)
        previous = line[i - 1] if i else before
        assert x in _ancestors(parents, by) and x not in _ancestors(parents, previous)
