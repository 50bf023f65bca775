"""Reading history: runs, results per commit, durations, commits, tests. Every query here is
chunked (IN-lists of at most `CHUNK`) and reads clean runs only where the results are evidence:
a dirty run is recorded but never evidence for a bisection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa

from ..model import CommitInfo, Outcome, TestResult
from . import schema
from .engine import Database, chunks


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
    # pytest's long representation of a failure, or an untestable probe's output tail (at
    # most TRACEBACK_MAX characters); None when there was none or it was not asked for
    traceback: str | None = None
    patch_key: str | None = None  # the patch applied on top of sha (isolation probes only)
    phase: str = "call"  # where it ended: "collect" makes a failure untestable, not bad


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
    patch_key: str | None = None


def tests(db: Database) -> dict[str, int]:
    t = schema.tests
    with db.read() as conn:
        return {row.nodeid: row.id for row in conn.execute(sa.select(t.c.nodeid, t.c.id))}


def runs(db: Database, *, sha: str | None = None, limit: int | None = None) -> list[RunRow]:
    r = schema.runs
    query = sa.select(
        r.c.id, r.c.sha, r.c.dirty, r.c.branch, r.c.env_key, r.c.fingerprint, r.c.trigger,
        r.c.started_at, r.c.finished_at, r.c.exit_status, r.c.patch_key,
    ).order_by(r.c.started_at.desc(), r.c.id.desc())
    if sha is not None:
        query = query.where(r.c.sha == sha)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [RunRow(*row) for row in conn.execute(query)]


def run_shas(db: Database) -> set[str]:
    """Commits with at least one run, clean or dirty."""
    r = schema.runs
    with db.read() as conn:
        return set(conn.execute(sa.select(r.c.sha).distinct()).scalars())


def latest_clean_run(db: Database, sha: str) -> RunRow | None:
    for run in runs(db, sha=sha):
        if not run.dirty and run.patch_key is None:
            return run
    return None


def outcome_counts(db: Database, run_id: int) -> dict[str, int]:
    res = schema.results
    query = (
        sa.select(res.c.outcome, sa.func.count())
        .where(res.c.run_id == run_id)
        .group_by(res.c.outcome)
    )
    with db.read() as conn:
        return {outcome: int(n) for outcome, n in conn.execute(query)}


def tracked_shas(db: Database, *, env_key: str | None = None) -> set[str]:
    """Commits with at least one clean run (in this environment, if given)."""
    r = schema.runs
    query = sa.select(r.c.sha).where(r.c.dirty.is_(False), r.c.patch_key.is_(None)).distinct()
    if env_key is not None:
        query = query.where(r.c.env_key == env_key)
    with db.read() as conn:
        return set(conn.execute(query).scalars())


def _results_query(env_key: str | None, with_tracebacks: bool, patched: bool) -> Any:
    """Results of clean runs; of the commits themselves, or (`patched`) only of the runs with
    a patch applied: one never stands in for the other."""
    r, res, t = schema.runs, schema.results, schema.tests
    columns = [r.c.sha, r.c.id, r.c.started_at, t.c.id, t.c.nodeid, res.c.outcome,
               res.c.reruns, res.c.signature, res.c.message, r.c.env_key,
               res.c.traceback if with_tracebacks else sa.null().label("traceback"),
               r.c.patch_key, res.c.phase]
    query = (
        sa.select(*columns)
        .select_from(res.join(r, r.c.id == res.c.run_id).join(t, t.c.id == res.c.test_id))
        .where(r.c.dirty.is_(False),
               r.c.patch_key.is_not(None) if patched else r.c.patch_key.is_(None))
    )
    return query if env_key is None else query.where(r.c.env_key == env_key)


def results_at(db: Database, shas: Iterable[str], *, env_key: str | None = None,
               test_ids: Iterable[int] | None = None,
               tracebacks: bool = True, patched: bool = False) -> list[ResultRow]:
    """Results of clean runs on these commits; dirty runs are never evidence, and the runs
    with a patch applied (isolation probes) are read only when `patched` (and then only they).

    `tracebacks=False` leaves the stored tracebacks unread (each row's is None), for a
    caller that scans many commits and shows none of them.
    """
    r, t = schema.runs, schema.tests
    base = _results_query(env_key, tracebacks, patched)
    wanted_tests = None if test_ids is None else sorted(set(test_ids))
    out: list[ResultRow] = []
    with db.read() as conn:
        for sha_chunk in chunks(sorted(set(shas))):
            query = base.where(r.c.sha.in_(sha_chunk))
            if wanted_tests is None:
                out.extend(ResultRow(*row) for row in conn.execute(query))
                continue
            for test_chunk in chunks(wanted_tests):
                out.extend(
                    ResultRow(*row) for row in conn.execute(query.where(t.c.id.in_(test_chunk)))
                )
    return out


def run_results(db: Database, run_id: int) -> dict[str, tuple[str, str | None]]:
    """One run's results: nodeid -> (outcome, message); `results_of` has them whole."""
    res, t = schema.results, schema.tests
    query = (sa.select(t.c.nodeid, res.c.outcome, res.c.message)
             .join(t, t.c.id == res.c.test_id).where(res.c.run_id == run_id))
    with db.read() as conn:
        return {row.nodeid: (row.outcome, row.message) for row in conn.execute(query)}


def results_of(db: Database, run_id: int) -> dict[str, TestResult]:
    """One run's results, whole (traceback included): nodeid -> TestResult."""
    res, t = schema.results, schema.tests
    query = (sa.select(t.c.nodeid, res.c.outcome, res.c.duration, res.c.signature,
                       res.c.message, res.c.reruns, res.c.phase, res.c.traceback)
             .join(t, t.c.id == res.c.test_id).where(res.c.run_id == run_id))
    with db.read() as conn:
        return {row.nodeid: TestResult(row.nodeid, Outcome(row.outcome), row.duration,
                                       row.signature, row.message, row.reruns, row.phase,
                                       row.traceback)
                for row in conn.execute(query)}


def durations(db: Database, shas: Iterable[str], *, limit: int | None = None
              ) -> list[tuple[str, float, float, int]]:
    """(nodeid, mean, max, count) of test durations in seconds over the clean runs on these
    commits, slowest mean first; results that took no real time (skipped, untestable) are
    left out. Summed in SQL (GROUP BY) per chunk of commits, merged here."""
    r, res, t = schema.runs, schema.results, schema.tests
    base = (
        sa.select(t.c.nodeid, sa.func.sum(res.c.duration), sa.func.max(res.c.duration),
                  sa.func.count())
        .select_from(res.join(r, r.c.id == res.c.run_id).join(t, t.c.id == res.c.test_id))
        .where(r.c.dirty.is_(False), r.c.patch_key.is_(None),
               res.c.outcome.not_in(["skipped", "untestable"]))
        .group_by(t.c.nodeid)
    )
    totals: dict[str, list[float]] = {}
    with db.read() as conn:
        for chunk in chunks(sorted(set(shas))):
            for nodeid, total, longest, count in conn.execute(base.where(r.c.sha.in_(chunk))):
                have = totals.setdefault(nodeid, [0.0, 0.0, 0])
                have[0] += float(total or 0.0)
                have[1] = max(have[1], float(longest or 0.0))
                have[2] += int(count)
    out = [(nodeid, s / n, longest, int(n)) for nodeid, (s, longest, n) in totals.items() if n]
    out.sort(key=lambda d: (-d[1], d[0]))
    return out if limit is None else out[:limit]


def commit_infos(db: Database, shas: Iterable[str]) -> dict[str, CommitInfo]:
    c = schema.commits
    out: dict[str, CommitInfo] = {}
    with db.read() as conn:
        for chunk in chunks(sorted(set(shas))):
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
