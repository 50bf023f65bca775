"""`bisector import`: JUnit XML from anywhere (CI, another machine, another tool) as a run.

Every file is read before the store is opened, so a missing or invalid file records nothing.
An imported run is an ordinary run with trigger `import`; its environment is the name it was
imported under, so it is compared only with runs imported under the same name, never with the
runs the plugin records (whose environment is this interpreter and platform).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .environment import digest
from .errors import ConfigError, ExecutorError
from .gitrepo import Repository
from .junit import DIALECTS, merge, read_report
from .model import Environment, Run, TestResult, Trigger
from .queries import open_store

DEFAULT_ENVIRONMENT = "imported"
# environment names are stored cut to 64 characters, as when the platform column was that
# wide (it is text since v3): runs imported before and after show the same platform
_COLUMN = 64


@dataclass(frozen=True, slots=True)
class Imported:
    run_id: int
    sha: str
    results: int  # distinct tests recorded
    # a note for each case left out: its id could not be a test id (see `nodeids`)
    notes: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.sha[:10]


def named_environment(name: str) -> Environment:
    """The environment of runs imported under `name`: one key per name, none shared with a
    real interpreter's (those hash three parts, this two)."""
    name = name.strip()
    if not name:
        raise ConfigError("the environment name is empty", hint="give --environment NAME")
    key = digest("import", name)
    return Environment(python="imported", platform=name[:_COLUMN], deps_hash="unknown",
                       key=key, fingerprint=digest(key, "unknown"))


def import_files(
    repo_path: Path,
    paths: Sequence[Path],
    *,
    commit: str,
    dialect: str = "pytest",
    environment_name: str = DEFAULT_ENVIRONMENT,
    dirty: bool = False,
    history_db: str | None = None,
) -> Imported:
    """Record the results in `paths` as one run of `commit`; returns what was recorded.

    A test found in several files (or twice in one) counts as rerun: its last result wins.
    Raises `GitError` for an unknown commit and `ExecutorError` for an unreadable file or
    files with no test in them, before anything is written.
    """
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}", hint="use " + " or ".join(DIALECTS))
    if not paths:
        raise ConfigError("no JUnit XML file given", hint="name one or more files")
    env = named_environment(environment_name)
    with Repository(repo_path) as repo:
        sha = repo.resolve(commit)
        files = repo.files(sha) if dialect == "pytest" else None
        reports = [read_report(Path(p), dialect, files=files) for p in paths]
        results: list[TestResult] = [r for rep in reports for r in rep.results.values()]
        notes = tuple(note for rep in reports for note in rep.notes)
        if not results:
            names = ", ".join(str(p) for p in paths)
            raise ExecutorError(f"no test cases in {names}; nothing recorded"
                                + "".join(f" ({note})" for note in notes),
                                hint="is this the report the test run wrote?")
        merged = merge(results)
        now = time.time()
        started = min((r.started_at for r in reports if r.started_at is not None), default=now)
        finished = max((r.finished_at for r in reports if r.finished_at is not None),
                       default=max(now, started))
        host = next((r.hostname for r in reports if r.hostname), "unknown")
        run = Run(
            sha=sha, dirty=dirty, branch=None, environment=env, trigger=Trigger.IMPORT,
            host=host, started_at=started, finished_at=max(finished, started),
            exit_status=None, results=tuple(merged.values()),
        )
        commits = repo.commits([sha])
        with open_store(repo, history_db) as (store, _settings):
            run_id = store.record_run(run, commits=list(commits.values()))
    return Imported(run_id=run_id, sha=sha, results=len(merged), notes=notes)
