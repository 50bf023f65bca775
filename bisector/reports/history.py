"""`bisector history` and `bisector regressions`, for people (rich) and machines (JSON)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..model import CommitInfo, Grid, Outcome, RegressionReport

GLYPHS: dict[str, tuple[str, str]] = {
    "passed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "error": ("E", "bold red"),
    "skipped": ("s", "dim"),
    "xfailed": ("x", "dim"),
    "xpassed": ("X", "yellow"),
    "untestable": ("?", "magenta"),
}
FLAKY = ("~", "bold yellow")
NOT_RUN = ("·", "dim")
MAX_TEST_COLUMNS = 24


def cell_kind(outcomes: Sequence[str] | None) -> str:
    """What a commit's outcomes of one test show as: `not-run`, `flaky` when its runs disagree
    (a pass and a failure at one commit), else the newest outcome."""
    if not outcomes:
        return "not-run"
    kinds = {str(o) for o in outcomes}
    if Outcome.PASSED in kinds and kinds & {Outcome.FAILED, Outcome.ERROR}:
        return "flaky"
    return str(outcomes[0])


def cell(outcomes: list[str] | None) -> tuple[str, str]:
    """One glyph for a commit's outcomes of one test: disagreeing runs show as flaky."""
    kind = cell_kind(outcomes)
    return {"not-run": NOT_RUN, "flaky": FLAKY}.get(kind) or GLYPHS[kind]


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _outcomes_of(grid: Grid, nodeid: str) -> set[str]:
    return {str(o) for c in grid.commits for o in grid.cells.get((nodeid, c.sha), ())}


def interesting_tests(grid: Grid) -> list[str]:
    """Tests whose outcome is not a plain pass somewhere in the window: the ones to look at.
    A test skipped in every run is not one (see `skipped_everywhere`)."""
    out = []
    for nodeid in grid.tests:
        outcomes = _outcomes_of(grid, nodeid)
        if outcomes and outcomes != {"passed"} and outcomes != {"skipped"}:
            out.append(nodeid)
    return out


def skipped_everywhere(grid: Grid) -> list[str]:
    """Tests skipped in every run of the window: counted under the grid, never a column (a
    suite's platform-only tests would otherwise take most of them)."""
    return [n for n in grid.tests if _outcomes_of(grid, n) == {"skipped"}]


def render_grid(grid: Grid, console: Console, *, named: bool) -> None:
    skipped = skipped_everywhere(grid)
    kept = set(grid.tests) - set(skipped)
    columns = ([n for n in grid.tests if n in kept] if named
               else interesting_tests(grid))
    hidden = max(0, len(columns) - MAX_TEST_COLUMNS)
    columns = columns[:MAX_TEST_COLUMNS]
    console.print(_grid_table(grid, columns))
    if columns:
        console.print()
        for i, nodeid in enumerate(columns, 1):
            console.print(Text(f"  T{i} = {nodeid}"), soft_wrap=True)
    if hidden:
        console.print(f"  ({hidden} more tests; name them to see their columns)", style="dim")
    elif not named and grid.tests and not columns and not skipped:
        console.print(f"  every one of {len(grid.tests)} tests passed wherever it ran", style="dim")
    if skipped:
        console.print(f"  {_tests(len(skipped))} skipped in every run (no column)", style="dim")
    legend = "  ".join(f"{g} {o}" for o, (g, _) in GLYPHS.items())
    console.print(
        f"  {legend}  {FLAKY[0]} flaky  {NOT_RUN[0]} not run", style="dim", highlight=False
    )


def _grid_table(grid: Grid, columns: list[str]) -> Table:
    """One row per commit: its summary of outcomes, then a glyph per test column."""
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    table.add_column("commit", style="cyan", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("subject", no_wrap=True, max_width=40)
    table.add_column("runs", justify="right")
    table.add_column("tests", no_wrap=True)
    for i, _ in enumerate(columns, 1):
        table.add_column(f"T{i}", justify="center", no_wrap=True)
    for c in grid.commits:
        glyphs = [Text(*cell(grid.cells.get((n, c.sha)))) for n in columns]
        runs = grid.runs.get(c.sha, 0)
        table.add_row(
            c.sha[:10],
            _date(c.committed_at),
            Text(_clip(c.subject, 40)),  # data, never markup: `[/tmp]` and `[ci]` as written
            str(runs) if runs else "·",
            _commit_summary(grid, c.sha),
            *glyphs,
        )
    return table


def _commit_summary(grid: Grid, sha: str) -> Text:
    """`3✓ 1✗`: how many tests had each outcome at this commit (their first run there)."""
    counts: dict[str, int] = {}
    for nodeid in grid.tests:
        outcomes = grid.cells.get((nodeid, sha))
        if outcomes:
            counts[outcomes[0]] = counts.get(outcomes[0], 0) + 1
    if not counts:
        return Text("not tracked", style="dim")
    summary = Text()
    for outcome, (glyph, style) in GLYPHS.items():
        if counts.get(outcome):
            summary.append(f"{counts[outcome]}{glyph} ", style=style)
    return summary


def _tests(n: int) -> str:
    return f"{n} test{'' if n == 1 else 's'}"


# `history --json` and `regressions --json` (docs/adr/0019): an int that changes only when a key
# is removed or changes meaning; new keys may appear without it changing
SCHEMA = 1


def grid_json(grid: Grid) -> dict[str, Any]:
    """The grid's tests and results; the tests skipped in every run are only listed, under
    `skipped_everywhere`, as the terminal counts them under the grid."""
    skipped = skipped_everywhere(grid)
    hidden = set(skipped)
    tests = [n for n in grid.tests if n not in hidden]
    return {
        "schema": SCHEMA,
        "tests": tests,
        "commits": [
            {
                **commit_json(c),
                "runs": grid.runs.get(c.sha, 0),
                "results": {
                    n: grid.cells[(n, c.sha)] for n in tests if (n, c.sha) in grid.cells
                },
            }
            for c in grid.commits
        ],
        "skipped_everywhere": skipped,
    }


def commit_json(c: CommitInfo | None, sha: str | None = None) -> dict[str, Any]:
    if c is None:
        return {"sha": sha}
    return {
        "sha": c.sha,
        "subject": c.subject,
        "author": c.author_name,
        "author_email": c.author_email,
        "committed_at": iso(c.committed_at),
    }


def commit_ref(c: CommitInfo | None, sha: str | None = None) -> dict[str, Any] | None:
    """`commit_json` with the short sha the reports show; None when there is no commit."""
    if c is None and sha is None:
        return None
    return {**commit_json(c, sha), "short": (c.sha if c else sha or "")[:10]}


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, to the second: what every JSON output carries."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


def regressions_json(report: RegressionReport, lookback: int) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "head": report.head,
        "lookback": lookback,
        "tracked_commits_in_window": len(report.window),
        "regressions": [
            {
                "test": r.nodeid,
                "outcome": str(r.outcome),
                "last_good": commit_json(report.commits.get(r.last_good), r.last_good),
                "first_bad": commit_json(report.commits.get(r.first_bad), r.first_bad),
                "candidates": r.candidates,
                "signature": r.signature,
                "message": r.message,
            }
            for r in report.regressions
        ],
    }


def render_regressions(report: RegressionReport, console: Console, lookback: int) -> None:
    if report.env_key is None:
        console.print(
            f"no clean tracked run at HEAD ({report.head[:10]}): "
            "run `pytest --track-history` on a clean checkout first"
        )
        return
    if not report.regressions:
        console.print(
            f"no regressions at {report.head[:10]}: nothing fails there that passed within "
            f"the last {lookback} tracked commits"
        )
        return
    n = len(report.regressions)
    console.print(f"{n} regression{'s' if n != 1 else ''} at {report.head[:10]}:", style="bold")
    longest = max(len(r.nodeid) for r in report.regressions)
    if longest + _FIXED_COLUMNS + _MIN_FAILURE > console.width:
        _regressions_as_list(report, console)
        return
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    # a node id is copied into the next command: never broken, never cut
    table.add_column("test", no_wrap=True, min_width=longest)
    table.add_column("last good", style="green", no_wrap=True)
    table.add_column("first bad", style="red", no_wrap=True)
    table.add_column("to search", justify="right", no_wrap=True)
    table.add_column("failure", overflow="fold", max_width=60)
    for r in report.regressions:
        table.add_row(
            Text(r.nodeid),
            r.last_good[:10],
            r.first_bad[:10],
            str(r.candidates),
            Text(f"{r.outcome}: {r.message or ''}"),
        )
    console.print(table)


# "last good" and "first bad" (10 each), "to search" (9) and the gaps between five columns
_FIXED_COLUMNS = 10 + 10 + 9 + 4 * 2
_MIN_FAILURE = 20


def _regressions_as_list(report: RegressionReport, console: Console) -> None:
    """When the longest node id leaves no room for a table: each id on a line of its own
    (soft-wrapped: a narrower terminal may fold it on screen, a copy still gets it whole), its
    figures and failure indented under it."""
    for r in report.regressions:
        console.print(Text(r.nodeid, style="bold"), soft_wrap=True)
        line = Text("  last good ")
        line.append(r.last_good[:10], style="green")
        line.append("  first bad ")
        line.append(r.first_bad[:10], style="red")
        line.append(f"  {r.candidates} to search")
        console.print(line)
        console.print(Padding(Text(f"{r.outcome}: {r.message or ''}", overflow="fold"),
                              (0, 0, 0, 2)))
