"""Without a Docker engine, `--executor docker` and `--container` fail in one line, exit 2.

These run everywhere: DOCKER_HOST points at a socket nobody listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector.container_session import container_args

from .conftest import commit, git, run_cli, run_pytest

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/bisector-docker.sock"}


def _two_commits(repo: Path) -> str:
    sha = commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n"})
    commit(repo, {"notes.txt": "1\n"})
    return sha


def test_find_break_docker_without_engine(repo: Path) -> None:
    good = _two_commits(repo)
    proc = run_cli("find-break", "tests/test_t.py::test_t", "--good", good,
                   "--executor", "docker", "--suite", "python-pytest", cwd=repo, env=NO_ENGINE)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("bisector: error: no Docker engine is reachable")
    assert "start one" in line and "DOCKER_HOST" in line
    assert not (repo / ".bisector" / "worktrees").exists() or not any(
        (repo / ".bisector" / "worktrees").iterdir())


def test_pytest_container_without_engine(repo: Path) -> None:
    _two_commits(repo)
    proc = run_pytest(repo, "--container", "python-pytest", env=NO_ENGINE)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("bisector:")]
    assert "no Docker engine is reachable" in line and "start one" in line


def test_docker_executor_needs_a_suite(repo: Path) -> None:
    good = _two_commits(repo)
    proc = run_cli("find-break", "tests/test_t.py::test_t", "--good", good,
                   "--executor", "docker", cwd=repo, env=NO_ENGINE)
    assert proc.returncode == 2
    assert "give --suite NAME (available: " in proc.stderr
    assert "python-pytest" in proc.stderr


def test_unknown_suite_lists_the_known_ones(repo: Path) -> None:
    good = _two_commits(repo)
    proc = run_cli("find-break", "tests/test_t.py::test_t", "--good", good, "--suite", "nope",
                   cwd=repo, env=NO_ENGINE)
    assert proc.returncode == 2
    assert "no suite named 'nope'" in proc.stderr
    assert "python-pytest" in proc.stderr  # the shipped suites, among the known ones


def test_gc_without_engine_still_sweeps_worktrees(repo: Path) -> None:
    from bisector.executors.worktree import WORKTREES, worktree_name

    _two_commits(repo)
    left = repo / WORKTREES / worktree_name("999999-dead00")  # above pid_max: a dead owner
    git(repo, "worktree", "add", "--detach", "-q", str(left), "HEAD")
    proc = run_cli("gc", cwd=repo, env=NO_ENGINE)
    assert proc.returncode == 0
    assert "removed 1 worktree(s)" in proc.stdout and not left.exists()
    assert "docker: skipped (no Docker engine is reachable" in proc.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["--container", "py", "-x", "tests"], ["-x", "tests"]),
    (["--container=py", "--track-history", "--history-db", "h.db", "-k", "a"], ["-k", "a"]),
    (["--history-db=h.db", "--auto-bisect", "tests/test_a.py::test_b"],
     ["tests/test_a.py::test_b"]),
    (["/repo/tests/test_a.py::test_b[1]", "/elsewhere/x"],
     ["/src/tests/test_a.py::test_b[1]", "/elsewhere/x"]),
    (["/repo"], ["/src"]),
])
def test_container_args(args: list[str], expected: list[str]) -> None:
    assert container_args(args, Path("/repo")) == expected


def test_a_reused_pid_does_not_keep_a_dead_bisectors_containers() -> None:
    """pid_max is often 32768: by the time leftovers are judged, a killed bisector's pid may
    be another process's. The owner's start time, in the labels, tells them apart."""
    import os
    import socket

    from bisector.executors.docker import LABEL_HOST, LABEL_PID, LABEL_STARTED, _orphaned
    from bisector.executors.worktree import started

    host = socket.gethostname()
    me = {LABEL_PID: str(os.getpid()), LABEL_HOST: host}
    assert not _orphaned({**me, LABEL_STARTED: started(os.getpid()) or ""}, host)
    assert _orphaned({**me, LABEL_STARTED: "1"}, host)  # same pid, another process: reused
    # another host's container whose pid, here, started at another time: not ours to judge
    assert not _orphaned({**me, LABEL_HOST: "elsewhere", LABEL_STARTED: "1"}, "elsewhere-not")


def test_a_patched_probe_has_its_own_image_key(repo: Path) -> None:
    """An isolation probe's image is built from the patched tree: keyed by the commit's
    context alone, it reused the unpatched image (a hunk in the requirements or Dockerfile
    was invisible) or left a patched image under the commit's key."""
    from types import SimpleNamespace

    from bisector.executors import Patch
    from bisector.executors.docker import DockerExecutor
    from bisector.gitrepo import Repository

    sha = commit(repo, {"Dockerfile": "FROM scratch\n", "req.txt": "a\n"})
    executor = object.__new__(DockerExecutor)
    with Repository(repo) as git_repo:
        executor.repo = git_repo
        executor.suite = SimpleNamespace(dockerfile="Dockerfile", context=".")
        executor.fingerprint_extra = ""
        plain = executor._context_id(sha)
        one = executor._context_id(sha, Patch("diff", "k1"))
        other = executor._context_id(sha, Patch("diff", "k2"))
        reverted = executor._context_id(sha, Patch("diff", "k1", reverse=True))
    assert plain is not None and len({plain, one, other, reverted}) == 4
