"""`HistoryStore`: the one door to the history database, over SQLAlchemy Core.

Writes happen in short transactions that take the write lock up front (SQLite `BEGIN IMMEDIATE`),
so concurrent sessions queue on the busy timeout instead of failing with "database is locked".
Every database error leaves as a `StoreError` naming the store (password hidden) and the fix.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event, exc

from ..errors import StoreError
from ..model import CommitInfo, Run
from . import migrations, schema

BUSY_TIMEOUT_S = 60.0
_CHUNK = 500
_RESULT_COLUMNS = (
    "run_id", "test_id", "outcome", "duration", "signature", "message", "reruns", "phase",
)


class ResultRow(NamedTuple):
    sha: str
    run_id: int
    started_at: float
    test_id: int
    nodeid: str
    outcome: str
    reruns: int
    signature: str | None
    message: str | None
    env_key: str = ""


class RunRow(NamedTuple):
    id: int
    sha: str
    dirty: bool
    branch: str | None
    env_key: str
    fingerprint: str
    trigger: str
    started_at: float
    finished_at: float
    exit_status: int | None


def display_url(url: str) -> str:
    """How a store is named to people: a file path for SQLite, never a password."""
    try:
        parsed = sa.engine.make_url(url)
    except exc.ArgumentError:
        return "<invalid store URL>"
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)


def _sqlite_setup(engine: sa.Engine, *, memory: bool, checkpoint_on_commit: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys = ON")
            if not memory:
                mode = cur.execute("PRAGMA journal_mode").fetchone()
                if mode and str(mode[0]).lower() != "wal":
                    # Persistent once set; if another process holds a lock right now it will
                    # set it, or the next connection will. The busy timeout covers the rest.
                    with contextlib.suppress(Exception):
                        cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA cache_size = -65536")
                if not checkpoint_on_commit:
                    # The WAL is folded back when the last connection closes instead.
                    cur.execute("PRAGMA wal_autocheckpoint = 0")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("bisector_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class HistoryStore:
    """History of runs and results; open with `HistoryStore.open(url)` and close it."""

    def __init__(self, url: str, *, checkpoint_on_commit: bool = True) -> None:
        self.url = url
        self.location = display_url(url)
        try:
            parsed = sa.engine.make_url(url)
        except exc.ArgumentError:
            raise StoreError(
                f"invalid history store URL {self.location!r}",
                hint="give a file path or an SQLAlchemy URL such as sqlite:///path/history.db",
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            memory = parsed.database in (None, "", ":memory:")
            if not memory:
                path = Path(str(parsed.database))
                if path.is_dir():
                    raise StoreError(
                        f"history store {path} is a directory",
                        hint="give a file path with --history-db",
                        location=str(path),
                    )
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise StoreError(
                        f"cannot create {path.parent} for the history store ({err.strerror})",
                        hint="choose a writable location with --history-db",
                        location=str(path),
                    ) from None
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
        try:
            self._engine = sa.create_engine(url, **kwargs)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
            raise StoreError(
                f"cannot use history store {self.location} ({err})",
                hint="install the driver for this database or choose another --history-db",
                location=self.location,
            ) from None
        if self.dialect == "sqlite":
            _sqlite_setup(
                self._engine,
                memory=parsed.database in (None, "", ":memory:"),
                checkpoint_on_commit=checkpoint_on_commit,
            )

    @classmethod
    def open(cls, url: str, *, checkpoint_on_commit: bool = True) -> HistoryStore:
        """Open a store, creating or migrating its schema when needed.

        `checkpoint_on_commit=False` keeps SQLite's WAL maintenance out of commits, for a writer
        whose commit someone is waiting for and whose close nobody is.
        """
        store = cls(url, checkpoint_on_commit=checkpoint_on_commit)
        try:
            store.ensure_schema()
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except exc.SQLAlchemyError as err:
            raise self._store_error(err) from None

    def _store_error(self, err: exc.SQLAlchemyError) -> StoreError:
        orig = getattr(err, "orig", None) or err
        detail = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
        if self.location not in detail:
            detail = detail.replace(self.url, self.location)
        lowered = detail.lower()
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            hint = (
                "the file is kept as it is; move it aside to start a new history, "
                "or choose another store with --history-db"
            )
        elif "locked" in lowered or "busy" in lowered:
            hint = "another process held the store too long; run the command again"
        elif "unable to open" in lowered or "readonly" in lowered or "permission" in lowered:
            hint = "check the file's permissions or choose another store with --history-db"
        else:
            hint = "check the store with --history-db"
        return StoreError(
            f"history store {self.location} is unusable ({detail})",
            hint=hint,
            location=self.location,
        )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._guard(), self._engine.connect() as conn:
            conn = conn.execution_options(bisector_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7283512)"))
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._guard(), self._engine.connect() as conn, conn.begin():
            yield conn

    # -- schema -----------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        with self._read() as conn:
            version = migrations.read_version(conn)
        if version is not None:
            migrations.check_supported(version, self.location)
            if version == schema.SCHEMA_VERSION:
                return version
        with self._write() as conn:
            return migrations.upgrade(conn, self.location)

    def schema_version(self) -> int | None:
        with self._read() as conn:
            return migrations.read_version(conn)

    # -- writing ----------------------------------------------------------------------------

    def _insert_ignore(self, table: sa.Table) -> Any:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            return None
        return insert(table).on_conflict_do_nothing()

    def _put_missing(
        self, conn: sa.Connection, table: sa.Table, key: str, rows: list[dict]
    ) -> None:
        if not rows:
            return
        stmt = self._insert_ignore(table)
        if stmt is not None:
            conn.execute(stmt, rows)
            return
        column = table.c[key]
        wanted = {row[key] for row in rows}
        have: set[Any] = set()
        for chunk in _chunks(sorted(wanted)):
            have.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        missing = [row for row in rows if row[key] not in have]
        if missing:
            conn.execute(table.insert(), missing)

    def _test_ids(
        self, conn: sa.Connection, nodeids: Sequence[str], known: dict[str, int] | None = None
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
            for chunk in _chunks(names):
                query = sa.select(t.c.nodeid, t.c.id).where(t.c.nodeid.in_(chunk))
                ids.update(conn.execute(query).all())

        lookup(nodeids)
        missing = [n for n in nodeids if n not in ids]
        if missing:
            self._put_missing(
                conn, t, "nodeid", [{"nodeid": n, "file": n.split("::", 1)[0]} for n in missing]
            )
            lookup(missing)
        return ids

    def _bulk_insert(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]
    ) -> None:
        """executemany of a statement compiled once, without per-row parameter processing.

        Core's own executemany spends most of its time building each row's parameters; for the
        plain column types used here the driver takes the values as they are.
        """
        if not rows:
            return
        compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
        params: list[Any]
        if conn.dialect.positional:
            where = [list(columns).index(k) for k in compiled.positiontup or []]
            params = rows if where == list(range(len(columns))) else [
                tuple(row[i] for i in where) for row in rows
            ]
        else:
            params = [dict(zip(columns, row, strict=True)) for row in rows]
        conn.exec_driver_sql(compiled.string, params)

    def record_commits(self, infos: Iterable[CommitInfo]) -> None:
        rows = [_commit_row(c) for c in infos]
        if rows:
            with self._write() as conn:
                self._put_missing(conn, schema.commits, "sha", rows)

    def record_run(
        self,
        run: Run,
        commits: Iterable[CommitInfo] = (),
        *,
        known_tests: dict[str, int] | None = None,
    ) -> int:
        """Store a run and all its results in one transaction; returns the run's id.

        `known_tests` (from `tests()`, read ahead of time) saves looking the ids up again.
        """
        env = run.environment
        seen: dict[str, Any] = {}
        for result in run.results:  # one row per test; a repeated nodeid keeps its last result
            seen[result.nodeid] = result
        with self._write() as conn:
            self._put_missing(conn, schema.commits, "sha", [_commit_row(c) for c in commits])
            run_id = conn.execute(
                schema.runs.insert().values(
                    sha=run.sha,
                    dirty=run.dirty,
                    branch=run.branch,
                    env_key=env.key,
                    fingerprint=env.fingerprint,
                    python=env.python,
                    platform=env.platform,
                    deps_hash=env.deps_hash,
                    trigger=str(run.trigger),
                    host=run.host,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    exit_status=run.exit_status,
                )
            ).inserted_primary_key[0]
            ids = self._test_ids(conn, list(seen), known_tests)
            rows = [
                (run_id, ids[r.nodeid], str(r.outcome), r.duration, r.signature, r.message,
                 r.reruns, r.phase)
                for r in seen.values()
            ]
            self._bulk_insert(conn, schema.results, _RESULT_COLUMNS, rows)
        return int(run_id)

    # -- the bisection journal ---------------------------------------------------------------

    def start_bisection(self, key: str, good: str, bad: str, tests: list[str], mode: str,
                        started_at: float) -> tuple[int, int]:
        """Open a journal entry; returns (id, probes already stored by an unfinished earlier
        attempt with the same key), so that a resumed bisection can say what it picks up."""
        b, p = schema.bisections, schema.probes
        with self._write() as conn:
            previous = conn.execute(
                sa.select(b.c.id).where(b.c.key == key, b.c.status == "running")
                .order_by(b.c.id.desc()).limit(1)
            ).scalar()
            done = 0
            if previous is not None:
                done = conn.execute(
                    sa.select(sa.func.count()).select_from(p).where(p.c.bisection_id == previous)
                ).scalar() or 0
                conn.execute(b.update().where(b.c.id == previous).values(status="abandoned"))
            new_id = conn.execute(b.insert().values(
                key=key, good=good, bad=bad, tests=json.dumps(tests), mode=mode,
                status="running", started_at=started_at,
            )).inserted_primary_key[0]
        return int(new_id), int(done)

    def add_probe(self, bisection_id: int, run_id: int, sha: str, purpose: str) -> None:
        with self._write() as conn:
            conn.execute(schema.probes.insert().values(
                bisection_id=bisection_id, run_id=run_id, sha=sha, purpose=purpose))

    def finish_bisection(self, bisection_id: int, status: str, result: Any,
                         finished_at: float) -> None:
        b = schema.bisections
        with self._write() as conn:
            conn.execute(b.update().where(b.c.id == bisection_id).values(
                status=status, result=json.dumps(result), finished_at=finished_at))

    def bisections(self) -> list[dict[str, Any]]:
        b = schema.bisections
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(b).order_by(b.c.id))]

    # -- reading ----------------------------------------------------------------------------

    def tests(self) -> dict[str, int]:
        t = schema.tests
        with self._read() as conn:
            return {row.nodeid: row.id for row in conn.execute(sa.select(t.c.nodeid, t.c.id))}

    def runs(self, *, sha: str | None = None, limit: int | None = None) -> list[RunRow]:
        r = schema.runs
        query = sa.select(
            r.c.id,
            r.c.sha,
            r.c.dirty,
            r.c.branch,
            r.c.env_key,
            r.c.fingerprint,
            r.c.trigger,
            r.c.started_at,
            r.c.finished_at,
            r.c.exit_status,
        ).order_by(r.c.started_at.desc(), r.c.id.desc())
        if sha is not None:
            query = query.where(r.c.sha == sha)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [RunRow(*row) for row in conn.execute(query)]

    def latest_clean_run(self, sha: str) -> RunRow | None:
        for run in self.runs(sha=sha):
            if not run.dirty:
                return run
        return None

    def outcome_counts(self, run_id: int) -> dict[str, int]:
        res = schema.results
        query = (
            sa.select(res.c.outcome, sa.func.count())
            .where(res.c.run_id == run_id)
            .group_by(res.c.outcome)
        )
        with self._read() as conn:
            return {outcome: int(n) for outcome, n in conn.execute(query)}

    def tracked_shas(self, *, env_key: str | None = None) -> set[str]:
        """Commits with at least one clean run (in this environment, if given)."""
        r = schema.runs
        query = sa.select(r.c.sha).where(r.c.dirty.is_(False)).distinct()
        if env_key is not None:
            query = query.where(r.c.env_key == env_key)
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def results_at(
        self,
        shas: Iterable[str],
        *,
        env_key: str | None = None,
        test_ids: Iterable[int] | None = None,
    ) -> list[ResultRow]:
        """Results of clean runs on these commits; dirty runs are never evidence."""
        r, res, t = schema.runs, schema.results, schema.tests
        base = (
            sa.select(
                r.c.sha,
                r.c.id,
                r.c.started_at,
                t.c.id,
                t.c.nodeid,
                res.c.outcome,
                res.c.reruns,
                res.c.signature,
                res.c.message,
                r.c.env_key,
            )
            .select_from(res.join(r, r.c.id == res.c.run_id).join(t, t.c.id == res.c.test_id))
            .where(r.c.dirty.is_(False))
        )
        if env_key is not None:
            base = base.where(r.c.env_key == env_key)
        wanted_tests = None if test_ids is None else sorted(set(test_ids))
        out: list[ResultRow] = []
        with self._read() as conn:
            for sha_chunk in _chunks(sorted(set(shas))):
                query = base.where(r.c.sha.in_(sha_chunk))
                if wanted_tests is None:
                    out.extend(ResultRow(*row) for row in conn.execute(query))
                    continue
                for test_chunk in _chunks(wanted_tests):
                    out.extend(
                        ResultRow(*row) for row in conn.execute(query.where(t.c.id.in_(test_chunk)))
                    )
        return out

    def commit_infos(self, shas: Iterable[str]) -> dict[str, CommitInfo]:
        c = schema.commits
        out: dict[str, CommitInfo] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(shas))):
                for row in conn.execute(sa.select(c).where(c.c.sha.in_(chunk))):
                    out[row.sha] = CommitInfo(
                        sha=row.sha,
                        parents=tuple(row.parents.split()),
                        author_name=row.author_name,
                        author_email=row.author_email,
                        committed_at=int(row.committed_at),
                        subject=row.subject,
                    )
        return out


def _commit_row(c: CommitInfo) -> dict[str, Any]:
    return {
        "sha": c.sha,
        "parents": " ".join(c.parents),
        "author_name": c.author_name,
        "author_email": c.author_email,
        "committed_at": c.committed_at,
        "subject": c.subject,
    }


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
