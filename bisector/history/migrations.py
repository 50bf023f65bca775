"""Versioned schema steps. Step N takes a store from version N-1 to N, inside one transaction.

Rules: a step only adds (tables, columns, indexes) or rewrites in place; nothing that holds
history is ever dropped. A store stamped with a version newer than this code knows is refused,
never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ..errors import StoreError
from . import schema

Step = Callable[[sa.Connection], None]

def _v2_journal(conn: sa.Connection) -> None:
    schema.bisections.create(conn, checkfirst=True)
    schema.probes.create(conn, checkfirst=True)


def _v3_claims(conn: sa.Connection) -> None:
    """The journal's claim columns and one running attempt per key; wider text columns."""
    b = schema.bisections
    have = {c["name"] for c in sa.inspect(conn).get_columns(b.name)}
    for name in ("owner_host", "owner_pid", "heartbeat"):
        if name not in have:  # a v1 store got them with the v2 table already
            kind = b.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {b.name} ADD COLUMN {name} {kind}"))
    # Before claims, a race could leave two running attempts of one key: the newest stays
    # running, the others are what they were in effect, abandoned.
    newest = (
        sa.select(b.c.key, sa.func.max(b.c.id).label("id"))
        .where(b.c.status == "running").group_by(b.c.key).subquery()
    )
    conn.execute(
        b.update()
        .where(b.c.status == "running", b.c.id.not_in(sa.select(newest.c.id)))
        .values(status="abandoned")
    )
    schema.running_key.create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        for name in ("python", "platform"):
            conn.execute(sa.text(f"ALTER TABLE runs ALTER COLUMN {name} TYPE TEXT"))


def _v4_nightlies(conn: sa.Connection) -> None:
    schema.nightlies.create(conn, checkfirst=True)


def _v5_tracebacks(conn: sa.Connection) -> None:
    """A nullable text column for each result's traceback: an ALTER that rewrites no row on
    either dialect (old results simply have none)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(schema.results.name)}
    if "traceback" not in have:
        kind = schema.results.c.traceback.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {schema.results.name} ADD COLUMN traceback {kind}"))


def _v6_patch_keys(conn: sa.Connection) -> None:
    """Runs of a commit with a patch applied (isolation probes) carry the patch's key; every
    run stored before has none: it is a run of its commit itself."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(schema.runs.name)}
    if "patch_key" not in have:
        kind = schema.runs.c.patch_key.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {schema.runs.name} ADD COLUMN patch_key {kind}"))


# version -> step from version-1; version 1 is the initial schema, created from `schema`.
STEPS: dict[int, Step] = {2: _v2_journal, 3: _v3_claims, 4: _v4_nightlies, 5: _v5_tracebacks,
                       6: _v6_patch_keys}

_MANAGED = {"runs", "tests", "results", "commits"}


def read_version(conn: sa.Connection) -> int | None:
    """The stamped version, or None for an empty database."""
    # One catalog read: two (has_table, then the names) could straddle another process's
    # commit of a fresh schema on PostgreSQL and see its tables without their stamp.
    names = set(sa.inspect(conn).get_table_names())
    if schema.meta.name not in names:
        if _MANAGED & names:
            raise StoreError(
                "the database holds tables but no bisector schema version",
                hint="point --history-db at a bisector store or an empty database",
            )
        return None
    row = conn.execute(
        sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    if row is None:
        raise StoreError("the store has no schema version", hint="restore it from a backup")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"the store's schema version {row[0]!r} is not a number",
                         hint="restore it from a backup") from None
    if version < 1:  # no step leads from there: refuse it rather than guess what it holds
        raise StoreError(f"the store's schema version {row[0]!r} is not a valid version",
                         hint="restore it from a backup")
    return version


def _stamp(conn: sa.Connection, version: int, *, insert: bool) -> None:
    if insert:
        conn.execute(schema.meta.insert().values(key="schema_version", value=str(version)))
    else:
        conn.execute(
            schema.meta.update()
            .where(schema.meta.c.key == "schema_version")
            .values(value=str(version))
        )


def check_supported(version: int, location: str) -> None:
    if version > schema.SCHEMA_VERSION:
        raise StoreError(
            f"{location} was written by a newer bisector (schema v{version}; "
            f"this one reads up to v{schema.SCHEMA_VERSION})",
            hint="upgrade bisector (pip install -U bisector) or choose another store "
            "with --history-db",
            location=location,
        )


def upgrade(conn: sa.Connection, location: str) -> int:
    """Create or migrate the schema; the caller holds the store's schema lock (SQLite's write
    lock, PostgreSQL's advisory lock), so that concurrent openers migrate once."""
    version = read_version(conn)
    if version is None:
        schema.metadata.create_all(conn)
        _stamp(conn, schema.SCHEMA_VERSION, insert=True)
        return schema.SCHEMA_VERSION
    check_supported(version, location)
    for target in range(version + 1, schema.SCHEMA_VERSION + 1):
        STEPS[target](conn)
    if version != schema.SCHEMA_VERSION:
        _stamp(conn, schema.SCHEMA_VERSION, insert=False)
    return schema.SCHEMA_VERSION
