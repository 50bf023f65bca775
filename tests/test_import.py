from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import commit, query, run_cli, run_pytest

FIXTURES = Path(__file__).parent / "fixtures" / "junit"

RESULTS = """
    SELECT t.nodeid, r.outcome, r.signature, r.message, r.reruns, r.phase
    FROM results r JOIN tests t ON t.id = r.test_id WHERE r.run_id = ? ORDER BY t.nodeid
"""

SUITE = '''
import pytest


@pytest.fixture
def broken():
    raise ConnectionError("database is down")


def test_pass():
    pass


def test_fail():
    assert 2 + 2 == 5


def test_setup_error(broken):
    pass


def test_skip():
    pytest.skip("not here")


@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False


@pytest.mark.parametrize("value", ["a.b", "x[y]", 3])
def test_param(value):
    assert value != 3


class TestGroup:
    def test_method(self):
        raise KeyError("missing")
'''


def _db(repo: Path) -> Path:
    return repo / ".bisector" / "history.db"


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_records_a_run_with_trigger_import(repo: Path) -> None:
    sha = commit(repo, {"README": "x"})
    out = _ok(run_cli("import", "--commit", "HEAD", str(FIXTURES / "pytest-xunit1.xml"),
                      cwd=repo))
    assert out == f"imported 15 results at {sha[:10]} (run #1)\n"
    db = _db(repo)
    [(run_id, run_sha, trigger, dirty, branch, platform, host, started)] = query(
        db, "SELECT id, sha, trigger, dirty, branch, platform, host, started_at FROM runs")
    assert (run_sha, trigger, dirty, branch, platform, host) == (
        sha, "import", 0, None, "imported", "vm")
    assert started == pytest.approx(1795290553.008674)  # the file's timestamp, not now
    rows = {nodeid: (outcome, reruns, phase)
            for nodeid, outcome, _, _, reruns, phase in query(db, RESULTS, run_id)}
    assert rows["tests/test_broken.py"] == ("error", 0, "collect")
    assert rows["tests/test_sample.py::test_setup_error"] == ("error", 0, "setup")
    assert rows["tests/test_sample.py::test_xfail"] == ("xfailed", 0, "call")
    assert rows["tests/test_sample.py::TestGroup::TestNested::test_inner"] == ("failed", 0, "call")
    assert rows["tests/test_sample.py::test_flaky"] == ("passed", 1, "call")
    assert len(rows) == 15
    assert query(db, "SELECT subject FROM commits WHERE sha = ?", sha) == [("change",)]

    grid = json.loads(_ok(run_cli("history", "--json", "tests/test_sample.py::test_fail",
                                  cwd=repo)))
    [at_head] = grid["commits"]
    assert at_head["sha"] == sha and at_head["runs"] == 1
    assert at_head["results"] == {"tests/test_sample.py::test_fail": ["failed"]}
    text = _ok(run_cli("history", cwd=repo))
    assert "tests/test_sample.py::TestGroup::TestNested::test_inner" in text


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_imported_results_line_up_with_the_plugin(repo: Path, tmp_path: Path,
                                                  family: str) -> None:
    commit(repo, {"tests/test_suite.py": SUITE, "tests/__init__.py": "", "pytest.ini": ""})
    junit = tmp_path / "junit.xml"
    proc = run_pytest(repo, "--track-history", "-p", "no:cacheprovider",
                      f"--junitxml={junit}", "-o", f"junit_family={family}")
    assert "recorded 9 results" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    _ok(run_cli("import", "--commit", "main", str(junit), cwd=repo))
    db = _db(repo)
    runs = dict(query(db, "SELECT trigger, id FROM runs"))
    assert set(runs) == {"pytest", "import"}
    plugin, imported = (query(db, RESULTS, runs[t]) for t in ("pytest", "import"))
    assert len(plugin) == 9
    # node ids, outcomes, failure signatures, messages, reruns and phases all agree
    assert imported == plugin
    keys = query(db, "SELECT trigger, env_key FROM runs")
    assert len({key for _, key in keys}) == 2  # an import is another experiment


def test_environment_names_separate_imported_runs(repo: Path) -> None:
    commit(repo, {"README": "x"})
    xml = str(FIXTURES / "pytest-xunit1.xml")
    for name in ("ci-linux", "ci-linux", "ci-mac"):
        _ok(run_cli("import", "--commit", "HEAD", "--environment", name, xml, cwd=repo))
    _ok(run_cli("import", "--commit", "HEAD", "--dirty", xml, cwd=repo))
    rows = query(_db(repo), "SELECT platform, env_key, dirty FROM runs ORDER BY id")
    assert [(p, d) for p, _, d in rows] == [
        ("ci-linux", 0), ("ci-linux", 0), ("ci-mac", 0), ("imported", 1)]
    assert rows[0][1] == rows[1][1]
    assert len({key for _, key, _ in rows}) == 3


def test_several_files_make_one_run(repo: Path) -> None:
    sha = commit(repo, {"README": "x"})
    out = _ok(run_cli("import", "--commit", sha[:7], "--dialect", "generic",
                      str(FIXTURES / "surefire.xml"), str(FIXTURES / "gotestsum.xml"), cwd=repo))
    assert out == f"imported 16 results at {sha[:10]} (run #1)\n"
    db = _db(repo)
    [(run_id, started)] = query(db, "SELECT id, started_at FROM runs")
    assert started == 1714637730.0  # gotestsum's timestamp (Surefire writes none)
    rows = {nodeid: (outcome, reruns) for nodeid, outcome, *_, reruns, _ in
            query(db, RESULTS, run_id)}
    assert rows["com.example.CalculatorTest::roundsHalfUp"] == ("passed", 1)
    assert rows["com.example.CalculatorTest::dividesByZero"] == ("failed", 2)
    assert rows["example.com/calc::TestFlakyNetwork"] == ("passed", 1)


@pytest.mark.parametrize("bad", ["<testsuites><testsuite>", "<html/>", None])
def test_a_bad_file_records_nothing(repo: Path, tmp_path: Path, bad: str | None) -> None:
    commit(repo, {"README": "x"})
    path = tmp_path / "report.xml"
    if bad is not None:
        path.write_text(bad)
    good = str(FIXTURES / "pytest-xunit1.xml")
    proc = run_cli("import", "--commit", "HEAD", good, str(path), cwd=repo)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("bisector: error: ") and str(path) in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not _db(repo).exists()  # the store is not even created


def test_an_unknown_commit_is_refused(repo: Path) -> None:
    commit(repo, {"README": "x"})
    proc = run_cli("import", "--commit", "no-such-rev", str(FIXTURES / "pytest-xunit1.xml"),
                   cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr == ("bisector: error: unknown revision 'no-such-rev': "
                           "check the name with `git log --oneline`\n")
    assert not _db(repo).exists()


def test_a_file_without_tests_is_refused(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"README": "x"})
    empty = tmp_path / "empty.xml"
    empty.write_text('<testsuites><testsuite name="none" tests="0"/></testsuites>')
    proc = run_cli("import", "--commit", "HEAD", str(empty), cwd=repo)
    assert proc.returncode == 2 and "no test cases in" in proc.stderr
    assert not _db(repo).exists()
