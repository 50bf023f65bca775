"""`bisector flaky`: flaky tests from history, for people (rich) and machines (JSON)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model import FlakyTest
from .history import iso

SCHEMA = 1  # `flaky --json` (docs/adr/0019)


def flaky_json(tests: list[FlakyTest], window: int) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "window": window,
        "flaky": [
            {
                "test": f.nodeid,
                "environment": f.env_key,
                "false_fail_rate": round(f.false_fail_rate, 4),
                "false_fail_interval": [round(x, 4) for x in f.false_fail_interval],
                "false_pass_rate": round(f.false_pass_rate, 4),
                "runs": f.runs,
                "last_seen": iso(f.last_seen),
                "flipped": list(f.flipped),
            }
            for f in tests
        ],
    }


def render_flaky(tests: list[FlakyTest], console: Console, window: int) -> None:
    if not tests:
        console.print(f"no flaky tests in the last {window} commits: every test's runs agree")
        return
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    table.add_column("test", overflow="fold")
    table.add_column("false-fail rate", justify="right", no_wrap=True)
    table.add_column("95% CI", no_wrap=True)
    table.add_column("runs", justify="right")
    table.add_column("last seen", no_wrap=True)
    table.add_column("flipped at", overflow="fold")
    for f in tests:
        low, high = f.false_fail_interval
        flips = ", ".join(s[:10] for s in f.flipped[:5])
        if len(f.flipped) > 5:
            flips += f" (+{len(f.flipped) - 5})"
        table.add_row(Text(f.nodeid), f"{f.false_fail_rate:.2f}", f"{low:.2f}-{high:.2f}",
                      str(f.runs), iso(f.last_seen)[:16].replace("T", " "), flips)
    n = len(tests)
    console.print(f"{n} flaky test{'s' if n != 1 else ''} in the last {window} commits:",
                  style="bold")
    console.print(table)
