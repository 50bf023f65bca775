"""The history schema, as SQLAlchemy Core tables (portable: SQLite by default, or PostgreSQL).

A fresh store is created from these tables and stamped with `SCHEMA_VERSION`; an older store is
brought forward by the steps in `migrations.py`. History is never dropped by a migration.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 6

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
    # Text since v3: an image reference can be longer than 64 characters, and PostgreSQL,
    # unlike SQLite, enforces a VARCHAR's length.
    sa.Column("python", sa.Text, nullable=False),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("deps_hash", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("exit_status", sa.Integer),
    # v6: a run of the commit with a patch applied (an isolation probe: some of a culprit's
    # hunks on its parent, or a revert at the bad end), named by the patch's hash. NULL for a
    # run of the commit itself: only those are evidence about the commit (see docs/adr/0021).
    sa.Column("patch_key", sa.String(32)),
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
    # v5: pytest's long representation of a failure, or an untestable probe's output tail; at
    # most TRACEBACK_MAX characters (the tail is kept), NULL for the results that have none
    sa.Column("traceback", sa.Text),
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
    # v3: the claim. The process that runs (or resumes) a bisection; heartbeat is refreshed
    # with every probe and cleared when the process lets go (close), so that another process
    # can tell a live claim from the leftovers of a crash. See docs/adr/0006.
    sa.Column("owner_host", sa.Text),
    sa.Column("owner_pid", sa.Integer),
    sa.Column("heartbeat", sa.Float),
)

# v3: at most one running attempt per key, whatever races the claim loses (both dialects
# support partial indexes).
running_key = sa.Index(
    "ux_bisections_running_key",
    bisections.c.key,
    unique=True,
    sqlite_where=bisections.c.status == "running",
    postgresql_where=bisections.c.status == "running",
)

probes = sa.Table(
    "probes",
    metadata,
    sa.Column("bisection_id", sa.Integer, sa.ForeignKey("bisections.id"), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
)

# v4: what each `bisector nightly` concluded. The ledger (JSON: the regressions it reported,
# with their culprits, and the ones it carried) is what the next night reads so that a
# regression already reported is carried as "still failing", not bisected again.
nightlies = sa.Table(
    "nightlies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("branch", sa.Text, nullable=False),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("run_id", sa.Integer),  # not a foreign key: `gc --keep` may prune the run
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("ledger", sa.Text, nullable=False),
    sa.Index("ix_nightlies_branch", "branch", "id"),
)
