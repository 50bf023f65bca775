"""Executors run a probe (a commit and the tests to run there) and return its results.

An executor never decides what a result means for the search; untestable outcomes are
reported as such (missing test, collection error, setup failure, timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Environment, TestResult


@dataclass(frozen=True, slots=True)
class Probe:
    sha: str
    nodeids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    probe: Probe
    results: dict[str, TestResult]
    environment: Environment
    started_at: float
    finished_at: float
    exit_status: int | None
    problem: str | None = None  # why the whole probe was untestable, if it was
    log: str = field(default="", repr=False)
    # where it ran, when not on this host (a Dask worker): recorded as the run's host
    host: str | None = None


class ProbeAborted(Exception):
    """The probe was aborted (Ctrl-C, or the Dask client gave up on it): not a result.

    An executor whose `abort()` was called raises this before it would start another process
    or container, so a thread still checking out or setting up ends at once instead of running
    a probe nobody waits for.
    """
