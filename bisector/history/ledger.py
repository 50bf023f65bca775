"""The nightly ledger: what each `bisector nightly` concluded, read by the next night so that a
regression already reported is carried as "still failing", not bisected again (ADR 0009)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from . import schema
from .engine import Database


def record_nightly(db: Database, *, branch: str, sha: str, run_id: int | None,
                   started_at: float, finished_at: float, status: str, exit_code: int,
                   ledger: dict[str, Any]) -> int:
    n = schema.nightlies
    with db.write() as conn:
        return int(conn.execute(n.insert().values(
            branch=branch, sha=sha, run_id=run_id, started_at=started_at,
            finished_at=finished_at, status=status, exit_code=exit_code,
            ledger=json.dumps(ledger),
        )).inserted_primary_key[0])


def nightlies(db: Database, branch: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The branch's nightly runs, newest first, each with its ledger decoded."""
    n = schema.nightlies
    # by start, not id: `import-history` may append an older night after a newer one
    query = (sa.select(n).where(n.c.branch == branch)
             .order_by(n.c.started_at.desc(), n.c.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        try:
            row["ledger"] = json.loads(row["ledger"])
        except (TypeError, ValueError):
            row["ledger"] = None  # unreadable: the caller says so and goes on without it
    return rows
