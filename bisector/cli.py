"""The `bisector` command. Thin: parse, call queries and reports, map errors to exit codes.

Every `BisectorError` becomes one line on stderr and exit 2; Ctrl-C is 130; never a traceback
for bad input.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .errors import BisectorError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--history-db",
        metavar="URL",
        default=None,
        help="History store: a file path or SQLAlchemy URL (env BISECTOR_DB).",
    )(func)
    func = click.option(
        "--repo",
        "-C",
        "repo_path",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The git checkout to look at.",
    )(func)
    return func


def _verbosity(func: Callable[..., Any]) -> Callable[..., Any]:
    """-q and -v of the commands that probe (find-break, nightly)."""
    func = click.option("--verbose", "-v", is_flag=True,
                        help="Also show each probe's outcome and the tail of its pytest "
                             "output.")(func)
    func = click.option("--quiet", "-q", is_flag=True,
                        help="No progress: only the result (and errors) are printed.")(func)
    return func


def _isolation(func: Callable[..., Any]) -> Callable[..., Any]:
    """--isolate, --verify-revert and --isolate-max-probes of the commands that bisect, given
    to the command as one `isolation` (bisection.isolate.IsolateOptions; what is not said
    comes from [tool.bisector] and the command's default)."""
    import functools

    @functools.wraps(func)
    def command(*args: Any, isolate: bool | None, verify_revert: bool | None,
                isolate_max_probes: int | None, **kwargs: Any) -> Any:
        from .bisection.isolate import IsolateOptions

        kwargs["isolation"] = IsolateOptions(isolate, verify_revert, isolate_max_probes)
        return func(*args, **kwargs)

    for option in (
        click.option("--isolate-max-probes", type=click.IntRange(min=1), default=None,
                     help="Probes the hunk isolation may run per culprit (default 100, or "
                          "[tool.bisector] isolate-max-probes)."),
        click.option("--verify-revert/--no-verify-revert", default=None,
                     help="Run the tests at the bad end with the guilty hunks (or the whole "
                          "culprit) reverted, and write revert-SHORT.patch when they pass "
                          "(default: on with --isolate)."),
        click.option("--isolate/--no-isolate", default=None,
                     help="Find which hunks of each culprit's change make the test fail, by "
                          "probing the parent with subsets of them applied."),
    ):
        command = option(command)
    return command


def _progress(quiet: bool, verbose: bool) -> Any:
    """Where the probes are reported: a bar on a terminal, plain lines in a log, or nowhere."""
    from .errors import ConfigError
    from .progress import for_stderr

    if quiet and verbose:
        raise ConfigError("-q/--quiet and -v/--verbose cannot be combined",
                          hint="give one of them")
    return for_stderr(quiet=quiet, verbose=verbose)


def _links(repo_path: Path) -> Any:
    """The reports' links (commit, diff, CI run), as the nightly makes them."""
    from .config import load_settings
    from .gitrepo import Repository
    from .reports.links import links_from

    with Repository(repo_path) as repo:
        settings = load_settings(repo.main_root)
    return links_from(os.environ, settings.commit_url)


def _test_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
              ) -> tuple[str, ...]:
    """TESTS as typed: each a node id, never an option for the probes' pytest (exit 2)."""
    from .nodeids import check_nodeid

    return tuple(check_nodeid(text, "the command line") for text in value)


def _pytest_args(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                 ) -> tuple[str, ...]:
    """--pytest-arg as typed, refused (exit 2) where it would break what bisector reads."""
    from .config import check_pytest_args

    return check_pytest_args(value)


class Jobs(click.ParamType):
    """--jobs: a count of 1 or more, or `auto` (this machine's cores, capped; `auto_jobs`)."""

    name = "jobs"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        from .executors.factory import auto_jobs

        text = str(value).strip()
        if text == "auto":
            return auto_jobs()
        if text.isascii() and text.isdecimal() and int(text) >= 1:  # not "²", not "+3"
            return int(text)
        self.fail(f"{text!r} is neither a count of 1 or more nor auto", param, ctx)


JOBS_HELP = ("Probes run at once, each in its own worktree or container: the search proposes "
             "that many commits per round, and a commit's confirming runs share one. auto "
             "(the default) is this machine's cores, at most 4; --jobs 1 runs one probe at a "
             "time, in the order of `git bisect`. Env BISECTOR_JOBS.")


PYTEST_ARG_HELP = (
    "An option for every probe's pytest, one per --pytest-arg (repeat it), e.g. "
    "--pytest-arg=-p --pytest-arg=no:randomly, --pytest-arg=--noconftest, "
    "--pytest-arg=-o --pytest-arg=addopts=, --pytest-arg=-Werror. Probes ignore "
    "PYTEST_ADDOPTS: this is the way to hand them options. Default: [tool.bisector] "
    "pytest-args. Options that change the JUnit XML, node ids, config file or rootdir "
    "bisector relies on (--junitxml, --junit-prefix, -o junit_family, -p no:junitxml, -c, "
    "--rootdir, --confcutdir, --collect-only) are refused. Probes with other options are "
    "another experiment: stored probes are reused only with the same ones.")


def _open(repo_path: Path, history_db: str | None, lookback: int | None = None) -> Any:
    from .queries import open_history

    return open_history(repo_path, history_db, lookback)


def _console() -> Any:
    """The reports' console. What it prints is data (subjects, test ids, paths): styles come
    from `style=` and `Text`, never from markup or emoji codes in a string."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, markup=False,
                   emoji=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bisector")
def cli() -> None:
    """Track test outcomes per git commit and find the commit that broke a test."""


@cli.command()
@click.argument("tests", nargs=-1, callback=_test_ids)
@click.option(
    "--limit",
    "-n",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many first-parent commits to show, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the grid.")
@_common
def history(
    tests: tuple[str, ...], limit: int, as_json: bool, repo_path: Path, history_db: str | None
) -> None:
    """Outcomes per commit along the current branch's first-parent history.

    TESTS are node ids or prefixes (a file, a class, a directory); default: every test, with a
    column for each test that did not simply pass.
    """
    from .queries import history_grid
    from .reports.history import grid_json, render_grid

    with _open(repo_path, history_db) as (repo, store, _):
        grid = history_grid(repo, store, tests, limit)
    if as_json:
        click.echo(json.dumps(grid_json(grid), indent=2))
    else:
        render_grid(grid, _console(), named=bool(tests))


@cli.command()
@click.option(
    "--lookback",
    type=int,
    default=None,
    help="How many tracked commits before HEAD to look for a pass (default 20).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def regressions(
    lookback: int | None, as_json: bool, repo_path: Path, history_db: str | None
) -> None:
    """Tests failing at HEAD that passed within the last N tracked commits."""
    from .queries import regressions_at_head
    from .reports.history import regressions_json, render_regressions

    with _open(repo_path, history_db, lookback) as (repo, store, settings):
        report = regressions_at_head(repo, store, settings.lookback)
    _notes(report.notes)
    if as_json:
        click.echo(json.dumps(regressions_json(report, settings.lookback), indent=2))
    else:
        render_regressions(report, _console(), settings.lookback)


@cli.command()
@click.argument("tests", nargs=-1, callback=_test_ids)
@click.option("--window", type=click.IntRange(min=1), default=100, show_default=True,
              help="First-parent commits before HEAD to read.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def flaky(tests: tuple[str, ...], window: int, as_json: bool, repo_path: Path,
          history_db: str | None) -> None:
    """Flaky tests: runs that disagree, with false-failure rates and when they flipped."""
    from .queries import flaky_tests
    from .reports.flaky import flaky_json, render_flaky

    with _open(repo_path, history_db) as (repo, store, _settings):
        found = flaky_tests(repo, store, window, tests)
    if as_json:
        click.echo(json.dumps(flaky_json(found, window), indent=2))
    else:
        render_flaky(found, _console(), window)


@cli.command()
@click.option("--commits", type=click.IntRange(min=1), default=None,
              help="Window: the last N first-parent commits of HEAD (default 100).")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Window: the first-parent commits of HEAD committed in the last D days.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_common
def stats(commits: int | None, days: float | None, as_json: bool, repo_path: Path,
          history_db: str | None) -> None:
    """Figures over a window of HEAD's history: regressions, time to detection and to culprit,
    flaky and slowest tests, failures per tracked commit.

    Regressions are the distinct culprits finished bisections named inside the window (a
    culprit in a merged branch counts with its merge). Time to detection: the start of the
    first bisection that named a test's culprit minus the culprit's commit time (the nightly
    and auto-bisect start a bisection right after the run that saw the failure). Time to
    culprit: how long those bisections took.
    """
    from .errors import ConfigError
    from .reports.stats import render_stats, stats_json
    from .stats import compute_stats

    if commits is not None and days is not None:
        raise ConfigError("--commits and --days cannot be combined",
                          hint="give one of them to choose the window")
    with _open(repo_path, history_db) as (repo, store, _settings):
        figures = compute_stats(repo, store, commits=commits or 100, days=days)
    if as_json:
        click.echo(json.dumps(stats_json(figures), indent=2))
    else:
        render_stats(figures, _console())


@cli.command("find-break")
@click.argument("tests", nargs=-1, callback=_test_ids)
@click.option("--good", default=None, help="A commit where the tests passed (default: history).")
@click.option("--bad", default="HEAD", show_default=True, help="A commit where they fail.")
@click.option("--lookback", type=int, default=None,
              help="Tracked commits to look back for a pass when --good is not given.")
@click.option("--test-file", "test_files", multiple=True, type=click.Path(exists=True,
              dir_okay=False, path_type=Path),
              help="Run this test file (from your checkout) at every probe, even where the "
                   "commit does not have it.")
@click.option("--first-parent/--full-dag", default=True, show_default=True,
              help="Bisect the first-parent line (following a culprit merge into its branch), "
                   "or the whole commit graph of the range, as git bisect does.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a probe may take; a probe that takes longer is untestable.")
@click.option("--max-untestable", type=click.IntRange(min=1), default=None,
              help="Stop after this many untestable probes (default: 2 x log2 of the range + 4).")
@click.option("--setup", default=None, metavar="CMD",
              help="Shell command run in each probe's worktree and environment before its "
                   "tests, e.g. 'pip install --no-deps .'; failing makes the commit untestable.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=0.99,
              show_default=True,
              help="Stop a flaky test's search when one answer is this likely.")
@click.option("--max-probes", type=click.IntRange(min=1), default=None,
              help="Probes a flaky test's search may run (default: 6 x log2 of the range + 10).")
@click.option("--executor", type=click.Choice(["local", "docker", "dask"]), default=None,
              help="Where probes run: a worktree and this interpreter (local, the default), "
                   "a fresh container of --suite per probe (docker), or tasks on the Dask "
                   "cluster at --scheduler (dask; its workers run --suite in containers when "
                   "given).")
@click.option("--suite", default=None, metavar="NAME",
              help="The suite (suites/NAME.toml, .bisector/suites/NAME.toml or "
                   "[tool.bisector.suites.NAME]) the Docker executor runs; implies it.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="The Dask scheduler whose workers run the probes; implies --executor dask.")
@click.option("--repo-url", default=None, metavar="URL",
              help="Where Dask workers clone the repository from (file://, ssh or https; "
                   "default: file:// of this checkout's git directory, for workers on this "
                   "host).")
@click.option("--jobs", "-j", type=Jobs(), default="auto", envvar="BISECTOR_JOBS",
              show_default=True, help=JOBS_HELP)
@click.option("--pytest-arg", "probe_args", multiple=True, metavar="ARG",
              callback=_pytest_args, help=PYTEST_ARG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", "reports", type=(click.Choice(["md", "json"]), click.Path(
              dir_okay=False, path_type=Path)), multiple=True, help="Also write a report.")
@_isolation
@_verbosity
@_common
def find_break(tests: tuple[str, ...], good: str | None, bad: str, lookback: int | None,
               test_files: tuple[Path, ...], first_parent: bool, timeout: float | None,
               max_untestable: int | None, setup: str | None, confidence: float,
               max_probes: int | None, executor: str | None, suite: str | None,
               scheduler: str | None, repo_url: str | None, jobs: int,
               probe_args: tuple[str, ...], as_json: bool,
               reports: tuple[tuple[str, Path], ...], isolation: Any, quiet: bool,
               verbose: bool, repo_path: Path, history_db: str | None) -> None:
    """Find the commit that broke TESTS (default: every regression at --bad)."""
    from .errors import ConfigError
    from .executors.factory import ExecutorOptions
    from .finder import find_break as run_find_break
    from .reports import bisect as bisect_report

    for _, path in reports:
        if not path.parent.is_dir():
            raise ConfigError(f"cannot write the report {path}: no directory {path.parent}",
                              hint="create it or give another --report path")
    probes = ExecutorOptions(
        kind=executor, suite=suite, setup=setup, jobs=jobs, scheduler=scheduler,
        repo_url=repo_url, timeout=timeout, pytest_args=probe_args, test_files=test_files)
    console = _console()
    progress = _progress(quiet, verbose)
    try:
        result = run_find_break(
            repo_path, tests=list(tests), good=good, bad=bad, lookback=lookback,
            history_db=history_db, first_parent=first_parent, max_untestable=max_untestable,
            progress=progress, confidence=confidence, max_probes=max_probes, probes=probes,
            isolate=replace(isolation, revert_dir=reports[0][1].parent if reports else None),
        )
    finally:  # Ctrl-C too: a live bar must not be left over the terminal
        progress.finish()
    links = _links(repo_path)
    for kind, path in reports:
        text = (json.dumps(bisect_report.to_json(result, links), indent=2) if kind == "json"
                else bisect_report.to_markdown(result, links))
        try:
            path.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the report {path} ({exc.strerror})",
                              hint="give a writable path to --report") from None
    if as_json:
        click.echo(json.dumps(bisect_report.to_json(result, links), indent=2))
    else:
        bisect_report.render(result, console)


@cli.command()
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--container", metavar="SUITE", default=None,
              help="Run the suite in this suite's container (pytest --container) and probe "
                   "in its containers.")
@click.option("--lookback", type=click.IntRange(min=1), default=None,
              help="Tracked commits before HEAD to look for a pass (default 20).")
@click.option("--fail-on", type=click.Choice(["regression", "flaky", "never"]),
              default="regression", show_default=True,
              help="Exit 1 on new regressions, on those or flaky failures, or never.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where nightly.json, nightly.md and nightly.html go "
                   "(default: .bisector/reports in the checkout).")
@click.option("--jobs", "-j", type=Jobs(), default="auto", envvar="BISECTOR_JOBS",
              show_default=True, help=JOBS_HELP)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a probe may take; longer is untestable.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=0.99,
              show_default=True, help="Stop a flaky test's search at this certainty.")
@click.option("--grid-commits", type=click.IntRange(min=1), default=30, show_default=True,
              help="First-parent commits the report's history grid shows.")
@click.option("--pytest-arg", "probe_args", multiple=True, metavar="ARG",
              callback=_pytest_args,
              help="For the bisection's probes only (the suite's own run takes PYTEST_ARGS "
                   "after --). " + PYTEST_ARG_HELP)
@click.option("--notify", "notify_kinds", multiple=True, type=click.Choice(["github", "webhook"]),
              help="Tell the owners when the reports are written: github opens, updates and "
                   "closes one issue per culprit (GITHUB_REPOSITORY, GITHUB_TOKEN, "
                   "GITHUB_API_URL); webhook posts the night as JSON to --webhook-url. A "
                   "failed notification is a warning; the exit status stands.")
@click.option("--webhook-url", metavar="URL", envvar="BISECTOR_WEBHOOK_URL", default=None,
              help="Where --notify webhook posts (http or https; env BISECTOR_WEBHOOK_URL, "
                   "which keeps a secret URL out of the process list).")
@_isolation
@_verbosity
@_common
def nightly(pytest_args: tuple[str, ...], container: str | None, lookback: int | None,
            fail_on: str, report_dir: Path | None, jobs: int, timeout: float | None,
            confidence: float, grid_commits: int, probe_args: tuple[str, ...],
            notify_kinds: tuple[str, ...], webhook_url: str | None, isolation: Any,
            quiet: bool, verbose: bool, repo_path: Path, history_db: str | None) -> None:
    """The nightly job: run the suite at HEAD, bisect new regressions, write the reports.

    PYTEST_ARGS (after --) go to pytest. A regression an earlier night reported is carried as
    "still failing", not bisected again. Exit 1 when --fail-on's kind was found, 0 otherwise
    (and on the first night: no baseline yet), 2 on errors.
    """
    from .nightly import NightlyOptions, run_nightly
    from .notify import notify, targets
    from .reports.nightly import summary_lines

    progress = _progress(quiet, verbose)
    notifications = targets(notify_kinds, webhook_url)  # bad settings: exit 2 before the run
    options = NightlyOptions(
        lookback=lookback, container=container, pytest_args=pytest_args, fail_on=fail_on,
        report_dir=report_dir, jobs=jobs, timeout=timeout, confidence=confidence,
        grid_commits=grid_commits, history_db=history_db, probe_args=probe_args,
        isolation=isolation)
    try:
        outcome = run_nightly(repo_path, options, progress=progress,
                              echo=lambda line: click.echo(line, err=True))
    finally:  # Ctrl-C too: a live bar must not be left over the terminal
        progress.finish()
    for line in summary_lines(outcome.data):
        click.echo(line)
    for kind in ("md", "json", "html"):
        if kind in outcome.paths:
            click.echo(f"report ({kind}): {outcome.paths[kind]}")
    for target in notifications:  # a failure is a warning line: the night's result stands
        notify(outcome.data, target, say=click.echo,
               warn=lambda line: click.echo(line, err=True))
    if outcome.exit_code:
        raise click.exceptions.Exit(outcome.exit_code)


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--commit", required=True, metavar="REV",
              help="The commit the tests ran at (any revision git understands).")
@click.option("--dialect", type=click.Choice(["pytest", "generic"]), default="pytest",
              show_default=True,
              help="pytest: map cases to pytest node ids; generic: key them classname::name "
                   "(Surefire, jest-junit, gotestsum, ...).")
@click.option("--environment", "environment_name", default="imported", show_default=True,
              metavar="NAME",
              help="Where the tests ran; runs are compared only with runs of the same name.")
@click.option("--dirty", is_flag=True,
              help="The tests ran on uncommitted changes: recorded, never used as evidence.")
@_common
def import_(files: tuple[Path, ...], commit: str, dialect: str, environment_name: str,
            dirty: bool, repo_path: Path, history_db: str | None) -> None:
    """Record JUnit XML FILES (one run) as results of --commit."""
    from .importer import import_files

    done = import_files(repo_path, list(files), commit=commit, dialect=dialect,
                        environment_name=environment_name, dirty=dirty, history_db=history_db)
    _notes(done.notes)
    click.echo(f"imported {done.results} results at {done.short} (run #{done.run_id})")


@cli.command()
@click.option("--docker/--no-docker", default=True, show_default=True,
              help="Also sweep containers, networks and volumes (needs a Docker engine).")
@click.option("--keep", type=click.IntRange(min=1), default=None, metavar="N",
              help="Also prune the history: runs (and their results) older than the newest N "
                   "first-parent commits of HEAD, except what an open bisection uses. "
                   "Without it the history is not touched.")
@_common
def gc(docker: bool, keep: int | None, repo_path: Path, history_db: str | None) -> None:
    """Remove what a killed bisector left: worktrees, and labelled containers and networks.

    Only what belongs to a process that is gone is removed; a running bisection keeps its own.
    With --keep N, also prune old runs from the history store.
    """
    from .executors.worktree import sweep as sweep_worktrees
    from .gitrepo import Repository

    with Repository(repo_path) as repo:
        trees = sweep_worktrees(repo)
    click.echo(f"removed {len(trees)} worktree(s)")
    if keep is not None:
        from .maintenance import describe_pruned, prune_history

        with _open(repo_path, history_db) as (repo, store, _settings):
            pruned = prune_history(repo, store, keep)
        click.echo(f"history: {describe_pruned(pruned)}")
    if not docker:
        return
    from .errors import ExecutorError
    from .executors.docker import connect
    from .executors.docker import sweep as sweep_docker

    try:
        client = connect()
    except ExecutorError as exc:
        click.echo(f"docker: skipped ({exc.one_line()})")
        return
    swept = sweep_docker(client)
    click.echo(f"removed {len(swept.containers)} container(s), {len(swept.networks)} "
               f"network(s), {len(swept.volumes)} volume(s)")


@cli.command("export")
@click.option("--to", "target", required=True, metavar="URL_OR_PATH",
              help="The store to copy into: a SQLite file path or a database URL such as "
                   "postgresql+psycopg://user@host/db (created or migrated as needed).")
@_common
def export(target: str, repo_path: Path, history_db: str | None) -> None:
    """Copy this history store (--history-db, BISECTOR_DB or the default) into another.

    Commits, tests, runs, results, bisections and probes, ids remapped; what the other store
    already holds is matched, not copied twice, so running it again adds nothing.
    """
    from .maintenance import move_history

    err = _console_err()
    copied, src, dst = move_history(repo_path, history_db, target=target,
                                    progress=lambda m: err.print(m, style="dim"))
    click.echo(f"exported {src} to {dst}: {copied.summary()}")


@cli.command("import-history")
@click.option("--from", "source", required=True, metavar="URL_OR_PATH",
              help="The store to copy from: a SQLite file path or a database URL.")
@_common
def import_history(source: str, repo_path: Path, history_db: str | None) -> None:
    """Copy another history store into this one (--history-db, BISECTOR_DB or the default).

    The reverse of `bisector export`; `bisector import` reads JUnit XML instead.
    """
    from .maintenance import move_history

    err = _console_err()
    copied, src, dst = move_history(repo_path, history_db, source=source,
                                    progress=lambda m: err.print(m, style="dim"))
    click.echo(f"imported {src} into {dst}: {copied.summary()}")


def _notes(notes: Any) -> None:
    """What was skipped on the way (ids read from a store or a file), one stderr line each."""
    for note in notes:
        click.echo(f"bisector: note: {note}", err=True)


def _console_err() -> Any:
    """Progress messages carry revisions, test ids and paths: printed as written."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, markup=False, emoji=False)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM (a cancelled CI job) cleans up like Ctrl-C: probes killed, worktrees removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave it be
        signal.signal(signal.SIGTERM, _terminate)
    try:
        # without standalone mode, click returns a command's Exit code instead of raising it
        code = cli.main(args=argv, prog_name="bisector", standalone_mode=False)
        if isinstance(code, int):
            return code
    except BisectorError as exc:
        click.echo(f"bisector: error: {exc.one_line()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("bisector: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("bisector: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
