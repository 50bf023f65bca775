"""Fixtures for the tests that need a Docker engine.

Outside CI they skip, with the reason, when no engine answers (or debootstrap, which builds the
base image without a registry, is missing). In CI (`CI=true`) they fail instead: `.ci/run`
installs and starts what they need, so a skip there would hide a broken set-up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "bisector/base:bookworm"
KV_IMAGE = "bisector-test/kv:1"
LABEL = "io.bisector.session"

KV_SERVER = '''\
"""A tiny key-value service on TCP 7000: "GET key" -> value, anything else -> ERR."""
import socketserver

DATA = {"answer": "42"}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            words = raw.decode().split()
            if len(words) == 2 and words[0] == "GET":
                reply = DATA.get(words[1], "NONE")
            else:
                reply = "ERR"
            self.wfile.write((reply + "\\n").encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 7000), Handler).serve_forever()
'''


def unavailable(reason: str, what: str = "Docker",
                how: str = ".ci/run starts one with scripts/ensure-docker") -> None:
    """Skip outside CI, saying why; fail under CI=true, where a skip would hide a broken
    set-up (`.ci/run` installs and starts the engines)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the {what} tests must run, but {reason} ({how})")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from bisector.errors import ExecutorError
    from bisector.executors.docker import connect

    try:
        return connect()
    except ExecutorError as exc:
        unavailable(exc.one_line())


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The Debian base image with python3 and pytest, built once per machine (cached by tag)."""
    if shutil.which("debootstrap") is None and not _present(docker_client, BASE_IMAGE):
        unavailable("debootstrap is not installed (apt-get install -y debootstrap), so the "
                     "base image cannot be built")
    proc = subprocess.run([str(ROOT / "scripts" / "build-base-image"), BASE_IMAGE],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return BASE_IMAGE


@pytest.fixture(scope="session")
def kv_image(docker_client: Any, base_image: str) -> str:
    """A service image (a TCP key-value server) built from the base image, without a registry."""
    if not _present(docker_client, KV_IMAGE):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "server.py").write_text(KV_SERVER)
            (Path(tmp) / "Dockerfile").write_text(
                f"FROM {base_image}\nCOPY server.py /srv/server.py\n"
                'CMD ["python3", "-u", "/srv/server.py"]\n')
            docker_client.images.build(path=tmp, tag=KV_IMAGE, rm=True, forcerm=True)
    return KV_IMAGE


def _present(client: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def labelled(client: Any, session_pid: int | None = None) -> dict[str, list[str]]:
    """What carries our label (of one owning process, if given): should be nothing after a run."""
    def ours(labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        if LABEL not in labels:
            return False
        return session_pid is None or labels.get("io.bisector.pid") == str(session_pid)

    return {
        # sparse: a container removed while listing (another run's cleanup) is no error
        "containers": [c.id[:12] for c in client.containers.list(
            all=True, sparse=True, filters={"label": LABEL}) if ours(c.attrs.get("Labels"))],
        "networks": [n.name for n in client.networks.list(filters={"label": LABEL})
                     if ours(n.attrs.get("Labels"))],
        "volumes": [v.name for v in client.volumes.list(filters={"label": LABEL})
                    if ours(v.attrs.get("Labels"))],
    }


def nothing_left(client: Any, pid: int) -> None:
    """Assert via the docker CLI too (`docker ps -a`, `docker network ls`), as a user would."""
    assert labelled(client, pid) == {"containers": [], "networks": [], "volumes": []}
    ps = subprocess.run(["docker", "ps", "-a", "--filter", f"label=io.bisector.pid={pid}",
                         "--format", "{{.Names}}"], capture_output=True, text=True, check=True)
    nets = subprocess.run(["docker", "network", "ls", "--filter",
                           f"label=io.bisector.pid={pid}", "--format", "{{.Name}}"],
                          capture_output=True, text=True, check=True)
    assert ps.stdout.strip() == "" and nets.stdout.strip() == ""


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture
def suites_dir(repo: Path) -> Iterator[Path]:
    path = repo / ".bisector" / "suites"
    path.mkdir(parents=True)
    yield path
