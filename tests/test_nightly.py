"""`bisector nightly` end to end: three nights on a generated repository, and its bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bisector.cli import main
from bisector.model import Outcome, Regression
from bisector.nightly import exit_code, status_of, triage

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


def _night(repo: Path, reports: Path, capsys: pytest.CaptureFixture[str], *args: str
           ) -> tuple[int, str, dict, str, str]:
    code = main(["nightly", "-C", str(repo), "--report-dir", str(reports), *args])
    out = capsys.readouterr().out
    data = json.loads((reports / "nightly.json").read_text())
    md = (reports / "nightly.md").read_text()
    html = (reports / "nightly.html").read_text()
    return code, out, data, md, html


@pytest.mark.slow
def test_three_nights(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    flip = tmp_path / "flip"
    monkeypatch.setenv("FLIP_FILE", str(flip))
    commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS,
                  "tests/test_flip.py": FLIP, "CODEOWNERS": CODEOWNERS,
                  ".gitignore": "__pycache__/\n"}, "Calculator")
    for i in range(1, 4):
        commit(repo, {"NOTES.md": f"{i}\n"}, f"Notes {i}")

    # night 1: nothing to compare with
    code, out, data, md, html = _night(repo, tmp_path / "n1", capsys)
    assert code == 0, out
    assert data["status"] == "no-baseline" and data["exit_code"] == 0
    assert data["regressions"] == [] and data["run"]["outcomes"] == {"passed": 3}
    assert "no baseline yet" in md.lower() and "no baseline yet" in html.lower()

    # night 2: a commit breaks test_add_negative among two harmless ones
    commit(repo, {"NOTES.md": "4\n"}, "Notes 4")
    culprit = commit(repo, {"calc.py": CALC_BAD}, "Clamp add() at zero")
    commit(repo, {"NOTES.md": "5\n"}, "Notes 5")
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
    assert any("CODEOWNERS line 3" in n for n in data["notes"])  # named, the rest still used
    assert data["grid"]["regressions"] == {test["test"]: culprit}
    assert f"### Culprit `{culprit[:10]}` Clamp add() at zero" in md
    assert "@calc-team" in md and "assert 0 == -5" in md
    assert f'data-sha="{culprit}"' in html and "@calc-team" in html
    assert f"culprit {culprit[:10]} Clamp add() at zero" in out
    bisections_after_night_2 = _bisected_tests(repo)

    # night 3: two more commits; the flaky test fails once at HEAD, the regression persists
    commit(repo, {"NOTES.md": "6\n"}, "Notes 6")
    commit(repo, {"NOTES.md": "7\n"}, "Notes 7")
    flip.write_text("armed")
    code, out, data, md, html = _night(repo, tmp_path / "n3", capsys, "--fail-on", "flaky")
    assert not flip.exists()  # tonight's run did fail once
    assert code == 1, out
    assert data["status"] == "flaky" and data["regressions"] == []
    [still] = data["still_failing"]
    assert still["test"] == "tests/test_calc.py::test_add_negative"
    assert still["culprit"]["sha"] == culprit
    [flaky] = data["flaky"]
    assert flaky["test"] == "tests/test_flip.py::test_flip"
    assert "lost the race" in flaky["message"]
    assert f"still failing since `{culprit[:10]}` Clamp add() at zero" in md
    assert "## Flaky tonight" in md and "test_flip" in md
    assert "tests/test_flip.py::test_flip" in data["grid"]["flaky"]
    assert re.search(r"still failing", html, re.I) and "test_flip" in html
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


def test_no_tests_is_an_error(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    commit(repo, {"README.md": "nothing to test\n"}, "a")
    assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "r")]) == 2
    assert "collected no tests" in capsys.readouterr().err


def _reg(nodeid: str, last_good: str) -> Regression:
    return Regression(nodeid, last_good, "bad", 3, Outcome.FAILED)


def test_triage_carries_what_has_not_passed_since_its_culprit() -> None:
    # history: g0 - g1 - c1 - g2 - c2 - bad (each letter a commit, oldest first)
    line = ["g0", "g1", "c1", "g2", "c2", "bad"]

    def is_ancestor(older: str, newer: str) -> bool:
        return line.index(older) <= line.index(newer)

    ledger = {"reported": [
        {"test": "t1", "bad": "c2", "culprit": "c1", "since": 10.0},
        {"test": "t2", "bad": "c2", "culprit": "c1", "since": 20.0},
        {"test": "t3", "bad": "c2", "culprit": None, "since": 30.0},
        {"test": "t6", "bad": "c2", "culprit": None, "since": 40.0},
    ]}
    out = triage([_reg("t1", "g1"), _reg("t2", "g2"), _reg("t4", "g1"), _reg("t6", "g2")],
                 ["t1", "t2", "t3", "t4", "t5", "t6"], ledger, is_ancestor)
    # t2 passed at g2, after its culprit c1: fixed, then broken again (a new break); t6 has
    # no culprit, but g2 is before where it was seen failing: the same break
    assert [r.nodeid for r in out.new] == ["t2", "t4"]
    # t3 is no longer detected (its pass left the window) but was reported: carried
    assert [(c.test, c.culprit, c.since) for c in out.carried] == [
        ("t1", "c1", 10.0), ("t6", None, 40.0), ("t3", None, 30.0)]
    assert out.failing == ["t5"]


def test_triage_without_a_ledger_reports_everything_new() -> None:
    out = triage([_reg("t1", "g")], ["t1", "t2"], None, lambda a, b: True)
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
