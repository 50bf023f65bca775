"""`HistoryStore`: the one door to the history database, over SQLAlchemy Core.

SQLite (the default, one file) or PostgreSQL (a team's shared history, `postgresql+psycopg://`).
On SQLite, writes happen in short transactions that take the write lock up front
(`BEGIN IMMEDIATE`), so concurrent sessions queue on the busy timeout instead of failing with
"database is locked". On PostgreSQL writers run side by side (row locks, `ON CONFLICT DO
NOTHING`, keys inserted in one order so that they cannot deadlock); only schema changes take
an advisory lock. Every database error leaves as a `StoreError` naming the store (password
hidden) and the fix. See docs/adr/0001 and docs/adr/0006.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc

from ..config import as_read, redact, redact_text
from ..errors import BisectError, StoreError
from ..model import CommitInfo, Run
from . import migrations, schema

BUSY_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10
# A claim on a bisection by a process on another host, with no probe recorded for this long,
# is taken to be the leftover of a crash (on one host, the process is simply looked for).
CLAIM_STALE_S = 6 * 3600.0
# PostgreSQL advisory lock keys: (namespace, n). Schema changes take (namespace, 0) for their
# transaction; a claimed bisection holds (namespace, hash of its key) for its process's life.
_PG_LOCK_NAMESPACE = 0x62697365  # "bise"
_PG_RETRY_STATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_CHUNK = 500
# Journal states of a bisection that a later run with its key resumes.
OPEN_STATUSES = ("running", "interrupted")
_T = TypeVar("_T")
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


class Pruned(NamedTuple):
    """What `prune` removed, and the runs it kept because an open bisection uses them."""

    runs: int
    results: int
    probes: int
    kept: dict[int, int]  # open bisection id -> runs kept for it


def display_url(url: str) -> str:
    """How a store is named to people: a file path for SQLite, never a password."""
    try:
        parsed = sa.engine.make_url(url)
    except (exc.ArgumentError, ValueError, TypeError):
        return redact(url)  # shown as written, a password in it hidden
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(parsed.database)
    return redact(url)


def _me() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OSError, OverflowError):
        return False
    return True


def _claim_key(key: str) -> int:
    """A bisection key as a signed 32-bit advisory lock id."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


def _sqlite_setup(engine: sa.Engine, *, memory: bool, checkpoint_on_commit: bool,
                  set_wal: bool = True) -> None:
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
                if set_wal and mode and str(mode[0]).lower() != "wal":
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


NO_STORE_HINT = "record one with pytest --track-history, or name one with --history-db"


class MissingStore(StoreError):
    """A reader's store does not exist, or holds no bisector history: nothing was made."""


def _may_write(path: Path) -> bool:
    """Whether this process may change `path` and add files beside it (SQLite's -wal, -shm,
    -journal). Asked of access(2) and of the mode bits, so that a store made read-only with
    chmod (a file 0444, a directory 0555) is left untouched even by root, whom permissions
    do not stop."""
    for where in (path, path.parent):
        try:
            mode = where.stat().st_mode
        except OSError:
            return False
        if not mode & 0o222 or not os.access(where, os.W_OK):
            return False
    return True


def _sqlite_uri(path: Path, **query: str) -> sa.URL:
    """An SQLite URI filename (`file:PATH?mode=...`) as SQLAlchemy passes it to sqlite3."""
    from urllib.parse import quote

    return sa.engine.URL.create("sqlite", database=f"file:{quote(str(path), safe='/')}",
                                query={**query, "uri": "true"})


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


class HistoryStore:
    """History of runs and results; open with `HistoryStore.open(url)` and close it."""

    def __init__(self, url: str, *, checkpoint_on_commit: bool = True, create: bool = True,
                 dirs_under: Path | None = None) -> None:
        """See `open`; this connects nothing and reads no schema yet."""
        self.url = url
        self.location = display_url(url)
        self.create = create
        self.read_only = False  # opened with SQLite's mode=ro: the user cannot write it
        read_url = as_read(url)
        try:
            parsed = sa.engine.make_url(read_url)
        except (exc.ArgumentError, ValueError, TypeError):
            raise StoreError(
                f"invalid history store URL {self.location!r}",
                hint="give a file path or an SQLAlchemy URL such as sqlite:///path/history.db",
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        engine_url: str | sa.URL = read_url
        memory = parsed.database in (None, "", ":memory:")
        if self.dialect == "sqlite":
            if not memory and not parsed.query.get("uri"):
                engine_url = self._sqlite_file(Path(str(parsed.database)), dirs_under)
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
        elif self.dialect == "postgresql":
            # A wrong host fails in seconds, not after the kernel's TCP timeout.
            # The application name says who holds a claim's advisory lock (see `_busy`).
            # TCP keepalives: a claim's advisory-lock connection that a network fault cut
            # off is noticed (and its lock released) in about a minute, not hours.
            host, pid = _me()
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S,
                                      "application_name": f"bisector pid {pid} on {host}"[:63],
                                      "keepalives": 1, "keepalives_idle": 30,
                                      "keepalives_interval": 10, "keepalives_count": 3}
        # Claims this process holds on bisections: id -> the key's advisory-lock connection
        # on PostgreSQL (None on SQLite, where the claim is the row's owner and heartbeat).
        self._claims: dict[int, sa.Connection | None] = {}
        try:
            self._engine = sa.create_engine(engine_url, **kwargs)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
            raise StoreError(
                f"cannot use history store {self.location} ({redact_text(str(err), url)})",
                hint="install the driver for this database or choose another --history-db",
                location=self.location,
            ) from None
        if self.dialect == "sqlite":
            _sqlite_setup(
                self._engine,
                memory=memory,
                checkpoint_on_commit=checkpoint_on_commit,
                set_wal=create,  # a reader leaves the journal mode as the writers set it
            )

    def _sqlite_file(self, path: Path, dirs_under: Path | None) -> str | sa.URL:
        """The URL the engine opens a store file with: as given when a writer may create
        it; `mode=rw` for a reader (SQLite never creates a file behind its back); `mode=ro` for
        a store the user cannot write, `immutable` too when no writer is at work on it (no
        -wal, no -journal beside it), as otherwise SQLite would add -wal and -shm files."""
        if path.is_dir():
            raise StoreError(f"history store {path} is a directory",
                             hint="give a file path with --history-db", location=str(path))
        if path.exists():
            if self.create:
                return self.url
            if _may_write(path):
                return _sqlite_uri(path, mode="rw")
            self.read_only = True
            busy = any(path.with_name(path.name + end).exists() for end in ("-wal", "-journal"))
            return _sqlite_uri(path, mode="ro", **({} if busy else {"immutable": "1"}))
        if not self.create:
            raise MissingStore(f"no history store at {path}", hint=NO_STORE_HINT,
                               location=str(path))
        if not path.parent.is_dir():
            if dirs_under is None or not _inside(path, dirs_under):
                raise StoreError(
                    f"no directory {path.parent} for the history store {path}",
                    hint="create it, or choose another store with --history-db",
                    location=str(path))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"cannot create {path.parent} for the history store ({err.strerror})",
                    hint="choose a writable location with --history-db",
                    location=str(path),
                ) from None
        return self.url

    @classmethod
    def open(cls, url: str, *, create: bool = True, dirs_under: Path | None = None,
             checkpoint_on_commit: bool = True) -> HistoryStore:
        """Open a store, creating or migrating its schema when needed.

        A writer (`create=True`: the recorder, `import`, a bisection given its good end, the
        nightly, an export's target) creates a missing SQLite file, but a missing directory
        only inside `dirs_under` (the checkout the store belongs to, where the default
        `.bisector/` lives): a mistyped path elsewhere is an error naming it. A reader
        (`create=False`) needs a store that exists and holds a bisector history, and changes
        nothing about it but an older schema's migration, and that only where the user may
        write: a store the user cannot write is opened read-only, nothing appears beside it.

        `checkpoint_on_commit=False` keeps SQLite's WAL maintenance out of commits, for a writer
        whose commit someone is waiting for and whose close nobody is.
        """
        store = cls(url, checkpoint_on_commit=checkpoint_on_commit, create=create,
                    dirs_under=dirs_under)
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
        """Let go of this process's claims (their bisections stay resumable) and disconnect."""
        try:
            self._release_claims()
        finally:
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
        text = str(orig).strip()
        detail = redact_text(text.splitlines()[0].strip() if text else type(orig).__name__,
                             self.url)
        lowered = detail.lower()
        if "password authentication failed" in lowered or "no password supplied" in lowered:
            hint = "check the user and password of the store's URL (--history-db, BISECTOR_DB)"
        elif ("connection refused" in lowered or "could not connect" in lowered
              or "timeout expired" in lowered or "could not translate host" in lowered
              or ("no such file or directory" in lowered and self.dialect == "postgresql")):
            hint = ("check that the database server is running and the host and port of "
                    "the store's URL (--history-db, BISECTOR_DB)")
        elif "does not exist" in lowered and "database" in lowered:
            hint = "create the database (createdb) or fix the store's URL"
        elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            hint = (
                "the file is kept as it is; move it aside to start a new history, "
                "or choose another store with --history-db"
            )
        elif "locked" in lowered or "busy" in lowered:
            hint = "another process held the store too long; run the command again"
        elif self.read_only and ("readonly" in lowered or "read-only" in lowered):
            hint = ("it is read-only here (its file or directory is not writable): check the "
                    "permissions, or choose another store with --history-db")
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
    def _write(self, *, schema_lock: bool = False) -> Iterator[sa.Connection]:
        """A write transaction. SQLite: `BEGIN IMMEDIATE`, one writer at a time. PostgreSQL:
        writers run at once; `schema_lock` serializes schema changes on an advisory lock."""
        with self._guard(), self._engine.connect() as conn:
            conn = conn.execution_options(bisector_write=True)
            with conn.begin():
                if schema_lock and self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, 0)"),
                                 {"ns": _PG_LOCK_NAMESPACE})
                yield conn

    def _retrying(self, work: Callable[[], _T], attempts: int = 5) -> _T:
        """Run a whole write transaction again when PostgreSQL chose it as a deadlock's or a
        serialization conflict's victim (it was rolled back, so nothing is written twice)."""
        for attempt in range(attempts):
            try:
                return work()
            except StoreError as err:
                state = _sqlstate(err.__context__) or _sqlstate(
                    getattr(err.__context__, "orig", None))
                if state not in _PG_RETRY_STATES or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._guard(), self._engine.connect() as conn, conn.begin():
            yield conn

    # -- schema -----------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        with self._read() as conn:
            version = migrations.read_version(conn)
        if version is None and not self.create:
            raise MissingStore(f"{self.location} holds no bisector history",
                               hint=NO_STORE_HINT, location=self.location)
        if version is not None:
            migrations.check_supported(version, self.location)
            if version == schema.SCHEMA_VERSION:
                return version
            if self.read_only:
                raise StoreError(
                    f"{self.location} has an older schema (version {version}, this bisector "
                    f"uses {schema.SCHEMA_VERSION}) and is read-only here",
                    hint="open it once with bisector where it can be written, to migrate it",
                    location=self.location)
        with self._write(schema_lock=True) as conn:
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
        # One order for every writer: on PostgreSQL two sessions inserting the same new keys
        # then wait for each other in turn instead of deadlocking.
        rows = sorted(rows, key=lambda row: row[key])
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
        plain column types used here the driver takes the values as they are. On PostgreSQL
        with psycopg the rows are streamed with COPY instead, in the same transaction.
        """
        if not rows:
            return
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
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
            def work() -> None:
                with self._write() as conn:
                    self._put_missing(conn, schema.commits, "sha", rows)

            self._retrying(work)

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
        seen: dict[str, Any] = {}
        for result in run.results:  # one row per test; a repeated nodeid keeps its last result
            seen[result.nodeid] = result
        commit_rows = [_commit_row(c) for c in commits]
        return self._retrying(lambda: self._record_run(run, commit_rows, seen, known_tests))

    def _record_run(self, run: Run, commit_rows: list[dict[str, Any]], seen: dict[str, Any],
                    known_tests: dict[str, int] | None) -> int:
        env = run.environment
        with self._write() as conn:
            self._put_missing(conn, schema.commits, "sha", commit_rows)
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
        """Open a journal entry, claimed by this process; returns (id, probes already stored
        by an unfinished earlier attempt with the same key), so that a resumed bisection can
        say what it picks up.

        Two processes starting or resuming the same bisection at once: one wins, the other
        gets a `BisectError` naming the winner. The claim is the row's owner and heartbeat
        (a live owner keeps it; a crashed one's is taken over) behind an atomic conditional
        UPDATE and a unique index on running keys; on PostgreSQL the winner also holds an
        advisory lock on the key for as long as its connection lives, which tells a live
        claim from a crash's leftovers across hosts exactly.
        """
        lock = self._lock_key(key)
        try:
            new_id, done = self._claim(key, good, bad, tests, mode, started_at,
                                       have_lock=lock is not None)
        except BaseException:
            if lock is not None:
                self._unlock(lock, key)
            raise
        self._claims[new_id] = lock
        return new_id, done

    def _claim(self, key: str, good: str, bad: str, tests: list[str], mode: str,
               started_at: float, *, have_lock: bool) -> tuple[int, int]:
        b, p = schema.bisections, schema.probes
        host, pid = _me()
        with self._write() as conn:
            # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): a row another claimer is
            # updating right now is not waited for; the unique index settles that race below.
            # running rows, and attempts stopped by Ctrl-C (let go of by their process,
            # resumable by anyone)
            open_rows = conn.execute(
                sa.select(b.c.id, b.c.status, b.c.owner_host, b.c.owner_pid, b.c.heartbeat)
                .where(b.c.key == key, b.c.status.in_(OPEN_STATUSES))
                .order_by(b.c.id.desc()).with_for_update(skip_locked=True)
            ).all()
            if not have_lock:  # SQLite: is the owner alive?
                for row in open_rows:
                    if row.status == "running" and self._held_elsewhere(row):
                        raise self._busy(conn, key, row.id, row.owner_host, row.owner_pid)
            done = 0
            if open_rows:  # newest first: the attempt whose probes are resumed
                done = conn.execute(
                    sa.select(sa.func.count()).select_from(p)
                    .where(p.c.bisection_id == open_rows[0].id)
                ).scalar() or 0
            for row in open_rows:
                # compare-and-swap: only if nobody claimed it since we read it
                taken = conn.execute(
                    b.update().where(
                        b.c.id == row.id, b.c.status == row.status,
                        b.c.owner_pid.is_(None) if row.owner_pid is None
                        else b.c.owner_pid == row.owner_pid,
                        b.c.heartbeat.is_(None) if row.heartbeat is None
                        else b.c.heartbeat == row.heartbeat,
                    ).values(status="abandoned")
                ).rowcount
                if taken != 1:
                    raise self._busy(conn, key, row.id, row.owner_host, row.owner_pid)
            try:
                with conn.begin_nested():
                    new_id = conn.execute(b.insert().values(
                        key=key, good=good, bad=bad, tests=json.dumps(tests), mode=mode,
                        status="running", started_at=started_at,
                        owner_host=host, owner_pid=pid, heartbeat=time.time(),
                    )).inserted_primary_key[0]
            except exc.IntegrityError:  # another process inserted its attempt first
                raise self._busy(conn, key, None, None, None) from None
        return int(new_id), int(done)

    @staticmethod
    def _held_elsewhere(row: Any) -> bool:
        """Does another live process hold this running bisection? (pid and host, heartbeat)"""
        if row.owner_pid is None or row.heartbeat is None:
            return False  # let go of (close), or written before claims existed
        host, pid = _me()
        if row.owner_host == host:
            return row.owner_pid != pid and _pid_alive(int(row.owner_pid))
        return time.time() - float(row.heartbeat) < CLAIM_STALE_S

    def _busy(self, conn: sa.Connection, key: str, bisection_id: int | None,
              host: str | None, pid: int | None) -> BisectError:
        """The loser's one line: which bisection, and which process (pid and host) has it."""
        b = schema.bisections
        holder = self._lock_holder(conn, key) if self.dialect == "postgresql" else None
        with contextlib.suppress(exc.SQLAlchemyError):
            # The winner may be a moment from committing its row: wait for it briefly.
            for _ in range(40):
                row = conn.execute(
                    sa.select(b.c.id, b.c.owner_host, b.c.owner_pid)
                    .where(b.c.key == key, b.c.status == "running").order_by(b.c.id.desc())
                ).first()
                if row is not None and (holder is None or (
                        row.owner_pid == holder[0] and str(row.owner_host).startswith(holder[1]))):
                    bisection_id, host, pid = row.id, row.owner_host, row.owner_pid
                    break
                if conn.in_transaction() and self.dialect == "sqlite":
                    break  # SQLite: our own write transaction already sees everything
                time.sleep(0.05)
        if holder is not None:
            pid, host = holder[0], host if host and host.startswith(holder[1]) else holder[1]
        who = f"pid {pid} on {host}" if pid is not None else "another process"
        name = f"bisection {bisection_id}" if bisection_id is not None else "this bisection"
        return BisectError(
            f"{name} is being resumed by another process ({who})",
            hint="wait for it to finish (or stop it) and run the command again",
        )

    @staticmethod
    def _lock_holder(conn: sa.Connection, key: str) -> tuple[int, str] | None:
        """(pid, host) of the process holding a key's advisory lock, from its application
        name; None when the server does not show it (another role, without pg_read_all_stats)."""
        with contextlib.suppress(exc.SQLAlchemyError):
            name = conn.execute(sa.text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = :ns AND l.objid::bigint = :k AND l.objsubid = 2"),
                {"ns": _PG_LOCK_NAMESPACE, "k": _claim_key(key) & 0xFFFFFFFF}).scalar()
            match = re.fullmatch(r"bisector pid (\d+) on (.+)", name or "")
            if match:
                return int(match.group(1)), match.group(2)
        return None

    def _lock_key(self, key: str) -> sa.Connection | None:
        """PostgreSQL: hold the key's advisory lock on a connection of its own (released when
        this process lets go or dies); raise the "being resumed" error when another holds it."""
        if self.dialect != "postgresql":
            return None
        for claimed_id, lock in list(self._claims.items()):
            if lock is not None and lock.info.get("bisector_key") == key:
                # this store's own earlier, unfinished attempt: hand its lock on
                del self._claims[claimed_id]
                return lock
        with self._guard():
            lock = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = lock.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :k)"),
                                   {"ns": _PG_LOCK_NAMESPACE, "k": _claim_key(key)}).scalar()
            except BaseException:
                lock.close()
                raise
        if not got:
            lock.close()
            with self._read() as conn:
                raise self._busy(conn, key, None, None, None)
        lock.info["bisector_key"] = key
        return lock

    def _unlock(self, lock: sa.Connection, key: str) -> None:
        try:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:ns, :k)"),
                         {"ns": _PG_LOCK_NAMESPACE, "k": _claim_key(key)})
            lock.info.pop("bisector_key", None)
            lock.close()
        except exc.SQLAlchemyError:
            lock.invalidate()  # closing the session for good releases its locks too

    def _release_claims(self) -> None:
        """Bisections this process claimed and did not finish stay running (resumable), with
        the heartbeat cleared: another process may take them over at once."""
        claims, self._claims = self._claims, {}
        if not claims:
            return
        b = schema.bisections
        host, pid = _me()
        try:
            with self._write() as conn:
                conn.execute(b.update().where(
                    b.c.id.in_(list(claims)), b.c.status == "running",
                    b.c.owner_host == host, b.c.owner_pid == pid,
                ).values(heartbeat=None))
        except StoreError:
            pass  # the store is gone: the pid check (or the stale heartbeat) frees it later
        finally:
            for lock in claims.values():
                if lock is not None:
                    self._unlock(lock, str(lock.info.get("bisector_key", "")))

    @staticmethod
    def _lost_claim(bisection_id: int) -> BisectError:
        return BisectError(
            f"lost the claim on bisection {bisection_id} (resumed by another process)",
            hint="that process carries it on; run the command again once it has finished",
        )

    def add_probe(self, bisection_id: int, run_id: int, sha: str, purpose: str) -> None:
        """Journal a probe of a bisection this process holds (and refresh its heartbeat);
        a `BisectError` when another process has taken it over meanwhile."""
        b = schema.bisections
        host, pid = _me()
        with self._write() as conn:
            # FOR UPDATE (PostgreSQL): a takeover's compare-and-swap waits for this commit
            owned = conn.execute(sa.select(b.c.id).where(
                b.c.id == bisection_id, b.c.status == "running",
                b.c.owner_host == host, b.c.owner_pid == pid,
            ).with_for_update()).first()
            if owned is None:
                raise self._lost_claim(bisection_id)
            conn.execute(schema.probes.insert().values(
                bisection_id=bisection_id, run_id=run_id, sha=sha, purpose=purpose))
            conn.execute(b.update().where(
                b.c.id == bisection_id, b.c.heartbeat.is_not(None),
            ).values(heartbeat=time.time()))

    def finish_bisection(self, bisection_id: int, status: str, result: Any,
                         finished_at: float) -> None:
        """Close a bisection this process holds; a `BisectError` when another process has
        taken it over meanwhile (its row is then that process's to finish).

        `interrupted` (Ctrl-C) closes this attempt but not the bisection: the next
        `start_bisection` with its key resumes it, as it does a crashed one.
        """
        b = schema.bisections
        host, pid = _me()
        try:
            with self._write() as conn:
                done = conn.execute(b.update().where(
                    b.c.id == bisection_id, b.c.status == "running",
                    b.c.owner_host == host, b.c.owner_pid == pid,
                ).values(status=status, result=json.dumps(result),
                         finished_at=finished_at)).rowcount
                if done != 1:
                    raise self._lost_claim(bisection_id)
        finally:
            lock = self._claims.pop(bisection_id, None)
            if lock is not None:
                self._unlock(lock, str(lock.info.get("bisector_key", "")))

    def bisections(self) -> list[dict[str, Any]]:
        b = schema.bisections
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(b).order_by(b.c.id))]

    def probes_of(self, bisection_id: int) -> list[dict[str, Any]]:
        """A bisection's probes in the order they ran: sha, purpose, run id and times."""
        p, r = schema.probes, schema.runs
        query = (
            sa.select(p.c.sha, p.c.purpose, p.c.run_id, r.c.started_at, r.c.finished_at)
            .join(r, r.c.id == p.c.run_id)
            .where(p.c.bisection_id == bisection_id)
            .order_by(r.c.started_at, p.c.run_id)
        )
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def run_results(self, run_id: int) -> dict[str, tuple[str, str | None]]:
        """One run's results: nodeid -> (outcome, message)."""
        res, t = schema.results, schema.tests
        query = (sa.select(t.c.nodeid, res.c.outcome, res.c.message)
                 .join(t, t.c.id == res.c.test_id).where(res.c.run_id == run_id))
        with self._read() as conn:
            return {row.nodeid: (row.outcome, row.message) for row in conn.execute(query)}

    # -- the nightly ledger -------------------------------------------------------------------

    def record_nightly(self, *, branch: str, sha: str, run_id: int | None, started_at: float,
                       finished_at: float, status: str, exit_code: int,
                       ledger: dict[str, Any]) -> int:
        n = schema.nightlies
        with self._write() as conn:
            return int(conn.execute(n.insert().values(
                branch=branch, sha=sha, run_id=run_id, started_at=started_at,
                finished_at=finished_at, status=status, exit_code=exit_code,
                ledger=json.dumps(ledger),
            )).inserted_primary_key[0])

    def nightlies(self, branch: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The branch's nightly runs, newest first, each with its ledger decoded."""
        n = schema.nightlies
        # by start, not id: `import-history` may append an older night after a newer one
        query = (sa.select(n).where(n.c.branch == branch)
                 .order_by(n.c.started_at.desc(), n.c.id.desc()))
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        for row in rows:
            try:
                row["ledger"] = json.loads(row["ledger"])
            except (TypeError, ValueError):
                row["ledger"] = None  # unreadable: the caller says so and goes on without it
        return rows

    # -- pruning ----------------------------------------------------------------------------

    def prune(self, shas: Iterable[str], *,
              protected: dict[int, set[str]] | None = None) -> Pruned:
        """Remove the runs on these commits, with their results and the probe rows that point
        at them, in one transaction; commits, tests and the bisections themselves stay.

        Never removed: a run an open (running) bisection uses, that is one of its probes or a
        run on one of the commits `protected[bisection id]` names (its range, read from git by
        the caller). Those are counted in `Pruned.kept`.
        """
        r, res, p, b = schema.runs, schema.results, schema.probes, schema.bisections
        wanted = sorted(set(shas))
        protected = protected or {}
        with self._write() as conn:
            candidates: dict[int, str] = {}
            for chunk in _chunks(wanted):
                candidates.update(conn.execute(
                    sa.select(r.c.id, r.c.sha).where(r.c.sha.in_(chunk))).all())
            open_ids = list(conn.execute(
                sa.select(b.c.id).where(b.c.status.in_(OPEN_STATUSES)).order_by(b.c.id)
            ).scalars())
            used: dict[int, set[int]] = {bid: set() for bid in open_ids}
            if open_ids:
                for bid, run_id in conn.execute(
                        sa.select(p.c.bisection_id, p.c.run_id)
                        .where(p.c.bisection_id.in_(open_ids))):
                    used[bid].add(run_id)
            kept: dict[int, int] = {}
            spared: set[int] = set()
            for bid in open_ids:
                shas_used = protected.get(bid, set())
                mine = {rid for rid, sha in candidates.items()
                        if rid in used[bid] or sha in shas_used}
                if mine:
                    kept[bid] = len(mine)
                    spared |= mine
            doomed = sorted(set(candidates) - spared)
            removed_probes = removed_results = 0
            for chunk in _chunks(doomed):
                removed_probes += conn.execute(p.delete().where(p.c.run_id.in_(chunk))).rowcount
                removed_results += conn.execute(
                    res.delete().where(res.c.run_id.in_(chunk))).rowcount
                conn.execute(r.delete().where(r.c.id.in_(chunk)))
        return Pruned(len(doomed), removed_results, removed_probes, kept)

    def open_bisections(self) -> list[dict[str, Any]]:
        """The journal entries still open (being run, crashed, or interrupted: resumable)."""
        b = schema.bisections
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(
                sa.select(b).where(b.c.status.in_(OPEN_STATUSES)).order_by(b.c.id))]

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

    def run_shas(self) -> set[str]:
        """Commits with at least one run, clean or dirty."""
        r = schema.runs
        with self._read() as conn:
            return set(conn.execute(sa.select(r.c.sha).distinct()).scalars())

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

    def durations(self, shas: Iterable[str], *, limit: int | None = None
                  ) -> list[tuple[str, float, float, int]]:
        """(nodeid, mean, max, count) of test durations in seconds over the clean runs on these
        commits, slowest mean first; results that took no real time (skipped, untestable) are
        left out. Summed in SQL (GROUP BY) per chunk of commits, merged here."""
        r, res, t = schema.runs, schema.results, schema.tests
        base = (
            sa.select(t.c.nodeid, sa.func.sum(res.c.duration), sa.func.max(res.c.duration),
                      sa.func.count())
            .select_from(res.join(r, r.c.id == res.c.run_id).join(t, t.c.id == res.c.test_id))
            .where(r.c.dirty.is_(False), res.c.outcome.not_in(["skipped", "untestable"]))
            .group_by(t.c.nodeid)
        )
        totals: dict[str, list[float]] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(shas))):
                for nodeid, total, longest, count in conn.execute(
                        base.where(r.c.sha.in_(chunk))):
                    have = totals.setdefault(nodeid, [0.0, 0.0, 0])
                    have[0] += float(total or 0.0)
                    have[1] = max(have[1], float(longest or 0.0))
                    have[2] += int(count)
        out = [(nodeid, s / n, longest, int(n))
               for nodeid, (s, longest, n) in totals.items() if n]
        out.sort(key=lambda d: (-d[1], d[0]))
        return out if limit is None else out[:limit]

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


def _sqlstate(error: object) -> str | None:
    """The SQLSTATE of a driver error: psycopg's `sqlstate`, psycopg2's `pgcode`."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


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
