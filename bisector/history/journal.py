"""The bisection journal and its claim protocol: one process per bisection, resumable after a
crash or Ctrl-C, and a loser that says who has it.

A bisection is a row in `bisections` with its probes in `probes` (ordinary runs). The process
that starts or resumes it claims the row: its owner (host, pid) and a heartbeat refreshed with
every probe, behind an atomic conditional UPDATE and a unique index on running keys. On
PostgreSQL the claimer also holds an advisory lock on the key for as long as its connection
lives, which tells a live claim from a crash's leftovers across hosts exactly; on SQLite the
owner's pid is looked for (on one host) or its heartbeat's age judged. See docs/adr/0006.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ..errors import BisectError, StoreError
from ..pids import pid_alive
from . import schema
from .engine import PG_LOCK_NAMESPACE, Database, me

# A claim on a bisection by a process on another host, with no probe recorded for this long,
# is taken to be the leftover of a crash (on one host, the process is simply looked for).
CLAIM_STALE_S = 6 * 3600.0
# Journal states of a bisection that a later run with its key resumes.
OPEN_STATUSES = ("running", "interrupted")


def claim_key(key: str) -> int:
    """A bisection key as a signed 32-bit advisory lock id."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


def held_elsewhere(row: Any) -> bool:
    """Does another live process hold this running bisection? (pid and host, heartbeat)"""
    if row.owner_pid is None or row.heartbeat is None:
        return False  # let go of (close), or written before claims existed
    host, pid = me()
    if row.owner_host == host:
        return row.owner_pid != pid and pid_alive(int(row.owner_pid))
    return time.time() - float(row.heartbeat) < CLAIM_STALE_S


def lost_claim(bisection_id: int) -> BisectError:
    return BisectError(
        f"lost the claim on bisection {bisection_id} (resumed by another process)",
        hint="that process carries it on; run the command again once it has finished",
    )


def _lock_holder(conn: sa.Connection, key: str) -> tuple[int, str] | None:
    """(pid, host) of the process holding a key's advisory lock, from its application
    name; None when the server does not show it (another role, without pg_read_all_stats)."""
    with contextlib.suppress(exc.SQLAlchemyError):
        name = conn.execute(sa.text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = :ns AND l.objid::bigint = :k AND l.objsubid = 2"),
            {"ns": PG_LOCK_NAMESPACE, "k": claim_key(key) & 0xFFFFFFFF}).scalar()
        match = re.fullmatch(r"bisector pid (\d+) on (.+)", name or "")
        if match:
            return int(match.group(1)), match.group(2)
    return None


def _running_owner(conn: sa.Connection, key: str, holder: tuple[int, str] | None
                   ) -> Any | None:
    """The key's running row (id, host, pid), waited for briefly: the winner may be a
    moment from committing it. With a lock `holder`, only the row that holder owns."""
    b = schema.bisections
    with contextlib.suppress(exc.SQLAlchemyError):
        for _ in range(40):
            row = conn.execute(
                sa.select(b.c.id, b.c.owner_host, b.c.owner_pid)
                .where(b.c.key == key, b.c.status == "running").order_by(b.c.id.desc())
            ).first()
            if row is not None and (holder is None or (
                    row.owner_pid == holder[0] and str(row.owner_host).startswith(holder[1]))):
                return row
            if conn.in_transaction() and conn.dialect.name == "sqlite":
                break  # SQLite: our own write transaction already sees everything
            time.sleep(0.05)
    return None


def busy(conn: sa.Connection, key: str, bisection_id: int | None, host: str | None,
         pid: int | None) -> BisectError:
    """The loser's one line: which bisection, and which process (pid and host) has it."""
    holder = _lock_holder(conn, key) if conn.dialect.name == "postgresql" else None
    row = _running_owner(conn, key, holder)
    if row is not None:
        bisection_id, host, pid = row.id, row.owner_host, row.owner_pid
    if holder is not None:
        pid, host = holder[0], host if host and host.startswith(holder[1]) else holder[1]
    who = f"pid {pid} on {host}" if pid is not None else "another process"
    name = f"bisection {bisection_id}" if bisection_id is not None else "this bisection"
    return BisectError(
        f"{name} is being resumed by another process ({who})",
        hint="wait for it to finish (or stop it) and run the command again",
    )


def _unlock(lock: sa.Connection, key: str) -> None:
    try:
        lock.execute(sa.text("SELECT pg_advisory_unlock(:ns, :k)"),
                     {"ns": PG_LOCK_NAMESPACE, "k": claim_key(key)})
        lock.info.pop("bisector_key", None)
        lock.close()
    except exc.SQLAlchemyError:
        lock.invalidate()  # closing the session for good releases its locks too


def _unlock_held(lock: sa.Connection | None) -> None:
    if lock is not None:
        _unlock(lock, str(lock.info.get("bisector_key", "")))


def _take_over(conn: sa.Connection, key: str, open_rows: list[Any]) -> None:
    """Mark the key's open attempts abandoned, each by compare-and-swap: only if nobody
    claimed it since it was read; otherwise the one who did is named."""
    b = schema.bisections
    for row in open_rows:
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
            raise busy(conn, key, row.id, row.owner_host, row.owner_pid)


def _probes_done(conn: sa.Connection, open_rows: list[Any]) -> int:
    """Probes of the newest open attempt: the one whose probes a resumed run picks up."""
    if not open_rows:
        return 0
    p = schema.probes
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(p).where(p.c.bisection_id == open_rows[0].id)
    ).scalar() or 0)


class Journal:
    """The journal of one store, and the claims this process holds on its bisections."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Claims this process holds on bisections: id -> the key's advisory-lock connection
        # on PostgreSQL (None on SQLite, where the claim is the row's owner and heartbeat).
        self._claims: dict[int, sa.Connection | None] = {}

    def start_bisection(self, key: str, good: str, bad: str, tests: list[str], mode: str,
                        started_at: float) -> tuple[int, int]:
        """Open a journal entry, claimed by this process; returns (id, probes already stored
        by an unfinished earlier attempt with the same key), so that a resumed bisection can
        say what it picks up.

        Two processes starting or resuming the same bisection at once: one wins, the other
        gets a `BisectError` naming the winner (see the module's docstring).
        """
        lock = self._lock_key(key)
        try:
            new_id, done = self._claim(key, good, bad, tests, mode, started_at,
                                       have_lock=lock is not None)
        except BaseException:
            if lock is not None:
                _unlock(lock, key)
            raise
        self._claims[new_id] = lock
        return new_id, done

    def _claim(self, key: str, good: str, bad: str, tests: list[str], mode: str,
               started_at: float, *, have_lock: bool) -> tuple[int, int]:
        b = schema.bisections
        host, pid = me()
        with self.db.write() as conn:
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
                    if row.status == "running" and held_elsewhere(row):
                        raise busy(conn, key, row.id, row.owner_host, row.owner_pid)
            done = _probes_done(conn, open_rows)
            _take_over(conn, key, open_rows)
            try:
                with conn.begin_nested():
                    new_id = conn.execute(b.insert().values(
                        key=key, good=good, bad=bad, tests=json.dumps(tests), mode=mode,
                        status="running", started_at=started_at,
                        owner_host=host, owner_pid=pid, heartbeat=time.time(),
                    )).inserted_primary_key[0]
            except exc.IntegrityError:  # another process inserted its attempt first
                raise busy(conn, key, None, None, None) from None
        return int(new_id), done

    def _lock_key(self, key: str) -> sa.Connection | None:
        """PostgreSQL: hold the key's advisory lock on a connection of its own (released when
        this process lets go or dies); raise the "being resumed" error when another holds it."""
        if self.db.dialect != "postgresql":
            return None
        for claimed_id, lock in list(self._claims.items()):
            if lock is not None and lock.info.get("bisector_key") == key:
                # this store's own earlier, unfinished attempt: hand its lock on
                del self._claims[claimed_id]
                return lock
        with self.db.guard():
            lock = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = lock.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :k)"),
                                   {"ns": PG_LOCK_NAMESPACE, "k": claim_key(key)}).scalar()
            except BaseException:
                lock.close()
                raise
        if not got:
            lock.close()
            with self.db.read() as conn:
                raise busy(conn, key, None, None, None)
        lock.info["bisector_key"] = key
        return lock

    def release_claims(self) -> None:
        """Bisections this process claimed and did not finish stay running (resumable), with
        the heartbeat cleared: another process may take them over at once."""
        claims, self._claims = self._claims, {}
        if not claims:
            return
        b = schema.bisections
        host, pid = me()
        try:
            with self.db.write() as conn:
                conn.execute(b.update().where(
                    b.c.id.in_(list(claims)), b.c.status == "running",
                    b.c.owner_host == host, b.c.owner_pid == pid,
                ).values(heartbeat=None))
        except StoreError:
            pass  # the store is gone: the pid check (or the stale heartbeat) frees it later
        finally:
            for lock in claims.values():
                _unlock_held(lock)

    def add_probe(self, bisection_id: int, run_id: int, sha: str, purpose: str) -> None:
        """Journal a probe of a bisection this process holds (and refresh its heartbeat);
        a `BisectError` when another process has taken it over meanwhile."""
        with self.db.write() as conn:
            owned = journal_probe(conn, bisection_id, run_id, sha, purpose)
        if not owned:
            raise lost_claim(bisection_id)

    def finish_bisection(self, bisection_id: int, status: str, result: Any,
                         finished_at: float) -> None:
        """Close a bisection this process holds; a `BisectError` when another process has
        taken it over meanwhile (its row is then that process's to finish).

        `interrupted` (Ctrl-C) closes this attempt but not the bisection: the next
        `start_bisection` with its key resumes it, as it does a crashed one.
        """
        b = schema.bisections
        host, pid = me()
        try:
            with self.db.write() as conn:
                done = conn.execute(b.update().where(
                    b.c.id == bisection_id, b.c.status == "running",
                    b.c.owner_host == host, b.c.owner_pid == pid,
                ).values(status=status, result=json.dumps(result),
                         finished_at=finished_at)).rowcount
                if done != 1:
                    raise lost_claim(bisection_id)
        finally:
            _unlock_held(self._claims.pop(bisection_id, None))

    # -- reading the journal -------------------------------------------------------------------

    def bisections(self) -> list[dict[str, Any]]:
        b = schema.bisections
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(b).order_by(b.c.id))]

    def open_bisections(self) -> list[dict[str, Any]]:
        """The journal entries still open (being run, crashed, or interrupted: resumable)."""
        b = schema.bisections
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(
                sa.select(b).where(b.c.status.in_(OPEN_STATUSES)).order_by(b.c.id))]

    def probes_of(self, bisection_id: int) -> list[dict[str, Any]]:
        """A bisection's probes in the order they ran: sha, purpose, run id, times and the
        key of the patch a probe of a patched tree applied (None for the commit's own tree)."""
        p, r = schema.probes, schema.runs
        query = (
            sa.select(p.c.sha, p.c.purpose, p.c.run_id, r.c.started_at, r.c.finished_at,
                      r.c.patch_key)
            .join(r, r.c.id == p.c.run_id)
            .where(p.c.bisection_id == bisection_id)
            .order_by(r.c.started_at, p.c.run_id)
        )
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


_B = schema.bisections
_OWNED = sa.select(_B.c.id).where(
    _B.c.id == sa.bindparam("bid"), _B.c.status == "running",
    _B.c.owner_host == sa.bindparam("host"), _B.c.owner_pid == sa.bindparam("pid"),
).with_for_update()  # PostgreSQL: a takeover's compare-and-swap waits for this commit
_HEARTBEAT = _B.update().where(
    _B.c.id == sa.bindparam("bid"), _B.c.heartbeat.is_not(None),
).values(heartbeat=sa.bindparam("now"))


def journal_probe(conn: sa.Connection, bisection_id: int, run_id: int, sha: str,
                  purpose: str) -> bool:
    """`Journal.add_probe` inside the caller's write transaction: False, with nothing
    journaled, when another process has taken the bisection over (the caller raises
    `lost_claim` once its transaction, which may hold the probe's run, is committed).
    Its statements are built once: a bisection journals hundreds of probes."""
    host, pid = me()
    if conn.execute(_OWNED, {"bid": bisection_id, "host": host, "pid": pid}).first() is None:
        return False
    conn.execute(schema.probes.insert(), {
        "bisection_id": bisection_id, "run_id": run_id, "sha": sha, "purpose": purpose})
    conn.execute(_HEARTBEAT, {"bid": bisection_id, "now": time.time()})
    return True
