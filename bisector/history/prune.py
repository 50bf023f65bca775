"""Pruning old runs (`bisector gc --keep`): never what an open bisection still needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa

from . import schema
from .engine import Database, chunks
from .journal import OPEN_STATUSES


class Pruned(NamedTuple):
    """What `prune` removed, and the runs it kept because an open bisection uses them."""

    runs: int
    results: int
    probes: int
    kept: dict[int, int]  # open bisection id -> runs kept for it


def prune(db: Database, shas: Iterable[str], *,
          protected: dict[int, set[str]] | None = None) -> Pruned:
    """Remove the runs on these commits, with their results and the probe rows that point
    at them, in one transaction; commits, tests and the bisections themselves stay.

    Never removed: a run an open (running) bisection uses, that is one of its probes or a
    run on one of the commits `protected[bisection id]` names (its range, read from git by
    the caller). Those are counted in `Pruned.kept`.
    """
    r, res, p = schema.runs, schema.results, schema.probes
    with db.write() as conn:
        candidates: dict[int, str] = {}
        for chunk in chunks(sorted(set(shas))):
            candidates.update(conn.execute(
                sa.select(r.c.id, r.c.sha).where(r.c.sha.in_(chunk))).all())
        kept, spared = _spared(conn, candidates, protected or {})
        doomed = sorted(set(candidates) - spared)
        removed_probes = removed_results = 0
        for chunk in chunks(doomed):
            removed_probes += conn.execute(p.delete().where(p.c.run_id.in_(chunk))).rowcount
            removed_results += conn.execute(
                res.delete().where(res.c.run_id.in_(chunk))).rowcount
            conn.execute(r.delete().where(r.c.id.in_(chunk)))
    return Pruned(len(doomed), removed_results, removed_probes, kept)


def _spared(conn: sa.Connection, candidates: dict[int, str],
            protected: dict[int, set[str]]) -> tuple[dict[int, int], set[int]]:
    """Of the candidate runs (id -> sha), those an open bisection uses: (open bisection id ->
    how many it keeps, every run kept)."""
    p, b = schema.probes, schema.bisections
    open_ids = list(conn.execute(
        sa.select(b.c.id).where(b.c.status.in_(OPEN_STATUSES)).order_by(b.c.id)).scalars())
    used: dict[int, set[int]] = {bid: set() for bid in open_ids}
    if open_ids:
        for bid, run_id in conn.execute(
                sa.select(p.c.bisection_id, p.c.run_id).where(p.c.bisection_id.in_(open_ids))):
            used[bid].add(run_id)
    kept: dict[int, int] = {}
    spared: set[int] = set()
    for bid in open_ids:
        shas_used = protected.get(bid, set())
        mine = {rid for rid, sha in candidates.items() if rid in used[bid] or sha in shas_used}
        if mine:
            kept[bid] = len(mine)
            spared |= mine
    return kept, spared
