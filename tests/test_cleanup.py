"""Nothing left running, nothing left lying around: a probe's whole process tree ends with it
(after a timeout, an abort, or a `kill -9` of bisector followed by `bisector gc`), and its
temporary files live beside its worktree, where the sweep takes them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bisector.executors import Probe, ProbeAborted, procs
from bisector.executors import worktree as worktree_mod
from bisector.executors.local import LocalExecutor
from bisector.gitrepo import Repository

from .conftest import commit, git, run_cli

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

TEST_ID = "test_d.py::test_daemon"


def _child(pids: Path) -> str:
    """A grandchild's code: write its pid, then wait."""
    write = f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')"
    return f"import os, time; {write}; time.sleep(120)"


def _daemon_test(pids: Path) -> str:
    """A test that starts a grandchild in a session of its own (setsid), then waits: both
    write their pid to `pids`."""
    return (
        "import os, subprocess, sys, time\n\n"
        "def test_daemon():\n"
        f"    subprocess.Popen([sys.executable, '-c', {_child(pids)!r}],\n"
        "                     start_new_session=True, stdin=subprocess.DEVNULL,\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"    open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "    time.sleep(120)\n"
    )


def _wait_for_pids(pids: Path, n: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pids.exists():
            found = [int(x) for x in pids.read_text().split()]
            if len(found) >= n:
                return found
        time.sleep(0.1)
    raise AssertionError(f"the probe did not start its processes ({pids})")


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap an orphan)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def _gone(pids: list[int], timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _running(p)]


@pytest.fixture
def reap():
    """Kill whatever a failed test left running, so that one failure does not leak sleepers."""
    started: list[int] = []
    yield started
    for pid in started:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_setsid_grandchild_does_not_survive_a_timeout(repo: Path, tmp_path: Path,
                                                        reap: list[int]) -> None:
    pids = tmp_path / "pids"
    sha = commit(repo, {"test_d.py": _daemon_test(pids)})
    with Repository(repo) as r, LocalExecutor(r, timeout=4) as executor:
        started = time.monotonic()
        outcome = executor.run(Probe(sha, (TEST_ID,)))
        took = time.monotonic() - started
        found = _wait_for_pids(pids, 2, timeout=1)
        reap.extend(found)
        assert outcome.problem is not None and "timed out" in outcome.problem
        assert _gone(found) == [], "a process of the probe outlived its timeout"
        assert took < 30, f"waited {took:.0f}s after the timeout"


def test_a_setsid_grandchild_does_not_survive_an_abort(repo: Path, tmp_path: Path,
                                                       reap: list[int]) -> None:
    pids = tmp_path / "pids"
    sha = commit(repo, {"test_d.py": _daemon_test(pids)})
    with Repository(repo) as r, LocalExecutor(r) as executor:
        def abort_when_running() -> None:
            reap.extend(_wait_for_pids(pids, 2))
            executor.abort()  # Ctrl-C, as the pool passes it on to a round's executors

        aborter = threading.Thread(target=abort_when_running)
        aborter.start()
        with pytest.raises(ProbeAborted):
            executor.run(Probe(sha, (TEST_ID,)))
        aborter.join()
    assert len(reap) == 2
    assert _gone(reap) == [], "a process of the probe outlived the abort"


def test_a_process_a_passing_test_leaves_behind_is_ended_with_the_probe(
        repo: Path, tmp_path: Path, reap: list[int]) -> None:
    """A daemon a passing test leaves behind (holding the probe's output open, here) is ended
    with the probe, and does not keep the probe waiting."""
    pids = tmp_path / "pids"
    test = (
        "import os, subprocess, sys\n\n"
        "def test_daemon():\n"
        f"    subprocess.Popen([sys.executable, '-c', {_child(pids)!r}],\n"
        "                     start_new_session=True)  # inherits the probe's stdout\n"
        f"    while not os.path.exists({str(pids)!r}):\n"
        "        pass\n"
    )
    sha = commit(repo, {"test_d.py": test})
    with Repository(repo) as r, LocalExecutor(r, timeout=60) as executor:
        started = time.monotonic()
        outcome = executor.run(Probe(sha, (TEST_ID,)))
        took = time.monotonic() - started
        reap.extend(_wait_for_pids(pids, 1, timeout=1))
        assert outcome.results[TEST_ID].outcome == "passed", outcome.log
        assert took < 30, f"the probe waited {took:.0f}s for its daemon"
        assert _gone(reap) == []


def test_gc_after_kill_9_ends_the_probes_processes_then_removes_its_worktree(
        repo: Path, tmp_path: Path, reap: list[int]) -> None:
    pids = tmp_path / "pids"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    shas = [commit(repo, {"test_d.py": _daemon_test(pids)}, "start")]
    for i in range(4):
        shas.append(commit(repo, {"n.txt": str(i)}, f"c{i}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", TEST_ID, "--good", shas[0]],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(system_tmp)},
    )
    try:
        found = _wait_for_pids(pids, 2)
    finally:
        proc.kill()  # kill -9, mid-probe
        proc.wait()
    reap.extend(found)
    # the probe's own temporary files are beside its worktree, not in the system's
    assert [p.name for p in system_tmp.glob("bisector-*")] == []
    time.sleep(0.5)
    assert [p for p in found if _running(p)] == found, "the probe died with bisector"
    base = repo / ".bisector" / "worktrees"
    assert any(p.suffix == ".probe" for p in base.iterdir()), "the process group is recorded"
    done = run_cli("gc", "--no-docker", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "removed 1 worktree(s)" in done.stdout
    assert _gone(found) == [], "gc left the probe's processes running"
    assert list(base.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_the_startup_sweep_ends_a_dead_bisectors_probe(repo: Path, tmp_path: Path,
                                                       reap: list[int],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """As gc does, the next executor's startup sweep ends what a killed one left running."""
    pids = tmp_path / "pids"
    sha = commit(repo, {"test_d.py": _daemon_test(pids)})
    with Repository(repo) as r:
        left = LocalExecutor(r)  # its owner is about to "die": never closed
        def run_left() -> None:
            with contextlib.suppress(Exception):  # its worktree goes from under it
                left.run(Probe(sha, (TEST_ID,)))

        runner = threading.Thread(target=run_left, daemon=True)
        runner.start()
        reap.extend(_wait_for_pids(pids, 2))
        owner = int(left.session.split("-")[0])
        monkeypatch.setattr(worktree_mod, "pid_alive", lambda pid: pid != owner)
        with LocalExecutor(r):
            assert _gone(reap) == [], "the sweep left the dead bisector's probe running"
            assert not left.tree.exists()
        runner.join(30)


def test_a_recorded_pid_that_is_another_process_now_is_not_killed(
        repo: Path, monkeypatch: pytest.MonkeyPatch, reap: list[int]) -> None:
    """The record says pid and start time: a reused pid (another start time) is left alone,
    the recorded process itself (same start time) is ended."""
    commit(repo, {"a.txt": "1\n"})
    base = repo / ".bisector" / "worktrees"
    base.mkdir(parents=True)
    monkeypatch.setattr(worktree_mod, "pid_alive", lambda pid: False)
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reap.append(other.pid)
    name = worktree_mod.worktree_name("999999-abcdef")
    record = base / (name + worktree_mod.RECORD)
    when = procs.start_time(other.pid)
    assert when is not None
    with Repository(repo) as r:
        record.write_text(f'{{"pid": {other.pid}, "started": "{int(when) + 1}"}}')
        worktree_mod.sweep(r)
        assert other.poll() is None, "a process with a reused pid was killed"
        assert not record.exists()
        record.write_text(f'{{"pid": {other.pid}, "started": "{when}"}}')
        worktree_mod.sweep(r)
        assert other.wait(5) == -signal.SIGKILL
