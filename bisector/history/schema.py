"""The history schema, as SQLAlchemy Core tables (portable: SQLite by default, PostgreSQL later).

A fresh store is created from these tables and stamped with `SCHEMA_VERSION`; an older store is
brought forward by the steps in `migrations.py`. History is never dropped by a migration.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 2

metadata = sa.MetaData()

meta = sa.Table(
    "bisector_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("sha", sa.String(64), primary_key=True),
    sa.Column("parents", sa.Text, nullable=False, default=""),
    sa.Column("author_name", sa.Text, nullable=False, default=""),
    sa.Column("author_email", sa.Text, nullable=False, default=""),
    sa.Column("committed_at", sa.BigInteger, nullable=False, default=0),
    sa.Column("subject", sa.Text, nullable=False, default=""),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("dirty", sa.Boolean, nullable=False),
    sa.Column("branch", sa.Text),
    sa.Column("env_key", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(64), nullable=False),
    sa.Column("deps_hash", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("exit_status", sa.Integer),
    sa.Index("ix_runs_sha_env", "sha", "env_key"),
)

tests = sa.Table(
    "tests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("nodeid", sa.Text, nullable=False, unique=True),
    sa.Column("file", sa.Text, nullable=False),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("test_id", sa.Integer, sa.ForeignKey("tests.id"), primary_key=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("duration", sa.Float, nullable=False, default=0.0),
    sa.Column("signature", sa.String(32)),
    sa.Column("message", sa.Text),
    sa.Column("reruns", sa.Integer, nullable=False, default=0),
    sa.Column("phase", sa.String(16), nullable=False, default="call"),
    # Keyed run-major: a session's results land together at the end of the tree, and every
    # query reaches results through its runs (commit, environment), then the test. A test-major
    # index would touch one page per test on every insert (see docs/adr/0001).
    sqlite_with_rowid=False,
)

# v2: the journal of bisections. Probes are ordinary runs; these tables say which bisection
# asked for them and what it concluded, so a resumed bisection can say what it picks up.
bisections = sa.Table(
    "bisections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("good", sa.String(64), nullable=False),
    sa.Column("bad", sa.String(64), nullable=False),
    sa.Column("tests", sa.Text, nullable=False),  # JSON list of node ids
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running, done, failed, abandoned
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("result", sa.Text),  # JSON, when done
)

probes = sa.Table(
    "probes",
    metadata,
    sa.Column("bisection_id", sa.Integer, sa.ForeignKey("bisections.id"), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
)
