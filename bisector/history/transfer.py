"""Copy one history store into another (SQLite <-> PostgreSQL, or any two), without loss.

Every row is carried: commits, tests, runs, results, bisections and probes. Ids are the
target's own (its sequences stay valid), so references are remapped: a test by its node id, a
run by all of its columns but the id, a bisection by its key and start time. What the target
already holds is matched, not copied again, so a second copy adds nothing and an interrupted
one is finished by running it again (each batch of runs lands with its results, in one
transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ..errors import StoreError
from . import schema
from .store import HistoryStore, _chunks

# A run has no natural key of its own: all of its columns but the id are its identity.
RUN_FIELDS = (
    "sha", "dirty", "branch", "env_key", "fingerprint", "python", "platform", "deps_hash",
    "trigger", "host", "started_at", "finished_at", "exit_status",
)
BISECTION_FIELDS = tuple(c.name for c in schema.bisections.columns if c.name != "id")
RESULT_FIELDS = (
    "run_id", "test_id", "outcome", "duration", "signature", "message", "reruns", "phase",
)
_PAGE = 1000


@dataclass
class Copied:
    """Rows added to the target; `present_*` were there already (a re-run adds nothing)."""

    commits: int = 0
    tests: int = 0
    runs: int = 0
    results: int = 0
    bisections: int = 0
    probes: int = 0
    present_runs: int = 0
    present_bisections: int = 0
    renamed_running: int = 0  # running in both under one key: the copy is kept as abandoned

    def summary(self) -> str:
        text = (f"{self.runs} runs ({self.results} results), {self.commits} commits, "
                f"{self.tests} tests, {self.bisections} bisections ({self.probes} probes)")
        if self.present_runs or self.present_bisections:
            text += (f"; already there: {self.present_runs} runs, "
                     f"{self.present_bisections} bisections")
        if self.renamed_running:
            text += (f"; {self.renamed_running} running bisection(s) also open in the target "
                     "were copied as abandoned")
        return text


def same_store(a: str, b: str) -> bool:
    try:
        ua, ub = sa.engine.make_url(a), sa.engine.make_url(b)
    except exc.ArgumentError:
        return a == b
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite":
        pa, pb = ua.database or "", ub.database or ""
        if pa in ("", ":memory:") or pb in ("", ":memory:"):
            return False
        return Path(pa).resolve() == Path(pb).resolve()
    keep = ("drivername", "host", "port", "database")
    return all(getattr(ua.set(drivername=ua.get_backend_name()), k)
               == getattr(ub.set(drivername=ub.get_backend_name()), k) for k in keep)


def copy_history(source: HistoryStore, target: HistoryStore, *,
                 batch: int = 200, progress: Callable[[str], None] | None = None) -> Copied:
    """Copy everything in `source` that `target` lacks; returns what was added."""
    if same_store(source.url, target.url):
        raise StoreError(f"{source.location} is both the source and the target",
                         hint="give two different stores")
    say = progress or (lambda _m: None)
    copied = Copied()
    copied.commits = _copy_commits(source, target)
    tests = _copy_tests(source, target, copied)
    say(f"{copied.commits} commits and {copied.tests} tests copied; copying runs")
    runs = _copy_runs(source, target, tests, copied, batch, say)
    bisections = _copy_bisections(source, target, copied)
    _copy_probes(source, target, runs, bisections, copied)
    return copied


def _pages(store: HistoryStore, table: sa.Table, key: str, size: int = _PAGE
           ) -> Iterator[list[sa.Row[Any]]]:
    """All rows of a table in key order, a page per read transaction (keyset paging)."""
    column = table.c[key]
    last: Any = None
    while True:
        query = sa.select(table).order_by(column).limit(size)
        if last is not None:
            query = query.where(column > last)
        with store._read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = getattr(rows[-1], key)


def _copy_commits(source: HistoryStore, target: HistoryStore) -> int:
    c = schema.commits
    added = 0
    for page in _pages(source, c, "sha"):
        rows = [dict(row._mapping) for row in page]
        with target._write() as conn:
            have = set(conn.execute(
                sa.select(c.c.sha).where(c.c.sha.in_([r["sha"] for r in rows]))).scalars())
            missing = [r for r in rows if r["sha"] not in have]
            target._put_missing(conn, c, "sha", missing)
        added += len(missing)
    return added


def _copy_tests(source: HistoryStore, target: HistoryStore, copied: Copied) -> dict[int, int]:
    """source test id -> target test id."""
    t = schema.tests
    out: dict[int, int] = {}
    for page in _pages(source, t, "id"):
        with target._write() as conn:
            names = [row.nodeid for row in page]
            have = dict(conn.execute(
                sa.select(t.c.nodeid, t.c.id).where(t.c.nodeid.in_(names))).all())
            missing = [{"nodeid": row.nodeid, "file": row.file} for row in page
                       if row.nodeid not in have]
            target._put_missing(conn, t, "nodeid", missing)
            if missing:
                have.update(conn.execute(sa.select(t.c.nodeid, t.c.id).where(
                    t.c.nodeid.in_([m["nodeid"] for m in missing]))).all())
        copied.tests += len(missing)
        out.update((row.id, have[row.nodeid]) for row in page)
    return out


def _run_key(row: Any) -> tuple[Any, ...]:
    m = row._mapping
    return tuple(bool(m[f]) if f == "dirty" else m[f] for f in RUN_FIELDS)


def _copy_runs(source: HistoryStore, target: HistoryStore, tests: dict[int, int],
               copied: Copied, batch: int, say: Callable[[str], None]) -> dict[int, int]:
    """source run id -> target run id; new runs land with their results, a batch at a time."""
    r, res = schema.runs, schema.results
    out: dict[int, int] = {}
    for page in _pages(source, r, "id", batch):
        with target._write() as conn:
            existing: dict[tuple[Any, ...], int] = {}
            for chunk in _chunks(sorted({row.sha for row in page})):
                for row in conn.execute(sa.select(r).where(r.c.sha.in_(chunk))):
                    existing.setdefault(_run_key(row), row.id)
            new: list[Any] = []
            for row in page:
                found = existing.get(_run_key(row))
                if found is None:
                    values = {f: row._mapping[f] for f in RUN_FIELDS}
                    found = conn.execute(r.insert().values(**values)).inserted_primary_key[0]
                    existing[_run_key(row)] = found
                    new.append(row.id)
                else:
                    copied.present_runs += 1
                out[row.id] = int(found)
            if new:
                with source._read() as sconn:
                    results = [
                        (out[x.run_id], tests[x.test_id], *x[2:])
                        for chunk in _chunks(new)
                        for x in sconn.execute(sa.select(*(res.c[f] for f in RESULT_FIELDS))
                                               .where(res.c.run_id.in_(chunk)))
                    ]
                target._bulk_insert(conn, res, RESULT_FIELDS, results)
                copied.runs += len(new)
                copied.results += len(results)
        say(f"runs: {copied.runs} copied, {copied.present_runs} already there")
    return out


def _copy_bisections(source: HistoryStore, target: HistoryStore, copied: Copied
                     ) -> dict[int, int]:
    b = schema.bisections
    out: dict[int, int] = {}
    with source._read() as conn:
        rows = conn.execute(sa.select(b).order_by(b.c.id)).all()
    with target._write() as conn:
        existing = {(row.key, row.started_at): (row.id, row.status)
                    for row in conn.execute(sa.select(b.c.id, b.c.key, b.c.started_at,
                                                      b.c.status))}
        for row in rows:
            values = {f: row._mapping[f] for f in BISECTION_FIELDS}
            found = existing.get((row.key, row.started_at))
            if found is not None:
                copied.present_bisections += 1
                tid, status = found
                if status == "running" and row.status != "running":  # finished since then
                    conn.execute(b.update().where(b.c.id == tid).values(**values))
                out[row.id] = tid
                continue
            try:
                with conn.begin_nested():
                    tid = conn.execute(b.insert().values(**values)).inserted_primary_key[0]
            except exc.IntegrityError:  # the target runs an attempt of this key itself
                values["status"] = "abandoned"
                tid = conn.execute(b.insert().values(**values)).inserted_primary_key[0]
                copied.renamed_running += 1
            out[row.id] = int(tid)
            copied.bisections += 1
    return out


def _copy_probes(source: HistoryStore, target: HistoryStore, runs: dict[int, int],
                 bisections: dict[int, int], copied: Copied) -> None:
    p = schema.probes
    with source._read() as conn:
        rows = [
            {"bisection_id": bisections[x.bisection_id], "run_id": runs[x.run_id],
             "sha": x.sha, "purpose": x.purpose}
            for x in conn.execute(sa.select(p).order_by(p.c.bisection_id, p.c.run_id))
        ]
    if not rows:
        return
    with target._write() as conn:
        have = {tuple(row) for row in conn.execute(sa.select(p.c.bisection_id, p.c.run_id))}
        missing = [x for x in rows if (x["bisection_id"], x["run_id"]) not in have]
        if missing:
            conn.execute(p.insert(), missing)
    copied.probes = len(missing)
