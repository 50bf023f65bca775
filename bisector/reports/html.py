"""The nightly report as one self-contained HTML page (docs/nightly-report.md).

The page is read from CI artifacts and mail attachments, often offline: everything it needs
(CSS, the trend chart) is inline, nothing is fetched. Layout lives in the Jinja2 template; this
module only turns the report's values into what the template shows (glyphs, classes, rounded
figures, links), so the template never has to guess at missing keys. Links go through
`links.safe_url` and Jinja's attribute escaping; nothing from the report becomes markup.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from .history import FLAKY, GLYPHS, NOT_RUN, cell_kind
from .isolation import change_blocks, diff_lines
from .nightly_model import Grid, GridCommit, NightlyReport, as_report
from .svg import trend_svg

STATUS_TEXT = {
    "regression": "regression",
    "still-failing": "still failing",
    "flaky": "flaky",
    "clean": "clean",
    "no-baseline": "no baseline yet",
}
LEGEND = [*((o, g) for o, (g, _) in GLYPHS.items()), ("flaky", FLAKY[0]),
          ("not-run", NOT_RUN[0])]


@dataclass(frozen=True, slots=True)
class Cell:
    css: str
    glyph: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    test: str
    flaky: bool
    cells: list[Cell]


@functools.cache
def _environment() -> jinja2.Environment:
    # autoescape=True, not select_autoescape: the template's name ends in .j2, which
    # select_autoescape's extension check would not recognise as HTML.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bisector.reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters.update(short=short, when=when, number=number, pct=pct, dash=dash)
    # `is given`, not `is not none`: a key missing from the report is Undefined, not None.
    env.tests["given"] = lambda value: not _missing(value)
    return env


def render_html(data: NightlyReport | Mapping[str, Any]) -> str:
    """The page for one nightly report (or its JSON, read back tolerantly: the same renderer
    serves a first night with no baseline and a full night with stats)."""
    report = as_report(data)
    stats = report.stats or None
    status = report.status
    return _environment().get_template("nightly.html.j2").render(
        data=report,
        status=status if status in STATUS_TEXT else "unknown",  # a CSS class: known ones only
        status_text=STATUS_TEXT.get(status, status),
        regressions=list(report.regressions),
        grid=report.grid,
        commits=_oldest_first(report.grid),
        rows=grid_rows(report.grid),
        legend=LEGEND,
        stats=stats,
        trend=Markup(trend_svg(stats.get("trend") or [])) if stats else None,
        outcome_glyph=outcome_glyph,
        links=report.links,
        change_blocks=change_blocks,
        diff_lines=diff_lines,
    )


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, jinja2.Undefined)


def short(sha: Any) -> str:
    """Commits carry their own `short` (a `CommitRef`, a probe, a grid column, or their JSON);
    bare shas (last_good, bisection bounds) do not."""
    if isinstance(sha, Mapping):
        return str(sha.get("short") or short(sha.get("sha")))
    if hasattr(sha, "short"):
        return str(sha.short or short(sha.sha))
    return str(sha)[:10] if sha else "—"


def when(value: Any) -> str:
    """ISO 8601 down to the minute, in UTC: seconds and offsets are noise in a nightly page."""
    if not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def number(value: Any, digits: int = 1) -> str:
    """A figure, or a dash when the report has none (e.g. no regression yet to time)."""
    if _missing(value) or isinstance(value, bool):
        return "—"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def dash(value: Any) -> Any:
    """The value, or a dash where the report has none: an empty cell reads as a rendering bug."""
    return "—" if _missing(value) else value


def pct(value: Any) -> str:
    if _missing(value):
        return "—"
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return str(value)


def outcome_glyph(outcome: Any) -> str:
    return GLYPHS.get(str(outcome), ("?", ""))[0]


def cell(outcomes: Sequence[str] | None) -> tuple[str, str]:
    """The CSS class and glyph of one grid cell, as the terminal grid shows it (`cell_kind`);
    an outcome the page does not know (a newer report) shows as untestable."""
    kind = cell_kind(outcomes)
    glyphs = {"not-run": NOT_RUN[0], "flaky": FLAKY[0], **{o: g for o, (g, _) in GLYPHS.items()}}
    return (kind, glyphs[kind]) if kind in glyphs else ("untestable", GLYPHS["untestable"][0])


def _oldest_first(grid: Grid | None) -> list[GridCommit]:
    """The grid's commits left to right, oldest first like the trend chart under it (the
    JSON lists them newest first, as `bisector history` does from the top down)."""
    return list(reversed(grid.commits)) if grid else []


def grid_rows(grid: Grid | None) -> list[Row]:
    """One row per test, its cells in the page's column order (oldest commit first)."""
    if grid is None:
        return []
    commits = _oldest_first(grid)
    flaky = set(grid.flaky)
    return [Row(test, test in flaky, [_cell_of(grid, test, c) for c in commits])
            for test in grid.tests]


def _cell_of(grid: Grid, test: str, commit: GridCommit) -> Cell:
    outcomes = (grid.cells.get(test) or {}).get(commit.sha or "")
    css, glyph = cell(outcomes)
    title = f"{test} at {short(commit)}: {', '.join(outcomes) if outcomes else 'not run'}"
    if commit.sha and grid.regressions.get(test) == commit.sha:
        css += " regression"
        title += " (culprit)"
    return Cell(css, glyph, title)
