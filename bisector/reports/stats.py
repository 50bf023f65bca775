"""`bisector stats`: a window's figures, for people (rich) and machines (JSON).

The JSON object is also what the nightly report embeds under `"stats"` (docs/nightly-report.md):
keep its keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .history import commit_ref, iso

if TYPE_CHECKING:  # the figures are assembled above the reports layer
    from ..stats import Stats


def sparkline(values: Sequence[int]) -> str:
    """A bar per value, as high as the value against the largest; zero is the lowest bar."""
    bars = "▁▂▃▄▅▆▇█"
    top = max(values, default=0)
    if top <= 0:
        return bars[0] * len(values)
    return "".join(bars[0] if v <= 0 else bars[1 + round((v / top) * 6)] for v in values)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


SCHEMA = 1  # `stats --json`, and nightly.json's "stats" (docs/adr/0019)


def stats_json(stats: Stats) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "window": {
            "commits": stats.commits,
            "days": stats.days,
            "size": stats.size,  # first-parent commits in the window
            "tracked_commits": stats.tracked_commits,
            "from": commit_ref(stats.first),
            "to": commit_ref(stats.last),
        },
        "regressions": stats.regressions,
        "regressions_per_100_commits": stats.regressions_per_100_commits,
        "mean_hours_to_detection": _round(stats.mean_hours_to_detection),
        "mean_seconds_to_culprit": _round(stats.mean_seconds_to_culprit),
        "flaky": [
            {
                "test": f.nodeid,
                "environment": f.env_key,
                "false_fail_rate": round(f.false_fail_rate, 4),
                "false_fail_interval": [round(x, 4) for x in f.false_fail_interval],
                "runs": f.runs,
            }
            for f in stats.flaky
        ],
        "slowest": [
            {"test": s.nodeid, "mean_seconds": round(s.mean_seconds, 3),
             "max_seconds": round(s.max_seconds, 3), "runs": s.runs}
            for s in stats.slowest
        ],
        "trend": [
            {"sha": p.sha, "short": p.short, "committed_at": iso(p.committed_at),
             "failed": p.failed, "passed": p.passed, "regressions": p.regressions}
            for p in stats.trend
        ],
    }


def _window(stats: Stats) -> str:
    n = stats.size
    commits = f"{n} first-parent commit{'s' if n != 1 else ''}"
    if stats.days is not None:
        return f"the last {stats.days:g} day{'s' if stats.days != 1 else ''} ({commits})"
    return f"the last {commits}"


def render_stats(stats: Stats, console: Console) -> None:
    if not stats.trend:
        console.print(f"no tracked runs in the window ({_window(stats)})")
        return
    span = f"{stats.first.short}..{stats.last.short}" if stats.first and stats.last else ""
    console.print(f"stats over {_window(stats)}, {stats.tracked_commits} tracked: {span}",
                  style="bold")
    hours, seconds = stats.mean_hours_to_detection, stats.mean_seconds_to_culprit
    figures = [
        ("regressions", f"{stats.regressions} ({stats.regressions_per_100_commits:g} per 100 "
                        "commits)"),
        ("to detection", "-" if hours is None else
         f"{hours:.1f} h mean (culprit committed -> bisection started)"),
        ("to culprit", "-" if seconds is None else f"{seconds:.1f} s mean bisection"),
    ]
    failures = [p.failed for p in stats.trend]
    figures.append(("failures", f"{sparkline(failures)} per tracked commit, oldest first "
                                f"(max {max(failures)})"))
    for name, value in figures:
        console.print(Text(f"  {name:<13} {value}"))

    console.print()
    if stats.flaky:
        table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
        table.add_column("flaky test", overflow="fold")
        table.add_column("false-fail rate", justify="right", no_wrap=True)
        table.add_column("95% CI", no_wrap=True)
        table.add_column("runs", justify="right")
        for f in stats.flaky:
            low, high = f.false_fail_interval
            table.add_row(Text(f.nodeid), f"{f.false_fail_rate:.2f}", f"{low:.2f}-{high:.2f}",
                          str(f.runs))
        console.print(table)
    else:
        console.print("no flaky tests: every test's runs agree")

    if stats.slowest:
        console.print()
        table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
        table.add_column("slowest test", overflow="fold")
        table.add_column("mean s", justify="right", no_wrap=True)
        table.add_column("max s", justify="right", no_wrap=True)
        table.add_column("runs", justify="right")
        for s in stats.slowest:
            table.add_row(Text(s.nodeid), f"{s.mean_seconds:.3f}", f"{s.max_seconds:.3f}",
                          str(s.runs))
        console.print(table)
