"""The local executor: each probe in a `git worktree` of ours, tests run by this interpreter.

The worktree (see `worktree.py`) is removed on success, error and Ctrl-C. The
probe imports the commit's code, not an installed copy: the worktree (and its `src/`, for a src
layout) comes first on `PYTHONPATH`, ahead of any editable install of the user's checkout.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import environment
from ..errors import ExecutorError
from ..gitrepo import Repository
from ..junit import results_for
from ..model import Outcome, TestResult
from ..nodeids import as_argument
from . import (
    Probe,
    ProbeAborted,
    ProbeOutcome,
    checked_ids,
    fill_untestable,
    last_line,
    runnable,
)
from .worktree import Worktree, new_session


class LocalExecutor:
    def __init__(
        self,
        repo: Repository,
        *,
        python: str = sys.executable,
        timeout: float | None = None,
        pytest_args: tuple[str, ...] = (),
        setup: str | None = None,
        extra_files: dict[str, bytes] | None = None,
        subdir: str = "",
    ) -> None:
        self.repo = repo
        # Where in the checkout pytest is started: node ids are relative to its rootdir.
        self.subdir = subdir
        # Files laid over every checkout (--test-file): a test that did not exist back then.
        self.extra_files = dict(extra_files or {})
        # A probe with a setup or laid-over files is another experiment than a plain run of
        # the commit: it gets its own environment key, so neither stands in for the other.
        self.fingerprint_extra = ""
        if setup or self.extra_files:
            digest = hashlib.sha256((setup or "").encode())
            for rel, content in sorted(self.extra_files.items()):
                digest.update(b"\0" + rel.encode() + b"\0" + content)
            self.fingerprint_extra = digest.hexdigest()[:16]
        self.python = python
        self.setup = setup
        self._venv: Path | None = None
        self.timeout = timeout
        self.pytest_args = pytest_args
        self.session = new_session()
        self.worktree = Worktree(repo, self.session, self.extra_files)
        self.tree = self.worktree.path
        self._running: subprocess.Popen[str] | None = None
        # set by abort() and never cleared: the bisection ends after an abort, and a thread
        # still checking out or setting up must not start a process after it
        self._aborted = threading.Event()

    @property
    def env_key(self) -> str:
        """The key of the runs this executor's probes are comparable with."""
        return environment.current(self.repo.root, extra=self.fingerprint_extra).key

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def abort(self) -> None:
        """Kill the probe running now, and start no other (from another thread: Ctrl-C).

        The mark is set before the running process is read; `_spawn` records its process
        before reading the mark: whichever comes second sees the other, so no process
        started around an abort outlives it.
        """
        self._aborted.set()
        proc = self._running
        if proc is not None:
            _kill_group(proc)

    def _check_aborted(self) -> None:
        if self._aborted.is_set():
            raise ProbeAborted("the probe was aborted")

    def _spawn(self, cmd: list[str] | str, **kwargs: Any) -> subprocess.Popen[str]:
        """A process of this probe, in a group of its own, that abort() can kill."""
        self._check_aborted()
        proc: subprocess.Popen[str] = subprocess.Popen(
            cmd, text=True, start_new_session=True, **kwargs)
        self._running = proc
        if self._aborted.is_set():  # abort() ran between the check and now
            _kill_group(proc)
            with contextlib.suppress(Exception):
                proc.communicate(timeout=5)
            self._running = None
            raise ProbeAborted("the probe was aborted")
        return proc

    def close(self) -> None:
        self.worktree.close()
        if self._venv is not None:
            shutil.rmtree(self._venv, ignore_errors=True)
            self._venv = None

    def _probe_python(self) -> str:
        """With --setup, probes get a virtual environment of their own to build into.

        The environment bisector runs in stays importable behind it (a .pth adds its site
        directories), so `pip install --no-deps .` is all a setup needs, and the user's own
        environment is never installed into.
        """
        if not self.setup:
            return self.python
        if self._venv is None:
            venv = self.tree.with_name(self.tree.name + ".venv")
            self._venv = venv
            proc = self._spawn([self.python, "-m", "venv", str(venv)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                _, err = proc.communicate()
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                self._running = None
            self._check_aborted()  # killed by abort(): not a broken venv module
            site_dirs = list(venv.glob("lib/python*/site-packages"))
            if proc.returncode != 0 or len(site_dirs) != 1:
                raise ExecutorError(
                    f"cannot create the probes' virtual environment ({last_line(err)})",
                    hint="install the venv module (Debian: apt-get install python3-venv)",
                )
            parents = [p for p in (*site.getsitepackages(), site.getusersitepackages())
                       if Path(p).is_dir()]
            [site_dir] = site_dirs
            (site_dir / "zz_bisector_parent_env.pth").write_text(
                "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
            )
        return str(self._venv / "bin" / "python")

    def _checkout(self, sha: str) -> None:
        self._check_aborted()
        self.worktree.checkout(sha)
        self._check_aborted()

    def collect(self, sha: str, paths: list[str]) -> list[str]:
        """Node ids pytest collects from these paths at a commit (with the extra files)."""
        self._checkout(sha)
        python = self._probe_python()
        if self.setup:
            status, log, problem = self._execute(self.setup, shell=True)
            if problem or status != 0:
                raise ExecutorError(f"--setup failed at {sha[:10]} before collecting: "
                                    f"{problem or last_line(log)}")
        cmd = [python, "-m", "pytest", "--collect-only", "-q", "-p",
               "no:cacheprovider", "-o", "track_history=false", *map(as_argument, paths)]
        _, log, _ = self._execute(cmd)
        return [line.strip() for line in log.splitlines() if "::" in line and " " not in line]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("BISECTOR_DB", None)  # the store (and its password) is not the probe's
        if self._venv is not None:  # the setup installed the commit's code: no path tricks
            env["VIRTUAL_ENV"] = str(self._venv)
            env["PATH"] = os.pathsep.join([str(self._venv / "bin"), env.get("PATH", "")])
            return env
        paths = []
        for base in dict.fromkeys([self.tree / self.subdir, self.tree]):
            if (base / "src").is_dir():
                paths.append(str(base / "src"))
            paths.append(str(base))
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(self, probe: Probe) -> ProbeOutcome:
        started = time.time()
        ids, refused = checked_ids(probe.nodeids)
        self._checkout(probe.sha)
        env_info = environment.current(self.tree, extra=self.fingerprint_extra)
        python = self._probe_python()
        if self.setup:
            status, log, problem = self._execute(self.setup, shell=True)
            if problem is None and status != 0:
                problem = f"setup failed (exit {status}): {last_line(log) or 'no output'}"
            if problem is not None:
                results = {
                    n: TestResult(n, Outcome.UNTESTABLE, 0.0, None, problem, phase="setup")
                    for n in probe.nodeids
                }
                return ProbeOutcome(probe, results, env_info, started, time.time(), status,
                                    problem, log)
        status, log, problem, results = self._pytest(python, ids)
        rest = runnable(tuple(ids), status, log) if problem is None and not results else None
        if rest:
            status, more, problem, results = self._pytest(python, rest)
            log += more
        if problem is None and status not in (0, 1) and not results:
            problem = f"pytest exited {status}: " + (last_line(log) or "no output")
        results.update(refused)
        fill_untestable(results, probe.nodeids, problem)
        return ProbeOutcome(probe, results, env_info, started, time.time(), status, problem, log)

    def _pytest(self, python: str, nodeids: list[str]
                ) -> tuple[int | None, str, str | None, dict[str, TestResult]]:
        with tempfile.TemporaryDirectory(prefix="bisector-probe-") as tmp:
            junit = Path(tmp) / "junit.xml"
            # options first, then the ids, each written so that none reads as an option
            cmd = [
                python, "-m", "pytest", f"--junitxml={junit}",
                "-o", "junit_family=xunit1", "-o", "track_history=false",
                "-p", "no:cacheprovider", "-q", "--no-header", *self.pytest_args,
                *map(as_argument, nodeids),
            ]
            status, log, problem = self._execute(cmd)
            results: dict[str, TestResult] = {}
            if problem is None and junit.exists():
                results = results_for(junit, nodeids)
        return status, log, problem, results

    def _execute(self, cmd: list[str] | str, *, shell: bool = False
                 ) -> tuple[int | None, str, str | None]:
        proc = self._spawn(cmd, cwd=self.tree / self.subdir, env=self._env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, shell=shell)
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
        finally:
            self._running = None
        self._check_aborted()  # killed by abort(): its exit status is not a result
        return proc.returncode, out, None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
