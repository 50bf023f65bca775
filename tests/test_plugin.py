"""The plugin through real pytest sessions on real git repositories."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bisector.junit import results_for
from bisector.model import TRACEBACK_MAX

from .conftest import commit, git, query, run_pytest

MIXED = '''
import pytest

def test_pass():
    pass

def test_fail():
    assert 1 == 2, "one is not two"

@pytest.fixture
def broken():
    raise RuntimeError("setup boom")

def test_setup_error(broken):
    pass

@pytest.mark.xfail(reason="known")
def test_xfailed():
    assert 0

@pytest.mark.xfail(reason="fixed?")
def test_xpassed():
    pass

def test_skipped():
    pytest.skip("not here")

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n != 2
'''

SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def summary_counts(stdout: str) -> dict[str, int]:
    final = [line for line in stdout.splitlines() if re.search(r" in [\d.]+s\b", line)][-1]
    counts: dict[str, int] = {}
    for n, word in SUMMARY.findall(final):
        counts["error" if word.startswith("error") else word] = int(n)
    return counts


def store_counts(db: Path, run_id: int | None = None) -> dict[str, int]:
    if run_id is None:
        run_id = query(db, "select max(id) from runs")[0][0]
    sql = "select outcome, count(*) from results where run_id=? group by outcome"
    return dict(query(db, sql, run_id))


def db_of(repo: Path) -> Path:
    return repo / ".bisector" / "history.db"


def test_records_one_run_with_every_outcome(repo: Path) -> None:
    sha = commit(repo, {"test_mixed.py": MIXED})
    proc = run_pytest(repo, "--track-history")
    assert proc.returncode == 1
    assert f"bisector: recorded 9 results for {sha[:10]}" in proc.stdout
    assert store_counts(db_of(repo)) == summary_counts(proc.stdout)
    [run] = query(db_of(repo), "select sha, dirty, branch, trigger, exit_status, python, "
                  "platform, deps_hash, host, started_at <= finished_at from runs")
    assert run[:5] == (sha, 0, "main", "pytest", 1)
    assert run[5].startswith("cpython-3.") and run[6].startswith(sys.platform)
    assert run[7] == "none" and run[8] and run[9] == 1
    rows = dict(
        (nodeid, (outcome, phase, sig is not None, msg))
        for nodeid, outcome, phase, sig, msg in query(
            db_of(repo),
            "select t.nodeid, r.outcome, r.phase, r.signature, r.message "
            "from results r join tests t on t.id = r.test_id",
        )
    )
    assert rows["test_mixed.py::test_fail"][:3] == ("failed", "call", True)
    assert "one is not two" in rows["test_mixed.py::test_fail"][3]
    assert rows["test_mixed.py::test_setup_error"] == (
        "error", "setup", True, "RuntimeError: setup boom"
    )
    assert rows["test_mixed.py::test_xfailed"] == ("xfailed", "call", False, "known")
    assert rows["test_mixed.py::test_xpassed"][0] == "xpassed"
    assert rows["test_mixed.py::test_skipped"] == ("skipped", "call", False, "not here")
    assert rows["test_mixed.py::test_param[2]"][0] == "failed"


def test_teardown_error_is_an_error_not_a_pass(repo: Path) -> None:
    commit(repo, {"test_td.py": '''
import pytest

@pytest.fixture
def leaky():
    yield
    raise ValueError("teardown boom at 0x7f00aa")

def test_body_passes(leaky):
    pass
'''})
    proc = run_pytest(repo, "--track-history")
    assert "1 passed, 1 error" in proc.stdout  # pytest counts the test twice
    [(outcome, phase, msg)] = query(db_of(repo), "select outcome, phase, message from results")
    assert (outcome, phase) == ("error", "teardown")
    assert msg.startswith("ValueError: teardown boom")


def test_collection_error_and_module_skip_are_recorded(repo: Path) -> None:
    commit(repo, {
        "test_ok.py": "def test_ok():\n    pass\n",
        "test_broken.py": "import no_such_module_here\n",
        "test_skipmod.py": "import pytest\npytest.skip('whole module', allow_module_level=True)\n",
    })
    proc = run_pytest(repo, "--track-history", "--continue-on-collection-errors")
    assert store_counts(db_of(repo)) == summary_counts(proc.stdout)
    rows = dict(query(db_of(repo), "select t.nodeid, r.outcome || ':' || r.phase from results r "
                                   "join tests t on t.id = r.test_id"))
    assert rows["test_broken.py"] == "error:collect"
    assert rows["test_skipmod.py"] == "skipped:collect"


def test_dirty_working_tree_is_flagged_and_bytecode_is_not_dirt(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    run_pytest(repo, "--track-history")  # leaves __pycache__ behind
    run_pytest(repo, "--track-history")
    (repo / "test_a.py").write_text("def test_a():\n    assert 1\n")
    run_pytest(repo, "--track-history")
    git(repo, "checkout", "test_a.py")
    (repo / "test_new.py").write_text("def test_new():\n    pass\n")
    proc = run_pytest(repo, "--track-history")
    assert "dirty: not evidence" in proc.stdout
    assert [r[0] for r in query(db_of(repo), "select dirty from runs order by id")] == [0, 0, 1, 1]


def test_store_is_excluded_from_git_without_touching_tracked_files(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n", ".gitignore": "*.log\n"})
    for _ in range(2):
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    assert git(repo, "status", "--porcelain") == ""
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count("/.bisector/") == 1
    assert (repo / ".gitignore").read_text() == "*.log\n"


def test_detached_head_has_no_branch(repo: Path) -> None:
    first = commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    commit(repo, {"README": "x"})
    git(repo, "checkout", "-q", first)
    run_pytest(repo, "--track-history")
    assert query(db_of(repo), "select sha, branch from runs") == [(first, None)]


def test_xdist_records_every_result_exactly_once(repo: Path) -> None:
    tests = "".join(f"def test_{i}():\n    assert {i} % 7\n" for i in range(40))
    commit(repo, {"test_many.py": tests, "test_more.py": tests})
    proc = run_pytest(repo, "--track-history", "-n", "2")
    assert proc.returncode == 1
    assert store_counts(db_of(repo)) == summary_counts(proc.stdout) == {"passed": 68, "failed": 12}
    assert query(db_of(repo), "select count(*), count(distinct test_id) from results") == [(80, 80)]
    assert query(db_of(repo), "select count(*) from runs") == [(1,)]


@pytest.mark.parametrize(
    "args",
    [
        ["-x"],
        ["-k", "not test_3"],
        ["-p", "no:cacheprovider"],
        ["--lf"],
        ["-n", "2", "-x"],
    ],
    ids=["x", "k", "no-cacheprovider", "lf", "xdist-x"],
)
def test_common_options_keep_counts_exact(repo: Path, args: list[str]) -> None:
    tests = "".join(f"def test_{i}():\n    assert {i} != 5\n" for i in range(10))
    commit(repo, {"test_opts.py": tests})
    run_pytest(repo)  # a plain first session, so --lf has something to choose from
    proc = run_pytest(repo, "--track-history", *args)
    counts = summary_counts(proc.stdout)
    assert store_counts(db_of(repo)) == counts
    if args == ["--lf"]:
        assert counts == {"failed": 1}


def test_rerun_that_passes_is_flaky_evidence_not_a_plain_pass(repo: Path) -> None:
    commit(repo, {"test_flaky.py": '''
import pathlib

def test_flaky(tmp_path_factory):
    marker = pathlib.Path(__file__).with_name("seen.marker")
    if not marker.exists():
        marker.write_text("x")
        raise AssertionError("first attempt fails")

def test_stable():
    pass
''', ".gitignore": "seen.marker\n"})
    proc = run_pytest(repo, "--track-history", "--reruns", "2")
    assert "1 rerun" in proc.stdout and "2 passed" in proc.stdout
    rows = dict(query(db_of(repo), "select t.nodeid, r.outcome || ':' || r.reruns from results r "
                                   "join tests t on t.id = r.test_id"))
    assert rows == {
        "test_flaky.py::test_flaky": "passed:1",
        "test_flaky.py::test_stable": "passed:0",
    }


def test_rerun_that_keeps_failing_is_a_failure(repo: Path) -> None:
    commit(repo, {"test_f.py": "def test_f():\n    assert False, 'always'\n"})
    run_pytest(repo, "--track-history", "--reruns", "2", "-n", "2")
    assert query(db_of(repo), "select outcome, reruns from results") == [("failed", 2)]


SUBTESTS = '''
import unittest

import pytest

class TestCase(unittest.TestCase):
    def test_sub_fails(self):
        for i in range(4):
            with self.subTest(i=i):
                self.assertNotEqual(i, 2, f"bad {i}")

    def test_two_fail(self):
        for i in range(4):
            with self.subTest(i=i):
                if i == 1:
                    raise ValueError("the first failure")
                if i == 3:
                    raise KeyError("a later one")

    def test_sub_passes(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertTrue(i < 3)

    def test_sub_skips(self):
        for i in range(3):
            with self.subTest(i=i):
                if i == 1:
                    self.skipTest("not this one")

def test_fixture_fails(subtests):
    for i in range(4):
        with subtests.test(i=i):
            assert i != 2, f"bad {i}"

def test_fixture_passes(subtests):
    for i in range(3):
        with subtests.test(i=i):
            assert i < 3

def test_fixture_skips(subtests):
    for i in range(3):
        with subtests.test(i=i):
            if i == 1:
                pytest.skip("not this one")
'''

SUBTEST_VERDICTS = {
    "test_sub.py::TestCase::test_sub_fails": ("failed", "AssertionError: 2 == 2 : bad 2"),
    "test_sub.py::TestCase::test_two_fail": ("failed", "ValueError: the first failure"),
    "test_sub.py::TestCase::test_sub_passes": ("passed", None),
    "test_sub.py::TestCase::test_sub_skips": ("passed", None),
    "test_sub.py::test_fixture_fails": ("failed", "AssertionError: bad 2"),
    "test_sub.py::test_fixture_passes": ("passed", None),
    "test_sub.py::test_fixture_skips": ("passed", None),
}


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_failed_subtest_fails_its_test(repo: Path, args: list[str]) -> None:
    """unittest `subTest` and the `subtests` fixture: any failed subtest fails the test, with
    the first failed subtest's message, although the test's own call report passes."""
    commit(repo, {"test_sub.py": SUBTESTS})
    proc = run_pytest(repo, "--track-history", *args)
    assert proc.returncode == 1
    assert "SUBFAILED(i=" in proc.stdout
    rows = {nodeid: (outcome, message) for nodeid, outcome, message in query(
        db_of(repo), "select t.nodeid, r.outcome, r.message from results r "
                     "join tests t on t.id = r.test_id")}
    assert rows == SUBTEST_VERDICTS
    [[phase]] = query(db_of(repo), "select distinct phase from results")
    assert phase == "call"


def test_a_probe_reads_a_failed_subtest_as_the_plugin_records_it(repo: Path,
                                                                 tmp_path: Path) -> None:
    """Probes read pytest's JUnit XML: the same verdict, message and signature as the
    recorded run, for every test whose subtests failed or passed."""
    commit(repo, {"test_sub.py": SUBTESTS})
    junit = tmp_path / "junit.xml"
    run_pytest(repo, "--track-history", f"--junitxml={junit}", "-o", "junit_family=xunit1")
    stored = {nodeid: (outcome, message, sig) for nodeid, outcome, message, sig in query(
        db_of(repo), "select t.nodeid, r.outcome, r.message, r.signature from results r "
                     "join tests t on t.id = r.test_id")}
    probed = {r.nodeid: (r.outcome.value, r.message, r.signature)
              for r in results_for(junit, list(SUBTEST_VERDICTS)).values()}
    # a skipped subtest is a <skipped> in JUnit XML, like a skipped test: not comparable
    agreeing = [n for n in SUBTEST_VERDICTS if "skips" not in n]
    assert {n: probed[n] for n in agreeing} == {n: stored[n] for n in agreeing}
    assert probed["test_sub.py::test_fixture_fails"][0] == "failed"


def _said(result: pytest.RunResult) -> list[str]:
    """The `bisector:` lines of a pytester session's output."""
    return [line for line in result.outlines if line.startswith("bisector:")]


@pytest.fixture
def checkout(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester's directory as an empty git repository on branch main."""
    git(pytester.path, "init", "-q", "-b", "main")
    return pytester


def test_outside_git_warns_once_and_keeps_the_exit_status(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    assert 0\n")
    result = pytester.runpytest("--track-history")
    assert result.ret == 1
    lines = _said(result)
    assert len(lines) == 1 and "not a git repository" in lines[0] and "nothing recorded" in lines[0]
    assert "--repo" not in lines[0] and "run pytest from a directory inside" in lines[0]
    assert not (pytester.path / ".bisector").exists()
    assert "Traceback" not in "\n".join(result.outlines + result.errlines)


@pytest.mark.parametrize("how", [["--auto-bisect"], ["-o", "auto_bisect=true"]])
def test_auto_bisect_without_tracking_says_so_once(checkout: pytest.Pytester,
                                                   how: list[str]) -> None:
    commit(checkout.path, {"test_a.py": "def test_a():\n    assert 0\n"})
    result = checkout.runpytest(*how)
    assert result.ret == 1
    assert _said(result) == [
        "bisector: warning: --auto-bisect does nothing without --track-history "
        "(or track_history = true in the ini file)"]
    assert not (checkout.path / ".bisector").exists()
    tracked = checkout.runpytest("--auto-bisect", "--track-history")
    assert not any("does nothing" in line for line in tracked.outlines)


def test_repository_without_commits_warns(checkout: pytest.Pytester) -> None:
    checkout.makepyfile(test_a="def test_a():\n    pass\n")
    result = checkout.runpytest("--track-history")
    assert result.ret == 0
    [line] = _said(result)
    assert "has no commit yet" in line


def test_corrupt_store_is_a_warning_and_is_left_alone(checkout: pytest.Pytester) -> None:
    commit(checkout.path, {"test_a.py": "def test_a():\n    pass\n"})
    db = db_of(checkout.path)
    db.parent.mkdir()
    db.write_bytes(b"this is not a database" * 100)
    result = checkout.runpytest("--track-history")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    [line] = _said(result)
    assert "unusable" in line and str(db) in line and "move it aside" in line
    assert db.read_bytes() == b"this is not a database" * 100


def test_newer_schema_is_refused_untouched(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    run_pytest(repo, "--track-history")
    query(db_of(repo), "update bisector_meta set value = '99' where key = 'schema_version'")
    proc = run_pytest(repo, "--track-history")
    assert proc.returncode == 0
    assert "newer bisector (schema v99" in proc.stdout
    assert query(db_of(repo), "select count(*) from runs") == [(1,)]
    assert query(db_of(repo), "select value from bisector_meta") == [("99",)]


@pytest.mark.parametrize("version", ["0", "-1", "two"])
def test_a_damaged_schema_version_is_a_one_line_warning(repo: Path, version: str) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    run_pytest(repo, "--track-history")
    query(db_of(repo), "update bisector_meta set value = ? where key = 'schema_version'", version)
    proc = run_pytest(repo, "--track-history")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("bisector:")]
    assert "schema version" in line and "nothing recorded" in line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert query(db_of(repo), "select count(*) from runs") == [(1,)]


def test_store_location_from_flag_env_and_pyproject(repo: Path, tmp_path: Path) -> None:
    commit(repo, {
        "test_a.py": "def test_a():\n    pass\n",
        "pyproject.toml": '[tool.bisector]\nhistory-db = "hist/from-pyproject.db"\n',
    })
    run_pytest(repo, "--track-history")
    assert (repo / "hist" / "from-pyproject.db").exists()
    run_pytest(repo, "--track-history", env={"BISECTOR_DB": str(tmp_path / "env.db")})
    assert (tmp_path / "env.db").exists()
    flag_db = tmp_path / "flag.db"
    run_pytest(repo, "--track-history", f"--history-db={flag_db}",
               env={"BISECTOR_DB": str(tmp_path / "env.db")})
    assert query(flag_db, "select count(*) from runs") == [(1,)]
    assert query(tmp_path / "env.db", "select count(*) from runs") == [(1,)]
    url_db = tmp_path / "url.db"
    run_pytest(repo, "--track-history", f"--history-db=sqlite:///{url_db}")
    assert query(url_db, "select count(*) from runs") == [(1,)]


def _nodeids(db: Path) -> set[str]:
    return {nodeid for (nodeid,) in query(db, "select nodeid from tests")}


def test_history_db_with_a_space_never_forks_the_node_ids(repo: Path, tmp_path: Path) -> None:
    """pytest picks its rootdir before it knows bisector's options: the value of
    `--history-db PATH`, once PATH exists, was a test path there (`rw/test_a.py::test_a`)."""
    checkout = tmp_path / "rw"
    repo.rename(checkout)
    commit(checkout, {"test_a.py": "def test_a():\n    pass\n"})
    db = tmp_path / "h.db"
    first = run_pytest(checkout, "--track-history", "--history-db", str(db))  # no file yet
    assert "bisector: recorded 1 results" in first.stdout
    equals = run_pytest(checkout, "--track-history", f"--history-db={db}")
    assert "bisector: recorded 1 results" in equals.stdout
    space = run_pytest(checkout, "--track-history", "--history-db", str(db))
    if space.returncode == 0:  # recorded: under the same node id
        assert "bisector: recorded 1 results" in space.stdout
    else:  # or refused, in one line that names the spelling that works
        assert space.returncode == 4, space.stdout + space.stderr
        [line] = [ln for ln in space.stderr.splitlines() if ln.strip()]
        assert f"write --history-db={db}" in line and "Traceback" not in space.stderr
    assert _nodeids(db) == {"test_a.py::test_a"}
    # a store inside the checkout changes no rootdir: both spellings are taken as they are
    inside = checkout / ".bisector" / "other.db"
    for args in (["--history-db", str(inside)], [f"--history-db={inside}"],
                 ["--history-db", ".bisector/other.db"]):
        proc = run_pytest(checkout, "--track-history", *args)
        assert "bisector: recorded 1 results" in proc.stdout, proc.stdout + proc.stderr
    assert query(inside, "select count(*) from runs") == [(3,)]
    assert _nodeids(inside) == {"test_a.py::test_a"}


def test_history_db_with_a_space_never_loses_the_projects_config_file(repo: Path) -> None:
    """A project in a subdirectory with its own pytest.ini, the store beside it: the space
    form made pytest root at the repository, without the project's config file."""
    commit(repo, {"proj/pytest.ini": "[pytest]\npython_functions = check_*\n",
                  "proj/test_a.py": "def check_a():\n    pass\n\ndef test_b():\n    assert 0\n"})
    db = repo / "h.db"
    db.touch()  # the second run of a session that wrote it
    proj = repo / "proj"
    space = run_pytest(proj, "--track-history", "--history-db", str(db))
    equals = run_pytest(proj, "--track-history", f"--history-db={db}")
    assert equals.returncode == 0 and "1 passed" in equals.stdout
    assert space.returncode in (0, 4), space.stdout + space.stderr
    if space.returncode == 4:
        assert "write --history-db=" in space.stderr and "rootdir" in space.stderr
    assert _nodeids(db) == {"test_a.py::check_a"}


def test_ini_key_turns_tracking_on(repo: Path) -> None:
    commit(repo, {
        "test_a.py": "def test_a():\n    pass\n",
        "pytest.ini": "[pytest]\ntrack_history = true\n",
    })
    proc = run_pytest(repo)
    assert "bisector: recorded 1 results" in proc.stdout
    assert query(db_of(repo), "select count(*) from results") == [(1,)]


def test_fingerprint_follows_the_lockfile(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n", "uv.lock": "version = 1\n"})
    run_pytest(repo, "--track-history")
    commit(repo, {"uv.lock": "version = 2\n"})
    run_pytest(repo, "--track-history")
    rows = query(db_of(repo), "select env_key, fingerprint, deps_hash from runs order by id")
    assert rows[0][0] == rows[1][0]  # same interpreter and platform: comparable
    assert rows[0][1] != rows[1][1] and rows[0][2].startswith("uv.lock:")


PROBE = '''
import json, os, sys

def pytest_sessionfinish(session):
    heavy = sorted(m for m in ("git", "sqlalchemy", "rich", "bisector.history") if m in sys.modules)
    with open(os.environ["PROBE_OUT"], "w") as fh:
        json.dump(heavy, fh)
'''


def test_tracking_off_imports_nothing_heavy(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n", "conftest.py": PROBE})
    out = tmp_path / "modules.json"
    run_pytest(repo, env={"PROBE_OUT": str(out)})
    assert out.read_text() == "[]"
    assert not (repo / ".bisector").exists()
    run_pytest(repo, "--track-history", env={"PROBE_OUT": str(out)})
    assert out.read_text() == "[]"  # even when on, the work happens in the recorder process


def test_four_sessions_at_once_lose_nothing(repo: Path) -> None:
    tests = "".join(f"def test_{i}():\n    assert {i} % 5\n" for i in range(200))
    commit(repo, {"test_load.py": tests})
    procs = [
        subprocess.Popen([sys.executable, "-m", "pytest", "--track-history", "-q"], cwd=repo,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    for out in outputs:
        assert "bisector: recorded 200 results" in out, out[-500:]
    assert query(db_of(repo), "select count(*) from runs") == [(4,)]
    assert query(db_of(repo), "select count(*) from results") == [(800,)]
    assert query(db_of(repo), "select outcome, count(*) from results group by outcome") == [
        ("failed", 160), ("passed", 640)
    ]


def test_a_store_inside_the_checkout_does_not_make_runs_dirty(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n",
                  "pytest.ini": "[pytest]\nhistory_db = hist/h.db\n"})
    for _ in range(2):
        proc = run_pytest(repo, "--track-history")
    assert "dirty" not in proc.stdout
    assert query(repo / "hist" / "h.db", "select dirty from runs") == [(0,), (0,)]
    assert git(repo, "status", "--porcelain") == ""


# -- the recorder process: signals, waiting, lifetime ------------------------------------------

SLOW = '''
import os, pathlib, time

def test_waits():
    pathlib.Path(os.environ["STARTED"]).write_text("")
    time.sleep(60)
'''


def _recorders(invocation_dir: Path) -> list[int]:
    """Pids of live recorder processes started for `invocation_dir` (Linux: reads /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bisector.recorder" in args and os.fsencode(invocation_dir) in args:
            pids.append(int(entry.name))
    return pids


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", status, re.M)[1], 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


def _gone(invocation_dir: Path, within: float) -> bool:
    deadline = time.monotonic() + within
    while _recorders(invocation_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start_slow_session(repo: Path, started: Path, *args: str) -> subprocess.Popen[str]:
    """pytest in its own process group, as a terminal's foreground job; returns once the slow
    test is running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", *args],
        cwd=repo, env={**os.environ, "STARTED": str(started)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


def test_ctrl_c_exits_2_like_pytest_and_records_what_finished(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n", "test_slow.py": SLOW})
    for attempt in range(4):  # the race it guards against lost 4 of 5 tries
        proc = _start_slow_session(repo, tmp_path / f"started{attempt}", "--track-history")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 2, out + err
        assert "Traceback" not in out + err and "Error" not in err, out + err
        assert "bisector: recorded 1 results" in out
        assert _gone(repo, within=0)
    assert query(db_of(repo), "select count(*), max(exit_status) from runs") == [(4, 2)]


def test_the_recorder_ignores_ctrl_c_and_finishes_when_stdin_closes(repo: Path) -> None:
    commit(repo, {"a.txt": "a\n"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector.recorder", "--invocation-dir", str(repo)],
        cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _ignores_sigint(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    payload = {"protocol": 2, "started_at": 1.0, "finished_at": 2.0, "exit_status": 2,
               "results": [["test_a.py::test_a", "passed", 0.1, None, None, 0, "call", None]]}
    out, err = proc.communicate(json.dumps(payload), timeout=60)
    assert proc.returncode == 0 and err == ""
    assert json.loads(out)["recorded"] == 1


WAITED = '''
import gc, subprocess, sys
import pytest

status = pytest.main(sys.argv[1:])
gc.collect()
for proc in gc.get_objects():
    if isinstance(proc, subprocess.Popen) and "bisector.recorder" in proc.args:
        pipes = [f for f in (proc.stdin, proc.stdout, proc.stderr) if f and not f.closed]
        print("recorder", proc.returncode, len(pipes))
sys.exit(status)
'''


@pytest.mark.parametrize("tests", [{"test_a.py": "def test_a():\n    pass\n"},
                                   {"test_a.py": "def test_a():\n    assert 0\n"}])
def test_the_recorder_is_waited_for_and_its_pipes_closed(
    repo: Path, tmp_path: Path, tests: dict[str, str]
) -> None:
    commit(repo, tests)
    driver = tmp_path / "driver.py"
    driver.write_text(WAITED)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(driver),
         "-p", "no:randomly", "--track-history"],
        cwd=repo, capture_output=True, text=True, timeout=120,
    )
    assert "bisector: recorded 1 results" in proc.stdout
    assert re.findall(r"^recorder .*", proc.stdout, re.M) == ["recorder 0 0"]
    assert "ResourceWarning" not in proc.stdout + proc.stderr
    plain = run_pytest(repo, "-W", "error::ResourceWarning", "--track-history",
                       env={"PYTHONDEVMODE": "1"})
    assert "bisector: recorded 1 results" in plain.stdout
    assert "ResourceWarning" not in plain.stdout + plain.stderr


BROKEN_CONFIGURE = '''
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    raise pytest.UsageError("broken after the recorder started")
'''


def test_the_recorder_does_not_outlive_pytest(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n", "test_slow.py": SLOW})
    # a whole session
    run_pytest(repo, "--track-history", "test_a.py")
    assert _recorders(repo) == []
    # pytest killed mid-session: the recorder reads end of file and exits
    proc = _start_slow_session(repo, tmp_path / "started", "--track-history")
    assert len(_recorders(repo)) == 1
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _gone(repo, within=20)
    # a session that ends before sessionfinish
    (repo / "conftest.py").write_text(BROKEN_CONFIGURE)
    proc2 = run_pytest(repo, "--track-history", "test_a.py")
    assert "broken after the recorder started" in proc2.stderr
    assert _recorders(repo) == []
    assert query(db_of(repo), "select count(*) from runs") == [(1,)]


TRACEBACKS = '''
def helper(n):
    assert n == 2, "one is not two"

def test_short():
    helper(1)

def down(n):
    assert n, "reached the bottom"
    down(n - 1)

def test_long():
    down(400)

def test_pass():
    pass
'''


def test_a_failure_keeps_pytests_long_representation(pytester: pytest.Pytester) -> None:
    """What `--track-history` hands the recorder: the traceback pytest prints for the failure
    (the frames and the `E` lines), its tail when over TRACEBACK_MAX."""
    git(pytester.path, "init", "-q", "-b", "main")
    pytester.makepyfile(test_tb=TRACEBACKS)
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "tests")
    seen: dict[str, str | None] = {}

    class Capture:
        def pytest_unconfigure(self, config: pytest.Config) -> None:
            recorder = config.pluginmanager.get_plugin("bisector-recorder")
            seen.update({n: t.traceback for n, t in recorder.tests.items()})

    pytester.inline_run("--track-history", "-p", "no:randomly", plugins=[Capture()])
    short = seen["test_tb.py::test_short"]
    assert short is not None
    assert "def test_short():\n>       helper(1)" in short
    assert "E       AssertionError: one is not two" in short
    assert short.rstrip().endswith("test_tb.py:2: AssertionError")
    long = seen["test_tb.py::test_long"]
    assert long is not None and len(long) == TRACEBACK_MAX and long.startswith("…")
    assert long.rstrip().endswith("test_tb.py:8: AssertionError")  # the tail: the last frame
    assert seen["test_tb.py::test_pass"] is None


def test_the_recorder_puts_each_rows_traceback_on_its_result() -> None:
    """The row the plugin sends ends with the traceback; the recorder puts it, capped, on the
    TestResult it hands the store. A row without it (an older caller) records none.

    (Without a store: after this file's in-process pytester sessions, SQLAlchemy failed in
    this process with a TypeError from its cache keys; the store's side is the store's test.)"""
    from bisector.recorder import _result

    failed = ["test_a.py::test_a", "failed", 0.1, "sig", "boom", 0, "call", "x" * 9000 + "E end"]
    result = _result(failed)
    assert (result.nodeid, result.outcome, result.message) == ("test_a.py::test_a", "failed",
                                                               "boom")
    assert result.traceback is not None and len(result.traceback) == TRACEBACK_MAX
    assert result.traceback.endswith("E end")
    assert _result(["t.py::b", "passed", 0.1, None, None, 0, "call", None]).traceback is None
    assert _result(["t.py::b", "failed", 0.1, "s", "m", 0, "call"]).traceback is None
