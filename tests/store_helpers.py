"""Helpers shared by the history store tests on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bisector.history import HistoryStore, schema
from bisector.history.transfer import BISECTION_FIELDS, RUN_FIELDS
from bisector.model import CommitInfo, Environment, Outcome, Run, TestResult, Trigger

# a failure's long representation as pytest prints it, with what makes text awkward to store
TRACEBACK = ('    def test_flaky():\n>       assert 1 == 2, "ünïcode ✓"\n'
             "E       AssertionError: 1 != 2 — ünïcode\n\nt.py:7: AssertionError\t'quoted'\\n")

ENV = Environment(python="cpython-3.11.7", platform="linux-x86_64", deps_hash="none",
                  key="k1", fingerprint="f1")


def make_run(sha: str = "a" * 40, *, dirty: bool = False, n: int = 3, started: float = 1.0,
             outcome: Outcome = Outcome.PASSED, env: Environment = ENV,
             prefix: str = "t.py::test_", results: tuple[TestResult, ...] | None = None,
             seconds: float = 1.0, exit_status: int = 0) -> Run:
    """A clean pytest run: `n` tests with one outcome, or the `results` given."""
    if results is None:
        results = tuple(TestResult(f"{prefix}{i}", outcome, 0.1) for i in range(n))
    return Run(
        sha=sha, dirty=dirty, branch="main", environment=env, trigger=Trigger.PYTEST,
        host="h", started_at=started, finished_at=started + seconds, exit_status=exit_status,
        results=results,
    )


def varied_history(store: HistoryStore) -> None:
    """A little of everything a store holds, with the awkward values: NULLs, dirty runs, an
    image reference longer than 64 characters, unicode, a running and a finished bisection."""
    image = "registry.example.invalid/team/integration-suite@sha256:" + "f" * 64
    odd = Environment(python="container:integration", platform=image, deps_hash="uv.lock:ab",
                      key="k2", fingerprint="f2")
    commits = [CommitInfo(f"{i:040x}", (f"{i - 1:040x}",) if i else (), "Zoë", "z@x", 1700 + i,
                          f"change {i} ✓") for i in range(4)]
    ids = []
    for i, c in enumerate(commits):
        results = (
            TestResult("t.py::test_ok", Outcome.PASSED, 0.25),
            TestResult("t.py::test_flaky", Outcome.FAILED if i % 2 else Outcome.PASSED, 1.5,
                       "0123456789abcdef" if i % 2 else None,
                       "AssertionError: 1 != 2 — ünïcode" if i % 2 else None, i % 3, "call",
                       TRACEBACK if i % 2 else None),
            TestResult(f"t.py::test_param[{i}]", Outcome.SKIPPED, 0.0, None, "why", 0, "setup"),
        )
        run = Run(sha=c.sha, dirty=i == 2, branch=None if i == 1 else "main",
                  environment=odd if i == 3 else ENV,
                  trigger=Trigger.PROBE if i == 3 else Trigger.PYTEST, host="host-a",
                  started_at=1000.0 + i + 0.123456789, finished_at=1001.5 + i,
                  exit_status=None if i == 0 else 1, results=results)
        ids.append(store.record_run(run, commits=[c]))
    done_id, _ = store.start_bisection("key-done", commits[0].sha, commits[3].sha,
                                       ["t.py::test_flaky"], "first-parent", 2000.5)
    store.add_probe(done_id, ids[1], commits[1].sha, "check bad end")
    store.add_probe(done_id, ids[3], commits[3].sha, "midpoint")
    store.finish_bisection(done_id, "done", {"t.py::test_flaky": commits[1].sha}, 2001.0)
    open_id, _ = store.start_bisection("key-open", commits[0].sha, commits[2].sha,
                                       ["t.py::test_ok"], "full-dag", 2002.25)
    store.add_probe(open_id, ids[0], commits[0].sha, "check good end")
    store.record_nightly(branch="main", sha=commits[3].sha, run_id=ids[3], started_at=3000.5,
                         finished_at=3010.0, status="regression", exit_code=1, ledger={
                             "reported": [{"test": "t.py::test_flaky", "bad": commits[3].sha,
                                           "culprit": commits[1].sha, "since": 3000.5}]})


def dump(store: HistoryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ids replaced by what they stand for, sorted."""
    r, t, res, b, p, c = (schema.runs, schema.tests, schema.results, schema.bisections,
                          schema.probes, schema.commits)
    with store.db.read() as conn:
        runs = {row.id: tuple(row._mapping[f] for f in RUN_FIELDS)
                for row in conn.execute(sa.select(r))}
        tests = {row.id: (row.nodeid, row.file) for row in conn.execute(sa.select(t))}
        bisections = {row.id: tuple(row._mapping[f] for f in BISECTION_FIELDS)
                      for row in conn.execute(sa.select(b))}
        out = {
            "commits": [tuple(row) for row in conn.execute(sa.select(c))],
            "tests": list(tests.values()),
            "runs": [(*key[:1], bool(key[1]), *key[2:]) for key in runs.values()],
            "results": [(runs[row.run_id], tests[row.test_id][0], *row[2:])
                        for row in conn.execute(sa.select(res))],
            "bisections": list(bisections.values()),
            "probes": [(bisections[row.bisection_id][:1] + bisections[row.bisection_id][6:7],
                        runs[row.run_id], row.sha, row.purpose)
                       for row in conn.execute(sa.select(p))],
            "nightlies": [(row.branch, row.sha, runs.get(row.run_id), row.started_at,
                           row.finished_at, row.status, row.exit_code, row.ledger)
                          for row in conn.execute(sa.select(schema.nightlies))],
        }
    return {name: sorted(rows, key=repr) for name, rows in out.items()}
