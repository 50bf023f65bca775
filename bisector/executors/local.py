"""The local executor: each probe in a `git worktree` of ours, tests run by this interpreter.

The worktree (see `worktree.py`) is removed on success, error and Ctrl-C; the processes a
probe starts are ended as a whole tree when it ends, times out or is aborted (`procs.py`),
and its temporary files live beside the worktree, where a sweep finds them. The
probe imports the commit's code, not an installed copy: the worktree (and its `src/`, for a src
layout) comes first on `PYTHONPATH`, ahead of any editable install of the user's checkout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import site
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from .. import environment
from ..errors import ExecutorError
from ..gitrepo import Repository
from ..junit import read_results, results_for
from ..model import Environment, TestResult
from ..nodeids import as_argument
from . import (
    Patch,
    Probe,
    ProbeAborted,
    ProbeOutcome,
    checked_ids,
    in_files,
    inifile,
    last_line,
    procs,
    pytest_reason,
    runnable,
)
from .base import BaseExecutor, apply_probe_patch, experiment_key, finish
from .worktree import RECORD, TMP, VENV, Worktree, new_session

# Seconds to wait for a probe's output once its processes are ended: only a process that
# escaped them (a cleared environment and a double fork) can hold the pipe open longer.
READ_GRACE_S = 5.0


class _Setup(NamedTuple):
    """A setup a checkout and its venv hold (ADR 25): the commit and patch it ran for, the
    checkout's `git status` right after it, and the environment its probe recorded."""

    sha: str
    patch: Patch | None
    state: str
    environment: Environment


class LocalExecutor(BaseExecutor):
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
        super().__init__()
        self.repo = repo
        # Where in the checkout pytest is started: node ids are relative to its rootdir.
        self.subdir = subdir
        # Files laid over every checkout (--test-file): a test that did not exist back then.
        self.extra_files = dict(extra_files or {})
        self.fingerprint_extra = experiment_key(setup, self.extra_files, pytest_args)
        self.python = python
        self.setup = setup
        self._venv: Path | None = None
        # the setup this checkout and venv hold (ADR 25)
        self._held: _Setup | None = None
        self.timeout = timeout
        self.pytest_args = pytest_args
        self.session = new_session()
        self.worktree = Worktree(repo, self.session, self.extra_files)
        self.tree = self.worktree.path
        # the mark every process of this executor's probes carries (BISECTOR_PROBE=...), and
        # the files beside the worktree: the running process group, the temporary files
        self.marker = self.tree.name
        self._record = self.tree.with_name(self.tree.name + RECORD)
        self._tmp = self.tree.with_name(self.tree.name + TMP)
        self._running: subprocess.Popen[str] | None = None
        # held while the running process is killed or reaped: a pid is only signalled while
        # it is still ours (unreaped), never after it may have been reused
        self._reap = threading.Lock()

    def env_key(self) -> str:
        """The key of the runs this executor's probes are comparable with."""
        return environment.current(self.repo.root, extra=self.fingerprint_extra).key

    def _stop_running(self) -> None:
        """Kill the running probe's process tree (abort(), from another thread: Ctrl-C).

        The mark is set before the running process is read; `_spawn` records its process
        before reading the mark: whichever comes second sees the other, so no process
        started around an abort outlives it.
        """
        proc = self._running
        if proc is not None:
            self._end(proc)

    def _spawn(self, cmd: list[str] | str, **kwargs: Any) -> subprocess.Popen[str]:
        """A process of this probe, in a group of its own, that abort() can kill; its group
        is recorded beside the worktree for a sweep after a `kill -9` of bisector."""
        self.check_aborted()
        proc: subprocess.Popen[str] = subprocess.Popen(
            cmd, text=True, start_new_session=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, **kwargs)
        self._running = proc
        with contextlib.suppress(OSError):
            procs.record(self._record, proc.pid)
        if self.aborted:  # abort() ran between the check and now
            self._end(proc)
            self._running = None
            raise ProbeAborted("the probe was aborted")
        return proc

    def _end(self, proc: subprocess.Popen[str]) -> None:
        """End a probe's process and all it started (its group, and on Linux every process
        with this executor's mark or descended from it), then reap it."""
        with self._reap:
            if proc.returncode is None:  # unreaped: its pid and group are still ours
                procs.end_tree(self.marker, proc.pid)
                proc.wait()
            else:
                procs.end_tree(self.marker)
            procs.forget(self._record)

    def _wait(self, proc: subprocess.Popen[str], timeout: float | None) -> tuple[str, bool]:
        """(output, timed out): wait for the process to exit or time out, then end what it
        left running (a daemon holding the output pipe open would otherwise hang us), then
        reap it. Ctrl-C ends it all the same."""
        chunks: list[str] = []
        assert proc.stdout is not None
        out = proc.stdout
        reader = threading.Thread(target=lambda: chunks.append(out.read()), daemon=True)
        reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        try:
            delay = 0.001
            while not _exited(proc):
                if deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        finally:
            self._end(proc)
            reader.join(READ_GRACE_S)
            if not reader.is_alive():
                out.close()
        return "".join(chunks), timed_out

    def close(self) -> None:
        procs.end_tree(self.marker)  # anything a probe left running, before its tree goes
        procs.forget(self._record)
        shutil.rmtree(self._tmp, ignore_errors=True)
        self.worktree.close()
        if self._venv is not None:
            shutil.rmtree(self._venv, ignore_errors=True)
            self._venv = None

    def _probe_python(self) -> str:
        """With --setup, probes get a virtual environment of their own to build into.

        The environment bisector runs in stays importable behind it (a .pth adds its site
        directories), so `pip install --no-deps .` is all a setup needs, and the user's own
        environment is never installed into. Where that environment has pip, the venv is made
        without one (ensurepip takes seconds, more than a probe on a loaded machine) and its
        `pip` runs that pip with the venv's interpreter, which installs into the venv.
        """
        if not self.setup:
            return self.python
        if self._venv is None:
            self._venv = self.tree.with_name(self.tree.name + VENV)
            self._make_venv(self._venv, borrow_pip=_has_pip())
        return str(self._venv / "bin" / "python")

    def _make_venv(self, venv: Path, *, borrow_pip: bool) -> None:
        cmd = [self.python, "-m", "venv", *(["--without-pip"] if borrow_pip else []), str(venv)]
        proc = self._spawn(cmd, env={**os.environ, procs.MARK: self.marker})
        try:
            err, _ = self._wait(proc, None)
        finally:
            self._running = None
        self.check_aborted()  # killed by abort(): not a broken venv module
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
        if borrow_pip:
            write_pip_shims(venv)

    def _checkout(self, sha: str) -> None:
        self.check_aborted()
        self.worktree.checkout(sha)
        self.check_aborted()

    def _env(self, *, setup: bool = False) -> dict[str, str]:
        """The probe's environment. Its tests write no bytecode into the checkout (a .pyc
        next to a module rewritten within the same second at the same size is imported
        stale, and a reused setup compares the checkout's `git status` before and after the
        tests, ADR 25); the setup keeps the user's setting: a build runs its backend in
        several processes, and without bytecode each compiles it again (0.56 s of a 3.2 s
        `pip install --no-deps .`), and whatever it writes in the checkout is in the state
        taken after it."""
        env = dict(os.environ)
        env[procs.MARK] = self.marker  # inherited by all it starts, even past a setsid
        env.pop("PYTEST_ADDOPTS", None)  # the user's shell is no part of the experiment:
        # options reach probes through --pytest-arg, which the environment key records
        env.pop("BISECTOR_DB", None)  # the store (and its password) is not the probe's
        if self._venv is not None:  # the setup installed the commit's code: no path tricks
            env["VIRTUAL_ENV"] = str(self._venv)
            env["PATH"] = os.pathsep.join([str(self._venv / "bin"), env.get("PATH", "")])
            if not setup:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
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

    def holds(self, probe: Probe) -> bool:
        """Whether this executor's checkout and venv hold the setup of the probe's commit and
        patch, so that its tests may run again without checking out and setting up anew."""
        held = self._held
        return held is not None and (held.sha, held.patch) == (probe.sha, probe.patch)

    def run(self, probe: Probe) -> ProbeOutcome:
        started = time.time()
        ids, refused = checked_ids(probe.nodeids)
        holding = self._reusable(probe)
        # held again only once these tests ran: a run that times out, is aborted or raises
        # leaves nothing to reuse
        self._held = None
        if holding is not None:
            env_info = holding.environment
            python = self._probe_python()
        else:
            self._checkout(probe.sha)
            env_info = environment.current(self.tree, extra=self.fingerprint_extra)
            problem = self.worktree.problem or apply_probe_patch(self.tree, probe)
            if problem is not None:  # a submodule it needs is missing, or a patch not applying
                return finish(probe, {}, env_info, started, None, problem, phase="setup")
            python = self._probe_python()
            if self.setup:
                status, log, problem = self._execute(self.setup, shell=True, setup=True)
                if problem is None and status != 0:
                    problem = f"setup failed (exit {status}): {last_line(log) or 'no output'}"
                if problem is not None:
                    return finish(probe, {}, env_info, started, status, problem, log,
                                  root=str(self.tree), phase="setup")
                holding = _Setup(probe.sha, probe.patch, self.worktree.state(), env_info)
        status, log, problem, results = self._tests(probe, ids, python)
        results.update(refused)
        # held when the tests left the checkout as the setup did: then the pool may queue
        # this commit's next probes here, to run one after another without building
        if problem is None and holding is not None and self.worktree.state() == holding.state:
            self._held = holding
        return finish(probe, results, env_info, started, status, problem, log,
                      root=str(self.tree))

    def _reusable(self, probe: Probe) -> _Setup | None:
        """The setup held for this probe, when its tests may simply run again (ADR 25): the
        checkout still shows what it showed right after that setup, so the test runs since
        added, removed or changed no file git sees. None: set up anew."""
        held = self._held
        if held is None or not self.holds(probe):
            return None
        self.check_aborted()
        return held if self.worktree.state() == held.state else None

    def _tests(self, probe: Probe, ids: list[str], python: str
               ) -> tuple[int | None, str, str | None, dict[str, TestResult]]:
        """(status, output, problem, results) of the probe's pytest: run again without the ids
        pytest said do not exist here, so one new test does not make the commit untestable."""
        status, log, problem, results = self._pytest(python, ids, probe.whole_files)
        rest = (runnable(tuple(ids), status, log)
                if problem is None and not results and not probe.whole_files else None)
        if rest:
            status, more, problem, results = self._pytest(python, rest)
            log += more
        if problem is None and status not in (0, 1) and not results:
            reason = pytest_reason(log, str(self.tree)) or "no output"
            problem = f"pytest exited {status}: {reason}"
        return status, log, problem, results

    def _pytest(self, python: str, nodeids: list[str], whole_files: bool = False
                ) -> tuple[int | None, str, str | None, dict[str, TestResult]]:
        """Run pytest on these ids (or whole files) and read the results from its JUnit XML.

        Results never come from pytest's terminal output, which the project's own options
        (`addopts = -v`, `-rA`, `--tb=line`) change: with `whole_files`, the file's node ids
        are the JUnit XML's test cases (their `file` attribute, xunit1).
        """
        self._tmp.mkdir(parents=True, exist_ok=True)  # beside the worktree: swept with it
        with tempfile.TemporaryDirectory(prefix="bisector-probe-", dir=self._tmp) as tmp:
            junit = Path(tmp) / "junit.xml"
            args = [as_argument(n) for n in nodeids]
            # the commit's own configuration, never one above the worktree (the checkout's)
            setup = inifile.determine(self.tree, self.tree / self.subdir, args)
            # options first, then the ids, each written so that none reads as an option
            cmd = [
                python, "-m", "pytest", *inifile.pytest_options(setup, Path(tmp)),
                f"--junitxml={junit}", "-o", "junit_family=xunit1",
                "-o", "track_history=false", "-p", "no:cacheprovider", "-q", "--no-header",
                *self.pytest_args, *args,
            ]
            status, log, problem = self._execute(cmd)
            results: dict[str, TestResult] = {}
            if problem is None and junit.exists():
                results = _read_junit(junit, nodeids, whole_files)
        with contextlib.suppress(OSError):  # nothing beside a worktree kept between probes
            self._tmp.rmdir()
        return status, log, problem, results

    def _execute(self, cmd: list[str] | str, *, shell: bool = False, setup: bool = False
                 ) -> tuple[int | None, str, str | None]:
        proc = self._spawn(cmd, cwd=self.tree / self.subdir, env=self._env(setup=setup),
                           shell=shell)
        try:  # Ctrl-C: the probe's whole process tree goes with us
            out, timed_out = self._wait(proc, self.timeout)
        finally:
            self._running = None
        if timed_out:
            return None, out, f"timed out after {self.timeout:g}s"
        self.check_aborted()  # killed by abort(): its exit status is not a result
        return proc.returncode, out, None


def _has_pip() -> bool:
    """This interpreter can import pip: a probe venv can run it instead of its own."""
    import importlib.util

    return importlib.util.find_spec("pip") is not None


def write_pip_shims(venv: Path) -> None:
    """`pip`, `pip3` and `pip3.X` in the venv's bin: the borrowed pip, run by the venv's
    python (so that it installs into the venv), as a setup command line expects them."""
    import shlex

    python = shlex.quote(str(venv / "bin" / "python"))
    v = sys.version_info
    for name in ("pip", f"pip{v.major}", f"pip{v.major}.{v.minor}"):
        shim = venv / "bin" / name
        shim.write_text(f'#!/bin/sh\nexec {python} -m pip "$@"\n')
        shim.chmod(0o755)


def _read_junit(junit: Path, nodeids: list[str], whole_files: bool) -> dict[str, TestResult]:
    """The asked tests' results; with `whole_files`, those of every test of the files."""
    if not whole_files:
        return results_for(junit, nodeids)
    files = tuple(nodeids)
    found = read_results(junit, "pytest", files=set(files))
    return {nodeid: result for nodeid, result in found.items() if in_files(nodeid, files)}


def _exited(proc: subprocess.Popen[str]) -> bool:
    """Has the process exited? Without reaping it where the platform allows (waitid with
    WNOWAIT), so that its pid, and its group's, stay ours to signal."""
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already (by abort() on another thread)
        return True
