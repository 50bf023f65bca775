"""Writing runs and their results: one transaction per run, results in one bulk insert.

Ingest speed matters here (a session of thousands of tests lands at once, and its recorder is
waited for): test ids are looked up a chunk at a time and rarely added, and the results go in
as one statement compiled once (COPY on PostgreSQL), never a query per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ..model import TRACEBACK_MAX, CommitInfo, Run, TestResult
from . import schema
from .engine import Database, chunks

# The results' columns, in the order `record_run` and the copy (transfer.py) write them.
RESULT_COLUMNS = (
    "run_id", "test_id", "outcome", "duration", "signature", "message", "reruns", "phase",
    "traceback",
)


def cap_traceback(text: str | None) -> str | None:
    """A traceback as stored: its last TRACEBACK_MAX characters (the failing line and the
    exception are at the end), with NUL characters, which PostgreSQL's text refuses, replaced."""
    if text is None:
        return None
    if len(text) > TRACEBACK_MAX:
        text = text[-TRACEBACK_MAX:]
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def commit_row(c: CommitInfo) -> dict[str, Any]:
    return {
        "sha": c.sha,
        "parents": " ".join(c.parents),
        "author_name": c.author_name,
        "author_email": c.author_email,
        "committed_at": c.committed_at,
        "subject": c.subject,
    }


# Statements built once: building a Core expression costs as much as running it on SQLite,
# and a bisection writes hundreds of small runs (SQLAlchemy caches their compiled form).
_IGNORING: dict[tuple[str, str], Any] = {}
_TEST_IDS = sa.select(schema.tests.c.nodeid, schema.tests.c.id).where(
    schema.tests.c.nodeid.in_(sa.bindparam("names", expanding=True)))


def _insert_ignore(conn: sa.Connection, table: sa.Table) -> Any:
    key = (conn.dialect.name, table.name)
    if key not in _IGNORING:
        if conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            return None
        _IGNORING[key] = insert(table).on_conflict_do_nothing()
    return _IGNORING[key]


def put_missing(conn: sa.Connection, table: sa.Table, key: str, rows: list[dict]) -> None:
    """Insert the rows whose `key` the table does not hold yet."""
    if not rows:
        return
    # One order for every writer: on PostgreSQL two sessions inserting the same new keys
    # then wait for each other in turn instead of deadlocking.
    rows = sorted(rows, key=lambda row: row[key])
    stmt = _insert_ignore(conn, table)
    if stmt is not None:
        conn.execute(stmt, rows)
        return
    column = table.c[key]
    wanted = {row[key] for row in rows}
    have: set[Any] = set()
    for chunk in chunks(sorted(wanted)):
        have.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    missing = [row for row in rows if row[key] not in have]
    if missing:
        conn.execute(table.insert(), missing)


def test_ids(
    conn: sa.Connection, nodeids: Sequence[str], known: dict[str, int] | None = None
) -> dict[str, int]:
    """Ids for these nodeids, adding the new ones; most sessions add none, so look first.

    `known` is a nodeid -> id map read earlier (ids never change once given).
    """
    t = schema.tests
    ids: dict[str, int] = {}
    if known:
        ids.update((n, known[n]) for n in nodeids if n in known)
        nodeids = [n for n in nodeids if n not in ids]

    def lookup(names: Sequence[str]) -> None:
        for chunk in chunks(names):
            ids.update(conn.execute(_TEST_IDS, {"names": list(chunk)}).all())

    lookup(nodeids)
    missing = [n for n in nodeids if n not in ids]
    if missing:
        put_missing(
            conn, t, "nodeid", [{"nodeid": n, "file": n.split("::", 1)[0]} for n in missing]
        )
        lookup(missing)
    return ids


# (dialect class, paramstyle, table, columns) -> (INSERT's text, the row's order in it, or
# None when it is the columns' own): compiling is most of a small run's write, and a
# bisection writes hundreds of small runs.
_INSERTS: dict[tuple[Any, ...], tuple[str, list[int] | None]] = {}


def _compiled_insert(conn: sa.Connection, table: sa.Table, columns: Sequence[str]
                     ) -> tuple[str, list[int] | None]:
    key = (type(conn.dialect), conn.dialect.paramstyle, table.name, tuple(columns))
    if key not in _INSERTS:
        compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
        where = None
        if conn.dialect.positional:
            where = [list(columns).index(k) for k in compiled.positiontup or []]
            if where == list(range(len(columns))):
                where = None
        _INSERTS[key] = (compiled.string, where)
    return _INSERTS[key]


def bulk_insert(conn: sa.Connection, table: sa.Table, columns: Sequence[str],
                rows: list[tuple]) -> None:
    """executemany of a statement compiled once, without per-row parameter processing.

    Core's own executemany spends most of its time building each row's parameters; for the
    plain column types used here the driver takes the values as they are. On PostgreSQL
    with psycopg the rows are streamed with COPY instead, in the same transaction.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_rows(conn, table, columns, rows)
        return
    text, where = _compiled_insert(conn, table, columns)
    params: list[Any]
    if not conn.dialect.positional:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    elif where is None:
        params = rows
    else:
        params = [tuple(row[i] for i in where) for row in rows]
    conn.exec_driver_sql(text, params)


def _copy_rows(conn: sa.Connection, table: sa.Table, columns: Sequence[str],
               rows: list[tuple]) -> None:
    """PostgreSQL's COPY FROM STDIN through psycopg, its errors raised as SQLAlchemy's."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    names = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    statement = f"COPY {table.name} ({names}) FROM STDIN"
    try:
        cursor = conn.connection.driver_connection.cursor()
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi_error as err:  # the driver's own: as SQLAlchemy would raise it
        raise exc.DBAPIError.instance(statement, None, err, dbapi_error) from err


def record_commits(db: Database, infos: Iterable[CommitInfo]) -> None:
    rows = [commit_row(c) for c in infos]
    if rows:
        def work() -> None:
            with db.write() as conn:
                put_missing(conn, schema.commits, "sha", rows)

        db.retrying(work)


def record_run(db: Database, run: Run, commits: Iterable[CommitInfo] = (), *,
               known_tests: dict[str, int] | None = None) -> int:
    """Store a run and all its results in one transaction; returns the run's id.

    `known_tests` (from `tests()`, read ahead of time) saves looking the ids up again.
    """
    commit_rows = [commit_row(c) for c in commits]

    def work() -> int:
        with db.write() as conn:
            return write_run(conn, run, commit_rows, known_tests)

    return db.retrying(work)


def _run_values(run: Run) -> dict[str, Any]:
    env = run.environment
    return {
        "sha": run.sha, "dirty": run.dirty, "branch": run.branch, "env_key": env.key,
        "fingerprint": env.fingerprint, "python": env.python, "platform": env.platform,
        "deps_hash": env.deps_hash, "trigger": str(run.trigger), "host": run.host,
        "started_at": run.started_at, "finished_at": run.finished_at,
        "exit_status": run.exit_status, "patch_key": run.patch_key,
    }


def write_run(conn: sa.Connection, run: Run, commit_rows: list[dict[str, Any]],
              known_tests: dict[str, int] | None = None,
              ids_out: dict[str, int] | None = None) -> int:
    """A run, its results and its commits' rows, inside the caller's write transaction
    (a probe's run and its journal line are one transaction): the run's id. `ids_out` gets
    the results' test ids, for the caller to keep once the transaction has committed."""
    seen: dict[str, TestResult] = {}
    for result in run.results:  # one row per test; a repeated nodeid keeps its last result
        seen[result.nodeid] = result
    put_missing(conn, schema.commits, "sha", commit_rows)
    run_id = conn.execute(schema.runs.insert(), _run_values(run)).inserted_primary_key[0]
    ids = test_ids(conn, list(seen), known_tests)
    if ids_out is not None:
        ids_out.update(ids)
    rows = [
        (run_id, ids[r.nodeid], str(r.outcome), r.duration, r.signature, r.message,
         r.reruns, r.phase, None if r.traceback is None else cap_traceback(r.traceback))
        for r in seen.values()
    ]
    bulk_insert(conn, schema.results, RESULT_COLUMNS, rows)
    return int(run_id)
