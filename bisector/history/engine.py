"""The connection to a history database: engine and dialect set-up, transactions, and the one
place where a database error becomes a `StoreError`.

SQLite (the default, one file) or PostgreSQL (a team's shared history, `postgresql+psycopg://`).
On SQLite, writes happen in short transactions that take the write lock up front
(`BEGIN IMMEDIATE`), so concurrent sessions queue on the busy timeout instead of failing with
"database is locked". On PostgreSQL writers run side by side; only schema changes take an
advisory lock. Every database error leaves as a `StoreError` naming the store (password hidden)
and the fix. Every other history module reaches the database through a `Database`, so none of
them knows which dialect it talks to unless it must. See docs/adr/0001, 0006 and 0018.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc

from ..config import as_read, redact, redact_text
from ..errors import StoreError
from . import migrations, schema

BUSY_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10
# PostgreSQL advisory lock keys: (namespace, n). Schema changes take (namespace, 0) for their
# transaction; a claimed bisection holds (namespace, hash of its key) for its process's life.
PG_LOCK_NAMESPACE = 0x62697365  # "bise"
_PG_RETRY_STATES = {"40P01", "40001"}  # deadlock detected, serialization failure
CHUNK = 500  # IN-lists under SQLite's old limit of 999 variables
_T = TypeVar("_T")

NO_STORE_HINT = "record one with pytest --track-history, or name one with --history-db"



def _has(text: str, *words: str) -> bool:
    return any(word in text for word in words)


# (does the driver's first line, lower case, from this database say it?, the fix to name), in
# order: the first that matches is named
_HINTS: tuple[tuple[Callable[[str, Database], bool], str], ...] = (
    (lambda s, _db: _has(s, "password authentication failed", "no password supplied"),
     "check the user and password of the store's URL (--history-db, BISECTOR_DB)"),
    (lambda s, db: _has(s, "connection refused", "could not connect", "timeout expired",
                        "could not translate host")
     or ("no such file or directory" in s and db.dialect == "postgresql"),
     "check that the database server is running and the host and port of the store's URL "
     "(--history-db, BISECTOR_DB)"),
    (lambda s, _db: "does not exist" in s and "database" in s,
     "create the database (createdb) or fix the store's URL"),
    (lambda s, _db: _has(s, "not a database", "malformed", "corrupt"),
     "the file is kept as it is; move it aside to start a new history, "
     "or choose another store with --history-db"),
    (lambda s, _db: _has(s, "locked", "busy"),
     "another process held the store too long; run the command again"),
    (lambda s, db: db.read_only and _has(s, "readonly", "read-only"),
     "it is read-only here (its file or directory is not writable): check the "
     "permissions, or choose another store with --history-db"),
    (lambda s, _db: _has(s, "unable to open", "readonly", "permission"),
     "check the file's permissions or choose another store with --history-db"),
)


class MissingStore(StoreError):
    """A reader's store does not exist, or holds no bisector history: nothing was made."""


def me() -> tuple[str, int]:
    """This process as a claim names it: (host, pid)."""
    return socket.gethostname(), os.getpid()


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def display_url(url: str) -> str:
    """How a store is named to people: a file path for SQLite, never a password."""
    try:
        parsed = sa.engine.make_url(url)
    except (exc.ArgumentError, ValueError, TypeError):
        return redact(url)  # shown as written, a password in it hidden
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(parsed.database)
    return redact(url)


def sqlstate(error: object) -> str | None:
    """The SQLSTATE of a driver error: psycopg's `sqlstate`, psycopg2's `pgcode`."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


def _hint_for(lowered: str, db: Database) -> str:
    """The fix a store error names, from the driver's first line (lower case)."""
    for says, hint in _HINTS:
        if says(lowered, db):
            return hint
    return "check the store with --history-db"


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
                _sqlite_file_pragmas(cur, set_wal=set_wal,
                                     checkpoint_on_commit=checkpoint_on_commit)
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("bisector_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_file_pragmas(cur: Any, *, set_wal: bool, checkpoint_on_commit: bool) -> None:
    mode = cur.execute("PRAGMA journal_mode").fetchone()
    if set_wal and mode and str(mode[0]).lower() != "wal":
        # Persistent once set; if another process holds a lock right now it will set it,
        # or the next connection will. The busy timeout covers the rest.
        with contextlib.suppress(Exception):
            cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA cache_size = -65536")
    if not checkpoint_on_commit:
        # The WAL is folded back when the last connection closes instead.
        cur.execute("PRAGMA wal_autocheckpoint = 0")


def _postgres_connect_args() -> dict[str, Any]:
    """A wrong host fails in seconds, not after the kernel's TCP timeout. The application
    name says who holds a claim's advisory lock (see `journal`). TCP keepalives: a claim's
    advisory-lock connection that a network fault cut off is noticed (and its lock released)
    in about a minute, not hours."""
    host, pid = me()
    return {"connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": f"bisector pid {pid} on {host}"[:63],
            "keepalives": 1, "keepalives_idle": 30,
            "keepalives_interval": 10, "keepalives_count": 3}


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


class Database:
    """One history database: its engine, its dialect, its transactions and its schema."""

    def __init__(self, url: str, *, checkpoint_on_commit: bool = True, create: bool = True,
                 dirs_under: Path | None = None) -> None:
        """Connects nothing and reads no schema yet (see `HistoryStore.open`)."""
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
        memory = parsed.database in (None, "", ":memory:")
        engine_url, kwargs = self._engine_args(parsed, read_url, memory, dirs_under)
        self.engine = self._create_engine(engine_url, kwargs)
        if self.dialect == "sqlite":
            # a reader leaves the journal mode as the writers set it
            _sqlite_setup(self.engine, memory=memory,
                          checkpoint_on_commit=checkpoint_on_commit, set_wal=create)

    def _engine_args(self, parsed: sa.URL, read_url: str, memory: bool,
                     dirs_under: Path | None) -> tuple[str | sa.URL, dict[str, Any]]:
        if self.dialect == "sqlite":
            engine_url: str | sa.URL = read_url
            if not memory and not parsed.query.get("uri"):
                engine_url = self._sqlite_file(Path(str(parsed.database)), dirs_under)
            return engine_url, {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
        if self.dialect == "postgresql":
            return read_url, {"connect_args": _postgres_connect_args()}
        return read_url, {}

    def _create_engine(self, engine_url: str | sa.URL, kwargs: dict[str, Any]) -> sa.Engine:
        try:
            return sa.create_engine(engine_url, **kwargs)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
            raise StoreError(
                f"cannot use history store {self.location} ({redact_text(str(err), self.url)})",
                hint="install the driver for this database or choose another --history-db",
                location=self.location,
            ) from None

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
            self._make_parent(path, dirs_under)
        return self.url

    @staticmethod
    def _make_parent(path: Path, dirs_under: Path | None) -> None:
        """A missing directory is made only inside `dirs_under` (the checkout's own
        `.bisector/`): a mistyped path elsewhere is an error naming it."""
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

    def dispose(self) -> None:
        self.engine.dispose()

    # -- errors and transactions ---------------------------------------------------------------

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Any database error inside becomes this store's `StoreError`."""
        try:
            yield
        except StoreError:
            raise
        except exc.SQLAlchemyError as err:
            raise self.store_error(err) from None

    def store_error(self, err: exc.SQLAlchemyError) -> StoreError:
        orig = getattr(err, "orig", None) or err
        text = str(orig).strip()
        detail = redact_text(text.splitlines()[0].strip() if text else type(orig).__name__,
                             self.url)
        return StoreError(
            f"history store {self.location} is unusable ({detail})",
            hint=_hint_for(detail.lower(), self),
            location=self.location,
        )

    @contextlib.contextmanager
    def write(self, *, schema_lock: bool = False) -> Iterator[sa.Connection]:
        """A write transaction. SQLite: `BEGIN IMMEDIATE`, one writer at a time. PostgreSQL:
        writers run at once; `schema_lock` serializes schema changes on an advisory lock."""
        with self.guard(), self.engine.connect() as conn:
            conn = conn.execution_options(bisector_write=True)
            with conn.begin():
                if schema_lock and self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, 0)"),
                                 {"ns": PG_LOCK_NAMESPACE})
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.guard(), self.engine.connect() as conn, conn.begin():
            yield conn

    def retrying(self, work: Callable[[], _T], attempts: int = 5) -> _T:
        """Run a whole write transaction again when PostgreSQL chose it as a deadlock's or a
        serialization conflict's victim (it was rolled back, so nothing is written twice)."""
        for attempt in range(attempts):
            try:
                return work()
            except StoreError as err:
                state = sqlstate(err.__context__) or sqlstate(
                    getattr(err.__context__, "orig", None))
                if state not in _PG_RETRY_STATES or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- schema --------------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        """Create or migrate the schema where needed; a reader's store must hold one."""
        with self.read() as conn:
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
        with self.write(schema_lock=True) as conn:
            return migrations.upgrade(conn, self.location)

    def schema_version(self) -> int | None:
        with self.read() as conn:
            return migrations.read_version(conn)
