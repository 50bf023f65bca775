"""Ctrl-C in the middle of `find-break --isolate` (issue 17, "Ctrl-C mid-isolation: nothing
left, resumable"): a real repository, bisector in a subprocess, SIGINT while an isolation
probe's test is running; then the same command again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import git, query
from .test_cleanup import _gone, reap  # noqa: F401 (a fixture)
from .test_isolate_e2e import NODE, SCATTERED, history

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# f4() == 4 as before; once the file ISOLATE_SLOW names exists, the test writes its pid beside
# it and waits to be interrupted
TEST = """\
import os, time
from pkg1 import f4


def test_it():
    slow = os.environ.get("ISOLATE_SLOW")
    if slow and os.path.exists(slow):
        with open(slow + ".pids", "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(60)
    assert f4() == 4
"""


def _isolate_runs(db: Path) -> list[tuple[int, str]]:
    try:
        return query(db, "select id, patch_key from runs where trigger = 'isolate'")
    except sqlite3.OperationalError:  # the store is still being created
        return []


def _wait(what: str, ready: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ctrl_c_mid_isolation_leaves_nothing_and_the_rerun_reuses_its_probes(
        repo: Path, tmp_path: Path, reap: list[int]) -> None:  # noqa: F811
    good, culprit, _ = history(repo, TEST, SCATTERED)
    head = git(repo, "rev-parse", "HEAD")
    slow = tmp_path / "slow"
    pids = tmp_path / "slow.pids"
    env = {**os.environ, "ISOLATE_SLOW": str(slow), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    argv = [sys.executable, "-m", "bisector", "find-break", "--json", NODE, "--good", good,
            "--isolate"]
    proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    db = repo / ".bisector" / "history.db"
    try:
        _wait("the first isolation probe to be stored", lambda: len(_isolate_runs(db)) >= 1)
        slow.touch()  # the next probe's test waits
        _wait("an isolation probe's test to start", pids.exists)
        [sleeper] = [int(p) for p in pids.read_text().split()]
        reap.append(sleeper)
        at = git(Path(os.readlink(f"/proc/{sleeper}/cwd")), "rev-parse", "HEAD")
        stored = _isolate_runs(db)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "bisector: interrupted" and "Traceback" not in err
    assert out == ""
    parent = git(repo, "rev-parse", f"{culprit}^")
    assert at in (parent, culprit)  # a subset of the change was being probed, not the revert
    assert query(db, "select status from bisections") == [("interrupted",)]
    assert _gone([sleeper]) == []  # the probe's pytest did not outlive bisector
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not any((repo / ".bisector" / "worktrees").iterdir())
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""

    slow.unlink()
    again = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == culprit
    assert [(h["file"], h["new_start"]) for h in group["isolation"]["hunks"]] == \
        [("pkg1.py", 18)]
    assert group["revert"]["verified"] is True
    assert data["probes_reused"] >= len(stored) + 1  # the commit probes and the subsets
    keys = [key for _, key in _isolate_runs(db)]
    for _, key in stored:  # no subset answered before the interrupt ran again
        assert keys.count(key) == 1, key
