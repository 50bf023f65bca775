"""find-break --executor dask against a real `dask scheduler` and two `dask worker` processes.

The cluster runs on loopback, one process group per daemon, torn down (SIGKILL to each group)
whatever the test did. The workers share one cache directory, so their clones go through the
per-repository lock. Outside CI the tests skip when `distributed` is missing; in CI they fail,
since `make test` installs it with the `test` extra.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bisector.executors.worktree import host_id

from ..conftest import commit, git, planted, query, run_cli
from .conftest import unavailable

pytestmark = [pytest.mark.distributed, pytest.mark.xdist_group(name="dask")]

TEST_ID = "test_m.py::test_value"
WORKERS = ("dask-a", "dask-b")



def _skip_or_fail(reason: str) -> None:
    unavailable(reason, "Dask", "make test installs it with the test extra")

@pytest.fixture
def distributed() -> Any:
    try:
        import distributed
    except ImportError:
        _skip_or_fail("distributed is not installed (pip install 'bisector[dask]')")
    return distributed


@dataclass
class Cluster:
    address: str
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def kill(self, name: str) -> None:
        """SIGKILL a worker's whole process group (its nanny and the worker process)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait(timeout=30)


def _daemon(args: list[str], log: Path, cwd: Path, env: dict[str, str]
            ) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


@pytest.fixture
def cluster(distributed: Any, tmp_path: Path) -> Iterator[Cluster]:
    """A scheduler and two single-threaded workers on 127.0.0.1, random ports."""
    home = tmp_path / "cluster"
    home.mkdir()
    scheduler_file = home / "scheduler.json"
    env = {**os.environ, "BISECTOR_CACHE_DIR": str(home / "cache")}
    env.pop("PYTEST_XDIST_WORKER", None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_daemon(
            ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            home / "scheduler.log", home, env))
        address = _wait(lambda: scheduler_file.exists() and json.loads(
            scheduler_file.read_text() or "{}").get("address"), 60, home)
        found = Cluster(address, home)
        for name in WORKERS:
            proc = _daemon(
                ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                 "--name", name, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--local-directory", str(home / name)],
                home / f"{name}.log", home, env)
            procs.append(proc)
            found.workers[name] = proc
        with distributed.Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(len(WORKERS), timeout=90)
            names = {w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        assert names == set(WORKERS)
        yield found
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


def _wait(predicate: Any, timeout: float, logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ValueError, OSError):
            value = predicate()
            if value:
                return value
        time.sleep(0.1)
    tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
    raise AssertionError(f"timed out waiting; logs: {tails}")


def sleeping_test(marks: Path, sleep: float) -> str:
    """A test that notes when it starts, then waits, as integration tests do."""
    return (
        "import time\nimport m\n\n"
        "def test_value():\n"
        f"    with open({str(marks)!r}, 'a') as fh:\n"
        "        fh.write(f\"start {time.time()}\\n\")\n"
        f"    time.sleep({sleep})\n"
        "    assert m.value() == 1\n"
    )


def build(repo: Path, marks: Path, n: int, culprit: int, sleep: float) -> list[str]:
    return planted(repo, sleeping_test(marks, sleep), n, culprit)


def probe_hosts(db: Path) -> list[str]:
    return [row[0] for row in query(db, "SELECT host FROM runs WHERE trigger = 'probe'")]


def test_find_break_on_two_workers(cluster: Cluster, repo: Path, tmp_path: Path) -> None:
    shas = build(repo, tmp_path / "marks", n=16, culprit=9, sleep=0.5)
    db = tmp_path / "history.db"
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--executor", "dask",
                   "--scheduler", cluster.address, "--jobs", "2", "--history-db", str(db),
                   cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[9]
    assert data["culprits"][0]["tests"][0]["confirmed"] is True
    assert data["jobs"] == 2 and data["probes_run"] > data["rounds"]
    hosts = probe_hosts(db)
    assert len(hosts) == data["probes_run"]
    landed = {host.split("@", 1)[0] for host in hosts}
    assert landed == set(WORKERS), hosts  # probes landed on both workers
    assert "ran on dask-a@" in proc.stderr and "ran on dask-b@" in proc.stderr
    # the probes ran in the workers' clone, never in the user's checkout
    assert not (repo / ".bisector").exists()
    assert git(repo, "worktree", "list").count("\n") == 0
    hosts = [p for p in (cluster.logs / "cache" / "repos").iterdir() if p.is_dir()]
    assert [p.name for p in hosts] == [host_id()], "a directory per host in the cache"
    clones = [p for p in hosts[0].iterdir() if p.is_dir()]
    assert len(clones) == 1, "both workers (on one host) share one clone, made once"
    assert (clones[0] / ".bisector" / "worktrees").is_dir()
    _wait(lambda: not list((clones[0] / ".bisector" / "worktrees").glob("*")), 30,
          cluster.logs)  # released when the bisection closed


def test_a_worker_killed_mid_probe(cluster: Cluster, distributed: Any, repo: Path,
                                   tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    shas = build(repo, marks, n=12, culprit=5, sleep=3.0)
    db = tmp_path / "history.db"
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        bisect = subprocess.Popen(
            [sys.executable, "-m", "bisector", "find-break", "--json", TEST_ID, "--good",
             shas[0], "--executor", "dask", "--scheduler", cluster.address, "--jobs", "2",
             "--history-db", str(db)], cwd=repo, stdout=stdout, stderr=stderr)
    try:
        # once a test has started, the workers processing a probe task are running one
        with distributed.Client(cluster.address, timeout=30, set_as_default=False) as client:
            _wait(lambda: marks.exists() and marks.read_text().strip(), 120, cluster.logs)
            names = {addr: w["name"] for addr, w in
                     client.scheduler_info(n_workers=-1)["workers"].items()}
            busy = _wait(lambda: [names[addr] for addr, keys in client.processing().items()
                                  if any(str(k).startswith("bisector-probe-") for k in keys)],
                         30, cluster.logs)
            victim = busy[0]
            cluster.kill(victim)
            _wait(lambda: victim not in {w["name"] for w in client.scheduler_info(
                n_workers=-1)["workers"].values()}, 60, cluster.logs)
        status = bisect.wait(timeout=300)
    finally:
        if bisect.poll() is None:
            bisect.kill()
            bisect.wait()
    assert status == 0, err.read_text()
    data = json.loads(out.read_text())
    assert data["culprits"][0]["commit"]["sha"] == shas[5]
    assert data["culprits"][0]["tests"][0]["confirmed"] is True
    survivor = next(n for n in WORKERS if n != victim)
    hosts = [h.split("@", 1)[0] for h in probe_hosts(db)]
    assert survivor in hosts and len(hosts) == data["probes_run"]
    # the victim was killed in the first round, before any of its probes finished: the one
    # it was running ran again on the survivor
    assert victim not in hosts, hosts
    # the lost probe was run again, not recorded as untestable (nor as anything else)
    outcomes = [row[0] for row in query(db, "SELECT outcome FROM results")]
    assert "untestable" not in outcomes and len(outcomes) == data["probes_run"]


def test_no_scheduler_is_one_line(distributed: Any, repo: Path, tmp_path: Path) -> None:
    good = commit(repo, {"test_m.py": "def test_value():\n    assert True\n"})
    commit(repo, {"test_m.py": "def test_value():\n    assert False\n"})
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    proc = run_cli("find-break", TEST_ID, "--good", good, "--executor", "dask",
                   "--scheduler", address, "--history-db", str(tmp_path / "h.db"), cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"bisector: error: no Dask scheduler at {address}: start one (dask scheduler) or "
        "check --scheduler"]


def test_one_job_runs_only_on_the_checked_worker(cluster: Cluster, repo: Path,
                                                 tmp_path: Path) -> None:
    """--jobs 1 checks one worker: the other, never checked, runs none of the probes."""
    shas = build(repo, tmp_path / "marks", n=12, culprit=7, sleep=0.1)
    db = tmp_path / "history.db"
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--executor", "dask",
                   "--scheduler", cluster.address, "--jobs", "1", "--history-db", str(db),
                   cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[7]
    landed = {host.split("@", 1)[0] for host in probe_hosts(db)}
    assert len(landed) == 1, landed
    ready = next(line for line in proc.stderr.splitlines() if "ready (" in line)
    assert f"{landed.pop()}@" in ready, "a probe ran on a worker that was not checked"


def test_ctrl_c_leaves_no_probe_running_or_retried(cluster: Cluster, repo: Path,
                                                   tmp_path: Path) -> None:
    """Ctrl-C mid-round: the probes are killed, and Dask does not run them again after."""
    marks = tmp_path / "marks"
    shas = build(repo, marks, n=12, culprit=5, sleep=6.0)
    bisect = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", TEST_ID, "--good", shas[0],
         "--executor", "dask", "--scheduler", cluster.address, "--jobs", "2",
         "--history-db", str(tmp_path / "history.db")],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: marks.exists() and marks.read_text().count("start") >= 2, 120,
              cluster.logs)
        bisect.send_signal(signal.SIGINT)
        _, err = bisect.communicate(timeout=60)
    finally:
        if bisect.poll() is None:
            bisect.kill()
            bisect.wait()
    assert bisect.returncode == 130, err
    seen = marks.read_text().count("start")
    time.sleep(8)  # longer than a probe: a retried one would have started and noted it
    assert marks.read_text().count("start") == seen, "an aborted probe ran again"
    assert _probes_under(tmp_path) == [], "a probe outlived the bisection"


def _probes_under(root: Path) -> list[str]:
    """The probe processes (pytest of TEST_ID) working in a directory under root."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"pytest" in args and TEST_ID.encode() in args and \
                    (proc / "cwd").resolve().is_relative_to(root.resolve()):
                found.append(f"{proc.name}: {b' '.join(args).decode(errors='replace')}")
    return found
