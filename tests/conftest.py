"""Shared fixtures: real git repositories in tmp_path and real pytest sessions in subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BISECTOR_DB", "BISECTOR_LOOKBACK", "BISECTOR_TRIGGER", "PYTEST_ADDOPTS",
                 "PYTEST_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    # The tests pin the probe order of one probe at a time; `--jobs auto`, the default, would
    # make it depend on the machine's cores. The default itself is tested in
    # test_parallel_find_break.
    monkeypatch.setenv("BISECTOR_JOBS", "1")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def planted(repo: Path, test_text: str, n: int, culprit: int) -> list[str]:
    """n commits of a repository whose `m.value()` is 1, and 2 from commit `culprit` on; the
    test file `test_m.py` (test_text) is there from the first. The shas, oldest first."""
    shas = [commit(repo, {"m.py": "def value():\n    return 1\n", "test_m.py": test_text},
                   "start")]
    for i in range(1, n):
        files = {"notes.txt": f"{i}\n"}
        if i == culprit:
            files["m.py"] = "def value():\n    return 2\n"
        shas.append(commit(repo, files, f"c{i}"))
    return shas


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def run_pytest(cwd: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A real pytest session in a subprocess, as a user would start it."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout,
    )


def run_cli(*args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bisector", *args],
        cwd=cwd, capture_output=True, text=True, env=full_env, timeout=120,
    )


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def every_log_replays(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test module's `run_cli` replays the bisect_log of every find-break it runs that
    writes JSON, to its culprit (tests/replay_helpers.py)."""
    from .replay_helpers import replaying

    monkeypatch.setattr(request.module, "run_cli", replaying(request.module.run_cli))


@pytest.fixture
def db_rows() -> Callable[..., list[tuple]]:
    return query
