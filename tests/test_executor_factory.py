"""The executor factory: one options object, checked once, and the one Executor it builds."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest

from bisector.config import Settings
from bisector.errors import BisectError, BisectorError, ConfigError
from bisector.executors import Executor, Probe
from bisector.executors.factory import (
    WHOLE_FILES_REFUSED,
    ExecutorOptions,
    Layout,
    build_executor,
    layout,
)
from bisector.executors.local import LocalExecutor
from bisector.executors.pool import Pool
from bisector.gitrepo import Repository

from .conftest import commit, git, run_cli

PASSING = "def test_ok():\n    assert True\n"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/bisector-docker.sock"}


@pytest.mark.parametrize(("given", "kind"), [
    ({}, "local"),
    ({"suite": "python-pytest"}, "docker"),
    ({"scheduler": "tcp://s:8786"}, "dask"),
    ({"scheduler": "tcp://s:8786", "suite": "python-pytest"}, "dask"),
    ({"kind": "docker", "suite": "python-pytest"}, "docker"),
])
def test_the_executor_the_options_imply(given: dict[str, Any], kind: str) -> None:
    assert ExecutorOptions(**given).kind == kind


@pytest.mark.parametrize(("given", "message", "hint"), [
    ({"kind": "ssh"}, "unknown executor 'ssh'", "use local, docker or dask"),
    ({"kind": "local", "suite": "python-pytest"},
     "--suite runs probes in containers, not with --executor local",
     "drop --executor local or --suite"),
    ({"scheduler": "tcp://s:1", "kind": "local"},
     "--scheduler and --repo-url are for the Dask executor", "add --executor dask"),
    ({"repo_url": "file:///r", "suite": "python-pytest"},
     "--scheduler and --repo-url are for the Dask executor", "add --executor dask"),
    ({"setup": "pip install .", "suite": "python-pytest"},
     "--setup is for the local executor", "put setup commands in the suite's setup key"),
    ({"setup": "pip install .", "suite": "s", "scheduler": "tcp://s:1"},
     "--setup is for the local executor", "put setup commands in the suite's setup key"),
    ({"jobs": 0}, "--jobs must be at least 1, not 0", None),
    ({"timeout": 0.0}, "--timeout must be more than 0 seconds, not 0", "leave it out"),
    ({"pytest_args": ("--junitxml=x.xml",)}, "--pytest-arg '--junitxml=x.xml' would change",
     None),
    ({"scheduler": "tcp://s:1", "repo_url": "-uhoh"}, "is not a repository URL", None),
])
def test_each_bad_mix_is_one_config_error(given: dict[str, Any], message: str,
                                          hint: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        ExecutorOptions(**given)
    line = caught.value.one_line()
    assert message in line and "\n" not in line
    assert hint is None or hint in line


def test_whole_test_files_are_refused_in_containers_only() -> None:
    files = (Path("test_new.py"),)
    local = ExecutorOptions(test_files=files).for_tests([])
    assert local.whole_files and local.kind == "local"
    assert not ExecutorOptions(suite="s", test_files=files).for_tests(["t.py::t"]).whole_files
    with pytest.raises(BisectError, match=WHOLE_FILES_REFUSED):
        ExecutorOptions(suite="s", test_files=files).for_tests([])
    with pytest.raises(FrozenInstanceError):
        local.jobs = 2  # type: ignore[misc]


@pytest.mark.parametrize("args", [
    ["--executor", "local", "--suite", "python-pytest"],
    ["--scheduler", "tcp://127.0.0.1:1", "--executor", "local"],
    ["--setup", "true", "--suite", "python-pytest"],
])
def test_the_cli_says_a_bad_mix_in_one_line_before_any_store(repo: Path,
                                                             args: list[str]) -> None:
    good = commit(repo, {"test_t.py": PASSING})
    commit(repo, {"notes.txt": "1\n"})
    proc = run_cli("find-break", "test_t.py::test_ok", "--good", good, *args, cwd=repo,
                   env=NO_ENGINE)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("bisector: error: --"), line
    assert not (repo / ".bisector").exists(), "a store was made for a command refused"


def test_whole_files_with_a_suite_refused_without_an_engine(repo: Path) -> None:
    good = commit(repo, {"test_t.py": PASSING})
    commit(repo, {"notes.txt": "1\n"})
    proc = run_cli("find-break", "--test-file", "test_t.py", "--good", good,
                   "--suite", "python-pytest", cwd=repo, env=NO_ENGINE)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert WHOLE_FILES_REFUSED in line and "node ids" in line


def test_a_docker_executor_needs_a_suite_and_says_which_exist(repo: Path) -> None:
    commit(repo, {"test_t.py": PASSING})
    with Repository(repo) as r, pytest.raises(ConfigError) as caught:
        build_executor(r, ExecutorOptions(kind="docker"), Layout(), Settings())
    assert "give --suite NAME (available: " in caught.value.one_line()
    assert "python-pytest" in caught.value.one_line()


def test_pytest_args_are_refused_for_a_suite_that_is_not_pytest(repo: Path) -> None:
    """Also [tool.bisector] pytest-args: the suite would never see them."""
    commit(repo, {"pyproject.toml": (
        "[tool.bisector.suites.gotests]\nimage = 'golang:1'\ncommand = 'go test {tests}'\n"
        "junit = '/results/junit.xml'\ndialect = 'generic'\n")})
    with Repository(repo) as r, pytest.raises(ConfigError) as caught:
        build_executor(r, ExecutorOptions(suite="gotests"), Layout(),
                       Settings(pytest_args=("-x",)))
    assert "--pytest-arg is for pytest suites; suite gotests is generic" in (
        caught.value.one_line())


def _uses(executor: Executor) -> Executor:
    """What the finder, the nightly and the plugin may call: the protocol, nothing more."""
    return executor


def test_one_job_is_one_local_executor_and_k_jobs_a_pool(repo: Path) -> None:
    sha = commit(repo, {"test_t.py": PASSING})
    with Repository(repo) as r:
        with build_executor(r, ExecutorOptions(), Layout(), Settings()) as one:
            assert isinstance(one, LocalExecutor) and one.setup is None
            [outcome] = _uses(one).run_round([Probe(sha, ("test_t.py::test_ok",))])
            assert outcome.results["test_t.py::test_ok"].outcome.value == "passed"
        with build_executor(r, ExecutorOptions(jobs=2), Layout(), Settings()) as two:
            assert isinstance(two, Pool) and len(two.executors) == two.slots == 2


def test_a_setup_keeps_two_checkouts_per_job(repo: Path) -> None:
    """With --setup each slot has two checkouts, so the last rounds' setups stay (ADR 25)."""
    sha = commit(repo, {"test_t.py": PASSING})
    settings = Settings(setup="true")  # [tool.bisector] fills in what the options leave out
    with Repository(repo) as r:
        with build_executor(r, ExecutorOptions(), Layout(), settings) as one:
            assert isinstance(one, Pool) and (len(one.executors), one.slots) == (2, 1)
            assert all(e.setup == "true" for e in one.executors)  # type: ignore[attr-defined]
            [outcome] = _uses(one).run_round([Probe(sha, ("test_t.py::test_ok",))])
            assert outcome.results["test_t.py::test_ok"].outcome.value == "passed"
            key = one.env_key()
        with build_executor(r, ExecutorOptions(jobs=2), Layout(), settings) as two:
            assert isinstance(two, Pool) and (len(two.executors), two.slots) == (4, 2)
            assert two.env_key() == key
            outcomes = _uses(two).run_round([Probe(sha, ("test_t.py::test_ok",))] * 2)
            assert [o.results["test_t.py::test_ok"].outcome.value for o in outcomes] == [
                "passed", "passed"]
            trees = [e.tree for e in two.executors]  # type: ignore[attr-defined]
    assert not any(t.exists() for t in trees), "leaving the pool left a worktree"
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_pool_that_cannot_be_made_closes_what_it_made(repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    commit(repo, {"test_t.py": PASSING})
    made: list[LocalExecutor] = []
    real_init = LocalExecutor.__init__

    def second_fails(self: LocalExecutor, *args: Any, **kwargs: Any) -> None:
        if made:
            raise BisectorError("no second worktree")
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(LocalExecutor, "__init__", second_fails)
    closed: list[LocalExecutor] = []
    monkeypatch.setattr(LocalExecutor, "close", lambda self: closed.append(self))
    with Repository(repo) as r, pytest.raises(BisectorError, match="no second worktree"):
        build_executor(r, ExecutorOptions(jobs=3), Layout(), Settings())
    assert closed == made and len(made) == 1


def test_layout_reads_test_files_and_names_them_from_the_subdirectory(repo: Path) -> None:
    commit(repo, {"pkg/test_a.py": PASSING})
    (repo / "pkg" / "test_new.py").write_text(PASSING)
    with Repository(repo) as r:
        place = layout(r, repo / "pkg", (repo / "pkg" / "test_new.py",))
        assert place.subdir == "pkg"
        assert dict(place.extra_files) == {"pkg/test_new.py": PASSING.encode()}
        assert place.test_paths() == ["test_new.py"]
        assert layout(r, repo, ()).subdir == ""
        outside = repo.parent / "elsewhere.py"
        outside.write_text(PASSING)
        with pytest.raises(BisectError, match="outside the repository"):
            layout(r, repo, (outside,))
