"""Read-side assembly: git's first-parent line joined with the store, for commands to show.

`regressions_at_head` is the detection auto-bisect and `find-break` start from; `history_grid`
is what `bisector history` draws. Both read only clean runs (dirty runs are never evidence).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Settings, load_settings, sqlite_path
from .flakiness import estimate, tally
from .gitrepo import Repository
from .history import HistoryStore, ResultRow
from .model import FlakyTest, Grid, Outcome, RegressionReport
from .nodeids import usable
from .regressions import detect

_PAGE = 512


@contextlib.contextmanager
def open_history(
    repo_path: Path, history_db: str | None = None, lookback: int | None = None
) -> Iterator[tuple[Repository, HistoryStore, Settings]]:
    """The checkout, its existing history store (never created here: the read commands say
    there is none instead) and the settings that chose it, closed together."""
    with Repository(repo_path) as repo, open_store(repo, history_db, lookback, create=False) as (
            store, settings):
        yield repo, store, settings


@contextlib.contextmanager
def open_store(
    repo: Repository, history_db: str | None = None, lookback: int | None = None, *,
    create: bool = True,
) -> Iterator[tuple[HistoryStore, Settings]]:
    """The store of an open checkout, with the settings that chose it. A writer (`create`)
    makes a missing store, and its directory when that lies inside the checkout (the default
    `.bisector/`, or where the project's settings put it); a reader needs one that exists."""
    url, settings = store_url(repo, history_db, lookback, exclude=False)
    with HistoryStore.open(url, create=create, dirs_under=repo.main_root) as store:
        repo.exclude_store(sqlite_path(url))  # now that it exists
        yield store, settings


def store_url(repo: Repository, history_db: str | None = None, lookback: int | None = None,
              *, exclude: bool = True) -> tuple[str, Settings]:
    """The URL of a checkout's store and the settings that chose it; a SQLite file inside the
    checkout is excluded from `git status` (it is not the user's change)."""
    root = repo.main_root
    settings = load_settings(root, history_db=history_db, lookback=lookback)
    url = settings.store_url(root)
    if exclude:
        repo.exclude_store(sqlite_path(url))
    return url, settings


@dataclass(frozen=True, slots=True)
class Window:
    head: str
    shas: list[str]  # HEAD first, then up to `lookback` older tracked commits
    positions: dict[str, int]  # distance from HEAD along the first-parent line


def tracked_window(repo: Repository, tracked: set[str], lookback: int, rev: str = "HEAD") -> Window:
    """HEAD and the `lookback` newest tracked commits before it on the first-parent line.

    The line is read in growing pages so a long history is never listed whole.
    """
    head = repo.resolve(rev)
    shas, positions = [head], {head: 0}
    skip, page = 0, _PAGE
    while len(shas) <= lookback:
        chunk = repo.first_parent(head, limit=page, skip=skip)
        for offset, sha in enumerate(chunk):
            if sha in tracked and sha != head:
                shas.append(sha)
                positions[sha] = skip + offset
                if len(shas) > lookback:
                    break
        if len(chunk) < page:
            break
        skip += page
        page *= 2
    return Window(head=head, shas=shas, positions=positions)


def latest_per_test(rows: Iterable[ResultRow]) -> dict[str, ResultRow]:
    latest: dict[str, ResultRow] = {}
    for row in rows:
        have = latest.get(row.nodeid)
        if have is None or (row.started_at, row.run_id) > (have.started_at, have.run_id):
            latest[row.nodeid] = row
    return latest


def regressions_at_head(
    repo: Repository, store: HistoryStore, lookback: int, rev: str = "HEAD"
) -> RegressionReport:
    """Tests failing at HEAD (their latest clean result there) that passed within the window.

    Only runs in the environment of HEAD's latest clean run are compared.
    """
    head = repo.resolve(rev)
    latest_run = store.latest_clean_run(head)
    if latest_run is None:
        return RegressionReport(head=head, env_key=None, window=[head], regressions=[])
    env_key = latest_run.env_key
    at_head = latest_per_test(store.results_at([head], env_key=env_key))
    bad = sorted(nodeid for nodeid, row in at_head.items() if Outcome(row.outcome).is_bad)
    # an id any writer of the store could have put there: data, never a probe's option
    ids, notes = usable(bad, "the history store")
    failing = {n: (Outcome(row.outcome), row.signature, row.message)
               for n in ids for row in (at_head[n],)}
    if not failing:
        return RegressionReport(head=head, env_key=env_key, window=[head], regressions=[],
                                notes=tuple(notes))
    window = tracked_window(repo, store.tracked_shas(env_key=env_key), lookback, head)
    test_ids = {at_head[n].test_id for n in failing}
    observations: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for row in store.results_at(window.shas[1:], env_key=env_key, test_ids=test_ids):
        observations[row.nodeid][row.sha].append(Outcome(row.outcome))
    found = detect(window.shas, window.positions, observations, failing)
    wanted = {r.last_good for r in found} | {r.first_bad for r in found}
    return RegressionReport(
        head=head,
        env_key=env_key,
        window=window.shas,
        regressions=found,
        commits=repo.commits(sorted(wanted)),
        notes=tuple(notes),
    )


def select_tests(known: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """Tests named exactly, or every test under a named file, class or directory prefix."""
    patterns = [p.rstrip("/") for p in patterns]
    if not patterns:
        return sorted(known)
    out = []
    for nodeid in known:
        for p in patterns:
            if nodeid == p or nodeid.startswith((p + "::", p + "/", p + "[")):
                out.append(nodeid)
                break
    return sorted(out)


def history_grid(
    repo: Repository, store: HistoryStore, patterns: Iterable[str], limit: int, rev: str = "HEAD"
) -> Grid:
    patterns = list(patterns)
    shas = repo.first_parent(rev, limit=limit)
    infos = repo.commits(shas)
    known = store.tests()
    names = select_tests(known, patterns)
    ids = None if not patterns else [known[n] for n in names]
    rows = store.results_at(shas, test_ids=ids)
    rows.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    run_ids: dict[str, set[int]] = defaultdict(set)
    seen_tests: set[str] = set()
    ran: set[str] = set()  # tests with a result that is not untestable
    for row in rows:
        cells[(row.nodeid, row.sha)].append(row.outcome)
        run_ids[row.sha].add(row.run_id)
        seen_tests.add(row.nodeid)
        if row.outcome != Outcome.UNTESTABLE:
            ran.add(row.nodeid)
    # A test only ever untestable in the window never ran: a probe's id that collects
    # nothing (a mistyped id in a store written before find-break refused those) is no column,
    # unless it is asked for by its exact id.
    shown = {n for n in seen_tests if n in ran or n in patterns}
    return Grid(
        commits=[infos[s] for s in shas if s in infos],
        tests=[n for n in names if n in shown],
        cells={key: outcomes for key, outcomes in cells.items() if key[0] in shown},
        runs={sha: len(ids_) for sha, ids_ in run_ids.items()},
    )


def counts_of(rows: Iterable[ResultRow]) -> tuple[int, int]:
    """(failures, passes) a commit's stored results stand for (see `flakiness.tally`)."""
    outcomes = ((row, Outcome(row.outcome)) for row in rows)
    return tally((o.is_bad if o.is_good or o.is_bad else None, row.reruns)
                 for row, o in outcomes)


def flaky_tests(
    repo: Repository, store: HistoryStore, window: int, patterns: Iterable[str] = (),
    rev: str = "HEAD",
) -> list[FlakyTest]:
    """Tests whose clean runs along the last `window` first-parent commits disagree.

    Each (test, environment) is read separately: the same test may be flaky on one platform
    and not on another.
    """
    shas = repo.first_parent(rev, limit=window)  # newest first
    patterns = list(patterns)
    ids = None
    if patterns:
        known = store.tests()
        ids = [known[n] for n in select_tests(known, patterns)]
    by_test: dict[tuple[str, str], dict[str, list[ResultRow]]] = defaultdict(
        lambda: defaultdict(list))
    for row in store.results_at(shas, test_ids=ids):
        by_test[(row.nodeid, row.env_key)][row.sha].append(row)
    out = []
    oldest_first = list(reversed(shas))
    for (nodeid, env_key), per_sha in by_test.items():
        line = [sha for sha in oldest_first if sha in per_sha]
        est = estimate([counts_of(per_sha[sha]) for sha in line])
        if not est.flaky:
            continue
        ci = est.false_fail_interval()
        rows = [r for sha in line for r in per_sha[sha]]
        out.append(FlakyTest(
            nodeid=nodeid, env_key=env_key, false_fail_rate=est.false_fail_rate,
            false_fail_interval=(ci.low, ci.high), false_pass_rate=est.false_pass_rate,
            runs=len(rows), last_seen=max(r.started_at for r in rows),
            flipped=tuple(line[i] for i in reversed(est.flipped)),
        ))
    out.sort(key=lambda f: (-f.false_fail_rate, f.nodeid))
    return out
