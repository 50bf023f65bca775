"""The probe's checkout: one `git worktree` of ours per executor, moved from commit to commit.

It lives under `.bisector/worktrees/`, named after the owning host and process
(`HOST-PID-TOKEN`), and is removed on success, error and Ctrl-C; one left by a killed process
(`kill -9`) is swept at the next start and by `bisector gc`. Only this host's names are judged:
a process id means nothing on another host (a checkout on NFS, a cache shared by Dask workers,
containers with pid namespaces of their own), so their worktrees are never swept from here.
Files laid over every checkout (`--test-file`) are written after each move, so a test that did
not exist back then still runs there.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import threading
from pathlib import Path

from ..gitrepo import Repository
from ..pids import pid_alive
from . import procs

WORKTREES = Path(".bisector") / "worktrees"
# git's own locks are per repository: the worktrees of a round (--jobs K) are added, moved and
# removed one at a time, while their tests run at once
_GIT = threading.Lock()


# When a process started (clock ticks since boot, Linux), to tell a reused pid apart: a killed
# bisector's pid may belong to another process by the time its leftovers are judged.
started = procs.start_time


def host_id() -> str:
    """This host's name, as it may appear in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def new_session() -> str:
    """A process's session id, `PID-TOKEN`: the pid says whose leftovers a sweep may remove,
    the token keeps two executors of one process apart."""
    return f"{os.getpid()}-{secrets.token_hex(3)}"


def worktree_name(session: str) -> str:
    """The directory of a session's worktree: `HOST-PID-TOKEN` (the session is `PID-TOKEN`)."""
    return f"{host_id()}-{session}"


# What lives beside a worktree `NAME`, named after it: the probes' virtual environment
# (--setup), their temporary files, and the record of the process group running now.
VENV, TMP, RECORD = ".venv", ".tmp", ".probe"
_BESIDE = (VENV, TMP, RECORD, RECORD + ".new")


def _stem(name: str) -> str:
    """The worktree name a file beside it belongs to (itself for the worktree)."""
    for suffix in _BESIDE:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _owner(name: str) -> tuple[str | None, str]:
    """(host, pid) a worktree's name gives; host None for a name without one (older versions)."""
    name = _stem(name)
    parts = name.rsplit("-", 2)
    if len(parts) == 3:
        return parts[0], parts[1]
    return None, name.split("-", 1)[0]


def sweep(repo: Repository) -> list[Path]:
    """Remove this host's worktrees whose owning process is gone (a `kill -9` leaves them),
    and what lies beside them; the processes their probes left running are ended first, so
    that no test goes on in a worktree removed from under it.

    Under the lock of git's work: two executors starting at once (the threads of a Dask
    worker) must not both remove the same worktree.
    """
    base = repo.main_root / WORKTREES
    removed = []
    ended: set[str] = set()
    with _GIT:
        if not base.is_dir():
            return removed
        host = host_id()
        for path in sorted(base.iterdir()):
            owner, pid = _owner(path.name)
            if (owner is not None and owner != host) or not pid.isdigit() or pid_alive(int(pid)):
                continue
            stem = _stem(path.name)
            if stem not in ended:  # the worktree's name sorts before what lies beside it
                ended.add(stem)
                procs.end_recorded(stem, base / (stem + RECORD))
            if path.name.endswith((TMP, RECORD, RECORD + ".new")):  # not counted
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    procs.forget(path)
                continue
            if path.name.endswith(VENV):
                shutil.rmtree(path, ignore_errors=True)
            else:
                repo.remove_worktree(path)
            removed.append(path)
    return removed


class Worktree:
    def __init__(self, repo: Repository, session: str,
                 extra_files: dict[str, bytes] | None = None) -> None:
        self.repo = repo
        self.extra_files = dict(extra_files or {})
        sweep(repo)
        self.path = repo.main_root / WORKTREES / worktree_name(session)
        self._checked_out = False
        # why the commit checked out last cannot be tested here (a submodule that is not in
        # the user's checkout), None when it can
        self.problem: str | None = None

    def checkout(self, sha: str) -> Path:
        with _GIT:
            return self._checkout(sha)

    def _checkout(self, sha: str) -> Path:
        if not self._checked_out:
            self.repo.ensure_excluded()  # whatever the store, worktrees live in .bisector/
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repo.add_worktree(self.path, sha)
            self._checked_out = True
        else:
            self.repo.checkout_worktree(self.path, sha)
        self.problem = self.repo.update_submodules(self.path)
        for rel, content in self.extra_files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return self.path

    def state(self) -> str:
        """`git status` of the checkout (see Repository.worktree_state)."""
        with _GIT:
            return self.repo.worktree_state(self.path)

    def close(self) -> None:
        with _GIT:
            if self.path.exists() or self._checked_out:
                self.repo.remove_worktree(self.path)
                self._checked_out = False
