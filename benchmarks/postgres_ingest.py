"""Ingest into PostgreSQL from 8 concurrent writer processes: results/s, and zero lost rows.

Each writer is a process of its own (as 8 CI jobs of one team would be) that opens the store
and records runs of the same suite on commits of its own through `HistoryStore.record_run`,
the path `pytest --track-history` takes (the recorder reads the suite's test ids while the
tests run; here once, after a writer's first run). All writers start together on a fresh
database, so they also race to create the schema and the suite's tests. Afterwards the rows
are counted: every run and every result must be there. For scale, the same load from 1
writer, and from 8 writers into a SQLite file.

    python benchmarks/postgres_ingest.py [--writers 8] [--runs 25] [--tests 1000]

The server: BISECTOR_BENCH_PG or BISECTOR_TEST_PG, an admin URL (default: the `root` role
over the unix socket, as scripts/ensure-postgres sets it up); a database is created for the
run and dropped after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bisector.config import redact
from bisector.history import HistoryStore, schema
from bisector.model import Environment, Outcome, Run, TestResult, Trigger

DEFAULT_ADMIN = "postgresql+psycopg://root@/postgres?host=/var/run/postgresql"
ENV = Environment("cpython-3.11", "linux-x86_64", "none", "bench-key", "bench-fp")


def writer(url: str, worker: int, runs: int, tests: int, go: float, out: multiprocessing.Queue
           ) -> None:
    nodeids = [f"tests/test_m{i // 100:03d}.py::test_{i}" for i in range(tests)]
    time.sleep(max(0.0, go - time.time()))
    start = time.perf_counter()
    with HistoryStore.open(url) as store:
        known: dict[str, int] | None = None
        for i in range(runs):
            results = tuple(
                TestResult(n, Outcome.FAILED if (i + j) % 97 == 0 else Outcome.PASSED, 0.001,
                           "sig" if (i + j) % 97 == 0 else None)
                for j, n in enumerate(nodeids))
            store.record_run(Run(
                sha=f"{worker:04x}{i:036x}", dirty=False, branch="main", environment=ENV,
                trigger=Trigger.PYTEST, host=f"writer-{worker}", started_at=float(i),
                finished_at=float(i) + 1, exit_status=0, results=results), known_tests=known)
            if known is None:  # as the recorder does: the suite's test ids, read once
                known = store.tests()
    out.put((worker, time.perf_counter() - start))


def ingest(url: str, writers: int, runs: int, tests: int) -> tuple[float, dict[str, int]]:
    """Wall time from the common start to the last commit, and the rows counted afterwards."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    go = time.time() + 3.0  # every process imported and waiting
    procs = [ctx.Process(target=writer, args=(url, w, runs, tests, go, queue))
             for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"a writer failed: exit codes {[p.exitcode for p in procs]}")
    wall = max(queue.get()[1] for _ in procs)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in (schema.runs, schema.results, schema.tests)}
    engine.dispose()
    return wall, counts


def row(label: str, writers: int, runs: int, tests: int, wall: float,
        counts: dict[str, int]) -> tuple[str, int]:
    """A table row, and the rows lost (runs and results written but not found)."""
    want_runs, want_results = writers * runs, writers * runs * tests
    lost = (want_runs - counts["runs"]) + (want_results - counts["results"])
    return (f"| {label:<28} | {writers:>7} | {want_results:>9,} | {wall:>7.2f} | "
            f"{want_results / wall:>10,.0f} | {counts['runs']:>5,} | {counts['results']:>9,} "
            f"| {counts['tests']:>5,} | {lost:>4} |"), lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=25, help="runs per writer")
    parser.add_argument("--tests", type=int, default=1000, help="results per run")
    args = parser.parse_args()
    admin_url = os.environ.get("BISECTOR_BENCH_PG") or os.environ.get(
        "BISECTOR_TEST_PG", DEFAULT_ADMIN)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"bisector_bench_{secrets.token_hex(4)}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar()
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError as exc:
        print(f"no PostgreSQL server at {redact(admin_url)}: {str(exc.orig).strip()}",
              file=sys.stderr)
        return 1
    base = sa.engine.make_url(admin_url)
    print(f"PostgreSQL {version} at {redact(admin_url)}; {os.cpu_count()} CPUs; "
          f"{args.runs} runs of {args.tests} tests per writer\n")
    print("| store                        | writers |   results | wall s |  results/s | runs  "
          "|   results | tests | lost |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    lost_total = 0
    try:
        for name, writers, runs in ((names[0], args.writers, args.runs),
                                    (names[1], 1, args.runs * args.writers)):
            url = base.set(database=name).render_as_string(hide_password=False)
            wall, counts = ingest(url, writers, runs, args.tests)
            line, lost = row(f"PostgreSQL, {writers} process(es)", writers, runs, args.tests,
                             wall, counts)
            lost_total += lost
            print(line, flush=True)
        with tempfile.TemporaryDirectory(prefix="bisector-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'history.db'}"
            HistoryStore.open(url).close()
            wall, counts = ingest(url, args.writers, args.runs, args.tests)
            line, lost = row(f"SQLite, {args.writers} process(es)", args.writers, args.runs,
                             args.tests, wall, counts)
            lost_total += lost
            print(line, flush=True)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"\nlost rows: {lost_total}")
    return 1 if lost_total else 0


if __name__ == "__main__":
    sys.exit(main())
