"""Whether a process id is still running: the one check every "left behind by whom?" sweep uses.

A bisection claim, a worktree and a container all record the pid of the process that made
them; a later start removes what a dead process left. The check lives here, below history and
executors, so both ask the same question the same way.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when `pid` runs on this host (someone else's process counts: it is not ours to
    sweep); False for a dead, impossible or unreachable pid."""
    if pid <= 0:  # 0 and negatives address process groups, never one process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True
