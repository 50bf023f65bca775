"""find-break: pick tests and range, reuse what the store knows, probe the rest, confirm.

Every probe is stored as an ordinary run (trigger `probe`), so a second bisection over the same
commits, or the same command after a crash or `kill -9`, reuses it instead of running it again.
`Finder` is the short orchestrator over `bisection/`: the plan, the journal, the ends, the
deterministic or flake-aware search (each driven by `bisection.drive`), merges, confirmation
and the conclusion. docs/adr/0016-bisection-pipeline.md says why it has this shape.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .bisection.conclude import bisect_result, concluded, steady_tests
from .bisection.context import Context
from .bisection.deterministic import search_live
from .bisection.ends import END_RUNS, RATE_WINDOW, check_ends, rate_line
from .bisection.evidence import Evidence, verdict_of
from .bisection.flaky import flaky_search
from .bisection.isolate import IsolateOptions, isolate_findings
from .bisection.journal import Journal
from .bisection.plan import Plan, make_plan, tests_of_files
from .bisection.prober import Prober
from .errors import BisectError, ConfigError
from .executors import Executor
from .gitrepo import Repository
from .history import HistoryStore
from .history.store import MissingStore
from .model import BisectResult, Finding
from .progress import SILENT, Progress, Silent
from .queries import open_store
from .search import max_probes as plain_probes

if TYPE_CHECKING:
    from .config import Settings
    from .executors.factory import ExecutorOptions

__all__ = ["END_RUNS", "RATE_WINDOW", "Finder", "find_break", "verdict_of"]


class Finder:
    """One bisection over a repository, a store and an `Executor` (which runs --jobs probes
    at once through its `run_round`).

    Each step is one call into `bisection/`: the plan, the journal, the ends, the
    deterministic search (with merges and confirmation), the flake-aware search, the
    conclusion. A new step (a search over another candidate space) is one more call in `_run`.
    """

    def __init__(self, repo: Repository, store: HistoryStore, executor: Executor, *,
                 progress: Progress | None = None, max_untestable: int | None = None,
                 confidence: float = 0.99, max_probes: int | None = None, jobs: int = 1,
                 isolate: IsolateOptions | None = None) -> None:
        self.repo, self.store = repo, store
        self.jobs = max(1, jobs)
        self.progress: Progress = progress or Silent()
        self.max_untestable, self.confidence, self.max_probes = (max_untestable, confidence,
                                                                 max_probes)
        # Which stored runs are comparable: the executor's environment decides.
        self.env_key = executor.env_key()
        self.prober = Prober(repo, store, executor, Evidence(), self.env_key, self.jobs,
                             self.progress)
        self.plan_notes: list[str] = []
        self.began: float | None = None  # when the --test-file probe at bad started
        self.isolate = isolate  # --isolate, --verify-revert: after the culprits are known

    def plan(self, tests: list[str], good: str | None, bad: str, lookback: int
             ) -> tuple[list[str], str, str]:
        """The tests and ends to bisect (`bisection.plan`); its notes go in the result."""
        plan = make_plan(self.repo, self.store, tests, good, bad, lookback)
        self.plan_notes.extend(plan.notes)
        return list(plan.tests), plan.good, plan.bad

    def probe_files(self, sha: str, files: list[str]) -> list[str]:
        """--test-file without node ids: the files' tests, from a probe of them at the bad
        commit (`bisection.plan.tests_of_files`); `run` reuses it as the bad-end check."""
        self.began = time.monotonic()
        return tests_of_files(self.prober, sha, files)

    def run(self, tests: list[str], good_sha: str, bad_sha: str, *, first_parent: bool = True
            ) -> BisectResult:
        """The bisection, journalled: resumed if interrupted before, marked done or failed."""
        started = time.monotonic()
        plan = Plan(tuple(tests), good_sha, bad_sha, first_parent, tuple(self.plan_notes))
        journal = Journal.start(self.store, plan, self.env_key, self.prober, self.progress)
        if self.began is not None:  # the time of every probe is the bisection's
            started = self.began
        ctx = Context(self.repo, self.prober, self.jobs, self.max_untestable, self.confidence,
                      self.max_probes, self.progress)
        with journal.failing():
            result, probed = self._run(ctx, plan, [*plan.notes, *journal.notes], started)
        result = concluded(self.repo, result, first_parent, probed, ctx.trails,
                           journal.journal_id)
        journal.done(result)
        return result

    def _run(self, ctx: Context, plan: Plan, notes: list[str], started: float
             ) -> tuple[BisectResult, tuple[str, ...]]:
        """Ends, then the deterministic search of the tests that allow it, then the
        flake-aware search of the rest; the result, and the flake-aware probes' log lines."""
        tests = list(plan.tests)
        line_range, line = rate_line(self.repo, plan.good, plan.bad)
        self.prober.load_known(line, tests)
        ctx.steady = steady_tests(ctx, tests, line)
        self.prober.unseen = set(tests) - set(self.store.tests())
        self.progress.plan("check ends", len(line_range), 2)
        split = check_ends(ctx, tests, plan.good, plan.bad, line,
                           line_range if plan.first_parent else None)
        notes = [*notes, *split.notes]
        if not split.live and not split.flaky:
            raise BisectError("nothing to bisect: " + "; ".join(notes))
        findings: dict[str, Finding] = {}
        candidates, flaky, probed = len(line_range), list(split.flaky), ()
        if split.live:
            searched = search_live(ctx, list(split.live), plan, line)
            candidates, notes = searched.candidates, [*notes, *searched.notes]
            findings.update(searched.findings)
            flaky += searched.demoted
            if not findings and not flaky:  # a deferred good end failed there (ADR 26)
                raise BisectError("nothing to bisect: " + "; ".join(notes))
        if flaky:
            answer = flaky_search(ctx, flaky, plan.good, line_range, line)
            findings.update((f.nodeid, f) for f in answer.findings)
            notes += answer.notes
            probed = answer.probed
        findings = isolate_findings(ctx, findings, plan.bad, self.isolate)
        notes += ctx.evidence.other_failures()
        return bisect_result(plan.good, plan.bad, candidates,
                             [findings[t] for t in tests if t in findings], notes,
                             self.prober.tally, time.monotonic() - started, self.jobs), probed


def find_break(
    repo_path: Path,
    *,
    tests: list[str],
    good: str | None = None,
    bad: str = "HEAD",
    lookback: int | None = None,
    history_db: str | None = None,
    first_parent: bool = True,
    max_untestable: int | None = None,
    progress: Progress = SILENT,
    confidence: float = 0.99,
    max_probes: int | None = None,
    probes: ExecutorOptions | None = None,
    isolate: IsolateOptions | None = None,
) -> BisectResult:
    """The whole find-break, as the CLI, the nightly and the plugin's auto-bisect run it.
    `probes` says where and how probes run (`executors.factory`: local by default, checked
    when made); [tool.bisector] fills in the setup and pytest options it leaves out."""
    from .executors.factory import ExecutorOptions, build_executor, layout

    options = (probes or ExecutorOptions()).for_tests(tests)
    if max_untestable is not None and max_untestable < 1:  # 0 would end every search at once
        raise ConfigError(f"--max-untestable must be at least 1, not {max_untestable}",
                          hint="give 1 or more, or leave it out for the default")
    with contextlib.ExitStack() as stack:
        stack.callback(progress.finish)  # last out: a live bar ends, however this ends
        repo = stack.enter_context(Repository(repo_path))
        for rev in (bad, good):  # bad revisions fail before a store is created
            if rev is not None:
                repo.resolve(rev)
        store, settings = _history(stack, repo, history_db, lookback, good)
        place = layout(repo, repo_path, options.test_files)
        executor = stack.enter_context(build_executor(repo, options, place, settings,
                                                      progress.note))
        finder = Finder(repo, store, executor, progress=progress, confidence=confidence,
                        max_probes=max_probes, jobs=options.jobs,
                        isolate=(isolate or IsolateOptions()).settle(settings))
        if options.whole_files:  # the files' tests, from a probe of them at the bad end
            tests = finder.probe_files(repo.resolve(bad), place.test_paths())
        names, good_sha, bad_sha = finder.plan(tests, good, bad, settings.lookback)
        if max_untestable is None:
            span = len(repo.range(good_sha, bad_sha, first_parent=first_parent))
            max_untestable = 2 * plain_probes(span) + 4
        finder.max_untestable = max_untestable
        return finder.run(names, good_sha, bad_sha, first_parent=first_parent)


def _history(stack: contextlib.ExitStack, repo: Repository, history_db: str | None,
             lookback: int | None, good: str | None) -> tuple[HistoryStore, Settings]:
    """The store and settings, open for the rest of `stack`; without --good the range comes
    from the history, so it must exist to plan from (and is not created)."""
    try:
        return stack.enter_context(open_store(repo, history_db, lookback,
                                              create=good is not None))
    except MissingStore as err:
        raise BisectError(f"nothing to bisect: {err.message}",
                          hint="record history with pytest --track-history, or name the "
                               "tests and give --good REV") from None
