"""`HistoryStore`: the one door to the history database, a facade over its parts.

| module | job |
|---|---|
| `engine.py` | engine and dialect set-up, transactions, schema, errors as `StoreError` |
| `runs.py` | writing runs and their results (one transaction, one bulk insert) |
| `reads.py` | reading runs, results, durations, commits, tests |
| `journal.py` | the bisection journal and its claim protocol |
| `ledger.py` | the nightly ledger |
| `prune.py` | removing old runs (`gc --keep`), sparing open bisections |

Callers hold a `HistoryStore` and call its methods; none of them needs the parts. See
docs/adr/0001, 0006 and 0018.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..model import CommitInfo, Run, TestResult
from . import ledger as nightly_ledger
from . import reads, runs
from .engine import NO_STORE_HINT, Database, MissingStore, display_url
from .journal import CLAIM_STALE_S, OPEN_STATUSES, Journal, journal_probe, lost_claim
from .prune import Pruned, prune
from .reads import ResultRow, RunRow

__all__ = [
    "CLAIM_STALE_S", "NO_STORE_HINT", "OPEN_STATUSES", "HistoryStore", "MissingStore", "Pruned",
    "ResultRow", "RunRow", "display_url",
]


class HistoryStore:
    """History of runs and results; open with `HistoryStore.open(url)` and close it."""

    def __init__(self, url: str, *, checkpoint_on_commit: bool = True, create: bool = True,
                 dirs_under: Path | None = None) -> None:
        """See `open`; this connects nothing and reads no schema yet."""
        self.db = Database(url, checkpoint_on_commit=checkpoint_on_commit, create=create,
                           dirs_under=dirs_under)
        self.journal = Journal(self.db)

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
            self.journal.release_claims()
        finally:
            self.db.dispose()

    # -- the database ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def location(self) -> str:
        """The store as people see it named: a file path, or its URL without the password."""
        return self.db.location

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @property
    def read_only(self) -> bool:
        return self.db.read_only

    def ensure_schema(self) -> int:
        return self.db.ensure_schema()

    def schema_version(self) -> int | None:
        return self.db.schema_version()

    # -- writing runs ---------------------------------------------------------------------------

    def record_commits(self, infos: Iterable[CommitInfo]) -> None:
        runs.record_commits(self.db, infos)

    def record_run(self, run: Run, commits: Iterable[CommitInfo] = (), *,
                   known_tests: dict[str, int] | None = None) -> int:
        """Store a run and all its results in one transaction; returns the run's id.
        A result's traceback keeps its last TRACEBACK_MAX characters."""
        return runs.record_run(self.db, run, commits, known_tests=known_tests)

    # -- the bisection journal (journal.py) -----------------------------------------------------

    def start_bisection(self, key: str, good: str, bad: str, tests: list[str], mode: str,
                        started_at: float) -> tuple[int, int]:
        """Open (or resume) a bisection claimed by this process: (id, probes already stored)."""
        return self.journal.start_bisection(key, good, bad, tests, mode, started_at)

    def add_probe(self, bisection_id: int, run_id: int, sha: str, purpose: str) -> None:
        self.journal.add_probe(bisection_id, run_id, sha, purpose)

    def record_probe(self, run: Run, commits: Iterable[CommitInfo], bisection_id: int,
                     purpose: str, *, known_tests: dict[str, int] | None = None) -> int:
        """`record_run` and `add_probe` as one transaction (a bisection writes hundreds of
        small runs, and a transaction is most of the cost of each): the run's id. A lost claim
        is a `BisectError` after the run is stored, as it is with the two calls.

        `known_tests` (nodeid -> id) saves looking the ids up; the ids this run's results got
        are added to it once they are committed (a retried transaction's are not yet real)."""
        commit_rows = [runs.commit_row(c) for c in commits]
        ids: dict[str, int] = {}

        def work() -> tuple[int, bool]:
            ids.clear()
            with self.db.write() as conn:
                run_id = runs.write_run(conn, run, commit_rows, known_tests, ids)
                return run_id, journal_probe(conn, bisection_id, run_id, run.sha, purpose)

        run_id, owned = self.db.retrying(work)
        if known_tests is not None:
            known_tests.update(ids)
        if not owned:
            raise lost_claim(bisection_id)
        return run_id

    def finish_bisection(self, bisection_id: int, status: str, result: Any,
                         finished_at: float) -> None:
        self.journal.finish_bisection(bisection_id, status, result, finished_at)

    def bisections(self) -> list[dict[str, Any]]:
        return self.journal.bisections()

    def open_bisections(self) -> list[dict[str, Any]]:
        return self.journal.open_bisections()

    def probes_of(self, bisection_id: int) -> list[dict[str, Any]]:
        return self.journal.probes_of(bisection_id)

    # -- the nightly ledger (ledger.py) ---------------------------------------------------------

    def record_nightly(self, *, branch: str, sha: str, run_id: int | None, started_at: float,
                       finished_at: float, status: str, exit_code: int,
                       ledger: dict[str, Any]) -> int:
        return nightly_ledger.record_nightly(
            self.db, branch=branch, sha=sha, run_id=run_id, started_at=started_at,
            finished_at=finished_at, status=status, exit_code=exit_code, ledger=ledger)

    def nightlies(self, branch: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        return nightly_ledger.nightlies(self.db, branch, limit=limit)

    # -- pruning (prune.py) ---------------------------------------------------------------------

    def prune(self, shas: Iterable[str], *,
              protected: dict[int, set[str]] | None = None) -> Pruned:
        return prune(self.db, shas, protected=protected)

    # -- reading (reads.py) ---------------------------------------------------------------------

    def tests(self) -> dict[str, int]:
        return reads.tests(self.db)

    def runs(self, *, sha: str | None = None, limit: int | None = None) -> list[RunRow]:
        return reads.runs(self.db, sha=sha, limit=limit)

    def run_shas(self) -> set[str]:
        return reads.run_shas(self.db)

    def latest_clean_run(self, sha: str) -> RunRow | None:
        return reads.latest_clean_run(self.db, sha)

    def outcome_counts(self, run_id: int) -> dict[str, int]:
        return reads.outcome_counts(self.db, run_id)

    def tracked_shas(self, *, env_key: str | None = None) -> set[str]:
        return reads.tracked_shas(self.db, env_key=env_key)

    def results_at(self, shas: Iterable[str], *, env_key: str | None = None,
                   test_ids: Iterable[int] | None = None,
                   tracebacks: bool = True, patched: bool = False) -> list[ResultRow]:
        """Results of clean runs on these commits (dirty runs are never evidence), each with
        its traceback unless `tracebacks=False`; with `patched`, only those of the runs with
        a patch applied (isolation probes, each row's `patch_key` says which)."""
        return reads.results_at(self.db, shas, env_key=env_key, test_ids=test_ids,
                                tracebacks=tracebacks, patched=patched)

    def run_results(self, run_id: int) -> dict[str, tuple[str, str | None]]:
        return reads.run_results(self.db, run_id)

    def results_of(self, run_id: int) -> dict[str, TestResult]:
        """One run's results whole, traceback included: nodeid -> TestResult."""
        return reads.results_of(self.db, run_id)

    def durations(self, shas: Iterable[str], *, limit: int | None = None
                  ) -> list[tuple[str, float, float, int]]:
        return reads.durations(self.db, shas, limit=limit)

    def commit_infos(self, shas: Iterable[str]) -> dict[str, CommitInfo]:
        return reads.commit_infos(self.db, shas)

