"""The Dask executor's worker side, without a cluster: clones, fetches, probes, URLs.

The cluster itself (a real scheduler and workers) is in tests/integration/test_dask_executor.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bisector.errors import ConfigError, ExecutorError
from bisector.executors import Probe
from bisector.executors.dask import (
    ProbeKilled,
    WorkerSpec,
    check_url,
    mirror,
    redact,
    release,
    run_probe,
)
from bisector.model import Outcome

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
    assert (cache / "repos").is_dir() and path.parent == cache / "repos"
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
    assert sorted(p.name for p in (cache / "repos").iterdir() if not p.name.endswith(".lock")
                  ) == [paths[0].name]


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
    clone = cache / "repos" / next(p.name for p in (cache / "repos").iterdir()
                                  if p.is_dir())
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
