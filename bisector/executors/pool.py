"""A round of probes at once (--jobs K): executors in threads of their own, K at a time.

Each executor has its own worktree (or container), so the probes of a round never share a
checkout. The threads only run tests; the caller records the results, in order, from its own
thread. Ctrl-C reaches the main thread only: it aborts every executor (the running probe's
process group is killed, the container stopped, and an executor still checking out or setting
up starts no process after that: its thread ends with ProbeAborted) and waits for the threads
before the executors are closed, so no probe outlives the bisection, and the wait is short.

A pool may own more executors than it runs at once (ADR 25: with --setup, two per slot), so
that the setups of the last rounds are still there when a probe of the same commit comes
again (the confirmation's re-runs of the culprit and its parent). A probe goes to the executor
holding its commit's setup; probes of one commit held by one executor run there one after
another, in one thread; the others go to the executor used least lately among those that do
not hold a commit the search said to keep (`keep`: its bounds, the last commit known to pass
and the first known to fail, which become the culprit's parent and the culprit).

A pool is itself an `Executor`: the finder cannot tell it from one executor with K slots.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from . import Executor, Probe, ProbeOutcome


class Pool:
    """Executors as one with `slots` probes at once (all of them by default); it owns them:
    leaving its context closes them all."""

    def __init__(self, executors: list[Executor], slots: int | None = None) -> None:
        if not executors:
            raise ValueError("a pool needs at least one executor")
        self.executors = executors
        self.slots = min(slots or len(executors), len(executors))
        # the round each executor last ran a probe in (0: never), for the least lately used
        self._last_used = [0] * len(executors)
        self._round = 0
        self._keep: frozenset[str] = frozenset()

    def run(self, probe: Probe) -> ProbeOutcome:
        return self.run_round([probe])[0]

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]:
        if len(probes) > self.slots:
            raise ValueError(f"{len(probes)} probes for {self.slots} slots")
        queues = self.assign(probes)
        self._round += 1
        for index in queues:
            self._last_used[index] = self._round
        outcomes: list[ProbeOutcome | None] = [None] * len(probes)

        def run_queue(index: int, positions: list[int]) -> None:
            for position in positions:
                outcomes[position] = self.executors[index].run(probes[position])

        if len(queues) == 1:
            [(index, positions)] = queues.items()
            run_queue(index, positions)
        else:
            threads = ThreadPoolExecutor(max_workers=len(queues), thread_name_prefix="probe")
            try:
                futures = [threads.submit(run_queue, index, positions)
                           for index, positions in queues.items()]
                for future in futures:
                    future.result()
            except BaseException:
                self.abort()
                raise
            finally:
                threads.shutdown(wait=True, cancel_futures=True)
        done = [outcome for outcome in outcomes if outcome is not None]
        if len(done) != len(probes):  # every queue ran to its end or raised: never here
            raise RuntimeError(f"{len(probes) - len(done)} probes of the round did not run")
        return done

    def assign(self, probes: list[Probe]) -> dict[int, list[int]]:
        """Which executor runs which probes (executor index -> positions in `probes`, in
        order): the holder of a probe's setup where one holds it, else the executor used
        least lately among those that hold nothing another probe of the round wants nor a
        commit to keep; failing that, among those that hold nothing the round wants; failing
        that, any idle one."""
        holders = [next((i for i, e in enumerate(self.executors) if e.holds(p)), None)
                   for p in probes]
        wanted = {h for h in holders if h is not None}
        kept = {i for i, e in enumerate(self.executors)
                if any(e.holds(Probe(sha, ())) for sha in self._keep)}
        queues: dict[int, list[int]] = {}
        everyone = range(len(self.executors))
        for position, holder in enumerate(holders):
            if holder is None:
                idle = [i for i in everyone if i not in queues]
                free = ([i for i in idle if i not in wanted and i not in kept]
                        or [i for i in idle if i not in wanted] or idle)
                holder = min(free, key=lambda i: (self._last_used[i], i))
            queues.setdefault(holder, []).append(position)
        return queues

    def keep(self, shas: Collection[str]) -> None:
        """The commits whose setups to keep while others can be replaced (until the next
        call): the search's bounds, which it will most likely probe again."""
        self._keep = frozenset(shas)

    def holds(self, probe: Probe) -> bool:
        return any(executor.holds(probe) for executor in self.executors)

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
