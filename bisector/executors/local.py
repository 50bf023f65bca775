"""The local executor: each probe in a `git worktree` of ours, tests run by this interpreter.

The worktree lives under `.bisector/worktrees/`, named after the owning process, and is removed
on success, error and Ctrl-C; one left by a killed process is swept at the next start. The
probe imports the commit's code, not an installed copy: the worktree (and its `src/`, for a src
layout) comes first on `PYTHONPATH`, ahead of any editable install of the user's checkout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import environment
from ..gitrepo import Repository
from ..junit import results_for
from ..model import Outcome, TestResult
from . import Probe, ProbeOutcome

WORKTREES = Path(".bisector") / "worktrees"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(repo: Repository) -> list[Path]:
    """Remove worktrees whose owning process is gone (a `kill -9` leaves them)."""
    base = repo.main_root / WORKTREES
    removed = []
    if base.is_dir():
        for path in sorted(base.iterdir()):
            pid = path.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                repo.remove_worktree(path)
                removed.append(path)
    return removed


class LocalExecutor:
    def __init__(
        self,
        repo: Repository,
        *,
        python: str = sys.executable,
        timeout: float | None = None,
        pytest_args: tuple[str, ...] = (),
    ) -> None:
        self.repo = repo
        self.python = python
        self.timeout = timeout
        self.pytest_args = pytest_args
        self.session = f"{os.getpid()}-{secrets.token_hex(3)}"
        sweep(repo)
        self.tree = repo.main_root / WORKTREES / self.session
        self._checked_out = False

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.tree.exists() or self._checked_out:
            self.repo.remove_worktree(self.tree)
            self._checked_out = False

    def _checkout(self, sha: str) -> None:
        if not self._checked_out:
            self.tree.parent.mkdir(parents=True, exist_ok=True)
            self.repo.add_worktree(self.tree, sha)
            self._checked_out = True
        else:
            self.repo.checkout_worktree(self.tree, sha)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(self.tree / "src")] if (self.tree / "src").is_dir() else []
        paths.append(str(self.tree))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTEST_ADDOPTS", None)
        return env

    def run(self, probe: Probe) -> ProbeOutcome:
        started = time.time()
        self._checkout(probe.sha)
        env_info = environment.current(self.tree)
        with tempfile.TemporaryDirectory(prefix="bisector-probe-") as tmp:
            junit = Path(tmp) / "junit.xml"
            cmd = [
                self.python, "-m", "pytest", *probe.nodeids, f"--junitxml={junit}",
                "-o", "junit_family=xunit1", "-o", "track_history=false",
                "-p", "no:cacheprovider", "-q", "--no-header", *self.pytest_args,
            ]
            status, log, problem = self._execute(cmd)
            results: dict[str, TestResult] = {}
            if problem is None and junit.exists():
                results = results_for(junit, list(probe.nodeids))
        if problem is None and status not in (0, 1) and not results:
            problem = f"pytest exited {status}: " + (_last_line(log) or "no output")
        for nodeid in probe.nodeids:
            found = results.get(nodeid)
            if found is None:
                reason = problem or f"{nodeid} not found at this commit"
                results[nodeid] = TestResult(nodeid, Outcome.UNTESTABLE, 0.0, None, reason,
                                             phase="collect")
        return ProbeOutcome(probe, results, env_info, started, time.time(), status, problem, log)

    def _execute(self, cmd: list[str]) -> tuple[int | None, str, str | None]:
        proc = subprocess.Popen(
            cmd, cwd=self.tree, env=self._env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            return None, out, f"timed out after {self.timeout:g}s"
        except BaseException:  # Ctrl-C: the probe's whole process group goes with us
            _kill_group(proc)
            with contextlib.suppress(Exception):
                proc.communicate(timeout=5)
            raise
        return proc.returncode, out, None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
