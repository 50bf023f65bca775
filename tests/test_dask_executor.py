"""The Dask executor's worker side, without a cluster: clones, fetches, probes, URLs.

The cluster itself (a real scheduler and workers) is in tests/integration/test_dask_executor.py.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bisector.errors import ConfigError, ExecutorError
from bisector.executors import Probe, ProbeAborted
from bisector.executors.dask import (
    DaskExecutor,
    ProbeKilled,
    WorkerInfo,
    WorkerSpec,
    abort_probes,
    check_url,
    mirror,
    redact,
    release,
    run_probe,
)
from bisector.executors.local import LocalExecutor
from bisector.executors.worktree import host_id
from bisector.gitrepo import Repository
from bisector.model import Outcome, TestResult

from .conftest import commit, git, run_cli


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("BISECTOR_CACHE_DIR", str(path))
    return path


def url_of(repo: Path) -> str:
    return f"file://{(repo / '.git').as_posix()}"


def test_importing_it_does_not_import_distributed() -> None:
    code = ("import sys, bisector.executors.dask, bisector.finder, bisector.cli; "
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_mirror_clones_once_and_fetches_what_is_missing(repo: Path, cache: Path) -> None:
    first = commit(repo, {"a.txt": "1\n"})
    path = mirror(url_of(repo), first)
    assert git(path, "rev-parse", "HEAD") == first
    # a directory per host: a cache shared by hosts (NFS) or containers keeps their worktrees
    assert path.parent == cache / "repos" / host_id()
    later = commit(repo, {"a.txt": "2\n"})
    assert mirror(url_of(repo), later) == path  # fetched into the same clone
    assert git(path, "cat-file", "-t", later) == "commit"
    # a commit on no branch at all (a detached HEAD in the user's checkout): fetched by sha
    git(repo, "checkout", "-q", "--detach")
    loose = commit(repo, {"a.txt": "3\n"}, "detached")
    git(repo, "checkout", "-q", "main")
    assert mirror(url_of(repo), loose) == path
    with pytest.raises(ExecutorError, match="is not in"):
        mirror(url_of(repo), "0" * 40)


def test_two_tasks_clone_one_repository_once(repo: Path, cache: Path) -> None:
    sha = commit(repo, {"a.txt": "1\n"})
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(mirror(url_of(repo), sha)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1 and len(paths) == 4
    assert sorted(p.name for p in (cache / "repos" / host_id()).iterdir()
                  if not p.name.endswith(".lock")) == [paths[0].name]


def test_a_url_no_worker_can_clone_is_one_line(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError) as info:
        mirror(f"file://{tmp_path}/nowhere", "a" * 40)
    line = info.value.one_line()
    assert "git clone of file://" in line and "--repo-url" in line and "\n" not in line


def test_urls() -> None:
    assert redact("https://bot:s3cret@git.example/org/r.git") == \
        "https://bot:***@git.example/org/r.git"
    assert "tok" not in redact("https://tok@git.example/r.git")
    assert redact("ssh://git@host/r.git") == "ssh://git@host/r.git"
    for good in ("file:///srv/r.git", "ssh://git@host/r.git", "git@host:org/r.git",
                 "https://host/r.git"):
        assert check_url(good) == good
    for bad in ("--upload-pack=touch x", "ext::sh -c touch% x", "/just/a/path", "ftp://x/y"):
        with pytest.raises(ConfigError):
            check_url(bad)


def _spec(repo: Path, tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(session=f"test-{tmp_path.name}", repo_url=url_of(repo))


def test_run_probe_outside_a_worker(repo: Path, cache: Path, tmp_path: Path) -> None:
    sha = commit(repo, {"test_a.py": "def test_a():\n    assert True\n"})
    spec = _spec(repo, tmp_path)
    outcome = run_probe(spec, Probe(sha, ("test_a.py::test_a",)))
    assert outcome.results["test_a.py::test_a"].outcome is Outcome.PASSED
    assert outcome.host and outcome.log.startswith("bisector: probe on Dask worker")
    mine = cache / "repos" / host_id()
    clone = next(p for p in mine.iterdir() if p.is_dir())
    assert len(list((clone / ".bisector" / "worktrees").iterdir())) == 1  # kept for the next
    assert release(spec.session) == 1
    for _ in range(100):
        if not list((clone / ".bisector" / "worktrees").iterdir()):
            break
        threading.Event().wait(0.1)
    assert not list((clone / ".bisector" / "worktrees").iterdir())
    assert not (repo / ".bisector").exists(), "the user's checkout is not touched"


def test_a_probe_killed_from_outside_is_not_a_result(repo: Path, cache: Path,
                                                     tmp_path: Path) -> None:
    sha = commit(repo, {"test_a.py": "import os, signal\n\ndef test_a():\n"
                                     "    os.kill(os.getpid(), signal.SIGKILL)\n"})
    spec = _spec(repo, tmp_path)
    with pytest.raises(ProbeKilled) as info:
        run_probe(spec, Probe(sha, ("test_a.py::test_a",)))
    assert "killed (signal 9)" in str(info.value)
    assert info.value.outcome is not None  # what is reported once the retries are spent
    release(spec.session)


def test_dask_options_belong_to_the_dask_executor(repo: Path) -> None:
    sha = commit(repo, {"a.txt": "1\n"})
    commit(repo, {"a.txt": "2\n"})
    proc = run_cli("find-break", "t.py::t", "--good", sha, "--executor", "local",
                   "--scheduler", "tcp://127.0.0.1:1", cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "bisector: error: --scheduler and --repo-url are for the Dask executor: add "
        "--executor dask"]


@pytest.mark.parametrize("status", [-9, -15, 137])
def test_a_probe_killed_part_way_is_not_a_result(repo: Path, cache: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 status: int) -> None:
    """Killed after some tests ran (OOM, SIGTERM): the rest is no result of the commit."""
    sha = commit(repo, {"test_a.py": "def test_a():\n    assert True\n"})
    real = LocalExecutor.run

    def killed_after_a(self: LocalExecutor, probe: Probe) -> Any:
        outcome = real(self, Probe(probe.sha, ("test_a.py::test_a",)))
        results = dict(outcome.results)
        results["test_a.py::test_b"] = TestResult("test_a.py::test_b", Outcome.UNTESTABLE,
                                                  0.0, None, "no result", phase="collect")
        return dataclasses.replace(outcome, probe=probe, results=results, exit_status=status)

    monkeypatch.setattr(LocalExecutor, "run", killed_after_a)
    spec = _spec(repo, tmp_path)
    with pytest.raises(ProbeKilled) as info:
        run_probe(spec, Probe(sha, ("test_a.py::test_a", "test_a.py::test_b")))
    signum = -status if status < 0 else status - 128
    assert f"killed (signal {signum})" in str(info.value)
    assert info.value.outcome is not None
    assert info.value.outcome.results["test_a.py::test_a"].outcome is Outcome.PASSED
    # every requested test has a result: the kill came after the tests (not a retry)
    assert run_probe(spec, Probe(sha, ("test_a.py::test_a",))).exit_status == status
    release(spec.session)


def test_an_aborted_bisection_runs_no_probe_again(repo: Path, cache: Path,
                                                  tmp_path: Path) -> None:
    """abort_probes kills the running probe, and a retry of it (Dask's) does not run."""
    marks = tmp_path / "marks"
    sha = commit(repo, {"test_a.py": "import time\n\ndef test_a():\n"
                                     f"    open({str(marks)!r}, 'a').write('start\\n')\n"
                                     "    time.sleep(30)\n"})
    spec = _spec(repo, tmp_path)
    probe = Probe(sha, ("test_a.py::test_a",))
    raised: list[BaseException] = []

    def task() -> None:
        try:
            run_probe(spec, probe)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=task)
    thread.start()
    deadline = time.monotonic() + 60
    while not marks.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marks.exists()
    assert abort_probes(spec.session) == 1
    thread.join(timeout=15)
    assert not thread.is_alive(), "the probe was not killed"
    assert [type(e) for e in raised] == [ProbeAborted]
    started = time.monotonic()
    with pytest.raises(ProbeAborted):  # Dask's retry of the task, after the client has gone
        run_probe(spec, probe)
    assert time.monotonic() - started < 5
    assert marks.read_text().count("start") == 1, "the aborted probe ran again"
    release(spec.session)


class FakeFuture:
    def __init__(self, value: Any = None) -> None:
        self.key = f"key-{id(self)}"
        self.value = value

    def result(self) -> Any:
        return self.value

    def done(self) -> bool:
        return True


class FakeClient:
    """A scheduler with these workers; records what the executor asks of it."""

    def __init__(self, addresses: list[str]) -> None:
        from bisector import __version__

        self.addresses = addresses
        self.version = __version__
        self.calls: list[tuple[str, Any]] = []

    def wait_for_workers(self, n: int, timeout: float) -> None:
        pass

    def scheduler_info(self, n_workers: int) -> dict[str, Any]:
        return {"workers": {a: {} for a in self.addresses}}

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> FakeFuture:
        self.calls.append(("submit", (fn.__name__, kwargs)))
        [address] = kwargs["workers"] if fn.__name__ == "prepare" else [None]
        return FakeFuture(WorkerInfo(f"w-{address}", str(address), "h", "env", self.version))

    def cancel(self, futures: list[Any], force: bool = False) -> None:
        self.calls.append(("cancel", [f.key for f in futures]))

    def run(self, fn: Any, *args: Any, on_error: str = "raise") -> None:
        self.calls.append(("run", (fn.__name__, args)))

    def close(self, timeout: float = 0) -> None:
        pass


def test_probes_run_only_on_the_checked_workers(repo: Path) -> None:
    commit(repo, {"a.txt": "1\n"})
    client = FakeClient(["tcp://a:1", "tcp://b:1", "tcp://c:1"])
    with Repository(repo) as r:
        executor = DaskExecutor(r, scheduler="tcp://s:1", jobs=2, client=client)
        assert executor.verified == ["tcp://a:1", "tcp://b:1"]
        executor._submit(Probe("0" * 40, ("t.py::t",)))
        name, kwargs = client.calls[-1][1]
        assert name == "run_probe"
        assert kwargs["workers"] == ["tcp://a:1", "tcp://b:1"]
        assert kwargs["allow_other_workers"] is False
        # the checked workers are gone: the ones there now are checked before probes use them
        assert executor._recheck() is False
        client.addresses = ["tcp://c:1", "tcp://d:1"]
        assert executor._recheck() is True
        assert executor.verified == ["tcp://c:1", "tcp://d:1"]
        executor._submit(Probe("0" * 40, ("t.py::t",)))
        assert client.calls[-1][1][1]["workers"] == ["tcp://c:1", "tcp://d:1"]
        executor.close()


def test_abort_cancels_the_tasks_before_killing_the_probes(repo: Path) -> None:
    """Killed first, a probe's task fails and Dask retries it before the cancel arrives."""
    commit(repo, {"a.txt": "1\n"})
    client = FakeClient(["tcp://a:1"])
    with Repository(repo) as r:
        executor = DaskExecutor(r, scheduler="tcp://s:1", client=client)
        future = FakeFuture()
        executor._futures = [future]
        client.calls.clear()
        executor.abort()
        assert client.calls == [("cancel", [future.key]),
                                ("run", ("abort_probes", (executor.spec.session,)))]
        executor._futures = []
        executor.close()
