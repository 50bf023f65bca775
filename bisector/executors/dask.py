"""The Dask executor: each probe is a task on a Dask cluster (`--executor dask --scheduler`).

The client (this process) submits one task per probe and gathers the outcomes in order; only
the client writes the history store. A worker keeps a clone of the repository, made from a URL
(`file://`, ssh or https; by default `file://` and the client's git directory, so workers on
this host need nothing else) in its cache directory, and runs the probe there with the local
executor, or with the Docker executor when a suite is given. Each host has a directory of its
own in the cache (a cache on NFS, or the default ~/.cache mounted into several containers, is
shared): clones and fetches of one repository are serialised by a file lock, so two tasks (or
two workers) on a host never clone at once; each task takes a worktree of its own from that
clone. Probes run only on the workers that were set up and checked (same bisector version,
same environment); when all of those are gone, the workers present then are checked first.

A worker lost mid-probe loses nothing but time: the scheduler runs its tasks elsewhere, and a
probe that still comes back as lost (`KilledWorker`) is submitted again. A probe whose process
was killed from outside (SIGKILL, SIGTERM: a worker shutting down, the OOM killer) raises on
the worker, so Dask retries it instead of recording the commit as untestable. A bisection the
client aborted (Ctrl-C) is marked on every worker: its probes are killed and a retried task of
it returns at once, without running.

`distributed` is imported here only, lazily (`pip install 'bisector[dask]'`). The functions a
task runs are module functions, pickled by reference: workers need bisector (the same version),
git and pytest installed, and docker too for suites.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import redact  # the one redaction of a URL bisector shows
from ..errors import BisectorError, ConfigError, ExecutorError
from ..gitrepo import LOCAL_GIT_ENV, Repository
from ..model import Outcome
from ..suites import Suite
from . import Probe, ProbeAborted, ProbeOutcome, checked_ids
from .base import BaseExecutor
from .worktree import host_id

SCHEDULER_HINT = "start one (dask scheduler) or check --scheduler"
WORKER_HINT = ("the workers need bisector (the client's version), git and pytest: "
               "pip install 'bisector[dask]' where they run")
CACHE_ENV = "BISECTOR_CACHE_DIR"
# idle executors (each a worktree) a worker process keeps for the next probes
MAX_IDLE = 4
# exit statuses of a probe process killed from outside: not a result of the commit (negative:
# the process itself; 128 + signal: a shell or a container whose command was killed)
KILLED = (-signal.SIGKILL, -signal.SIGTERM, 128 + signal.SIGKILL, 128 + signal.SIGTERM)
# how often the client looks at the cluster while it waits for a probe
POLL = 2.0
# aborted bisections a worker remembers (a retried task of one must not run)
MAX_ABORTED = 1024

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to run this bisection's probes; sent with every task."""

    session: str
    repo_url: str
    suite: Suite | None = None
    timeout: float | None = None
    setup: str | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict)
    subdir: str = ""
    pytest_args: tuple[str, ...] = ()  # --pytest-arg, for the probes' pytest


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    address: str
    host: str
    env_key: str
    version: str


class ProbeKilled(Exception):
    """Raised on a worker when the probe's process was killed from outside: Dask retries it."""

    def __init__(self, message: str, outcome: ProbeOutcome | None = None) -> None:
        super().__init__(message, outcome)  # both survive pickling
        self.message = message
        self.outcome = outcome

    def __str__(self) -> str:
        return self.message


# -- URLs -----------------------------------------------------------------------------------

def check_url(url: str) -> str:
    """A repository URL workers may clone: file://, ssh://, git://, http(s):// or user@host:path."""
    schemes = ("file", "ssh", "git", "http", "https", "git+ssh", "ssh+git")
    if url.startswith("-") or any(c in url for c in "\0\n\r"):
        raise ConfigError(f"--repo-url {redact(url)!r} is not a repository URL",
                          hint="give file://, ssh:// or https:// URL")
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is None:
        host = url.split("/", 1)[0]
        if ":" in host and "::" not in host and not any(c.isspace() for c in host):
            return url  # scp-like ssh: git@host:org/repo.git (not a transport::address)
        raise ConfigError(f"--repo-url {redact(url)!r} is not a URL",
                          hint="give file:///path/to/repo, ssh://host/repo or https://host/repo")
    if scheme not in schemes:
        raise ConfigError(f"--repo-url: the {scheme}:// scheme is not supported",
                          hint="give a file://, ssh:// or https:// URL")
    return url


# -- the worker side ------------------------------------------------------------------------

def cache_root() -> Path:
    """Where workers keep clones: $BISECTOR_CACHE_DIR, else ~/.cache/bisector, then /repos."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = os.path.join(xdg, "bisector")
    return Path(base) / "repos"


def host_cache() -> Path:
    """This host's part of the cache: its worktrees are judged by this host's process ids."""
    return cache_root() / host_id()


def _here() -> tuple[str, str]:
    """(name, address) of the Dask worker running this, or of this process outside one."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return f"pid {os.getpid()}", socket.gethostname()
    return str(worker.name), str(worker.address)


def _task_key() -> str | None:
    try:
        from distributed import get_worker

        key = get_worker().get_current_task()
    except (ImportError, ValueError):
        return None
    return str(key) if key is not None else None


def _git(cwd: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_GIT_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a worker never waits for a password
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)


def _has(path: Path, sha: str, url: str) -> bool:
    return _git(path, "cat-file", "-e", f"{sha}^{{commit}}", url=url).returncode == 0


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as handle:  # separate opens: threads of one process exclude too
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _failed(what: str, url: str, proc: subprocess.CompletedProcess[str]) -> ExecutorError:
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    reason = lines[-1] if lines else f"exit {proc.returncode}"
    name, _ = _here()
    return ExecutorError(
        f"git {what} of {redact(url)} failed on Dask worker {name} "
        f"({reason.replace(url, redact(url))})",
        hint="give --repo-url a URL every worker can reach (file:// only works on this host)")


def mirror(url: str, sha: str | None = None) -> Path:
    """This worker's clone of `url`, holding `sha`: cloned or fetched under a file lock."""
    root = host_cache()
    root.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = root / name
    if (path / ".git").is_dir() and (sha is None or _has(path, sha, url)):
        return path
    with _file_lock(root / f"{name}.lock"):
        if not (path / ".git").is_dir():
            for left in root.glob(f"{name}.tmp-*"):  # a clone killed halfway
                shutil.rmtree(left, ignore_errors=True)
            tmp = root / f"{name}.tmp-{os.getpid()}-{secrets.token_hex(3)}"
            proc = _git(root, "clone", "--quiet", "--no-checkout", "--", url, str(tmp), url=url)
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise _failed("clone", url, proc)
            os.replace(tmp, path)
        if sha is not None and not _has(path, sha, url):
            proc = _git(path, "fetch", "--quiet", "--tags", "origin",
                        "+refs/heads/*:refs/remotes/origin/*", url=url)
            if proc.returncode != 0:
                raise _failed("fetch", url, proc)
            if not _has(path, sha, url):  # not on a branch: ask for the commit itself
                _git(path, "fetch", "--quiet", "origin", sha, url=url)
            if not _has(path, sha, url):
                raise ExecutorError(f"commit {sha[:10]} is not in {redact(url)}",
                                    hint="push it, or give --repo-url a repository that has it")
    return path


_LOCK = threading.Lock()
_IDLE: list[tuple[str, Any]] = []  # (session, executor), least recently used first
_RUNNING: dict[str, tuple[str, Any]] = {}  # task key -> (session, the executor running it)
# sessions (bisections) the client aborted, oldest first: kept after the client is gone, since
# Dask may still retry one of their tasks
_ABORTED: dict[str, None] = {}


def _dispose(executor: Any) -> None:
    try:
        executor.close()
    finally:
        executor.repo.close()


def _acquire(spec: WorkerSpec) -> Any:
    """An idle executor of this bisection, or a new one over this worker's clone."""
    with _LOCK:
        for i, (session, executor) in enumerate(_IDLE):
            if session == spec.session:
                del _IDLE[i]
                return executor
    repo = Repository(mirror(spec.repo_url))
    try:
        if spec.suite is not None:
            from .docker import DockerExecutor

            return DockerExecutor(repo, spec.suite, timeout=spec.timeout,
                                  extra_files=spec.extra_files, subdir=spec.subdir,
                                  pytest_args=spec.pytest_args)
        from .local import LocalExecutor

        return LocalExecutor(repo, timeout=spec.timeout, setup=spec.setup,
                             extra_files=spec.extra_files, subdir=spec.subdir,
                             pytest_args=spec.pytest_args)
    except BaseException:
        repo.close()
        raise


def _give_back(spec: WorkerSpec, executor: Any) -> None:
    with _LOCK:
        _IDLE.append((spec.session, executor))
        evicted = [e for _, e in _IDLE[:-MAX_IDLE]]
        del _IDLE[:-MAX_IDLE]
    for old in evicted:
        with contextlib.suppress(Exception):
            _dispose(old)


def prepare(spec: WorkerSpec) -> WorkerInfo:
    """A task: clone (or find) the repository and set up an executor; say who this is."""
    from .. import __version__

    executor = _acquire(spec)
    try:
        key = executor.env_key()
    except BaseException:
        _dispose(executor)
        raise
    _give_back(spec, executor)
    name, address = _here()
    return WorkerInfo(name, address, socket.gethostname(), key, __version__)


def run_probe(spec: WorkerSpec, probe: Probe) -> ProbeOutcome:
    """A task: one probe in a worktree of this worker's clone; the outcome names the worker."""
    # any client of the scheduler can submit a probe: no id of it runs as an option, and one
    # with none fit to run is refused before anything is cloned (the executor checks again)
    checked_ids(probe.nodeids)
    name, address = _here()
    key = _task_key() or f"bisector-untracked-{secrets.token_hex(6)}"
    aborted = ProbeAborted(f"probe of {probe.sha[:10]} aborted by the client")
    with _LOCK:
        if spec.session in _ABORTED:  # a retry of a task of an aborted bisection: never run
            raise aborted
    mirror(spec.repo_url, probe.sha)
    outcome = _run_tracked(spec, probe, key, aborted)
    host = socket.gethostname()
    outcome = dataclasses.replace(
        outcome, host=f"{name}@{host}",
        log=f"bisector: probe on Dask worker {name} ({address}) on {host}\n{outcome.log}")
    _raise_if_killed(probe, outcome, name)
    return outcome


def _run_tracked(spec: WorkerSpec, probe: Probe, key: str, aborted: ProbeAborted
                 ) -> ProbeOutcome:
    """Run the probe with an executor of this bisection, known to abort_probes while it runs;
    the executor goes back to the idle ones after, unless the bisection was aborted."""
    executor = _acquire(spec)
    with _LOCK:
        stopped = spec.session in _ABORTED
        if not stopped:
            _RUNNING[key] = (spec.session, executor)
    if stopped:
        _dispose(executor)
        raise aborted
    try:
        outcome: ProbeOutcome = executor.run(probe)
    except ProbeAborted:
        with contextlib.suppress(Exception):
            _dispose(executor)
        raise aborted from None
    except BaseException:
        with contextlib.suppress(Exception):  # in an unknown state: not used again
            _dispose(executor)
        raise
    finally:
        with _LOCK:
            _RUNNING.pop(key, None)
            stopped = spec.session in _ABORTED  # the mark stays: Dask may retry the task
    if stopped:  # the client is gone or going (Ctrl-C): its worktree goes too
        _dispose(executor)
        raise aborted
    _give_back(spec, executor)
    return outcome


def _raise_if_killed(probe: Probe, outcome: ProbeOutcome, worker: str) -> None:
    """ProbeKilled when the probe's process was killed part-way (OOM, SIGTERM): what did not
    run is no result of the commit, and Dask retries the task."""
    status = outcome.exit_status
    if status in KILLED and any(outcome.results.get(n) is None
                                or outcome.results[n].outcome is Outcome.UNTESTABLE
                                for n in probe.nodeids):
        signum = -status if status is not None and status < 0 else (status or 128) - 128
        raise ProbeKilled(f"the probe of {probe.sha[:10]} was killed (signal {signum}) "
                          f"on Dask worker {worker}", outcome)


def abort_probes(session: str) -> int:
    """Run on every worker (client.run): kill a bisection's probes, now or when they start.

    The mark is kept (the last MAX_ABORTED bisections): a task Dask retries after the client
    cancelled it, or after the client is gone, returns at once instead of running.
    """
    with _LOCK:
        _ABORTED[session] = None
        while len(_ABORTED) > MAX_ABORTED:
            del _ABORTED[next(iter(_ABORTED))]
        running = [e for s, e in _RUNNING.values() if s == session]
    for executor in running:
        with contextlib.suppress(Exception):
            executor.abort()
    return len(running)


def release(session: str) -> int:
    """Run on every worker (client.run): remove a finished bisection's worktrees."""
    with _LOCK:
        mine = [e for s, e in _IDLE if s == session]
        _IDLE[:] = [(s, e) for s, e in _IDLE if s != session]

    def dispose() -> None:
        for executor in mine:
            with contextlib.suppress(Exception):
                _dispose(executor)

    if mine:  # not on the worker's event loop: removing a big worktree takes a while
        threading.Thread(target=dispose, name="bisector-release", daemon=False).start()
    return len(mine)


# -- the client side ------------------------------------------------------------------------

def connect(address: str | None, timeout: float = 10.0) -> Any:
    """A client of a live scheduler, or one line saying how to get one."""
    if not address:
        raise ConfigError("the Dask executor needs a scheduler",
                          hint="give --scheduler tcp://HOST:PORT (`dask scheduler` prints it)")
    try:
        from distributed import Client
    except ImportError:
        raise ExecutorError("the Dask executor needs distributed",
                            hint="pip install 'bisector[dask]'") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError):
        raise ExecutorError(f"no Dask scheduler at {address}", hint=SCHEDULER_HINT) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--scheduler {address} is not a Dask scheduler address ({exc})",
                          hint="give tcp://HOST:PORT") from None


class DaskExecutor(BaseExecutor):
    """Probes of find-break as tasks on a Dask cluster; `run_round` runs K of them at once.

    Options are checked where they are given (`executors.factory`): a suite and a setup
    command, for instance, are refused there.
    """

    def __init__(self, repo: Repository, *, scheduler: str | None, repo_url: str | None = None,
                 suite: Suite | None = None, timeout: float | None = None,
                 setup: str | None = None, extra_files: dict[str, bytes] | None = None,
                 subdir: str = "", pytest_args: tuple[str, ...] = (), jobs: int = 1,
                 retries: int = 2,
                 connect_timeout: float = 10.0, wait_workers: float = 30.0,
                 progress: Progress | None = None, client: Any = None) -> None:
        super().__init__()
        url = check_url(repo_url or f"file://{repo.common_dir.as_posix()}")
        self.repo = repo
        self.address = scheduler
        self.retries = max(0, retries)
        self.progress = progress or (lambda _msg: None)
        self.spec = WorkerSpec(
            session=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}",
            repo_url=url, suite=suite, timeout=timeout, setup=setup,
            extra_files=dict(extra_files or {}), subdir=subdir, pytest_args=tuple(pytest_args))
        self._futures: list[Any] = []
        self._jobs = max(1, jobs)
        self._wait_workers = wait_workers
        self._env_key: str | None = None
        self.client = client or connect(scheduler, connect_timeout)
        try:
            self.workers = self._prepare(self._jobs, wait_workers)
        except BaseException:
            self._close_client()
            raise

    # -- setting up -------------------------------------------------------------------------

    def _live_workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def _prepare(self, jobs: int, wait: float) -> list[WorkerInfo]:
        """Clone the repository on up to `jobs` workers at once, and check their environment.

        Probes run on these workers only (`_submit`): a worker never checked could run another
        bisector version or another Python, and its results would not be the same experiment.
        """
        try:
            self.client.wait_for_workers(1, timeout=wait)
        except (TimeoutError, OSError):
            raise ExecutorError(f"the Dask scheduler at {self.address} has no workers",
                                hint=f"start some: dask worker {self.address}") from None
        workers = self._live_workers()
        futures = [
            self.client.submit(prepare, self.spec, key=f"bisector-prepare-{secrets.token_hex(6)}",
                               workers=[address], allow_other_workers=True, pure=False,
                               retries=self.retries)
            for address in workers[:jobs]
        ]
        before = self._futures  # a round's probes, when its workers are checked again
        self._futures = [*before, *futures]
        try:
            infos = [self._gather(f, "set up the repository") for f in futures]
        finally:
            self._futures = before
        versions = {info.version for info in infos}
        from .. import __version__

        if versions != {__version__}:
            raise ExecutorError(
                f"the Dask workers run bisector {', '.join(sorted(versions))}, this is "
                f"{__version__}", hint="install the same version on the workers")
        keys = {info.env_key for info in infos}
        if self._env_key is not None:
            keys.add(self._env_key)
        if len(keys) > 1:
            raise ExecutorError(
                "the Dask workers run different environments (Python or platform): "
                "their probes would not be the same experiment",
                hint="give every worker the same Python and platform, or use a --suite")
        self._env_key = keys.pop()
        self.progress("dask: " + ", ".join(sorted({f"{i.name}@{i.host}" for i in infos}))
                      + f" ready ({len(workers)} worker(s) on {self.address})")
        return infos

    @property
    def verified(self) -> list[str]:
        """The addresses of the workers that were set up and checked: the only ones probes use."""
        return sorted({w.address for w in self.workers})

    def _recheck(self) -> bool:
        """When every checked worker is gone, check the workers there are now; True if done."""
        live = set(self._live_workers())
        if live & set(self.verified):
            return False
        self.progress("dask: the checked workers are gone; checking the workers there are now")
        self.workers = self._prepare(self._jobs, self._wait_workers)
        return True

    def env_key(self) -> str:
        """The key of the runs these probes are comparable with: the workers' environment."""
        assert self._env_key is not None
        return self._env_key

    # -- running ----------------------------------------------------------------------------

    def _submit(self, probe: Probe) -> Any:
        return self.client.submit(run_probe, self.spec, probe, pure=False,
                                  retries=self.retries, workers=self.verified,
                                  allow_other_workers=False,
                                  key=f"bisector-probe-{probe.sha[:10]}-{secrets.token_hex(4)}")

    def _wait(self, future: Any, probe: Probe) -> Any:
        """The probe's future once it is done; resubmitted if its workers all went away.

        A task restricted to workers that are all gone would wait forever: while waiting, the
        client checks the cluster and, if no checked worker is left, checks the new ones.
        """
        while True:
            deadline = time.monotonic() + POLL
            while time.monotonic() < deadline:
                if future.done():
                    return future
                time.sleep(0.05)
            if self._recheck():
                with contextlib.suppress(Exception):
                    self.client.cancel([future], force=True)
                future = self._submit(probe)
                self._futures.append(future)

    def _gather(self, future: Any, what: str) -> Any:
        from distributed import KilledWorker

        try:
            return future.result()
        except BisectorError:
            raise
        except KilledWorker:
            raise
        except ProbeKilled:
            raise
        except CancelledError:
            raise ExecutorError(f"lost the Dask scheduler at {self.address} (cannot {what})",
                                hint="check that the scheduler is running and reachable"
                                ) from None
        except Exception as exc:
            raise ExecutorError(f"a Dask worker could not {what} ({type(exc).__name__}: "
                                f"{str(exc)[:200]})", hint=WORKER_HINT) from None

    def _outcome(self, future: Any, probe: Probe) -> ProbeOutcome:
        from distributed import KilledWorker

        for attempt in range(self.retries + 1):
            try:
                future = self._wait(future, probe)
                outcome: ProbeOutcome = self._gather(future, f"probe {probe.sha[:10]}")
            except KilledWorker:
                if attempt == self.retries:
                    raise ExecutorError(
                        f"the probe of {probe.sha[:10]} lost its Dask worker on every try",
                        hint="check the workers' logs and memory limits") from None
                self.progress(f"dask: the probe of {probe.sha[:10]} lost its worker again; "
                              "submitted once more")
                future = self._submit(probe)
                self._futures.append(future)
                continue
            except ProbeKilled as exc:  # killed on every try: say so, as an untestable probe
                if exc.outcome is None:
                    raise ExecutorError(exc.message) from None
                return dataclasses.replace(exc.outcome,
                                           problem=f"{exc.message}, on every try")
            if outcome.environment.key != self._env_key:
                raise ExecutorError(
                    f"Dask worker {outcome.host} runs another environment than the others "
                    f"({outcome.environment.python}, {outcome.environment.platform})",
                    hint="give every worker the same Python and platform")
            self.progress(f"dask: {probe.sha[:10]} ran on {outcome.host} in "
                          f"{outcome.finished_at - outcome.started_at:.1f}s")
            return outcome
        raise AssertionError("unreachable")

    def run(self, probe: Probe) -> ProbeOutcome:
        return self.run_round([probe])[0]

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]:
        """All the probes submitted at once; their outcomes in the order given."""
        self.check_aborted()
        futures = [self._submit(p) for p in probes]
        self._futures = list(futures)
        try:
            return [self._outcome(f, p) for f, p in zip(futures, probes, strict=True)]
        except BaseException:
            self.abort()
            raise
        finally:
            self._futures = []

    # -- stopping ---------------------------------------------------------------------------

    def _stop_running(self) -> None:
        """Cancel the tasks of the probes running now (Ctrl-C during a round), then kill them.

        Cancelled first, so the scheduler starts none of them again; then every worker marks
        the whole bisection aborted, kills its probes and refuses any retry of them.
        """
        futures = list(self._futures)
        if not futures:
            return
        with contextlib.suppress(Exception):
            self.client.cancel(futures, force=True)
        with contextlib.suppress(Exception):
            self.client.run(abort_probes, self.spec.session, on_error="ignore")

    def _close_client(self) -> None:
        with contextlib.suppress(Exception):
            self.client.run(release, self.spec.session, on_error="ignore")
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)

    def close(self) -> None:
        try:
            self.abort()
        finally:
            self._close_client()


