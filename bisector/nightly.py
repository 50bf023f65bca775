"""`bisector nightly`: the whole job a team runs every night on its main branch.

Run the suite at HEAD with tracking (a real pytest process, in-process or `--container`), find
what fails now that passed within the lookback window, bisect only what no earlier night has
reported (tests grouped by culprit), carry the rest as "still failing since <culprit>", write
the reports and say, by the exit code, whether anybody should look.

The ledger of each night (what it reported, with culprits) is kept in the history store, next
to the runs it is about, so that the next night on another machine (CI) reads the same one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import TRIGGER_ENV, redact
from .errors import BisectorError, ConfigError, GitError
from .gitrepo import Repository
from .history import HistoryStore
from .model import BisectResult, CommitInfo, Finding, Outcome, Regression, Trigger
from .progress import SILENT, Progress
from .queries import (
    flaky_tests,
    history_grid,
    latest_per_test,
    open_store,
    regressions_at_head,
    store_url,
    tracked_window,
)
from .reports.history import interesting_tests, iso, skipped_everywhere
from .reports.isolation import isolation_json, revert_json
from .reports.links import Links, links_from
from .reports.nightly_model import (
    Bisection,
    CommitRef,
    Failing,
    FlakyFailure,
    Grid,
    GridCommit,
    NightlyReport,
    Probe,
    RegressionGroup,
    RunInfo,
    Side,
    StillFailing,
    TestEntry,
)

FAIL_ON = ("regression", "flaky", "never")
EXIT_CLEAN = 0
EXIT_FOUND = 1


@dataclass(frozen=True, slots=True)
class NightlyOptions:
    lookback: int | None = None
    container: str | None = None
    pytest_args: tuple[str, ...] = ()
    probe_args: tuple[str, ...] = ()  # --pytest-arg: the bisection probes' pytest options
    fail_on: str = "regression"
    report_dir: Path | None = None  # default: .bisector/reports in the main checkout
    jobs: int = 1
    timeout: float | None = None
    confidence: float = 0.99
    grid_commits: int = 30
    history_db: str | None = None
    # --isolate, --verify-revert, --isolate-max-probes (bisection.isolate.IsolateOptions);
    # the nightly isolates a culprit of more than isolate-min-hunks hunks by default
    isolation: Any = None


@dataclass(frozen=True, slots=True)
class NightlyOutcome:
    exit_code: int
    report: NightlyReport
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        """nightly.json's document."""
        return self.report.to_json()


@dataclass(frozen=True, slots=True)
class Carried:
    """A regression an earlier night reported, still failing tonight."""

    test: str
    bad: str | None  # where it was first reported failing
    culprit: str | None
    since: float


@dataclass(frozen=True, slots=True)
class Triage:
    new: list[Regression]
    carried: list[Carried]
    failing: list[str]  # failing tonight with no pass in the window, never reported


# -- pure decisions ----------------------------------------------------------------------------


def triage(regressions: Iterable[Regression], failing: Iterable[str],
           ledger: dict[str, Any] | None, is_ancestor: Callable[[str, str], bool], head: str
           ) -> Triage:
    """Split tonight's failures into new regressions, carried ones and the rest.

    A regression is the one already reported while the test has not passed since that break:
    it is new again only when its last pass now contains the culprit named then (the commit it
    was seen failing at, when none was named): fixed, then broken again. The last pass itself
    moves forward as the bisection probes the culprit's parent (or a merge's first parent, for
    a culprit in a merged branch), so it cannot be compared as it is. A reported break that is
    no longer in HEAD's history (main was rewritten) is forgotten. A reported test that no
    longer shows as a regression (its last pass left the lookback window) is still carried,
    never turned into "failing".
    """
    reported: dict[str, dict[str, Any]] = {}
    for entry in (ledger or {}).get("reported", []) if isinstance(ledger, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("test"), str):
            continue
        broke_at = entry.get("culprit") or entry.get("bad")
        if isinstance(broke_at, str) and is_ancestor(broke_at, head):
            reported[entry["test"]] = entry
    new: list[Regression] = []
    carried: list[Carried] = []
    detected = set()
    for r in regressions:
        detected.add(r.nodeid)
        before = reported.get(r.nodeid)
        if before is not None and not is_ancestor(before.get("culprit") or before["bad"],
                                                  r.last_good):
            carried.append(_carried(before))
        else:
            new.append(r)
    rest = []
    for nodeid in sorted(set(failing) - detected):
        before = reported.get(nodeid)
        if before is not None:
            carried.append(_carried(before))
        else:
            rest.append(nodeid)
    return Triage(new=new, carried=carried, failing=rest)


def _carried(entry: dict[str, Any]) -> Carried:
    since = entry.get("since")
    return Carried(test=entry["test"], bad=entry.get("bad"), culprit=entry.get("culprit"),
                   since=float(since) if isinstance(since, int | float) else 0.0)


def exit_code(fail_on: str, *, baseline: bool, new_regressions: int, flaky: int) -> int:
    """1 when tonight found what `--fail-on` names; the first night never fails."""
    if not baseline or fail_on == "never":
        return EXIT_CLEAN
    if new_regressions:
        return EXIT_FOUND
    if fail_on == "flaky" and flaky:
        return EXIT_FOUND
    return EXIT_CLEAN


def status_of(*, baseline: bool, new_regressions: int, flaky: int, still_failing: int = 0
              ) -> str:
    """What is true at HEAD tonight, the worst first: new regressions; else tests that still
    fail (regressions reported on an earlier night, tests failing with no pass in the window);
    else flaky failures; `clean` only when nothing failed for real. The exit code is
    `exit_code`'s, as `--fail-on` says: a carried failure is not news, but it is not green."""
    if not baseline:
        return "no-baseline"
    if new_regressions:
        return "regression"
    if still_failing:
        return "still-failing"
    return "flaky" if flaky else "clean"


# -- the job -----------------------------------------------------------------------------------


def check_checkout(repo: Repository) -> tuple[str, str]:
    """(branch, head): the nightly tracks a branch's history, from a whole and clean clone."""
    state = repo.state()
    if state.branch is None:
        raise GitError(
            f"HEAD is not on a branch (detached at {state.sha[:10]}): the nightly keeps a "
            "branch's history",
            hint="check out the branch (git switch main; in Actions, checkout with ref: main)",
        )
    if repo.is_shallow():
        raise GitError(
            "this is a shallow clone: bisection needs the commits before HEAD",
            hint="run `git fetch --unshallow` (in Actions, checkout with fetch-depth: 0)",
        )
    if state.dirty:
        paths = ", ".join(repo.dirty_paths())
        raise GitError(
            f"the working tree has uncommitted changes ({paths}): a dirty run is never "
            "evidence",
            hint="commit, stash or ignore them, or run on a clean checkout",
        )
    return state.branch, state.sha


def run_suite(cwd: Path, options: NightlyOptions, echo: Callable[[str], None],
              url: str) -> int:
    """pytest with tracking, in a process of its own: the user's conftest, plugins and
    `--container` behave exactly as when they run pytest, and a crash in the suite cannot take
    the nightly down with it. Its output goes to `echo` (stderr) as it comes."""
    cmd = [sys.executable, "-m", "pytest", "--track-history"]
    if redact(url) == url:  # resolved, so a relative path is one store to both; a secret
        cmd += ["--history-db", url]  # goes by the environment only
    if options.container:
        cmd += ["--container", options.container]
    cmd += list(options.pytest_args)
    env = {**os.environ, TRIGGER_ENV: Trigger.NIGHTLY.value, "BISECTOR_DB": url}
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot start pytest ({exc.strerror})",
                          hint="install pytest in this environment") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            echo(line.rstrip("\n"))
        return proc.wait()
    except BaseException:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


def _check_status(status: int) -> None:
    if status in (0, 1, 2):  # 2: interrupted, e.g. by collection errors: judged by its record
        return
    if status == 5:
        raise ConfigError("pytest collected no tests: there is nothing to track",
                          hint="run it where pytest finds the suite, or pass its arguments "
                               "after --")
    raise BisectorError(f"the suite did not run to the end (pytest exit status {status})",
                        hint="run the same pytest command to see why; its output is above")


def run_nightly(repo_path: Path, options: NightlyOptions,
                progress: Progress = SILENT,
                echo: Callable[[str], None] | None = None) -> NightlyOutcome:
    say = progress.note  # and the bisection's probes report to `progress`
    if options.fail_on not in FAIL_ON:
        raise ConfigError(f"--fail-on {options.fail_on!r} is not one of {', '.join(FAIL_ON)}")
    started = time.time()
    with Repository(repo_path) as repo:
        # bisector's own files (a store restored from a cache, worktrees, last night's
        # reports) are not uncommitted changes: excluded before the checkout is judged
        url, settings = store_url(repo, options.history_db, options.lookback)
        report_dir = options.report_dir or repo.main_root / ".bisector" / "reports"
        repo.ensure_excluded()
        _exclude(repo, report_dir)
        branch, head = check_checkout(repo)
        _check_writable(report_dir)
        say(f"running the suite at {head[:10]} on {branch}")
        status = run_suite(Path(repo_path), options, echo or (lambda _m: None), url)
        _check_status(status)
        with open_store(repo, url) as (store, _settings):
            lookback = settings.lookback
            run = _tonight(store, head, started, status)
            tonight = store.run_results(run.id)
            detected = regressions_at_head(repo, store, lookback)
            baseline = len(tracked_window(repo, store.tracked_shas(env_key=run.env_key), 1,
                                          head).shas) > 1
            failing = sorted(t for t, (o, _m) in tonight.items() if Outcome(o).is_bad)
            notes: list[str] = list(detected.notes)  # ids from the store never bisected
            ledger, note = _last_ledger(store, branch)
            if note:
                notes.append(note)
            triaged = triage(detected.regressions, failing, ledger, repo.is_ancestor, head)
            result = None
            if triaged.new:
                say(f"bisecting {len(triaged.new)} new regression(s)")
                result, note = _bisect(repo_path, triaged.new, head, lookback, options, url,
                                       progress)
                if note:
                    notes.append(note)
            night = Night(repo=repo, store=store, options=options, branch=branch, head=head,
                          run=run, tonight=tonight, lookback=lookback, baseline=baseline,
                          triaged=triaged, result=result, notes=notes,
                          links=links_from(os.environ, settings.commit_url))
            return _publish(night, report_dir, started)


def _publish(night: Night, report_dir: Path, started: float) -> NightlyOutcome:
    """The report assembled and written, then the night recorded with its ledger."""
    report = replace(_assemble(night), stats=_stats(night.repo, night.store))
    code = report.exit_code or EXIT_CLEAN
    paths = write_reports(report, report_dir)
    # last: a night that could not write its reports has told nobody, so the next
    # night must not carry its regressions as already reported
    night.store.record_nightly(
        branch=night.branch, sha=night.head, run_id=night.run.id, started_at=started,
        finished_at=time.time(), status=report.status, exit_code=code,
        ledger=_ledger(report, night.triaged, started),
    )
    return NightlyOutcome(exit_code=code, report=report, paths=paths)


def _last_ledger(store: HistoryStore, branch: str) -> tuple[dict[str, Any] | None, str | None]:
    previous = store.nightlies(branch, limit=1)
    if not previous:
        return None, None
    ledger = previous[0]["ledger"]
    if not isinstance(ledger, dict):
        return None, (f"the ledger of the last night (#{previous[0]['id']}) is unreadable: "
                      "every regression is treated as new")
    return ledger, None


def _exclude(repo: Repository, report_dir: Path) -> None:
    """Reports written inside the checkout are not dirt for the next night (as the store).

    Only the report files (`nightly.*`, with their `.tmp` siblings) are excluded, never the
    directory: it may hold or later hold the user's tracked files (`--report-dir tests`), and
    excluding it would hide their new files from `git status`.
    """
    if report_dir.resolve() == repo.main_root:
        raise ConfigError("--report-dir is the checkout itself",
                          hint="give a directory of its own, e.g. --report-dir bisector-report")
    repo.exclude_own(report_dir / "nightly", ".*")


def _check_writable(report_dir: Path) -> None:
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report directory {report_dir} ({exc.strerror})",
                          hint="give a writable --report-dir") from None
    if not os.access(report_dir, os.W_OK):
        raise ConfigError(f"cannot write into the report directory {report_dir}",
                          hint="give a writable --report-dir")
    for kind in ("json", "md", "html"):  # a night that fails must not leave the last one's
        path = report_dir / f"nightly.{kind}"
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # e.g. a directory where the report must go
            raise ConfigError(f"cannot replace the report {path} ({exc.strerror})",
                              hint="move it aside or give another --report-dir") from None


def _tonight(store: HistoryStore, head: str, started: float, status: int) -> Any:
    for run in store.runs(sha=head, limit=20):
        if run.trigger == Trigger.NIGHTLY.value and run.started_at >= started - 1:
            if run.dirty:
                raise GitError("the checkout changed while the suite ran: the run is dirty",
                               hint="run the nightly on a checkout nothing else writes to")
            return run
    if status == 2:
        raise BisectorError("pytest was interrupted (exit status 2) before it recorded a run",
                            hint="run the same pytest command to see why; its output is above")
    raise BisectorError("the suite ran but recorded nothing in the history store",
                        hint="check the warning pytest printed above (bisector: ...)")


def _bisect(repo_path: Path, new: list[Regression], head: str, lookback: int,
            options: NightlyOptions, url: str, progress: Progress
            ) -> tuple[BisectResult | None, str | None]:
    from .executors.factory import ExecutorOptions
    from .finder import find_break

    try:
        probes = ExecutorOptions(suite=options.container, jobs=options.jobs,
                                 timeout=options.timeout, pytest_args=options.probe_args)
        return find_break(
            repo_path, tests=[r.nodeid for r in new], bad=head, lookback=lookback,
            history_db=url, confidence=options.confidence, progress=progress, probes=probes,
            isolate=_isolation(options),
        ), None
    except BisectorError as exc:  # still regressions to report, without a culprit
        return None, f"bisection failed: {exc.one_line()}"


def _isolation(options: NightlyOptions) -> Any:
    """The night's isolation: on by default, its revert patch beside the reports."""
    from .bisection.isolate import IsolateOptions

    return replace(options.isolation or IsolateOptions(), default=True,
                   revert_dir=options.report_dir)


def _stats(repo: Repository, store: HistoryStore) -> dict[str, Any] | None:
    from .reports.stats import stats_json
    from .stats import compute_stats

    return stats_json(compute_stats(repo, store))


# -- the report's data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Night:
    """The facts one night's report is assembled from."""

    repo: Repository
    store: HistoryStore
    options: NightlyOptions
    branch: str
    head: str
    run: Any
    tonight: dict[str, tuple[str, str | None]]  # test -> (outcome, message)
    lookback: int
    baseline: bool
    triaged: Triage
    result: BisectResult | None
    notes: list[str]
    tracebacks: dict[str, str | None] = field(default_factory=dict)  # tonight's: _assemble
    links: Links = field(default_factory=Links)

    def traceback(self, test: str) -> str | None:
        return self.tracebacks.get(test)


def tracebacks_of(store: HistoryStore, run: Any, head: str) -> dict[str, str | None]:
    """Tonight's tracebacks by test. The store keeps them beside the results (read with
    getattr: a store without the column yet has none to give)."""
    rows = store.results_at([head], env_key=run.env_key)
    return {r.nodeid: r.traceback for r in rows if r.run_id == run.id}


def _assemble(night: Night) -> NightlyReport:
    """Tonight's report: new regressions grouped by culprit (unresolved ones last), the ones
    carried from earlier nights, flaky failures, failures without a baseline, the grid."""
    night = replace(night, tracebacks=tracebacks_of(night.store, night.run, night.head))
    findings = night.result.findings if night.result else ()
    flaky = [f for f in findings if f.verdict == "flaky"]
    groups, failing = _new_groups(night, [f for f in findings if f.verdict != "flaky"])
    still = _still_failing(night)
    n_new = sum(len(g.tests) for g in groups)
    notes = list(night.notes)
    if not night.baseline:
        notes.insert(0, "no baseline yet: this is the first tracked run of the branch in this "
                        "environment; regressions are found from the next night on")
    head_info = night.repo.commits([night.head]).get(night.head)
    run = night.run
    return NightlyReport(
        generated_at=iso(time.time()), repository=night.repo.main_root.name,
        branch=night.branch, head=CommitRef.of(head_info, night.head),
        lookback=night.lookback, fail_on=night.options.fail_on,
        status=status_of(baseline=night.baseline, new_regressions=n_new, flaky=len(flaky),
                         still_failing=len(still) + len(failing)),
        exit_code=exit_code(night.options.fail_on, baseline=night.baseline,
                            new_regressions=n_new, flaky=len(flaky)),
        run=RunInfo(id=run.id, container=night.options.container, exit_status=run.exit_status,
                    seconds=round(run.finished_at - run.started_at, 3),
                    outcomes=dict(Counter(o for o, _m in night.tonight.values()))),
        regressions=tuple(groups), still_failing=still,
        flaky=tuple(_flaky_failure(night, f) for f in flaky),
        failing=tuple(Failing(t, night.tonight[t][0], night.tonight[t][1], night.traceback(t))
                      for t in failing),
        grid=_grid(night, groups, flaky),
        notes=(*notes, *(night.result.notes if night.result else ())),
        links=night.links,
    )


def _new_groups(night: Night, broken: list[Finding]) -> tuple[list[RegressionGroup], list[str]]:
    """The new regressions' groups, and the tests failing without a baseline.

    A regression whose bisection failed is a group of its own (tried again the next night). A
    module that no longer imports runs none of its tests, so there is nothing to bisect per
    test; still a break to report once (the ledger carries it from then on)."""
    groups = _regression_groups(night, broken)
    bisected = {f.nodeid for f in night.result.findings} if night.result else set()
    for r in night.triaged.new:
        if r.nodeid not in bisected:
            groups.append(_unresolved(night, r.nodeid, r.last_good, str(r.outcome), r.message,
                                      "not-bisected", "not bisected (see the notes)"))
    failing = []
    for t in night.triaged.failing:
        outcome, message = night.tonight[t]
        if "::" not in t and outcome == "error":
            groups.append(_unresolved(night, t, None, outcome, message, "collection-error",
                                      "does not collect: none of its tests ran"))
        else:
            failing.append(t)
    return groups, failing


def _still_failing(night: Night) -> tuple[StillFailing, ...]:
    """The carried regressions, each culprit described and its owners named once (CODEOWNERS
    read only when something is carried)."""
    carried = night.triaged.carried
    culprits = {c.culprit for c in carried if c.culprit}
    infos = night.repo.commits(sorted(culprits)) if culprits else {}
    owners = _owners_at(night.repo, night.head) if culprits else None
    owned = {s: owners(infos[s]) for s in culprits if owners and s in infos}
    return tuple(
        StillFailing(test=c.test,
                     culprit=CommitRef.of(infos.get(c.culprit), c.culprit) if c.culprit else None,
                     owners=tuple(owned.get(c.culprit, []) if c.culprit else []),
                     since=iso(c.since), message=night.tonight.get(c.test, (None, None))[1],
                     traceback=night.traceback(c.test))
        for c in carried)


def _flaky_failure(night: Night, f: Finding) -> FlakyFailure:
    interval = f.false_fail_interval
    return FlakyFailure(
        test=f.nodeid, message=night.tonight.get(f.nodeid, (None, f.message))[1],
        false_fail_rate=_round(f.false_fail_rate),
        false_fail_interval=(_round(interval[0]), _round(interval[1]))  # type: ignore[arg-type]
        if interval else None,
        note=f.note, traceback=night.traceback(f.nodeid))


def _unresolved(night: Night, test: str, last_good: str | None, outcome: str,
                message: str | None, reason: str, note: str) -> RegressionGroup:
    """A new regression without a bisection: `reason` says why (not-bisected is tried again
    the next night; collection-error is reported once)."""
    after = Side(night.head, outcome, message, night.traceback(test))
    return RegressionGroup(culprit=None, reason=reason, tests=(TestEntry(
        test=test, last_good=last_good, verdict="inconclusive", note=note, after=after),))


def _owners_at(repo: Repository, head: str) -> Callable[[CommitInfo], list[str]]:
    """Owners of a carried culprit, by HEAD's CODEOWNERS (who owns its files now), by the
    rule find-break names them with for a new one (`owners.culprit_owners`)."""
    from .owners import culprit_owners, parse

    text = repo.codeowners(head)
    rules = parse(text)[0] if text else []

    def owners(c: CommitInfo) -> list[str]:
        files = repo.changed_files(c.sha) if rules else ()  # no rule: only the author
        return list(culprit_owners(files, rules, c.author_name, c.author_email))

    return owners


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _regression_groups(night: Night, broken: list[Finding]) -> list[RegressionGroup]:
    """One entry per culprit (the unresolved ones last), as docs/nightly-report.md lays out."""
    result = night.result
    if not broken or result is None:
        return []
    by_culprit: dict[str | None, list[Finding]] = {}
    for f in broken:
        by_culprit.setdefault(f.culprit.sha if f.culprit else None, []).append(f)
    store = night.store
    probes = store.probes_of(result.journal_id) if result.journal_id is not None else []
    probe_results = {p["run_id"]: store.run_results(p["run_id"]) for p in probes}
    bisection = Bisection(good=result.good, bad=result.bad, candidates=result.candidates,
                          probes_run=result.probes_run, probes_reused=result.probes_reused,
                          seconds=round(result.seconds, 3))
    return [
        RegressionGroup(
            culprit=CommitRef.of(findings[0].culprit) if sha else None,
            # a culprit in a merged branch: the first-parent merge that brought it in
            merge=CommitRef.of(findings[0].merge) if sha and findings[0].merge else None,
            files=tuple(findings[0].files) if sha else (),
            owners=tuple(findings[0].owners) if sha else (),
            tests=_test_entries(night, findings),
            probes=_probes(probes, probe_results, [f.nodeid for f in findings]),
            bisection=bisection, isolation=isolation_json(findings[0].isolation),
            revert=revert_json(findings[0].revert))
        for sha, findings in sorted(by_culprit.items(), key=lambda kv: kv[0] is None)
    ]


def _test_entries(night: Night, findings: list[Finding]) -> tuple[TestEntry, ...]:
    """Each test of a culprit, with its latest result at the culprit and at its parent."""
    culprit = findings[0].culprit
    sha = culprit.sha if culprit else None
    parent = culprit.parents[0] if culprit and culprit.parents else None
    tests = [f.nodeid for f in findings]
    known = night.store.tests()
    after = _latest(night, sha, tests, known)
    before = _latest(night, parent, tests, known)
    last_good = {r.nodeid: r.last_good for r in night.triaged.new}
    return tuple(TestEntry(
        test=f.nodeid, last_good=last_good.get(f.nodeid), verdict=f.verdict,
        suspects=() if f.culprit else tuple(f.suspects), confidence=_round(f.confidence),
        confirmed=f.confirmed, note=f.note,
        before=_side(parent, before.get(f.nodeid)) if parent else None,
        after=_side(sha, after.get(f.nodeid)) if sha else None,
    ) for f in findings)


def _probes(probes: list[dict[str, Any]], results: dict[int, dict[str, tuple[str, Any]]],
            tests: list[str]) -> tuple[Probe, ...]:
    """The bisection's probes that ran any of these tests, in the order they ran."""
    return tuple(Probe(
        sha=p["sha"], short=p["sha"][:10], purpose=purpose_of(p["purpose"]),
        detail=p["purpose"], started_at=iso(p["started_at"]),
        seconds=round(p["finished_at"] - p["started_at"], 3),
        outcomes={t: results[p["run_id"]][t][0] for t in tests if t in results[p["run_id"]]},
        patch_key=p.get("patch_key"),
    ) for p in probes if any(t in results[p["run_id"]] for t in tests))


PURPOSES = (("check", "check"), ("confirm", "confirm"), ("merged branch", "merge"),
            ("flake-aware", "flaky"), ("bisect", "bisect"), ("isolate", "isolate"),
            ("verify the revert", "revert"))


def purpose_of(reason: str) -> str:
    """The kind of a probe (docs/nightly-report.md), from the reason the finder stored and
    printed for it ("bisect, 3 of 7 candidates left", "confirm parent", ...): a word a
    consumer can switch on, while `detail` keeps the words. Stores written before the reasons
    began with their kind say "7 candidates" for a bisection probe."""
    text = reason.strip().lower()
    for prefix, kind in PURPOSES:
        if text.startswith(prefix):
            return kind
    if text.endswith(" end"):  # an end checked again ("re-run good end")
        return "check"
    if text.split(" ")[0].isdigit():
        return "bisect"
    return "other"


Seen = tuple[str, str | None, str | None]  # outcome, message, traceback


def _latest(night: Night, sha: str | None, tests: list[str], known: dict[str, int]
            ) -> dict[str, Seen]:
    if sha is None:
        return {}
    rows = night.store.results_at([sha], env_key=night.run.env_key,
                                  test_ids=[known[t] for t in tests if t in known])
    return {n: (r.outcome, r.message, r.traceback)
            for n, r in latest_per_test(rows).items()}


def _side(sha: str | None, seen: Seen | None) -> Side:
    outcome, message, traceback = seen if seen else ("not run", None, None)
    return Side(sha, outcome, message, traceback)


def _grid(night: Night, groups: list[RegressionGroup], flaky: list[Finding]) -> Grid:
    limit = night.options.grid_commits
    grid = history_grid(night.repo, night.store, [], limit)
    regressions = {t.test: g.culprit.sha for g in groups if g.culprit and g.culprit.sha
                   for t in g.tests}
    regressions.update({c.test: c.culprit for c in night.triaged.carried if c.culprit})
    flaky_names = ({f.nodeid for f in flaky}
                   | {f.nodeid for f in flaky_tests(night.repo, night.store, limit)})
    shown = interesting_tests(grid)
    shown += [t for t in sorted(set(regressions) | flaky_names)
              if t in grid.tests and t not in shown]
    skipped = [t for t in skipped_everywhere(grid) if t not in shown]
    cells: dict[str, dict[str, list[str]]] = {t: {} for t in shown}
    for (nodeid, sha), outcomes in grid.cells.items():
        if nodeid in cells:
            cells[nodeid][sha] = outcomes
    return Grid(
        commits=tuple(GridCommit.at(CommitRef.of(c) or CommitRef(c.sha), grid.runs.get(c.sha, 0))
                      for c in grid.commits),
        tests=tuple(shown), passing_tests=len(grid.tests) - len(shown) - len(skipped),
        skipped_tests=len(skipped), cells=cells, regressions=regressions,
        flaky=tuple(sorted(flaky_names & set(shown))),
    )


def _ledger(report: NightlyReport, triaged: Triage, started: float) -> dict[str, Any]:
    """What the next night needs: every regression reported, new or carried, with its culprit,
    where it was seen failing and since when. A regression whose bisection failed is left out,
    so that the next night tries again."""
    head = report.head.sha if report.head else None
    reported = [
        {"test": t.test, "bad": head, "culprit": g.culprit.sha if g.culprit else None,
         "since": started}
        for g in report.regressions if g.reason != "not-bisected" for t in g.tests
    ]
    reported += [{"test": c.test, "bad": c.bad, "culprit": c.culprit, "since": c.since}
                 for c in triaged.carried]
    return {"reported": reported}


# -- writing -----------------------------------------------------------------------------------


def write_reports(report: NightlyReport, report_dir: Path) -> dict[str, Path]:
    """nightly.json, nightly.md and nightly.html, each written whole or not at all."""
    import json

    from .reports.html import render_html
    from .reports.nightly import to_markdown

    texts = {
        "json": json.dumps(report.to_json(), indent=2) + "\n",
        "md": to_markdown(report),
        "html": render_html(report),
    }
    paths = {kind: report_dir / f"nightly.{kind}" for kind in texts}
    temps = {kind: path.with_name(path.name + ".tmp") for kind, path in paths.items()}
    try:
        for kind, text in texts.items():
            temps[kind].write_text(text, encoding="utf-8")
        for kind, path in paths.items():
            temps[kind].replace(path)
    except OSError as exc:
        for tmp in temps.values():
            with contextlib.suppress(OSError):  # not ours to remove if it is not a file
                tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the reports in {report_dir} ({exc.strerror})",
                          hint="give a writable --report-dir") from None
    return paths
