"""The bisection's journal row: started (or resumed) before the first probe, and marked done,
failed or interrupted at the end, so that the same bisection run again resumes from what its
probes stored (ADR 0003)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..history import HistoryStore
from ..model import BisectResult
from ..progress import Progress
from .plan import Plan
from .prober import Prober


@dataclass(frozen=True, slots=True)
class Journal:
    """One bisection's row in the store, and the note a resumed one starts with."""

    store: HistoryStore
    journal_id: int
    notes: tuple[str, ...]

    @classmethod
    def start(cls, store: HistoryStore, plan: Plan, env_key: str, prober: Prober,
              progress: Progress) -> Journal:
        """The row of this plan, new or an interrupted one resumed; the prober journals into
        it from now on (the probes it recorded before go in first)."""
        journal_id, resumed = store.start_bisection(
            plan.journal_key(env_key), plan.good, plan.bad, list(plan.tests), plan.mode,
            time.time())
        prober.attach(journal_id)
        notes: tuple[str, ...] = ()
        if resumed:
            notes = (f"resumed an interrupted bisection: {resumed} of its probes are reused",)
            progress.note(f"resuming: {resumed} probes of an interrupted run are in the store")
        return cls(store, journal_id, notes)

    @contextlib.contextmanager
    def failing(self) -> Iterator[None]:
        """Marks the row interrupted (Ctrl-C, SIGTERM: the next run resumes it) or failed
        when the bisection raises, then lets the exception through."""
        try:
            yield
        except KeyboardInterrupt:
            # a store that cannot be written now leaves the row running, resumed all the same
            with contextlib.suppress(Exception):
                self.store.finish_bisection(self.journal_id, "interrupted",
                                            {"error": "interrupted"}, time.time())
            raise
        except BaseException as exc:
            self.store.finish_bisection(self.journal_id, "failed", {"error": str(exc)},
                                        time.time())
            raise

    def done(self, result: BisectResult) -> None:
        """The answer per test: its culprit's sha, or the commits still suspected."""
        self.store.finish_bisection(self.journal_id, "done", {
            t.nodeid: (t.culprit.sha if t.culprit else list(t.suspects))
            for t in result.findings
        }, time.time())
