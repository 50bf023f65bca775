"""Aborting a round (--jobs K) and sweeping worktrees: without a cluster or a Docker engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bisector.executors import Probe, ProbeAborted
from bisector.executors import worktree as worktree_mod
from bisector.executors.local import LocalExecutor
from bisector.executors.pool import Pool
from bisector.gitrepo import Repository

from .conftest import commit, git

TEST_ID = "test_s.py::test_slow"


def _slow_test(marks: Path) -> str:
    return (
        "import time\n\n"
        "def test_slow():\n"
        f"    open({str(marks)!r}, 'a').write('started\\n')\n"
        "    time.sleep(20)\n"
    )


def test_ctrl_c_during_a_checkout_starts_no_probe_and_does_not_wait(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while a thread of the round is still checking out: that thread runs no pytest."""
    marks = tmp_path / "marks"
    sha = commit(repo, {"test_s.py": _slow_test(marks)})
    in_checkout = threading.Event()
    with Repository(repo) as r, LocalExecutor(r) as first, LocalExecutor(r) as second:
        def checkout_slowly(sha: str) -> None:
            in_checkout.set()
            time.sleep(1.5)  # a big checkout, or a venv being made
            second.worktree.checkout(sha)  # the checkout itself, without the abort checks

        def interrupted(probe: Probe) -> None:
            assert in_checkout.wait(30)
            raise KeyboardInterrupt  # what the main thread gets on Ctrl-C

        monkeypatch.setattr(first, "run", interrupted)
        monkeypatch.setattr(second, "_checkout", checkout_slowly)
        pool = Pool([first, second])
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            pool.run_round([Probe(sha, (TEST_ID,)), Probe(sha, (TEST_ID,))])
        took = time.monotonic() - started
        time.sleep(0.5)
        assert not marks.exists(), "a probe was started after the abort"
        assert took < 10, f"the round waited {took:.1f}s for a probe nobody wanted"
        with pytest.raises(ProbeAborted):  # an aborted executor starts nothing more
            second.run(Probe(sha, (TEST_ID,)))
    assert not marks.exists()


def test_abort_between_the_check_and_the_process_kills_it(repo: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """abort() lands while the process is being started: the process does not survive it."""
    marks = tmp_path / "marks"
    sha = commit(repo, {"test_s.py": _slow_test(marks)})
    import subprocess

    real_popen = subprocess.Popen

    with Repository(repo) as r, LocalExecutor(r) as executor:
        def popen_during_abort(*args: object, **kwargs: object) -> subprocess.Popen[str]:
            executor.abort()  # as if Ctrl-C came just after the check, before Popen returned
            return real_popen(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

        monkeypatch.setattr(subprocess, "Popen", popen_during_abort)
        started = time.monotonic()
        with pytest.raises(ProbeAborted):
            executor.run(Probe(sha, (TEST_ID,)))
        assert time.monotonic() - started < 10
    time.sleep(0.5)
    assert not marks.exists()


def test_sweep_leaves_other_hosts_worktrees(repo: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """A process id means nothing on another host: only this host's dead worktrees go."""
    sha = commit(repo, {"a.txt": "1\n"})
    monkeypatch.setattr(worktree_mod.socket, "gethostname", lambda: "host-a.example")
    with Repository(repo) as r:
        on_a = LocalExecutor(r)
        on_a._checkout(sha)
        assert on_a.tree.is_dir()
        # on host b, the process of host a is not alive (another pid namespace, another host)
        monkeypatch.setattr(worktree_mod.socket, "gethostname", lambda: "host-b")
        monkeypatch.setattr(worktree_mod, "pid_alive", lambda pid: False)
        assert worktree_mod.sweep(r) == []
        on_b = LocalExecutor(r)
        assert on_a.tree.is_dir(), "host b swept host a's live worktree"
        assert on_a.tree.name.startswith("host-a.example-")
        on_b.close()
        # back on host a, with its process gone (kill -9): swept there
        monkeypatch.setattr(worktree_mod.socket, "gethostname", lambda: "host-a.example")
        assert worktree_mod.sweep(r) == [on_a.tree]
        assert not on_a.tree.exists()
        assert git(repo, "worktree", "list").count("\n") == 0


def test_sweep_runs_under_the_git_lock(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two executors starting at once must not both remove the same dead worktree."""
    sha = commit(repo, {"a.txt": "1\n"})
    with Repository(repo) as r:
        left = LocalExecutor(r)
        left._checkout(sha)
        monkeypatch.setattr(worktree_mod, "pid_alive", lambda pid: False)
        held = []
        real = r.remove_worktree

        def remove(path: Path) -> None:
            held.append(worktree_mod._GIT.locked())
            real(path)

        monkeypatch.setattr(r, "remove_worktree", remove)
        assert worktree_mod.sweep(r) == [left.tree]
        assert held == [True]
