"""A probe's processes: marked when started, found and ended as a whole tree (ADR 0011).

Every process a probe starts carries `BISECTOR_PROBE=<its worktree's name>` in its
environment, and children inherit it, even one that calls `setsid` and leaves the probe's
process group and session. Ending a probe kills its process group, then, on Linux, every
process whose environment carries the mark or whose parent chain leads to the probe, again
and again until a scan of /proc finds none (a process forking meanwhile is caught by the next
scan). The mark is what a sweep finds after a `kill -9` of bisector, when no parent is left
to walk from. A record file beside the worktree (`NAME.probe`: process group and its start
time) lets a sweep kill that group too, but only while the start time still matches, so a
reused pid is never killed.

Limits: a process that clears its environment *and* leaves the probe's parent chain (setsid
and double fork, e.g. `env -i setsid daemon`) is not found; without /proc (macOS, BSD) only
the process group is ended, and a sweep ends nothing it cannot tell from a reused pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MARK = "BISECTOR_PROBE"
PROC = Path("/proc")
# Scans before giving up on a tree that keeps forking (each scan kills what it finds).
_ROUNDS = 200


@dataclass(frozen=True, slots=True)
class _Proc:
    pid: int
    ppid: int
    pgid: int
    state: str


def _stat(pid: int) -> tuple[_Proc, str] | None:
    """(process, start time in clock ticks since boot) from /proc; None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return None
    return _Proc(pid, int(fields[1]), int(fields[2]), fields[0]), fields[19]


def start_time(pid: int) -> str | None:
    """When a process started, to tell it from a later one with its pid (None: unknown)."""
    found = _stat(pid)
    return found[1] if found else None


def _marked(pid: int, mark: bytes) -> bool:
    try:
        env = (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's: not ours to end
        return False
    return mark in env.split(b"\0")


def members(marker: str, roots: Iterable[int] = ()) -> set[int]:
    """Live processes of a probe: those carrying its mark, those in the process groups of
    `roots`, and every descendant of either. Empty without /proc."""
    if not PROC.is_dir():
        return set()
    mark = f"{MARK}={marker}".encode()
    table: dict[int, _Proc] = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None and found[0].state not in "ZX":  # a zombie needs no killing
                table[found[0].pid] = found[0]
    groups = set(roots)
    tree = {pid for pid, p in table.items() if p.pgid in groups or pid in groups}
    tree |= {pid for pid in table if _marked(pid, mark)}
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(tree)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    tree.discard(os.getpid())
    return tree


def end_tree(marker: str, group: int | None = None) -> None:
    """SIGKILL a probe's whole process tree: its group (`group`, the pid of a process this
    process started and has not reaped, so it cannot have been reused), then whatever a scan
    still finds, until a scan finds nothing."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    roots = [group] if group is not None else []
    for _ in range(_ROUNDS):
        found = members(marker, roots)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def record(path: Path, pid: int) -> None:
    """Write `NAME.probe`: the process group a probe runs now, for a sweep after `kill -9`."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(json.dumps({"pid": pid, "started": start_time(pid)}))
    os.replace(tmp, path)


def forget(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def end_recorded(marker: str, path: Path) -> None:
    """A sweep's end of a dead bisector's probe: its recorded process group, if that pid still
    is the process that was recorded (same start time), and every process with its mark."""
    group = None
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        saved = json.loads(path.read_text())
        pid, when = int(saved["pid"]), saved["started"]
        if when is not None and pid > 1 and start_time(pid) == str(when):
            group = pid
    end_tree(marker, group)
