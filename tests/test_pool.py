"""Where a pool runs each probe (executors/pool.py): at the executor holding its commit's
setup, else at the one used least lately, never more at once than its slots (ADR 25)."""

from __future__ import annotations

import threading
import time

import pytest

from bisector.executors import Probe, ProbeOutcome
from bisector.executors.base import BaseExecutor
from bisector.executors.pool import Pool
from bisector.model import Environment


class Station(BaseExecutor):
    """An executor that holds the commit it ran last and notes what it ran, and when."""

    def __init__(self, name: str, log: list[tuple[str, str, float, float]]) -> None:
        super().__init__()
        self.name, self.log, self.held = name, log, None
        self.lock = threading.Lock()

    def holds(self, probe: Probe) -> bool:
        return probe.sha == self.held

    def run(self, probe: Probe) -> ProbeOutcome:
        start = time.monotonic()
        time.sleep(0.05)
        self.held = probe.sha
        with self.lock:
            self.log.append((self.name, probe.sha, start, time.monotonic()))
        return ProbeOutcome(probe, {}, ENV, start, time.monotonic(), 0)

    def env_key(self) -> str:
        return "k"


ENV = Environment("3.11", "linux", "0", "k", "f")


def _pool(n: int, slots: int) -> tuple[Pool, list[tuple[str, str, float, float]]]:
    log: list[tuple[str, str, float, float]] = []
    return Pool([Station(f"e{i}", log) for i in range(n)], slots), log


def _ran(log: list[tuple[str, str, float, float]]) -> list[tuple[str, str]]:
    return sorted((name, sha) for name, sha, _, _ in log)


def test_a_held_commit_goes_back_to_its_holder_and_the_rest_to_the_least_lately_used() -> None:
    pool, log = _pool(4, 2)
    pool.run_round([Probe("a", ()), Probe("b", ())])
    pool.run_round([Probe("c", ()), Probe("d", ())])
    assert _ran(log) == [("e0", "a"), ("e1", "b"), ("e2", "c"), ("e3", "d")]
    log.clear()
    # b is held by e1; e0 was used least lately and holds nothing this round wants
    outcomes = pool.run_round([Probe("e", ()), Probe("b", ())])
    assert [o.probe.sha for o in outcomes] == ["e", "b"], "outcomes in the order asked"
    assert _ran(log) == [("e0", "e"), ("e1", "b")]


def test_probes_of_one_held_commit_run_one_after_another_at_its_holder() -> None:
    pool, log = _pool(4, 2)
    pool.run_round([Probe("a", ()), Probe("b", ())])
    log.clear()
    outcomes = pool.run_round([Probe("a", ()), Probe("a", ())])
    assert [o.probe.sha for o in outcomes] == ["a", "a"]
    assert [(name, sha) for name, sha, _, _ in log] == [("e0", "a"), ("e0", "a")]
    (_, _, _, first_end), (_, _, second_start, _) = log
    assert second_start >= first_end


def test_an_unheld_probe_does_not_take_a_checkout_another_probe_of_its_round_wants() -> None:
    pool, log = _pool(2, 2)
    pool.run_round([Probe("a", ()), Probe("b", ())])  # e0 holds a, e1 holds b
    log.clear()
    pool.run_round([Probe("c", ()), Probe("b", ())])
    assert _ran(log) == [("e0", "c"), ("e1", "b")]


def test_unheld_probes_of_a_round_run_at_once() -> None:
    pool, log = _pool(4, 2)
    pool.run_round([Probe("a", ()), Probe("a", ())])
    (_, _, start_0, end_0), (_, _, start_1, end_1) = log
    assert {name for name, *_ in log} == {"e0", "e1"}, "not held yet: built at once, twice"
    assert start_1 < end_0 and start_0 < end_1


def test_a_round_larger_than_the_slots_is_refused() -> None:
    pool, _ = _pool(4, 2)
    with pytest.raises(ValueError, match="3 probes for 2 slots"):
        pool.run_round([Probe("a", ()), Probe("b", ()), Probe("c", ())])


def test_a_commit_to_keep_keeps_its_checkout_over_the_least_lately_used() -> None:
    pool, log = _pool(4, 2)
    pool.run_round([Probe("good", ()), Probe("bad", ())])
    pool.run_round([Probe("c", ()), Probe("d", ())])
    log.clear()
    # the search's bounds: e0 (good) was used least lately but holds a commit to keep
    pool.keep({"good", "d"})
    pool.run_round([Probe("e", ()), Probe("f", ())])
    assert _ran(log) == [("e1", "e"), ("e2", "f")]
    log.clear()
    pool.keep({"good", "d", "e", "f"})  # more to keep than checkouts left: least lately used
    pool.run_round([Probe("g", ()), Probe("h", ())])
    assert _ran(log) == [("e0", "g"), ("e3", "h")]
