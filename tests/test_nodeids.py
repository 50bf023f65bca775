"""Test ids are data, never options: the check where they enter, and the command lines built
so that an id a check missed is still no option (issue 13, item 1).

The attacks use an absolute `--debug=PATH`: pytest writes its debug log there, and a probe's
worktree (where a relative one would land) is removed after the run.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector.container_session import container_args
from bisector.errors import ConfigError, ExecutorError
from bisector.executors import Probe
from bisector.executors.dask import WorkerSpec, run_probe
from bisector.executors.local import LocalExecutor
from bisector.gitrepo import Repository
from bisector.model import Outcome
from bisector.nodeids import as_argument, check_nodeid, refusal, usable

from .conftest import commit, git, planted, query, run_cli, run_pytest

TEST_M = "from m import value\n\n\ndef test_m():\n    assert value() == 1\n"
# text made of what matters to the check (the option characters, the line breaks) and more
ids = st.text(alphabet=st.sampled_from("-@\0\n\r:/[]. aé_x"), max_size=12) | st.text()


def _fit(text: str) -> bool:
    return bool(text) and text[0] not in "-@" and not any(c in text for c in "\0\n\r")


# -- the check ------------------------------------------------------------------------------


@given(ids)
def test_the_check_refuses_exactly_what_could_be_read_as_more_than_an_id(text: str) -> None:
    assert (refusal(text) is None) == _fit(text)
    if _fit(text):
        assert check_nodeid(text, "here") == text
    else:
        with pytest.raises(ConfigError) as info:
            check_nodeid(text, "here")
        line = info.value.one_line()
        assert "\n" not in line and "\r" not in line and "\0" not in line
        assert line.startswith("test id ")


@given(st.lists(ids, max_size=8))
def test_usable_keeps_the_fit_ids_in_order_and_notes_each_other(texts: list[str]) -> None:
    kept, notes = usable(texts, "a store")
    assert kept == [t for t in texts if _fit(t)]
    assert len(notes) == len(texts) - len(kept)
    assert all("from a store skipped" in n and "\n" not in n for n in notes)


@given(ids.filter(bool))
def test_as_argument_is_never_an_option_and_leaves_fit_ids_alone(text: str) -> None:
    arg = as_argument(text)
    assert arg[0] not in "-@"
    assert arg == text if text[0] not in "-@" else arg == "./" + text


def test_container_args_check_the_ids_after_the_separator() -> None:
    root = Path("/repo")
    assert container_args(["-k", "x", "--", "/repo/t.py::a", "u.py"], root) == [
        "-k", "x", "--", "/src/t.py::a", "u.py"]
    with pytest.raises(ConfigError, match="starts with '-'"):
        container_args(["--container", "s", "--", "t.py::a", "--debug=out.log"], root)


# -- attack (a): on the command line ---------------------------------------------------------


def test_an_option_as_a_test_id_is_refused_and_runs_nothing(repo: Path, tmp_path: Path) -> None:
    planted(repo, TEST_M, 4, 2)
    for option in (f"--debug={tmp_path / 'out.log'}", "--debug=out.log", "@args.txt"):
        proc = run_cli("find-break", "--good", "HEAD~3", "--", option, cwd=repo)
        assert not list(tmp_path.rglob("out.log"))
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith("bisector: error: test id ") and "Traceback" not in line
    assert not (repo / ".bisector" / "history.db").exists()  # refused before anything opens
    for command in ("history", "flaky"):
        proc = run_cli(command, "--", "-x", cwd=repo)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


# -- attack (b): from the store --------------------------------------------------------------


def _plant(db: Path, nodeid: str, good: str, bad: str) -> None:
    """A test that passed at `good` and failed at `bad`, as any writer of the store could
    record it, in the runs pytest --track-history recorded there."""
    with sqlite3.connect(db) as conn:
        test_id = conn.execute("insert into tests (nodeid, file) values (?, ?)",
                               (nodeid, "x.py")).lastrowid
        for sha, outcome in ((good, "passed"), (bad, "failed")):
            for (run_id,) in conn.execute("select id from runs where sha = ?", (sha,)).fetchall():
                conn.execute("insert into results (run_id, test_id, outcome, duration, reruns, "
                             "phase) values (?, ?, ?, 0.1, 0, 'call')",
                             (run_id, test_id, outcome))


@pytest.fixture
def poisoned(repo: Path, tmp_path: Path) -> tuple[Path, list[str], Path]:
    """test_m.py::test_m breaks at commit 3 of 5, tracked at the first and the last, and the
    store says `--debug=<tmp>/out.log` broke likewise."""
    shas = planted(repo, TEST_M, 5, 3)
    (repo / ".git" / "info" / "exclude").write_text("__pycache__/\n")  # a clean checkout
    git(repo, "checkout", "-q", shas[0])
    assert run_pytest(repo, "--track-history", "-q").returncode == 0
    git(repo, "checkout", "-q", "main")
    assert run_pytest(repo, "--track-history", "-q").returncode == 1
    out_log = tmp_path / "out.log"
    _plant(repo / ".bisector" / "history.db", f"--debug={out_log}", shas[0], shas[-1])
    return repo, shas, out_log


@pytest.mark.slow
def test_find_break_skips_an_option_read_from_the_store(poisoned) -> None:
    repo, shas, out_log = poisoned
    proc = run_cli("find-break", "--json", cwd=repo)
    assert not out_log.exists() and not list(repo.rglob("out.log"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[3]
    assert [t["test"] for t in group["tests"]] == ["test_m.py::test_m"]
    assert any("--debug=" in n and "skipped" in n for n in data["notes"])
    proc = run_cli("regressions", cwd=repo)
    assert proc.returncode == 0 and "skipped" in proc.stderr


@pytest.mark.slow
def test_auto_bisect_skips_an_option_read_from_the_store(poisoned) -> None:
    repo, shas, out_log = poisoned
    proc = run_pytest(repo, "--track-history", "--auto-bisect", "-q")
    assert not out_log.exists()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"culprit {shas[3][:10]}" in proc.stdout, proc.stdout
    assert "auto-bisect failed" not in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_nightly_skips_an_option_read_from_the_store(poisoned, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    repo, shas, out_log = poisoned
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the nightly's is a user's run
    reports = tmp_path / "reports"
    proc = run_cli("nightly", "--report-dir", str(reports), cwd=repo)
    assert not out_log.exists()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads((reports / "nightly.json").read_text())
    [group] = data["regressions"]
    assert group["culprit"]["sha"] == shas[3]
    assert any("--debug=" in n and "skipped" in n for n in data["notes"])


def test_only_options_in_the_store_is_nothing_to_bisect(repo: Path, tmp_path: Path) -> None:
    shas = planted(repo, "def test_ok():\n    pass\n", 3, 99)
    git(repo, "checkout", "-q", shas[0])
    assert run_pytest(repo, "--track-history", "-q").returncode == 0
    git(repo, "checkout", "-q", "main")
    assert run_pytest(repo, "--track-history", "-q").returncode == 0
    _plant(repo / ".bisector" / "history.db", f"--debug={tmp_path / 'out.log'}", shas[0],
           shas[-1])
    proc = run_cli("find-break", cwd=repo)
    assert not (tmp_path / "out.log").exists()
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("bisector: error: nothing to bisect") and "skipped" in line


# -- from a JUnit file -----------------------------------------------------------------------


def test_import_skips_a_case_whose_id_would_be_an_option(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"t.py": "def test_a():\n    pass\n"})
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuite name="s">'
        '<testcase classname="t" name="test_a" file="t.py"/>'
        '<testcase classname="" name="--debug=out.log"><failure message="x"/></testcase>'
        '</testsuite>')
    proc = run_cli("import", "--commit", "HEAD", str(junit), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 results" in proc.stdout
    [note] = proc.stderr.splitlines()
    assert note.startswith("bisector: note: test id '--debug=out.log'") and "skipped" in note
    assert query(repo / ".bisector" / "history.db", "select nodeid from tests") == [
        ("t.py::test_a",)]


# -- the command lines -----------------------------------------------------------------------


def test_the_local_probe_puts_options_first_and_ids_as_arguments(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(repo, {"t.py": "def test_a():\n    pass\n"})
    seen: list[list[str]] = []

    def execute(self: Any, cmd: list[str], *, shell: bool = False) -> tuple[int, str, None]:
        seen.append(cmd)
        return 0, "", None

    monkeypatch.setattr(LocalExecutor, "_execute", execute)
    with Repository(repo) as r, LocalExecutor(r, pytest_args=("-x",)) as executor:
        executor._pytest(sys.executable, ["t.py::test_a", "--debug=out.log", "@args"])
        executor._pytest(sys.executable, ["-t.py"], whole_files=True)
    run, files = seen
    assert run[:3] == [sys.executable, "-m", "pytest"]
    assert run[-3:] == ["t.py::test_a", "./--debug=out.log", "./@args"]
    assert "-x" in run[:-3] and not any(a.startswith(("-", "@")) for a in run[-3:])
    assert files[-1] == "./-t.py"


def test_a_local_probe_never_runs_an_id_as_an_option(repo: Path, tmp_path: Path) -> None:
    sha = commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    out_log = tmp_path / "out.log"
    bad = f"--debug={out_log}"
    with Repository(repo) as r, LocalExecutor(r) as executor:
        outcome = executor.run(Probe(sha, ("test_a.py::test_a", bad)))
        assert not out_log.exists()
        assert outcome.results["test_a.py::test_a"].outcome is Outcome.PASSED
        assert outcome.results[bad].outcome is Outcome.UNTESTABLE
        assert "starts with '-'" in (outcome.results[bad].message or "")
        # the command line alone, as if every check upstream had missed it
        executor._pytest(sys.executable, [bad, "test_a.py::test_a"])
        assert not out_log.exists()
        with pytest.raises(ExecutorError, match="no test id of the probe"):
            executor.run(Probe(sha, (bad,)))
    assert not out_log.exists()


class _FakeEngine:
    """Just enough of a docker client for a DockerExecutor to start: nothing to sweep."""

    def __init__(self) -> None:
        nothing = SimpleNamespace(list=lambda **_: [])
        self.containers = self.networks = self.volumes = nothing
        self.images = SimpleNamespace(get=lambda name: SimpleNamespace(id="sha256:0"))


def test_a_docker_probe_selects_only_ids_as_arguments(repo: Path) -> None:
    from bisector.executors.docker import ContainerRun, DockerExecutor
    from bisector.suites import load_suite

    sha = commit(repo, {"t.py": "def test_a():\n    pass\n"})
    selections: list[list[str]] = []

    def run(tree: Path, selection: list[str], **_: Any) -> ContainerRun:
        selections.append(selection)
        return ContainerRun(0, "", None, None, "img", "sha256:0")

    with Repository(repo) as r, DockerExecutor(r, load_suite("python-pytest", r.root),
                                               client=_FakeEngine()) as executor:
        executor.runner.run = run  # type: ignore[method-assign]
        outcome = executor.run(Probe(sha, ("t.py::test_a", "--debug=out.log")))
        script = executor.runner._script(["./--debug=out.log"], "")
    assert selections == [["t.py::test_a"]]
    assert outcome.results["--debug=out.log"].outcome is Outcome.UNTESTABLE
    assert " --debug=out.log" not in script and "./--debug=out.log" in script


def test_a_dask_worker_refuses_a_probe_of_options_before_cloning(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("BISECTOR_CACHE_DIR", str(tmp_path / "cache"))
    spec = WorkerSpec(session="s", repo_url=f"file://{tmp_path / 'nowhere.git'}")
    with pytest.raises(ExecutorError, match="no test id of the probe"):
        run_probe(spec, Probe("a" * 40, ("--debug=out.log", "@args")))
    assert not (tmp_path / "cache").exists()
