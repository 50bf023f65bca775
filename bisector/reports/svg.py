"""Charts as inline SVG strings, so that the HTML report stays one self-contained file.

No plotting library: the report must open from a file:// URL on a machine with nothing but a
browser, and a bar per tracked commit is simple enough to draw by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 720
HEIGHT = 180
# Room for the y labels on the left and the commit labels under the bars.
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 34, 30
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
BAR = "#e07a7a"
BAR_REGRESSION = "#b00020"
AXIS = "#888"
MAX_LABELS = 16


def _count(value: Any) -> int:
    """A missing or malformed count draws as zero rather than breaking the whole report."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _svg(height: int, body: list[str], label: str) -> str:
    # xmlns keeps the string a valid standalone SVG (and parseable as XML); it is a namespace
    # name, never fetched.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_attr(label)}" font-family="{_attr(FONT)}" font-size="10">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


@dataclass(frozen=True, slots=True)
class _Plot:
    """Where the chart's parts go: the y scale's top value, the baseline, the column step."""

    top: int
    n: int

    @property
    def height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    @property
    def base(self) -> float:
        return TOP + self.height

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.n

    @property
    def bar_w(self) -> float:
        return max(1.0, min(self.step * 0.7, 48.0))


def trend_svg(trend: Sequence[Mapping[str, Any]]) -> str:
    """Failed tests per tracked commit, oldest on the left as in the report's grid, one bar
    each (none at zero); a commit where new regressions were first seen gets a dark bar and a
    ▼ marker with their count, so a step up has a visible cause."""
    label = "Failed tests per tracked commit, oldest first"
    if not trend:
        return _svg(40, [f'<text x="{LEFT}" y="24" fill="{AXIS}">no tracked commits</text>'],
                    label)
    failed = [_count(p.get("failed")) for p in trend]
    plot = _Plot(top=max(max(failed), 1), n=len(trend))
    every = max(1, -(-len(trend) // MAX_LABELS))  # label at most MAX_LABELS commits
    body = _axes(plot)
    for i, (point, n) in enumerate(zip(trend, failed, strict=True)):
        body += _column(plot, i, point, n, labelled=i % every == 0)
    body.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" fill="{AXIS}">'
                f"tracked commits, oldest → newest; ▼ new regressions</text>")
    return _svg(HEIGHT, body, label)


def _axes(plot: _Plot) -> list[str]:
    base, top = plot.base, plot.top
    body = [
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{AXIS}"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{AXIS}"/>',
    ]
    ticks = sorted({0, top} | ({top // 2} if top >= 4 else set()))
    for tick in ticks:
        y = base - plot.height * tick / top
        body.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end" '
                    f'fill="{AXIS}">{tick}</text>')
        if tick:
            body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                        f'stroke="#ddd" stroke-dasharray="3 3"/>')
    body.append(f'<text x="4" y="10" fill="{AXIS}">failed tests</text>')
    return body


def _tip(point: Mapping[str, Any], short: str, n: int, regressions: int) -> str:
    tip = f"{short}: {n} failed"
    if point.get("passed") is not None:
        tip += f", {_count(point.get('passed'))} passed"
    if regressions:
        tip += f", {regressions} new regression{'s' if regressions != 1 else ''}"
    if point.get("committed_at"):
        tip += f" ({point['committed_at']})"
    return tip


def _column(plot: _Plot, i: int, point: Mapping[str, Any], n: int, *, labelled: bool
            ) -> list[str]:
    """One commit: its hover area, its bar, its ▼ marker, its label."""
    step, bar_w, base = plot.step, plot.bar_w, plot.base
    x = LEFT + step * i + (step - bar_w) / 2
    h = plot.height * n / plot.top
    regressions = _count(point.get("regressions"))
    short = str(point.get("short") or str(point.get("sha") or "")[:10])
    tip = escape(_tip(point, short, n, regressions))
    # No bar at zero: a red sliver would read as a failure. Every commit gets a clear
    # hover area with its figures, so a green one is still there to point at.
    body = [f'<rect class="hit" x="{LEFT + step * i:.1f}" y="{TOP}" width="{step:.1f}" '
            f'height="{plot.height}" fill="transparent"><title>{tip}</title></rect>']
    if n:
        body.append(
            f'<rect class="{"bar regression" if regressions else "bar"}" x="{x:.1f}" '
            f'y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="{BAR_REGRESSION if regressions else BAR}"><title>{tip}</title></rect>')
    cx = x + bar_w / 2
    if regressions:
        ty = base - h - 4
        body.append(f'<path class="marker" d="M{cx - 5:.1f},{ty - 8:.1f} '
                    f'L{cx + 5:.1f},{ty - 8:.1f} '
                    f'L{cx:.1f},{ty:.1f} Z" fill="{BAR_REGRESSION}"/>')
        body.append(f'<text x="{cx:.1f}" y="{ty - 10:.1f}" text-anchor="middle" '
                    f'fill="{BAR_REGRESSION}">{regressions}</text>')
    if labelled:
        body.append(f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="middle" '
                    f'font-family="ui-monospace, monospace" fill="#444">'
                    f"{escape(short[:7])}</text>")
    return body
