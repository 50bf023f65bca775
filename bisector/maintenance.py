"""History upkeep behind `bisector gc --keep`, `bisector export` and `bisector import-history`.

Pruning decides with git which commits are old (everything reachable from the first-parent
commit just past the newest N), and never takes evidence an open bisection uses; moving history
copies one store into another (see `history.transfer`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from .config import as_store_url, load_settings, sqlite_path
from .errors import GitError, StoreError
from .gitrepo import Repository
from .history import HistoryStore, Pruned, migrations, schema
from .history.transfer import Copied, copy_history
from .queries import store_url


def prune_history(repo: Repository, store: HistoryStore, keep: int) -> Pruned:
    """Remove runs older than the newest `keep` first-parent commits of HEAD.

    Old means reachable from HEAD's first-parent commit number `keep` (counting HEAD as 0):
    runs on the kept commits, on branches merged after them, and on commits HEAD does not
    reach (other branches) stay. So do the runs an open bisection uses: its probes, and runs
    in its range and in the history before its good end that it reads flake rates from.
    """
    from .bisection.ends import RATE_WINDOW

    boundary = repo.first_parent("HEAD", limit=1, skip=keep)
    if not boundary:
        return Pruned(0, 0, 0, {})
    old = repo.ancestors(boundary[0]) & store.run_shas()
    if not old:
        return Pruned(0, 0, 0, {})
    protected: dict[int, set[str]] = {}
    for bisection in store.open_bisections():
        good, bad = bisection["good"], bisection["bad"]
        shas = {good, bad}
        with contextlib.suppress(GitError):  # a range this clone lacks: its probes still count
            shas.update(repo.range(good, bad, first_parent=False))
            shas.update(repo.first_parent(good, limit=RATE_WINDOW))
        protected[bisection["id"]] = shas
    return store.prune(old, protected=protected)


def describe_pruned(pruned: Pruned) -> str:
    text = f"removed {pruned.runs} runs, {pruned.results} results"
    if pruned.probes:
        text += f", {pruned.probes} probe rows"
    if pruned.kept:
        text += "; kept " + ", ".join(
            f"{n} runs used by open bisection #{bid}" for bid, n in sorted(pruned.kept.items()))
    return text


def this_store_url(repo_path: Path, history_db: str | None) -> tuple[str, Repository | None]:
    """The store the other commands use here (flag, BISECTOR_DB, pyproject, default), and the
    checkout when there is one; outside a checkout a flag or BISECTOR_DB is enough."""
    try:
        repo = Repository(repo_path)
    except GitError:
        settings = load_settings(Path.cwd(), history_db=history_db)
        if settings.history_db is None:
            raise
        return settings.history_db, None
    try:
        url = store_url(repo, history_db)[0]
    except BaseException:
        repo.close()
        raise
    return url, repo


def move_history(repo_path: Path, history_db: str | None, *, source: str | None = None,
                 target: str | None = None, progress: Callable[[str], None] | None = None
                 ) -> tuple[Copied, str, str]:
    """Copy this store into `target`, or `source` into this store; returns what was added
    and the two stores' names (passwords hidden)."""
    here, repo = this_store_url(repo_path, history_db)
    try:
        src = as_store_url(source) if source else here
        dst = as_store_url(target) if target else here
        home = repo.main_root if repo is not None else None  # where a directory may be made
        with (_open_source(src) if source else HistoryStore.open(src, create=False)
              ) as from_store, HistoryStore.open(dst, dirs_under=home) as to_store:
            copied = copy_history(from_store, to_store, progress=progress)
            return copied, from_store.location, to_store.location
    finally:
        if repo is not None:
            repo.close()


def _open_source(url: str) -> HistoryStore:
    """A store named as the source of a copy (`import-history --from`): it must exist and
    already be at this version's schema; it is read, never created nor migrated in place, and
    a file that is no store (empty, or not SQLite) is left exactly as it was."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreError(f"history store {path} does not exist",
                         hint="check the path given with --from", location=str(path))
    store = HistoryStore(url, create=False)
    try:
        version = store.schema_version()
        if version is None:
            raise StoreError(f"{store.location} holds no bisector history",
                             hint="check the store given with --from", location=store.location)
        if version < schema.SCHEMA_VERSION:
            raise StoreError(
                f"{store.location} has an older schema (version {version}, this bisector "
                f"uses {schema.SCHEMA_VERSION})",
                hint="open it with bisector once to migrate, or export from it with this "
                     "version", location=store.location)
        migrations.check_supported(version, store.location)  # refuses a newer one
    except BaseException:
        store.close()
        raise
    return store
