"""The deterministic path of a bisection: bisect the range, follow a culprit merge into its
branch, confirm each isolated culprit. A test whose culprit is not confirmed is handed on to
the flake-aware search (`demoted`), with a note that says so."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Finding
from .conclude import confirm
from .context import Context
from .drive import bisect_range
from .ends import check_good_end
from .merges import into_merges
from .plan import Plan


@dataclass(frozen=True, slots=True)
class Deterministic:
    """What the deterministic path found: per test its finding, the tests a failed
    confirmation demoted to the flake-aware search, and what to tell the user, in order."""

    candidates: int
    findings: dict[str, Finding]
    demoted: tuple[str, ...]
    notes: tuple[str, ...]


def search_live(ctx: Context, live: list[str], plan: Plan, line: list[str]) -> Deterministic:
    """Search, check a deferred good end the search ended on, follow merges (first-parent
    mode only), confirm."""
    searched = bisect_range(ctx, live, plan.good, plan.bad, plan.first_parent)
    notes = list(searched.notes)
    suspects, merged_by = searched.suspects, {}
    demoted: list[str] = []
    # the first candidate suspected, the good end never run (ADR 26): run it now, before
    # its runs are read as the culprit's parent's
    at_first = [t for t in live if suspects[t][:1] == (searched.first,)
                and ctx.evidence.latest(t, plan.good) is None]
    if at_first:
        split = check_good_end(ctx, at_first, plan.good, plan.bad, line)
        notes += split.notes
        demoted += split.flaky
        live = [t for t in live if t not in at_first or t in split.live]
    if plan.first_parent:
        merged = into_merges(ctx, live, suspects)
        suspects, merged_by = merged.suspects, merged.merged_by
        notes += merged.notes
    findings: dict[str, Finding] = {}
    for f in confirm(ctx, live, suspects, merged_by):
        if f.culprit is not None and not f.confirmed:
            notes.append(f"{f.nodeid}: {f.culprit.short} was not confirmed ({f.note}); "
                         "searched again as a flaky test")
            demoted.append(f.nodeid)
        else:
            findings[f.nodeid] = f
    return Deterministic(searched.candidates, findings, tuple(demoted), tuple(notes))
