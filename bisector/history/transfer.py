"""Copy one history store into another (SQLite <-> PostgreSQL, or any two), without loss.

Every row is carried: commits, tests, runs, results, bisections, probes and the nightly
ledger. Ids are the
target's own (its sequences stay valid), so references are remapped: a test by its node id, a
run by all of its columns but the id, a bisection by its key and start time. What the target
already holds is matched, not copied again, so a second copy adds nothing and an interrupted
one is finished by running it again (each batch of runs lands with its results, in one
transaction). Runs are matched as a multiset: two runs alike in every column (two JUnit
imports of one commit in the same second) are two runs, and the target needs two.

The source may be written to meanwhile: the copy takes what was there when it began (rows up
to the highest run, test and bisection ids read first); a probe of a run or bisection added
since is left for the next copy, and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ..config import redact_text
from ..errors import BisectorError, StoreError
from . import schema
from .engine import CHUNK as _PAGE  # IN-lists under SQLite's old limit of 999 variables
from .engine import chunks as _chunks
from .runs import RESULT_COLUMNS as RESULT_FIELDS
from .runs import bulk_insert, put_missing
from .store import HistoryStore

# A run has no natural key of its own: all of its columns but the id are its identity.
RUN_FIELDS = tuple(c.name for c in schema.runs.columns if c.name != "id")
BISECTION_FIELDS = tuple(c.name for c in schema.bisections.columns if c.name != "id")


@dataclass
class Copied:
    """Rows added to the target; `present_*` were there already (a re-run adds nothing)."""

    commits: int = 0
    tests: int = 0
    runs: int = 0
    results: int = 0
    bisections: int = 0
    probes: int = 0
    nightlies: int = 0
    present_runs: int = 0
    present_bisections: int = 0
    renamed_running: int = 0  # running in both under one key: the copy is kept as abandoned
    skipped_probes: int = 0  # of a run or bisection added to the source during the copy

    def summary(self) -> str:
        text = (f"{self.runs} runs ({self.results} results), {self.commits} commits, "
                f"{self.tests} tests, {self.bisections} bisections ({self.probes} probes)")
        if self.nightlies:
            text += f", {self.nightlies} nightly reports"
        if self.present_runs or self.present_bisections:
            text += (f"; already there: {self.present_runs} runs, "
                     f"{self.present_bisections} bisections")
        if self.renamed_running:
            text += (f"; {self.renamed_running} running bisection(s) also open in the target "
                     "were copied as abandoned")
        if self.skipped_probes:
            text += (f"; {self.skipped_probes} probe(s) of runs or bisections added during the "
                     "copy were left for the next one")
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
    try:
        upto = _high_ids(source)
        copied.commits = _copy_commits(source, target)
        tests = _copy_tests(source, target, copied, upto["tests"])
        say(f"{copied.commits} commits and {copied.tests} tests copied; copying runs")
        runs = _copy_runs(source, target, tests, copied, batch, say, upto["runs"])
        bisections = _copy_bisections(source, target, copied, upto["bisections"])
        _copy_probes(source, target, runs, bisections, copied)
        _copy_nightlies(source, target, runs, copied)
    except BisectorError:
        raise
    except Exception as err:  # a bug, or a row no rule foresaw: one line, not a traceback
        detail = redact_text(f"{type(err).__name__}: {err}", source.url, target.url)
        raise StoreError(
            f"copying {source.location} to {target.location} failed ({detail})",
            hint="what was copied is kept; run the command again to finish the copy",
            location=target.location,
        ) from err
    return copied


def _high_ids(source: HistoryStore) -> dict[str, int]:
    """The highest run, test and bisection ids in the source, read at once: the copy takes
    those rows and none added after (a moving source would leave its id maps behind)."""
    tables = {"runs": schema.runs, "tests": schema.tests, "bisections": schema.bisections}
    with source.db.read() as conn:
        return {name: int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0)
                for name, t in tables.items()}


def _pages(store: HistoryStore, table: sa.Table, key: str, size: int = _PAGE,
           upto: Any = None) -> Iterator[list[sa.Row[Any]]]:
    """The rows of a table in key order (up to `upto`, when given), a page per read
    transaction (keyset paging)."""
    column = table.c[key]
    last: Any = None
    while True:
        query = sa.select(table).order_by(column).limit(size)
        if upto is not None:
            query = query.where(column <= upto)
        if last is not None:
            query = query.where(column > last)
        with store.db.read() as conn:
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
        with target.db.write() as conn:
            have = set(conn.execute(
                sa.select(c.c.sha).where(c.c.sha.in_([r["sha"] for r in rows]))).scalars())
            missing = [r for r in rows if r["sha"] not in have]
            put_missing(conn, c, "sha", missing)
        added += len(missing)
    return added


def _copy_tests(source: HistoryStore, target: HistoryStore, copied: Copied, upto: int
                ) -> dict[int, int]:
    """source test id -> target test id."""
    out: dict[int, int] = {}
    for page in _pages(source, schema.tests, "id", upto=upto):
        _put_tests(target, page, out, copied)
    return out


def _put_tests(target: HistoryStore, rows: Sequence[Any], out: dict[int, int],
               copied: Copied) -> None:
    """Add these source tests to the target when it lacks them, and to `out`."""
    t = schema.tests
    with target.db.write() as conn:
        names = [row.nodeid for row in rows]
        have = dict(conn.execute(
            sa.select(t.c.nodeid, t.c.id).where(t.c.nodeid.in_(names))).all())
        missing = [{"nodeid": row.nodeid, "file": row.file} for row in rows
                   if row.nodeid not in have]
        put_missing(conn, t, "nodeid", missing)
        if missing:
            have.update(conn.execute(sa.select(t.c.nodeid, t.c.id).where(
                t.c.nodeid.in_([m["nodeid"] for m in missing]))).all())
    copied.tests += len(missing)
    out.update((row.id, have[row.nodeid]) for row in rows)


def _more_tests(source: HistoryStore, target: HistoryStore, ids: set[int],
                tests: dict[int, int], copied: Copied) -> None:
    """Tests a run's results use that the test phase did not see: on PostgreSQL a run with
    a lower id than the highest read may commit later, with tests added after that read."""
    t = schema.tests
    wanted = sorted(ids - tests.keys())
    for chunk in _chunks(wanted):
        with source.db.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.id.in_(chunk))).all()
        _put_tests(target, rows, tests, copied)


def _run_key(row: Any) -> tuple[Any, ...]:
    m = row._mapping
    return tuple(bool(m[f]) if f == "dirty" else m[f] for f in RUN_FIELDS)


def _copy_runs(source: HistoryStore, target: HistoryStore, tests: dict[int, int],
               copied: Copied, batch: int, say: Callable[[str], None], upto: int
               ) -> dict[int, int]:
    """source run id -> target run id; new runs land with their results, a batch at a time.

    Runs alike in every column are matched as a multiset: each target run stands for one
    source run at most (`taken`), so n alike in the source need n in the target."""
    r, res = schema.runs, schema.results
    out: dict[int, int] = {}
    taken: set[int] = set()  # target runs already standing for a source run
    for page in _pages(source, r, "id", batch, upto=upto):
        new: list[Any] = []
        with source.db.read() as sconn:
            found_results = [
                x for chunk in _chunks([row.id for row in page])
                for x in sconn.execute(sa.select(*(res.c[f] for f in RESULT_FIELDS))
                                       .where(res.c.run_id.in_(chunk)))
            ]
        _more_tests(source, target, {x.test_id for x in found_results}, tests, copied)
        with target.db.write() as conn:
            existing: dict[tuple[Any, ...], list[int]] = {}
            for chunk in _chunks(sorted({row.sha for row in page})):
                for row in conn.execute(
                        sa.select(r).where(r.c.sha.in_(chunk)).order_by(r.c.id)):
                    if row.id not in taken:
                        existing.setdefault(_run_key(row), []).append(row.id)
            for row in page:
                alike = existing.get(_run_key(row))
                if alike:
                    found = alike.pop(0)
                    copied.present_runs += 1
                else:
                    values = {f: row._mapping[f] for f in RUN_FIELDS}
                    found = conn.execute(r.insert().values(**values)).inserted_primary_key[0]
                    new.append(row.id)
                taken.add(int(found))
                out[row.id] = int(found)
            if new:
                wanted = set(new)
                results = [(out[x.run_id], tests[x.test_id], *x[2:])
                           for x in found_results if x.run_id in wanted]
                bulk_insert(conn, res, RESULT_FIELDS, results)
                copied.runs += len(new)
                copied.results += len(results)
        say(f"runs: {copied.runs} copied, {copied.present_runs} already there")
    return out


def _copy_bisections(source: HistoryStore, target: HistoryStore, copied: Copied, upto: int
                     ) -> dict[int, int]:
    b = schema.bisections
    out: dict[int, int] = {}
    with source.db.read() as conn:
        rows = conn.execute(sa.select(b).where(b.c.id <= upto).order_by(b.c.id)).all()
    with target.db.write() as conn:
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
    rows = []
    with source.db.read() as conn:
        for x in conn.execute(sa.select(p).order_by(p.c.bisection_id, p.c.run_id)):
            if x.bisection_id not in bisections or x.run_id not in runs:
                copied.skipped_probes += 1  # added during the copy: the next one takes it
                continue
            rows.append({"bisection_id": bisections[x.bisection_id], "run_id": runs[x.run_id],
                         "sha": x.sha, "purpose": x.purpose})
    if not rows:
        return
    with target.db.write() as conn:
        have = {tuple(row) for row in conn.execute(sa.select(p.c.bisection_id, p.c.run_id))}
        missing = [x for x in rows if (x["bisection_id"], x["run_id"]) not in have]
        if missing:
            conn.execute(p.insert(), missing)
    copied.probes = len(missing)


def _copy_nightlies(source: HistoryStore, target: HistoryStore, runs: dict[int, int],
                    copied: Copied) -> None:
    """The nightly ledger, matched by branch, commit and start; its run id remapped (None when
    the run was pruned or added after the copy began: the ledger stands without it)."""
    n = schema.nightlies
    fields = [c.name for c in n.columns if c.name != "id"]
    with source.db.read() as conn:
        rows = conn.execute(sa.select(n).order_by(n.c.id)).all()
    if not rows:
        return
    with target.db.write() as conn:
        have = {(r.branch, r.sha, r.started_at)
                for r in conn.execute(sa.select(n.c.branch, n.c.sha, n.c.started_at))}
        for row in rows:
            if (row.branch, row.sha, row.started_at) in have:
                continue
            values = {f: row._mapping[f] for f in fields}
            values["run_id"] = runs.get(row.run_id) if row.run_id is not None else None
            conn.execute(n.insert().values(**values))
            copied.nightlies += 1
