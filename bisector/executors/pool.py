"""A round of probes at once (--jobs K): one executor per probe, each in a thread of its own.

Each executor has its own worktree (or container), so the probes of a round never share a
checkout. The threads only run tests; the caller records the results, in order, from its own
thread. Ctrl-C reaches the main thread only: it aborts every executor (the running probe's
process group is killed, the container stopped, and an executor still checking out or setting
up starts no process after that: its thread ends with ProbeAborted) and waits for the threads
before the executors are closed, so no probe outlives the bisection, and the wait is short.

A pool is itself an `Executor`: the finder cannot tell it from one executor with K slots.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from . import Executor, Probe, ProbeOutcome


class Pool:
    """K executors as one; it owns them: leaving its context closes them all."""

    def __init__(self, executors: list[Executor]) -> None:
        if not executors:
            raise ValueError("a pool needs at least one executor")
        self.executors = executors

    def run(self, probe: Probe) -> ProbeOutcome:
        return self.executors[0].run(probe)

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]:
        if len(probes) > len(self.executors):
            raise ValueError(f"{len(probes)} probes for {len(self.executors)} executors")
        if len(probes) == 1:
            return [self.executors[0].run(probes[0])]
        threads = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="probe")
        try:
            futures = [threads.submit(executor.run, probe)
                       for executor, probe in zip(self.executors, probes, strict=False)]
            return [future.result() for future in futures]
        except BaseException:
            self.abort()
            raise
        finally:
            threads.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Abort every executor (from another thread too: Ctrl-C)."""
        for executor in self.executors:
            with contextlib.suppress(Exception):
                executor.abort()

    def env_key(self) -> str:
        """The executors' key: they are built alike, so the first one's is theirs."""
        return self.executors[0].env_key()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close every executor, the last made first, even when one fails to close."""
        with contextlib.ExitStack() as stack:
            for executor in self.executors:
                stack.push(executor.__exit__)
