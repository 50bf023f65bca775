"""`bisector nightly` end to end: three nights on a generated repository, and its bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from bisector.cli import main
from bisector.model import Outcome, Regression
from bisector.nightly import exit_code, purpose_of, status_of, triage

from .conftest import commit, git

CALC_GOOD = "def add(a, b):\n    return a + b\n"
CALC_BAD = "def add(a, b):\n    return max(a + b, 0)\n"
TESTS = """\
from calc import add


def test_add():
    assert add(2, 3) == 5


def test_add_negative():
    assert add(-2, -3) == -5
"""
# Fails once, the first time it runs while FLIP_FILE exists (it removes the file): a flake that
# only tonight's run at HEAD sees, never a probe.
FLIP = """\
import os


def test_flip():
    marker = os.environ.get("FLIP_FILE")
    if marker:
        try:
            os.remove(marker)
        except FileNotFoundError:
            return
        raise AssertionError("lost the race to the cache")
"""
CODEOWNERS = "* @everyone\ncalc.py @calc-team @alice\n[broken\n"


class Night(NamedTuple):
    code: int
    out: str
    data: dict[str, Any]
    md: str
    html: str


def _night(repo: Path, reports: Path, capsys: pytest.CaptureFixture[str], *args: str
           ) -> Night:
    code = main(["nightly", "-C", str(repo), "--report-dir", str(reports), *args])
    out = capsys.readouterr().out
    return Night(code, out, json.loads((reports / "nightly.json").read_text()),
                 (reports / "nightly.md").read_text(), (reports / "nightly.html").read_text())


@pytest.fixture(autouse=True)
def _a_session_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nightly's pytest is a user's session, not one of this run's xdist workers."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


@pytest.mark.slow
def test_three_nights(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    flip = tmp_path / "flip"
    monkeypatch.setenv("FLIP_FILE", str(flip))
    commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS,
                  "tests/test_flip.py": FLIP, "CODEOWNERS": CODEOWNERS,
                  ".gitignore": "__pycache__/\n"}, "Calculator")
    for i in range(1, 4):
        commit(repo, {"NOTES.md": f"{i}\n"}, f"Notes {i}")

    night_heads = set()

    # night 1: nothing to compare with
    night_heads.add(git(repo, "rev-parse", "HEAD"))
    code, out, data, md, html = _night(repo, tmp_path / "n1", capsys)
    assert code == 0, out
    assert data["status"] == "no-baseline" and data["exit_code"] == 0
    assert data["regressions"] == [] and data["run"]["outcomes"] == {"passed": 3}
    assert "no baseline yet" in md.lower() and "no baseline yet" in html.lower()

    # night 2: a commit breaks test_add_negative among two harmless ones
    commit(repo, {"NOTES.md": "4\n"}, "Notes 4")
    culprit = commit(repo, {"calc.py": CALC_BAD}, "Clamp add() at zero")
    night_heads.add(commit(repo, {"NOTES.md": "5\n"}, "Notes 5"))
    code, out, data, md, html = _night(repo, tmp_path / "n2", capsys)
    assert code == 1, out
    assert data["status"] == "regression"
    [group] = data["regressions"]
    assert group["culprit"]["sha"] == culprit
    assert group["files"] == ["calc.py"]
    assert group["owners"] == ["@calc-team", "@alice", "Test Author <author@example.invalid>"]
    [test] = group["tests"]
    assert test["test"] == "tests/test_calc.py::test_add_negative"
    assert test["confirmed"] is True and test["confidence"] == 1.0
    assert test["before"]["outcome"] == "passed" and test["after"]["outcome"] == "failed"
    assert "assert 0 == -5" in test["after"]["message"]
    assert group["probes"] and all(p["outcomes"] for p in group["probes"])
    # purpose is the documented word, detail the probe line's words with what was left
    assert {p["purpose"] for p in group["probes"]} <= {"check", "bisect", "confirm", "revert"}
    # a one-hunk change is not isolated (isolate-min-hunks); its revert is verified at HEAD
    assert group["isolation"]["note"].startswith("the change is a single hunk")
    assert group["revert"]["verified"] is True
    assert group["revert"]["patch"] == str(tmp_path / "n2" / f"revert-{culprit[:10]}.patch")
    assert all(re.fullmatch(r"bisect, \d+ of \d+ candidates left", p["detail"])
               for p in group["probes"] if p["purpose"] == "bisect")
    assert any("CODEOWNERS line 3" in n for n in data["notes"])  # named, the rest still used
    assert data["grid"]["regressions"] == {test["test"]: culprit}
    assert f"### Culprit `{culprit[:10]}` Clamp add() at zero" in md
    assert "@calc-team" in md and "assert 0 == -5" in md
    assert f'data-sha="{culprit}"' in html and "@calc-team" in html
    assert f"culprit {culprit[:10]} Clamp add() at zero" in out
    bisections_after_night_2 = _bisected_tests(repo)

    # night 3: two more commits; the flaky test fails once at HEAD, the regression persists
    commit(repo, {"NOTES.md": "6\n"}, "Notes 6")
    night_heads.add(commit(repo, {"NOTES.md": "7\n"}, "Notes 7"))
    flip.write_text("armed")
    code, out, data, md, html = _night(repo, tmp_path / "n3", capsys, "--fail-on", "flaky")
    assert not flip.exists()  # tonight's run did fail once
    assert code == 1, out
    # a carried regression still fails: that is the news, worse than tonight's flake
    assert data["status"] == "still-failing" and data["regressions"] == []
    [still] = data["still_failing"]
    assert still["test"] == "tests/test_calc.py::test_add_negative"
    assert still["culprit"]["sha"] == culprit
    assert still["owners"] == ["@calc-team", "@alice", "Test Author <author@example.invalid>"]
    [flaky] = data["flaky"]
    assert flaky["test"] == "tests/test_flip.py::test_flip"
    assert "lost the race" in flaky["message"]
    assert f"still failing since `{culprit[:10]}` Clamp add() at zero" in md
    assert "## Flaky tonight" in md and "test_flip" in md
    assert "tests/test_flip.py::test_flip" in data["grid"]["flaky"]
    assert re.search(r"still failing", html, re.I) and "test_flip" in html
    assert re.search(r'<tr class="still-failing">.*?@calc-team', html, re.S)
    # the trend counts whole runs only: the commits only probes ran at are not points
    assert [p["sha"] for p in data["stats"]["trend"]] == [
        sha for sha in reversed(git(repo, "rev-list", "--first-parent", "HEAD").split())
        if sha in night_heads]
    # the culprit only probes ran at is marked (▼) on the night that first saw it
    assert [p["regressions"] for p in data["stats"]["trend"]] == [0, 1, 0]
    # the carried regression was not bisected again: only the flaky test was
    new = _bisected_tests(repo)[len(bisections_after_night_2):]
    assert new == [["tests/test_flip.py::test_flip"]]


def _bisected_tests(repo: Path) -> list[list[str]]:
    from bisector.history import HistoryStore

    with HistoryStore.open(f"sqlite:///{repo / '.bisector' / 'history.db'}") as store:
        return [json.loads(b["tests"]) for b in store.bisections()]


def test_detached_head_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = commit(repo, {"test_a.py": "def test_a():\n    pass\n"}, "a")
    commit(repo, {"NOTES.md": "1\n"}, "b")
    git(repo, "checkout", "-q", first)
    assert main(["nightly", "-C", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not on a branch" in err and "git switch" in err


def test_shallow_clone_is_refused(repo: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        commit(repo, {"test_a.py": f"def test_a():\n    assert {i} >= 0\n"}, f"c{i}")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    assert main(["nightly", "-C", str(shallow)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shallow" in err and "fetch-depth: 0" in err


def test_dirty_tree_is_refused_naming_the_files(repo: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"}, "a")
    (repo / "scratch.py").write_text("x = 1\n")
    assert main(["nightly", "-C", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scratch.py" in err


def test_no_tests_is_an_error(repo: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    commit(repo, {"README.md": "nothing to test\n"}, "a")
    assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "r")]) == 2
    assert "collected no tests" in capsys.readouterr().err


def _reg(nodeid: str, last_good: str) -> Regression:
    return Regression(nodeid, last_good, "bad", 3, Outcome.FAILED)


def _dag(parents: dict[str, tuple[str, ...]]):
    """is_ancestor over a small commit graph (commit -> parents)."""
    def ancestors(sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo += parents.get(c, ())
        return seen

    return lambda older, newer: newer in parents and older in ancestors(newer)


def test_triage_carries_what_has_not_passed_since_its_culprit() -> None:
    # g0 - g1 - c1 - g2 - c2 - head (first parents), oldest first
    line = ["g0", "g1", "c1", "g2", "c2", "head"]
    is_ancestor = _dag({c: (line[i - 1],) if i else () for i, c in enumerate(line)})
    ledger = {"reported": [
        {"test": "t1", "bad": "c2", "culprit": "c1", "since": 10.0},
        {"test": "t2", "bad": "c2", "culprit": "c1", "since": 20.0},
        {"test": "t3", "bad": "c2", "culprit": None, "since": 30.0},
        {"test": "t6", "bad": "c2", "culprit": None, "since": 40.0},
    ]}
    out = triage([_reg("t1", "g1"), _reg("t2", "g2"), _reg("t4", "g1"), _reg("t6", "g2")],
                 ["t1", "t2", "t3", "t4", "t5", "t6"], ledger, is_ancestor, "head")
    # t2 passed at g2, after its culprit c1: fixed, then broken again (a new break); t6 has
    # no culprit, but g2 is before where it was seen failing: the same break
    assert [r.nodeid for r in out.new] == ["t2", "t4"]
    # t3 is no longer detected (its pass left the window) but was reported: carried
    assert [(c.test, c.culprit, c.since) for c in out.carried] == [
        ("t1", "c1", 10.0), ("t6", None, 40.0), ("t3", None, 30.0)]
    assert out.failing == ["t5"]


def test_triage_carries_a_culprit_in_a_merged_branch() -> None:
    """The probes move the last pass to the merge's first parent, which does not contain the
    side branch's culprit: still the same break (a review found it bisected every night)."""
    is_ancestor = _dag({"base": (), "s1": ("base",), "m1": ("base",), "merge": ("m1", "s1"),
                        "head": ("merge",)})
    ledger = {"reported": [{"test": "t", "bad": "merge", "culprit": "s1", "since": 1.0}]}
    out = triage([_reg("t", "m1")], ["t"], ledger, is_ancestor, "head")
    assert out.new == [] and [c.culprit for c in out.carried] == ["s1"]


def test_triage_forgets_breaks_rewritten_out_of_history() -> None:
    is_ancestor = _dag({"g": (), "new": ("g",), "head": ("new",)})
    ledger = {"reported": [{"test": "t", "bad": "gone", "culprit": "gone2", "since": 1.0}]}
    out = triage([_reg("t", "g")], ["t"], ledger, is_ancestor, "head")
    assert [r.nodeid for r in out.new] == ["t"] and out.carried == []


@pytest.mark.parametrize("ledger", [
    None, [], "x", {"reported": "x"}, {"reported": [1, {"culprit": "c"}, {"test": 3}]},
])
def test_triage_survives_a_malformed_ledger(ledger: object) -> None:
    out = triage([_reg("t1", "g")], ["t1", "t2"], ledger, lambda a, b: True, "head")  # type: ignore[arg-type]
    assert [r.nodeid for r in out.new] == ["t1"] and out.carried == [] and out.failing == ["t2"]


@pytest.mark.parametrize(("fail_on", "baseline", "new", "flaky", "want"), [
    ("regression", True, 1, 0, 1),
    ("regression", True, 0, 2, 0),
    ("flaky", True, 0, 2, 1),
    ("flaky", True, 1, 0, 1),
    ("flaky", True, 0, 0, 0),
    ("never", True, 3, 3, 0),
    ("regression", False, 1, 1, 0),  # the first night: no baseline, never a failure
])
def test_exit_code(fail_on: str, baseline: bool, new: int, flaky: int, want: int) -> None:
    assert exit_code(fail_on, baseline=baseline, new_regressions=new, flaky=flaky) == want


def test_status() -> None:
    assert status_of(baseline=False, new_regressions=2, flaky=0) == "no-baseline"
    assert status_of(baseline=True, new_regressions=2, flaky=1) == "regression"
    assert status_of(baseline=True, new_regressions=0, flaky=1) == "flaky"
    assert status_of(baseline=True, new_regressions=0, flaky=0) == "clean"
    assert status_of(baseline=True, new_regressions=1, flaky=0, still_failing=1) == "regression"
    assert status_of(baseline=True, new_regressions=0, flaky=1, still_failing=1) == (
        "still-failing")
    assert status_of(baseline=False, new_regressions=0, flaky=0, still_failing=1) == (
        "no-baseline")


def test_reports_inside_the_checkout_do_not_make_the_next_night_dirty(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"}, "a")
    for night in range(2):
        assert main(["nightly", "-C", str(repo), "--report-dir",
                     str(repo / "bisector-report")]) == 0, capsys.readouterr().err
        assert (repo / "bisector-report" / "nightly.html").exists()
        commit(repo, {"NOTES.md": f"{night}\n"}, f"night {night}")
    data = json.loads((repo / "bisector-report" / "nightly.json").read_text())
    assert data["status"] == "clean"
    assert git(repo, "status", "--porcelain") == ""


def _calc_repo(repo: Path) -> None:
    commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS,
                  ".gitignore": "__pycache__/\n"}, "Calculator")


def _first_night(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The calculator, tracked once: the baseline of the nights that follow."""
    _calc_repo(repo)
    assert _night(repo, tmp_path / "n1", capsys).code == 0


def test_a_module_that_stops_importing_is_reported_once(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pytest exits 2 on a collection error: the night still stands on its recorded run."""
    _first_night(repo, tmp_path, capsys)
    commit(repo, {"calc.py": "import not_a_module\n" + CALC_GOOD}, "Use a module")
    night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 1, night.out
    [group] = night.data["regressions"]
    assert group["reason"] == "collection-error" and group["culprit"] is None
    assert group["tests"][0]["test"] == "tests/test_calc.py"
    assert "not_a_module" in group["tests"][0]["after"]["message"]
    commit(repo, {"NOTES.md": "1\n"}, "Notes")
    night = _night(repo, tmp_path / "n3", capsys)
    assert night.code == 0 and night.data["regressions"] == []
    assert [s["test"] for s in night.data["still_failing"]] == ["tests/test_calc.py"]
    # not news (exit 0 under --fail-on regression), but not green either: it still fails
    assert night.data["status"] == "still-failing"
    assert '<span class="badge status-still-failing">still failing</span>' in night.html
    assert "badge status-clean" not in night.html
    assert "**still failing, no new regression**" in night.md
    assert night.out.startswith("nightly main at ") and "still failing" in night.out.split(
        "\n")[0]


def test_a_night_that_cannot_write_its_reports_is_not_in_the_ledger(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise the next night would carry a regression nobody was ever told about."""
    import bisector.nightly as nightly_module
    from bisector.errors import ConfigError

    _first_night(repo, tmp_path, capsys)
    commit(repo, {"calc.py": CALC_BAD}, "Clamp")

    def broken(data: object, report_dir: Path) -> None:
        raise ConfigError("cannot write the reports (disk full)")

    with monkeypatch.context() as m:
        m.setattr(nightly_module, "write_reports", broken)
        assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "n2")]) == 2
    assert not (tmp_path / "n2" / "nightly.json").exists()
    night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 1 and len(night.data["regressions"]) == 1
    assert night.data["still_failing"] == []
    assert night.data["regressions"][0]["culprit"]["subject"] == "Clamp"


def test_a_failed_bisection_is_reported_and_tried_again(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import bisector.finder as finder_module
    from bisector.errors import ExecutorError

    _first_night(repo, tmp_path, capsys)
    culprit = commit(repo, {"calc.py": CALC_BAD}, "Clamp")

    def engine_gone(*args: object, **kwargs: object) -> None:
        raise ExecutorError("no Docker engine answers")

    with monkeypatch.context() as m:
        m.setattr(finder_module, "find_break", engine_gone)
        night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 1
    [group] = night.data["regressions"]
    assert group["reason"] == "not-bisected" and group["culprit"] is None
    assert any("no Docker engine answers" in n for n in night.data["notes"])
    commit(repo, {"NOTES.md": "1\n"}, "Notes")
    night = _night(repo, tmp_path / "n3", capsys)
    assert night.code == 1 and night.data["regressions"][0]["culprit"]["sha"] == culprit


def test_an_unreadable_ledger_is_a_note_not_a_traceback(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    _first_night(repo, tmp_path, capsys)
    with sqlite3.connect(repo / ".bisector" / "history.db") as conn:
        conn.execute("update nightlies set ledger = '{not json'")
    commit(repo, {"NOTES.md": "1\n"}, "Notes")
    night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 0 and any("unreadable" in n for n in night.data["notes"])


def test_a_relative_history_db_is_one_store(repo: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative to where bisector was started, for the suite's session too (it runs in the
    checkout)."""
    _calc_repo(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["nightly", "-C", str(repo), "--history-db", "hist.db",
                 "--report-dir", "r"]) == 0, capsys.readouterr().err
    assert (elsewhere / "hist.db").exists() and not (repo / "hist.db").exists()


def test_the_trigger_is_taken_from_the_environment_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bisector.config import take_trigger

    monkeypatch.setenv("BISECTOR_TRIGGER", "nightly")
    assert take_trigger() == "nightly"
    assert take_trigger() == "pytest"  # gone: sessions the suite starts are its own
    monkeypatch.setenv("BISECTOR_TRIGGER", "bogus")
    assert take_trigger() == "pytest"


def test_a_report_dir_with_tracked_files_hides_none_of_them(
        repo: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--report-dir tests` must not exclude `tests/` itself: a new test file there is the
    user's change, and `git status` must show it; only the report files are bisector's."""
    _calc_repo(repo)
    monkeypatch.chdir(repo)
    assert main(["nightly", "--report-dir", "tests"]) == 0, capsys.readouterr().err
    assert (repo / "tests" / "nightly.html").is_file()
    (repo / "tests" / "test_new.py").write_text("def test_new():\n    pass\n")
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert "tests/test_new.py" in status
    assert "nightly." not in status  # the reports themselves stay out of the way
    excluded = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert "/tests/" not in excluded


@pytest.mark.parametrize("obstacle", ["nightly.html", "nightly.html.tmp", "parent-is-a-file"])
def test_a_report_dir_it_cannot_write_is_one_line(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], obstacle: str) -> None:
    """Root ignores permissions: the obstacles are directories where files must go, and a
    file where a directory must be."""
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"}, "a")
    reports = tmp_path / "reports"
    if obstacle == "parent-is-a-file":
        (tmp_path / "file").write_text("x\n")
        reports = tmp_path / "file" / "reports"
    else:
        (reports / obstacle).mkdir(parents=True)
        (reports / obstacle / "keep").write_text("mine\n")
    assert main(["nightly", "-C", str(repo), "--report-dir", str(reports)]) == 2
    err = capsys.readouterr().err  # after the suite's own output when writing fails late
    last = err.splitlines()[-1]
    assert last.startswith("bisector: error: ") and str(reports) in last, err
    assert "--report-dir" in last and "Traceback" not in err
    if obstacle != "parent-is-a-file":
        assert (reports / obstacle / "keep").read_text() == "mine\n"
        assert sorted(p.name for p in reports.iterdir()) == [obstacle]


def test_a_culprit_in_a_merged_branch_carries_its_merge(tmp_path: Path) -> None:
    """The nightly's culprit entry names the merge that brought a branch's culprit in, and its
    Markdown and summary show it."""
    from bisector.history import HistoryStore
    from bisector.model import BisectResult, CommitInfo, Finding
    from bisector.nightly import Night, NightlyOptions, Triage, _regression_groups
    from bisector.reports import nightly as report
    from bisector.reports.nightly_model import NightlyReport

    culprit = CommitInfo("c" * 40, ("b" * 40,), "Ann", "ann@x.invalid", 0, "breaks add")
    merge = CommitInfo("d" * 40, ("a" * 40, "c" * 40), "Bo", "bo@x.invalid", 0,
                       "Merge branch 'feature'")
    finding = Finding("t.py::test_a", culprit, (culprit.sha,), confirmed=True, merge=merge)
    result = BisectResult(good="a" * 40, bad="e" * 40, candidates=3, findings=(finding,),
                          probes_run=4, probes_reused=0, seconds=1.0)
    with HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        night = Night(repo=None, store=store, options=NightlyOptions(),  # type: ignore[arg-type]
                      branch="main", head="e" * 40, run=SimpleNamespace(env_key="env", id=1),
                      tonight={}, lookback=20, baseline=True, triaged=Triage([], [], []),
                      result=result, notes=[])
        [group] = _regression_groups(night, [finding])
    assert group.culprit is not None and group.culprit.sha == culprit.sha
    assert group.merge is not None and (group.merge.sha, group.merge.short) == (merge.sha,
                                                                                "d" * 10)
    assert group.to_json()["merge"]["sha"] == merge.sha
    data = NightlyReport.from_json({
        "head": {"short": "e" * 10}, "branch": "main", "status": "regression",
        "run": {"outcomes": {"failed": 1}, "seconds": 1.0}, "exit_code": 1,
        "fail_on": "regression", "regressions": [group.to_json()], "repository": "r"})
    assert (f"- merged by: `{'d' * 10}` Merge branch 'feature' (the first-parent merge "
            "that brought it in)") in report.to_markdown(data)
    assert f"    merged by {'d' * 10} Merge branch 'feature'" in report.summary_lines(data)


def test_a_test_failing_throughout_the_window_is_not_clean(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No pass to bisect from, so no regression; but the suite is not green either."""
    skipped = "import pytest\n\n\n@pytest.mark.skip\ndef test_c():\n    pass\n"
    commit(repo, {"test_a.py": "def test_a():\n    pass\n",
                  "test_b.py": "def test_b():\n    assert False\n", "test_c.py": skipped}, "a")
    assert _night(repo, tmp_path / "n1", capsys).code == 0
    commit(repo, {"NOTES.md": "1\n"}, "Notes")
    night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 0 and [f["test"] for f in night.data["failing"]] == [
        "test_b.py::test_b"]
    assert night.data["status"] == "still-failing"
    # a test skipped in every run is counted under the grid, not a column of it
    grid = night.data["grid"]
    assert grid["tests"] == ["test_b.py::test_b"]
    assert (grid["passing_tests"], grid["skipped_tests"]) == (1, 1)
    assert "1 test skipped in every run (not shown)" in night.html


@pytest.mark.parametrize(("reason", "purpose"), [
    ("check bad end", "check"), ("check good end", "check"),
    ("bisect, 3 of 7 candidates left", "bisect"), ("7 candidates", "bisect"),  # older stores
    ("flake-aware, 12 candidates", "flaky"), ("merged branch tip", "merge"),
    ("confirm culprit", "confirm"), ("confirm parent", "confirm"), ("something new", "other"),
])
def test_a_probes_purpose_is_the_documented_word(reason: str, purpose: str) -> None:
    assert purpose_of(reason) == purpose
    doc = (Path(__file__).parents[1] / "docs" / "nightly-report.md").read_text()
    assert f"`{purpose}`" in doc


# -- the report model, tracebacks and links ------------------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "nightly" / "report.json"


def _within(small: Any, big: Any, path: str = "$") -> None:
    """Every key and value of `small` is in `big` (new keys may appear, none may change)."""
    if isinstance(small, dict):
        assert isinstance(big, dict), path
        for key, value in small.items():
            assert key in big, f"{path}.{key} is gone"
            _within(value, big[key], f"{path}.{key}")
    elif isinstance(small, list):
        assert isinstance(big, list) and len(small) == len(big), path
        for i, (a, b) in enumerate(zip(small, big, strict=True)):
            _within(a, b, f"{path}[{i}]")
    else:
        assert small == big, f"{path}: {small!r} became {big!r}"


def test_the_report_model_reads_and_writes_nightly_json() -> None:
    """`NightlyReport.from_json(...).to_json()` keeps every key and value docs/nightly-report.md
    documents (the fixture), adds the evidence, and is stable when read back again."""
    from bisector.reports.nightly_model import SCHEMA, NightlyReport

    data = json.loads(FIXTURE.read_text())
    report = NightlyReport.from_json(data)
    out = report.to_json()
    _within(data, out)
    assert out["schema"] == SCHEMA == 1 and out["kind"] == "bisector-nightly"
    assert out["links"] == {"commit": None, "run": None}
    assert out["regressions"][0]["tests"][0]["after"]["traceback"] is None
    assert NightlyReport.from_json(out) == report
    assert NightlyReport.from_json(json.loads(json.dumps(out))).to_json() == out
    # read by attribute: a renamed field is an AttributeError, not an empty cell
    assert report.regressions[0].culprit is not None
    assert report.regressions[0].culprit.short == data["regressions"][0]["culprit"]["short"]
    assert report.new_regressions == sum(len(g["tests"]) for g in data["regressions"])
    assert NightlyReport.from_json({}).to_json()["regressions"] == []


def test_links_come_from_github_actions_or_the_commit_url() -> None:
    from bisector.reports.links import Links, links_from

    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "org/calc",
               "GITHUB_RUN_ID": "123"}
    links = links_from(actions, "https://elsewhere.example/{sha}")
    sha = "0ccc208ec088dd8d8d391d78b0cce83523eb2562"
    assert links.commit_url(sha) == f"https://github.com/org/calc/commit/{sha}"
    assert links.diff_url(sha) == f"https://github.com/org/calc/commit/{sha}.diff"
    assert links.run_url() == "https://github.com/org/calc/actions/runs/123"
    assert links_from({**actions, "GITHUB_RUN_ID": "1; rm"}, None).run_url() is None
    odd = {**actions, "GITHUB_REPOSITORY": "org/calc\" onclick=x"}
    assert links_from(odd, None) == Links()  # not what Actions sets: no link at all
    gitlab = links_from({}, "https://git.example.com/org/calc/-/commit/{sha}?view=parallel")
    assert gitlab.commit_url(sha) == (
        f"https://git.example.com/org/calc/-/commit/{sha}?view=parallel")
    assert gitlab.diff_url(sha) == (
        f"https://git.example.com/org/calc/-/commit/{sha}.diff?view=parallel")
    assert gitlab.run_url() is None and gitlab.commit_url("not a sha") is None
    assert links_from({}, None) == Links()


def test_a_night_shows_each_failures_traceback_and_links(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The traceback the store keeps with a failure reaches nightly.json, the Markdown and the
    HTML; in Actions, the culprit links to its commit and diff, the report to its run."""
    _first_night(repo, tmp_path, capsys)
    culprit = commit(repo, {"calc.py": CALC_BAD}, "Clamp")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/calc")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    night = _night(repo, tmp_path / "n2", capsys)
    assert night.code == 1, night.out
    [group] = night.data["regressions"]
    [test] = group["tests"]
    traceback = test["after"]["traceback"]
    assert "assert add(-2, -3) == -5" in traceback and "\nE  " in traceback, traceback
    assert test["before"]["traceback"] is None  # it passed there
    assert night.data["links"] == {"commit": "https://github.com/org/calc/commit/{sha}",
                                   "run": "https://github.com/org/calc/actions/runs/77"}
    assert "<details>\n<summary>Traceback of tests/test_calc.py::test_add_negative at" in night.md
    assert f"```text\n{traceback}\n```" in night.md
    assert f"[`{culprit[:10]}`](https://github.com/org/calc/commit/{culprit})" in night.md
    assert f"- diff: [https://github.com/org/calc/commit/{culprit}.diff]" in night.md
    assert '<pre class="tb">' in night.html and "assert add(-2, -3) == -5" in night.html
    assert f'href="https://github.com/org/calc/commit/{culprit}.diff"' in night.html
    assert 'href="https://github.com/org/calc/actions/runs/77"' in night.html


def test_a_bad_commit_url_stops_the_night_before_anything_runs(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _calc_repo(repo)
    commit(repo, {"pyproject.toml": '[tool.bisector]\ncommit-url = "https://x.example/"\n'})
    assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "n1")]) == 2
    err = capsys.readouterr().err
    assert "commit-url 'https://x.example/' must hold {sha} exactly once" in err
    assert "Traceback" not in err and not (tmp_path / "n1" / "nightly.json").exists()
