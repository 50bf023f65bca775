"""The Docker executor: each probe in a fresh container, through the docker SDK.

A probe's container gets the commit's tree mounted read-only at /src (a writable copy at /work
when the suite asks for scratch), its services on a private network of its own, and nothing
else: never privileged, never the host's network, no Docker socket, a pids, memory and CPU
limit. Everything created is labelled with the session and the owning process, removed on
success, error, timeout and Ctrl-C, and swept at the next start (and by `bisector gc`) when a
`kill -9` left it. The SDK is imported here only, lazily (`pip install 'bisector[docker]'`).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import secrets
import shlex
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import environment
from ..config import redact_text
from ..errors import BisectError, ConfigError, ExecutorError
from ..gitrepo import Repository
from ..junit import read_results, results_for
from ..model import Environment, TestResult
from ..nodeids import as_argument
from ..pids import pid_alive
from ..suites import RESULTS_DIR, SCRATCH_DIR, SOURCE_DIR, Service, Suite
from . import (
    Patch,
    Probe,
    ProbeOutcome,
    checked_ids,
    last_line,
    pytest_reason,
    runnable,
)
from .base import AbortMark, BaseExecutor, apply_probe_patch, experiment_key, finish
from .factory import WHOLE_FILES_HINT, WHOLE_FILES_REFUSED
from .worktree import Worktree, new_session, started

LABEL_SESSION = "io.bisector.session"
LABEL_PID = "io.bisector.pid"
LABEL_HOST = "io.bisector.host"
LABEL_SUITE = "io.bisector.suite"
LABEL_STARTED = "io.bisector.started"  # the owner's start time: a reused pid is not the owner
SETUP_FAILED = "bisector-setup-failed"
ENGINE_HINT = ("start one (systemctl start docker, or run dockerd as root) or point DOCKER_HOST "
               "at one")

Output = Callable[[str], None]


def _engine_text(text: str) -> str:
    """An engine's message as it may be shown: DOCKER_HOST may carry a password
    (tcp://user:SECRET@host, ssh://...), and the SDK quotes it back in its errors."""
    return redact_text(text, os.environ.get("DOCKER_HOST", ""))


def connect() -> Any:
    """A client of a live engine, or one line saying how to get one."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise ExecutorError("the Docker executor needs the docker SDK",
                            hint="pip install 'bisector[docker]'") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, PermissionError):
            raise ExecutorError("the Docker engine refused this user (permission denied)",
                                hint="join the docker group or run as root") from None
        reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror
                  else str(exc).split("(")[0].strip().rstrip(":")) or type(exc).__name__
        raise ExecutorError(f"no Docker engine is reachable ({_engine_text(reason)[:120]})",
                            hint=ENGINE_HINT) from None
    return client


@dataclass
class Swept:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


def _orphaned(labels: dict[str, str] | None, host: str) -> bool:
    labels = labels or {}
    pid = labels.get(LABEL_PID, "")
    if labels.get(LABEL_HOST) != host or not pid.isdigit():
        return False  # another machine's, or not ours to judge
    if not pid_alive(int(pid)):
        return True
    recorded = labels.get(LABEL_STARTED)
    return bool(recorded) and started(int(pid)) not in (None, recorded)


def sweep(client: Any, *, session: str | None = None) -> Swept:
    """Remove what a dead bisector process on this host left (or all of one `session`)."""
    import requests.exceptions
    from docker.errors import APIError

    host = socket.gethostname()
    swept = Swept()
    # Filtered by the engine: one session's objects, or this host's (never another's).
    label = f"{LABEL_SESSION}={session}" if session is not None else f"{LABEL_HOST}={host}"

    def mine(labels: dict[str, str] | None) -> bool:
        if session is not None:
            return (labels or {}).get(LABEL_SESSION) == session
        return _orphaned(labels, host)

    try:
        # sparse: no inspect per container, so one removed meanwhile (by its own bisector's
        # cleanup) is not an error
        for container in client.containers.list(all=True, sparse=True,
                                                filters={"label": label}):
            if mine(container.attrs.get("Labels")):
                _gone(lambda c=container: c.remove(force=True, v=True))
                swept.containers.append(container.id[:12])
        for network in client.networks.list(filters={"label": label}):
            if mine(network.attrs.get("Labels")):
                _gone(network.remove)
                swept.networks.append(network.name)
        for volume in client.volumes.list(filters={"label": label}):
            if mine(volume.attrs.get("Labels")):
                _gone(lambda v=volume: v.remove(force=True))
                swept.volumes.append(volume.name)
    except (APIError, requests.exceptions.RequestException) as exc:
        raise ExecutorError(f"cannot list bisector's containers ({_engine_text(str(exc))})",
                            hint="check the Docker engine (docker ps)") from None
    return swept


@dataclass(frozen=True, slots=True)
class ContainerRun:
    status: int | None
    log: str
    problem: str | None  # why the run tells nothing about the tests, if it does not
    junit: bytes | None
    image_ref: str
    image_id: str


def suite_digest(suite: Suite) -> str:
    """What makes two containers of a suite the same experiment (not its timeout or text)."""
    parts = [suite.name, suite.image or "", suite.dockerfile or "", suite.context,
             *suite.setup, suite.command, suite.junit, suite.dialect, str(suite.scratch),
             *(f"{k}={v}" for k, v in sorted(suite.env.items())),
             *(f"{s.name}:{s.image}:{sorted(s.env.items())}:{s.command}" for s in suite.services)]
    return environment.digest(*parts)


class SuiteRunner:
    """Runs a suite's command in a fresh container over a directory of the host."""

    def __init__(self, client: Any, suite: Suite, session: str, *,
                 timeout: float | None = None, output: Output | None = None,
                 pytest_args: tuple[str, ...] = (), abort_mark: AbortMark | None = None
                 ) -> None:
        self.client = client
        self.suite = suite
        self.pytest_args = pytest_args  # --pytest-arg: for a pytest suite, in PYTEST_ADDOPTS
        self.session = session
        self.timeout = timeout or suite.timeout
        self.output = output
        self.labels = {LABEL_SESSION: session, LABEL_PID: str(os.getpid()),
                       LABEL_HOST: socket.gethostname(), LABEL_SUITE: suite.name,
                       LABEL_STARTED: started(os.getpid()) or ""}
        self._count = 0
        self._running: Any = None  # the probe's container while it runs
        # set by abort() (or the executor sharing it), never cleared: no container after it
        self.abort_mark = abort_mark or AbortMark()

    # -- images -----------------------------------------------------------------------------

    def image(self, tree: Path, context_id: str | None) -> tuple[str, str]:
        """(reference, id) of the image for this tree: the suite's, or built from its Dockerfile.

        Built images are tagged with the git hash of the build context, so a commit whose
        context did not change reuses the image of an earlier one.
        """
        from docker.errors import BuildError, ImageNotFound

        suite = self.suite
        if suite.image is not None:
            return suite.image, self._image_id(suite.image)
        assert suite.dockerfile is not None
        context = tree / suite.context
        dockerfile = tree / suite.dockerfile
        try:
            rel = dockerfile.relative_to(context).as_posix()
        except ValueError:
            raise ConfigError(f"{suite.source}: dockerfile must be inside the build context "
                              f"({suite.context})") from None
        if not dockerfile.is_file():
            raise _Untestable(f"no {suite.dockerfile} at this commit")
        key = context_id or environment.digest(str(time.time()), secrets.token_hex(4))
        repository = re.sub(r"[^a-z0-9]+", "-", suite.name.lower()).strip("-") or "suite"
        ref = f"bisector-build/{repository}:{key[:20]}"
        with contextlib.suppress(ImageNotFound):
            return ref, self.client.images.get(ref).id
        try:
            image, _ = self.client.images.build(
                path=str(context), dockerfile=rel, tag=ref, rm=True, forcerm=True,
                labels={LABEL_SUITE: suite.name}, pull=False, timeout=int(self.timeout) + 60)
        except BuildError as exc:
            lines = [str(c.get("stream") or c.get("error") or "") for c in exc.build_log]
            raise _Untestable(f"image build failed: {last_line(''.join(lines)) or exc.msg}"
                              ) from None
        return ref, image.id

    def _image_id(self, name: str) -> str:
        """The id of an image on the engine, or one line saying how to get it there."""
        from docker.errors import ImageNotFound

        try:
            return str(self.client.images.get(name).id)
        except ImageNotFound:
            raise ExecutorError(
                f"suite {self.suite.name}: image {name} is not on this Docker engine",
                hint="build or pull it first (no registry is assumed), e.g. "
                     "make base-image for bisector/base:bookworm") from None

    def check_images(self) -> None:
        """Every image the suite names (its own, its services') is on the engine, or one line."""
        for name in [*([self.suite.image] if self.suite.image else []),
                     *(s.image for s in self.suite.services)]:
            self._image_id(name)

    # -- containers -------------------------------------------------------------------------

    def _name(self, what: str) -> str:
        return f"bisector-{self.session}-{self._count}-{what}"

    def _limits(self) -> dict[str, Any]:
        return {
            "mem_limit": self.suite.memory,
            "nano_cpus": int(self.suite.cpus * 1e9),
            "pids_limit": self.suite.pids,
            "privileged": False,
            "security_opt": ["no-new-privileges"],
            "labels": self.labels,
        }

    def _script(self, selection: list[str], subdir: str) -> str:
        suite = self.suite
        lines = ["set -e", f"mkdir -p {RESULTS_DIR} {shlex.quote(os.path.dirname(suite.junit))}"]
        if suite.scratch:  # the tree, not its git database or bisector's own files
            lines.append(f"mkdir -p {SCRATCH_DIR} && tar -C {SOURCE_DIR} --exclude=./.git "
                         f"--exclude=./.bisector -cf - . | tar -C {SCRATCH_DIR} -xf -")
        lines.append(f"cd {shlex.quote(os.path.join(suite.workdir, subdir))}")
        for step in suite.setup:
            lines.append(f"sh -c {shlex.quote(step)} || {{ rc=$?; echo "
                         f"\"{SETUP_FAILED} (exit $rc): \"{shlex.quote(step)} >&2; exit 97; }}")
        # {tests} is replaced literally (not str.format): shell ${...} stays the shell's
        command = suite.command.replace("{tests}", shlex.join(selection))
        lines.append(f"exec sh -c {shlex.quote(command)}")
        return "\n".join(lines) + "\n"

    def _quiet_plugin(self) -> dict[str, str]:
        """bisector installed in the image must not record or bisect from inside the probe;
        the probes' --pytest-arg options ride along, whatever the suite's command is."""
        if self.suite.dialect != "pytest":
            return {}
        return {"PYTEST_ADDOPTS": shlex.join(["-p", "no:bisector", *self.pytest_args])}

    def _start_service(self, service: Service, network: str, made: list[Any]) -> Any:
        self.abort_mark.check()
        endpoint = self.client.api.create_endpoint_config(aliases=[service.name])
        container = self.client.containers.create(
            service.image, command=list(service.command) if service.command else None,
            name=self._name(service.name), environment=service.env, detach=True,
            network=network, networking_config={network: endpoint}, **self._limits())
        made.append(container)
        container.start()
        return container

    def _wait_ready(self, service: Service, container: Any, deadline: float) -> None:
        from docker.errors import APIError

        ready_by = min(deadline, time.monotonic() + service.ready_timeout)
        while True:
            container.reload()
            if container.status not in ("created", "running"):
                log = container.logs(tail=5).decode("utf-8", "replace")
                raise _Untestable(f"service {service.name} exited before it was ready "
                                  f"({last_line(log) or container.status})")
            if service.ready is None:
                if container.status == "running":
                    return
            else:
                budget = max(1, int(ready_by - time.monotonic()) + 1)
                try:  # the service may exit meanwhile: the next reload() says so
                    code, _ = container.exec_run(
                        ["timeout", str(budget), "sh", "-c", service.ready])
                except APIError:
                    code = -1
                if code == 0:
                    return
            if time.monotonic() > ready_by:
                raise _Untestable(f"service {service.name} not ready after "
                                  f"{service.ready_timeout:g}s (ready: {service.ready})")
            time.sleep(0.2)

    def _follow(self, container: Any, chunks: list[str]) -> threading.Thread:
        def pump() -> None:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")  # split characters
            with contextlib.suppress(Exception):  # the container went away: the log ends
                for raw in container.logs(stream=True, follow=True):
                    text = decoder.decode(raw)
                    chunks.append(text)
                    if self.output is not None and text:
                        self.output(text)
            tail = decoder.decode(b"", final=True)
            if tail:
                chunks.append(tail)
                if self.output is not None:
                    self.output(tail)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    def run(self, tree: Path, selection: list[str], *, subdir: str = "",
            context_id: str | None = None, env: dict[str, str] | None = None) -> ContainerRun:
        """The suite's command over `tree`, in a container that is gone when this returns."""
        import requests.exceptions
        from docker.errors import DockerException, ImageNotFound

        self._count += 1
        made: list[Any] = []
        networks: list[Any] = []
        image = (self.suite.image or "", "")
        chunks: list[str] = []
        deadline = time.monotonic() + self.timeout
        try:
            self.abort_mark.check()
            image = self.image(tree, context_id)
            network = self._services(deadline, made, networks)
            container = self._container(image[1], tree, selection, subdir, env, network, made)
            return self._finish(container, chunks, deadline, image)
        except _Untestable as exc:
            return ContainerRun(None, "".join(chunks), str(exc), None, *image)
        except ImageNotFound as exc:
            raise ExecutorError(f"suite {self.suite.name}: an image is not on this Docker "
                                f"engine ({exc.explanation or exc})",
                                hint="build or pull it first (no registry is assumed)") from None
        except (DockerException, requests.exceptions.RequestException) as exc:
            # the engine failed this probe (a network pool exhausted, a vanished service):
            # it tells nothing about the tests
            reason = getattr(exc, "explanation", None) or str(exc)
            return ContainerRun(None, "".join(chunks), f"docker: {last_line(str(reason))}",
                                None, *image)
        finally:
            self._running = None
            self._remove(made, networks[0] if networks else None)

    def _services(self, deadline: float, made: list[Any], networks: list[Any]) -> Any:
        """The suite's services, started and ready, on a private network of their own (None
        without services); what was created goes into `made` and `networks` for removal."""
        self.abort_mark.check()
        if not self.suite.services:
            return None
        network = self.client.networks.create(
            self._name("net"), driver="bridge", internal=True, labels=self.labels)
        networks.append(network)
        services = [(s, self._start_service(s, network.name, made)) for s in self.suite.services]
        for service, container in services:
            self._wait_ready(service, container, deadline)
        return network

    def _container(self, image_id: str, tree: Path, selection: list[str], subdir: str,
                   env: dict[str, str] | None, network: Any, made: list[Any]) -> Any:
        """The probe's container, created and started (unless abort() came first)."""
        from docker.types import Mount

        self.abort_mark.check()
        container = self.client.containers.create(
            image_id, command=["sh", "-c", self._script(selection, subdir)],
            name=self._name("probe"), detach=True,
            environment={**self._quiet_plugin(), **self.suite.env, **(env or {})},
            mounts=[Mount(SOURCE_DIR, str(tree), type="bind", read_only=True)],
            network=network.name if network is not None else None,
            network_mode=None if network is not None else "none",
            **self._limits())
        made.append(container)
        self._running = container
        self.abort_mark.check()  # abort() ran between the check and now: never started
        container.start()
        return container

    def _finish(self, container: Any, chunks: list[str], deadline: float,
                image: tuple[str, str]) -> ContainerRun:
        """Wait for the probe's container (at most until `deadline`) and read what it left."""
        import requests.exceptions

        follower = self._follow(container, chunks)
        remaining = max(1.0, deadline - time.monotonic())
        try:
            status = int(container.wait(timeout=remaining)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            with contextlib.suppress(Exception):
                container.kill()
            follower.join(timeout=5)
            return ContainerRun(None, "".join(chunks), f"timed out after {self.timeout:g}s",
                                None, *image)
        follower.join(timeout=max(5.0, deadline - time.monotonic()))
        self.abort_mark.check()  # killed by abort(): its exit status is not a result
        log = "".join(chunks)
        if status == 97 and SETUP_FAILED in log:
            line = next(ln for ln in log.splitlines() if SETUP_FAILED in ln)
            return ContainerRun(status, log, "setup failed" + line.split(SETUP_FAILED, 1)[1],
                                None, *image)
        return ContainerRun(status, log, None, self._read(container, self.suite.junit), *image)

    def abort(self) -> None:
        """Stop the probe running now, and start no other (from another thread: Ctrl-C)."""
        self.abort_mark.set()
        container = self._running
        if container is not None:
            with contextlib.suppress(Exception):
                container.kill()

    def _read(self, container: Any, path: str) -> bytes | None:
        from docker.errors import NotFound

        try:
            stream, _ = container.get_archive(path)
        except NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            return handle.read() if handle is not None else None

    def _remove(self, made: list[Any], network: Any) -> None:
        for container in reversed(made):
            _gone(lambda c=container: c.remove(force=True, v=True))
        if network is not None:  # after its containers: a network in use cannot go
            _gone(network.remove)


def _gone(remove: Callable[[], None], tries: int = 25) -> None:
    """Remove, retrying while the engine says it is busy with the object (409: a removal or a
    kill in progress), so nothing is left when the run returns; NotFound is done."""
    from docker.errors import APIError, NotFound

    for attempt in range(tries):
        try:
            remove()
            return
        except NotFound:
            return
        except APIError:
            if attempt == tries - 1:
                return  # the next start's sweep gets it
            time.sleep(0.2)


def context_key(context_tree: str, dockerfile_blob: str, extra: str = "") -> str:
    """The build cache key: the same for a commit and a working tree with the same context."""
    return environment.digest(context_tree, dockerfile_blob, extra)


class _Untestable(Exception):
    """Raised inside a run: this commit cannot be tested (a build, a service), say why."""


def container_environment(suite: Suite, image_ref: str, image_id: str, root: Path,
                          extra: str = "") -> Environment:
    """The key (suite and image reference) decides which runs compare, across commits and for
    reuse; the fingerprint adds the image digest, so the store can tell a rebuilt tag apart."""
    key = environment.digest("container", suite_digest(suite),
                             image_ref if suite.image else f"dockerfile:{suite.dockerfile}", extra)
    deps = environment.deps_hash(root)
    return Environment(python=f"container:{suite.name}", platform=image_ref or "?",
                       deps_hash=deps, key=key,
                       fingerprint=environment.digest(key, image_id, deps))


class DockerExecutor(BaseExecutor):
    """Probes of find-break, each in a fresh container over a worktree of the commit.

    Options are checked where they are given (`executors.factory`); a suite's images are
    checked here, so a missing one fails before the first probe.
    """

    def __init__(self, repo: Repository, suite: Suite, *, timeout: float | None = None,
                 extra_files: dict[str, bytes] | None = None, subdir: str = "",
                 output: Output | None = None, client: Any = None,
                 pytest_args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.repo = repo
        self.suite = suite
        self.subdir = subdir
        self.client = client or connect()
        sweep(self.client)  # what a killed bisector left
        self.session = new_session()
        self.extra_files = dict(extra_files or {})
        self.fingerprint_extra = experiment_key(None, self.extra_files, pytest_args)
        self.worktree = Worktree(repo, self.session, self.extra_files)
        self.runner = SuiteRunner(self.client, suite, self.session, timeout=timeout,
                                  output=output, pytest_args=pytest_args,
                                  abort_mark=self.abort_mark)
        self.runner.check_images()  # a missing image fails now, not after the first probe

    def env_key(self) -> str:
        """The key of the runs this executor's probes are comparable with (any image digest)."""
        return container_environment(self.suite, self.suite.image or "", "", self.repo.root,
                                     self.fingerprint_extra).key

    def _stop_running(self) -> None:
        self.runner.abort()

    def close(self) -> None:
        try:
            sweep(self.client, session=self.session)
        finally:
            self.worktree.close()

    def _context_id(self, sha: str, patch: Patch | None = None) -> str | None:
        """The image's cache key: the commit's context and Dockerfile, and the patch applied
        on top (a hunk may change what the image is built from: its image is its own)."""
        if self.suite.dockerfile is None:
            return None
        try:
            key = context_key(self.repo.tree_id(sha, self.suite.context),
                              self.repo.tree_id(sha, self.suite.dockerfile),
                              self.fingerprint_extra)
        except Exception:  # no context directory at this commit: the build says so
            return None
        return key if patch is None else environment.digest(key, "patch", patch.key,
                                                            str(patch.reverse))

    def run(self, probe: Probe) -> ProbeOutcome:
        if probe.whole_files:  # a Dask worker's probe may come from any client
            raise BisectError(WHOLE_FILES_REFUSED, hint=WHOLE_FILES_HINT)
        began = time.time()
        nodeids, refused = checked_ids(probe.nodeids)
        self.check_aborted()
        tree = self.worktree.checkout(probe.sha)
        self.check_aborted()
        problem = self.worktree.problem or apply_probe_patch(tree, probe)
        if problem is not None:  # a submodule it needs is missing, or its patch does not apply
            env_info = container_environment(self.suite, self.suite.image or "", "", tree,
                                             self.fingerprint_extra)
            return finish(probe, {}, env_info, began, None, problem)
        outcome = self._containers(tree, nodeids, self._context_id(probe.sha, probe.patch))
        env_info = container_environment(self.suite, outcome.image_ref, outcome.image_id, tree,
                                         self.fingerprint_extra)
        results = parse_results(self.suite, outcome, nodeids)
        problem = outcome.problem
        if problem is None and not results:
            problem = _no_results(self.suite, outcome, str(tree))
        results.update(refused)
        return finish(probe, results, env_info, began, outcome.status, problem, outcome.log,
                      root=str(tree))

    def _containers(self, tree: Path, nodeids: list[str], context_id: str | None
                    ) -> ContainerRun:
        """The suite over the tests; run again without the ids pytest said do not exist at
        this commit, so one new test does not make the commit untestable for all."""
        # {tests} is the ids, each written so that none reads as an option of the command
        outcome = self.runner.run(tree, [as_argument(n) for n in nodeids], subdir=self.subdir,
                                  context_id=context_id)
        rest = (runnable(tuple(nodeids), outcome.status, outcome.log)
                if self.suite.dialect == "pytest" and outcome.junit is None else None)
        if rest:
            outcome = self.runner.run(tree, [as_argument(n) for n in rest], subdir=self.subdir,
                                      context_id=context_id)
        return outcome


def _no_results(suite: Suite, outcome: ContainerRun, root: str) -> str:
    """Why a container run that reported no test tells nothing about them."""
    said = (pytest_reason(outcome.log, root) if suite.dialect == "pytest"
            else last_line(outcome.log)) or "no output"
    if outcome.junit is None:
        return f"no JUnit XML at {suite.junit} (exit {outcome.status}): {said}"
    return f"exit {outcome.status}: {said}"


def parse_results(suite: Suite, outcome: ContainerRun, nodeids: list[str] | None,
                  files: set[str] | None = None) -> dict[str, TestResult]:
    """The run's JUnit XML as results by node id (only `nodeids`, when given)."""
    if outcome.junit is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="bisector-junit-") as tmp:
        path = Path(tmp) / "junit.xml"
        path.write_bytes(outcome.junit)
        try:
            if nodeids is not None and suite.dialect == "pytest":
                return results_for(path, nodeids)
            found = read_results(path, suite.dialect, files=files)
        except ExecutorError:
            return {}
    if nodeids is None:
        return found
    return {n: found[n] for n in nodeids if n in found}
