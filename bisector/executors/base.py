"""What every executor of one probe at a time shares: the abort flag, the round run one probe
after another, the context manager, the "another experiment" fingerprint, the end of a probe.

The local and the Docker executor each had their own copy of these; a third executor (or a
probe with a patch, see DESIGN.md) starts from this class instead of a fourth copy.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Self

from ..model import Environment, TestResult
from . import PATCH_REFUSED, Probe, ProbeAborted, ProbeOutcome, fill_untestable, unreported

# Characters of a probe's output an untestable result keeps as its traceback: the end of the
# output is where pytest, pip or a setup command says what went wrong.
OUTPUT_TAIL = 2000


def experiment_key(setup: str | None, extra_files: Mapping[str, bytes],
                   pytest_args: tuple[str, ...]) -> str:
    """The part of the environment key a probe's set-up adds: "" for a plain run of the commit.

    A probe with a setup command, files laid over its checkout (--test-file) or pytest options
    (--pytest-arg) is another experiment than a plain run: it gets its own key, so neither
    stands in for the other in the store.
    """
    if not (setup or extra_files or pytest_args):
        return ""
    digest = hashlib.sha256((setup or "").encode())
    for rel, content in sorted(extra_files.items()):
        digest.update(b"\0" + rel.encode() + b"\0" + content)
    if pytest_args:  # absent, the key stays what it was before the option existed
        digest.update(b"\0pytest-args\0" + "\0".join(pytest_args).encode())
    return digest.hexdigest()[:16]


def output_tail(log: str, root: str | None = None) -> str | None:
    """The end of a probe's output, as an untestable result's traceback; None for no output.

    `root` (the probe's checkout) is taken out of paths, as `pytest_reason` does: they differ
    per probe, and two probes failing the same way should read the same.
    """
    if root:
        log = log.replace(root.rstrip("/") + "/", "")
    log = log.strip()
    return log[-OUTPUT_TAIL:] if log else None


def finish(probe: Probe, results: dict[str, TestResult], environment: Environment,
           started: float, status: int | None, problem: str | None, log: str = "", *,
           root: str | None = None, phase: str = "collect") -> ProbeOutcome:
    """A probe's outcome: every asked test with a result (the ones not reported untestable,
    carrying the tail of the output), timed now."""
    fill_untestable(results, unreported(probe, results), problem, phase=phase,
                    traceback=output_tail(log, root))
    return ProbeOutcome(probe, results, environment, started, time.time(), status, problem, log)


def apply_probe_patch(tree: Path, probe: Probe) -> str | None:
    """Apply the probe's patch in its checkout (freshly moved to probe.sha): None when it
    applied (or there is none), else the reason the probe is untestable. A patch that does
    not apply is an unresolved subset for the isolation, never a failure of the tests."""
    if probe.patch is None:
        return None
    from ..hunks import apply_patch

    applied = apply_patch(tree, probe.patch.text, reverse=probe.patch.reverse,
                          zero_context=probe.patch.zero_context)
    return None if applied.ok else f"{PATCH_REFUSED}: {applied.detail}"


class AbortMark:
    """Set by abort(), never cleared: checked before anything starts a process or container.

    One mark may be shared (a Docker executor and the runner of its containers), so that
    whichever object is asked, an aborted bisection starts nothing more.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """ProbeAborted once the mark is set."""
        if self._event.is_set():
            raise ProbeAborted("the probe was aborted")


class BaseExecutor:
    """An executor with one slot: `run` one probe, `run_round` runs its probes in turn.

    `abort()` may come from another thread (Ctrl-C): it sets a mark that is never cleared
    (the bisection ends after an abort) and stops what runs now (`_stop_running`). Before a
    process or a container starts, `check_aborted()` raises ProbeAborted, so a thread still
    checking out or setting up starts nothing nobody waits for.
    """

    def __init__(self) -> None:
        self.abort_mark = AbortMark()

    def run(self, probe: Probe) -> ProbeOutcome:
        raise NotImplementedError

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]:
        return [self.run(probe) for probe in probes]

    def env_key(self) -> str:
        raise NotImplementedError

    def holds(self, probe: Probe) -> bool:
        """Whether a probe of this commit would reuse what this executor set up last (ADR 25):
        never, unless an executor says otherwise."""
        return False

    def keep(self, shas: Collection[str]) -> None:
        """A hint for where setups are kept (a pool's): one executor keeps only its last."""

    def abort(self) -> None:
        """Stop the probe running now, and start no other."""
        self.abort_mark.set()
        self._stop_running()

    def _stop_running(self) -> None:
        """Kill what the running probe started (a process tree, a container)."""

    @property
    def aborted(self) -> bool:
        return self.abort_mark.is_set()

    def check_aborted(self) -> None:
        self.abort_mark.check()

    def close(self) -> None:
        """Remove what this executor made (its worktree, its containers)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
