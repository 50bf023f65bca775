"""The nightly HTML report: rendered from tests/fixtures/nightly/report.json (the shape of
docs/nightly-report.md), checked as text, then loaded in a real headless Chromium, because what
matters is what a browser builds and paints from the file, not what the template meant to say.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html import escape as html_escape
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bisector.reports.html import cell, render_html
from bisector.reports.svg import trend_svg
from tests.integration.conftest import unavailable

FIXTURE = Path(__file__).parent / "fixtures" / "nightly" / "report.json"
SVG = "{http://www.w3.org/2000/svg}"
ATTACK = "<script>alert(1)</script>"
ESCAPED_ATTACK = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def report() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


# --- a tiny DOM, enough to ask "which elements with which classes hold which text" -------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.elements():
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                found.append(child)
            found.extend(child.find_all(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.find_all(tag, cls)
        assert len(found) == 1, f"expected one {tag or ''}.{cls or ''}, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if any(n.tag == tag for n in self.stack[1:]):
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def grid_rows(dom: Node) -> dict[str, list[Node]]:
    """The history grid's cells by the full node id in each row header's title."""
    table = dom.one("table", "grid")
    return {tr.one("th").attrs["title"]: tr.find_all("td")
            for tr in table.one("tbody").find_all("tr")}


# --- rendering, as text -------------------------------------------------------------------------

def test_every_section_of_the_report_is_rendered(report: dict[str, Any]) -> None:
    dom = parse(render_html(report))
    text = " ".join(dom.one("body").text().split())

    assert dom.one(cls="badge").text() == "regression"
    assert "status-regression" in dom.one(cls="badge").classes
    head = report["head"]
    assert f"HEAD {head['short']} {head['subject']}" in text
    assert "2024-05-09 02:14 UTC" in text  # generated_at
    assert "✓ 37 passed" in text and "✗ 7 failed" in text

    cards = dom.find_all("article", "culprit-card")
    isolated = [e for e in report["regressions"] if e["culprit"]]
    assert [c.attrs["data-sha"] for c in cards] == [e["culprit"]["sha"] for e in isolated]
    first = " ".join(cards[0].text().split())
    assert "0.990" in first and "0.970" in first  # confidences, three digits
    assert "Dave Kowalski <dave@example.com>" in first
    assert "calc/signs.py" in first and "@calc/core" in first
    assert "assert 5 == -5" in first  # the message after, at the culprit
    assert len(cards[0].find_all("li", "probe")) == 4
    assert "4 candidates 4 probes run 1 reused 6.3 s" in first

    lost = dom.one("article", "not-isolated")
    assert "not isolated" in lost.text()
    assert "untestable (ImportError while collecting)" in lost.text()

    culprit = report["still_failing"][0]["culprit"]
    assert f"since {culprit['short']} {culprit['subject']}" in text
    assert "Flaky tonight (1)" in text and "20% (5%–50%)" in text
    assert "Failing without a baseline (1)" in text and "--strict" in text
    assert "1 probe result reused from tonight's run at HEAD" in text
    assert "37 tests always passed" in text
    assert "Stats" in text and "20.5 mean hours to detection" in text
    assert "12.3 mean seconds to culprit" in text and "3.0 per 100 commits" in text


def test_grid_cells_carry_the_outcome_the_culprit_and_flakiness(report: dict[str, Any]) -> None:
    grid = report["grid"]
    shas = [c["sha"] for c in reversed(grid["commits"])]  # the page: oldest on the left
    rows = grid_rows(parse(render_html(report)))
    assert list(rows) == grid["tests"]

    for test, culprit in grid["regressions"].items():
        marked = [i for i, td in enumerate(rows[test]) if "regression" in td.classes]
        assert marked == [shas.index(culprit)], test
    add = rows["tests/test_calc.py::test_add_negative"]
    assert [td.text() for td in add] == ["✓", "✓", "✓", "✓", "✗", "✗", "✗", "✗"]
    assert add[-1].attrs["title"] == (
        f"tests/test_calc.py::test_add_negative at {shas[-1][:10]}: failed")

    net = rows["tests/test_net.py::test_fetch_times_out"]
    assert ["flaky" in td.classes for td in net] == [*[False] * 5, True, False, False]
    assert net[5].text() == "~" and net[5].attrs["title"].endswith(": failed, passed")
    assert net[2].text() == "s" and "skipped" in net[2].classes
    assert "untestable" in rows["tests/test_db.py::test_migrate_v3"][6].classes
    assert "not-run" in rows["tests/test_io.py::test_read_big_file"][3].classes
    assert [td.text() for td in rows["tests/test_cli.py::test_strict_flag"][:-1]] == ["·"] * 7

    dom = parse(render_html(report))
    flagged = [th.attrs["title"] for th in dom.find_all("th", "flaky-test")]
    assert flagged == grid["flaky"]
    headers = dom.one("table", "grid").one("thead").find_all("th", "commit")
    assert [th.text() for th in headers] == [c["short"] for c in reversed(grid["commits"])]
    assert grid["commits"][1]["subject"] in headers[-2].attrs["title"]
    # the grid and the trend chart under it both run oldest to newest, left to right
    trend = [p["sha"] for p in report["stats"]["trend"]]
    in_both = [sha for sha in shas if sha in trend]
    assert in_both == [sha for sha in trend if sha in shas] and len(in_both) > 1
    assert "Oldest commit on the left" in dom.one("body").text()


@pytest.mark.parametrize(("outcomes", "expected"), [
    (["failed", "passed"], ("flaky", "~")),
    (["passed", "error"], ("flaky", "~")),
    (["skipped", "passed"], ("skipped", "s")),  # a skip disagrees with nothing
    (["xfailed"], ("xfailed", "x")),
    (["xpassed"], ("xpassed", "X")),
    (["error", "failed"], ("error", "E")),
    ([], ("not-run", "·")),
    (None, ("not-run", "·")),
    (["from-a-newer-bisector"], ("untestable", "?")),
])
def test_a_cell_shows_disagreeing_runs_as_flaky(outcomes: list[str] | None,
                                                expected: tuple[str, str]) -> None:
    assert cell(outcomes) == expected


def test_the_page_fetches_nothing(report: dict[str, Any]) -> None:
    html = render_html(report)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<script\b", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)
    assert html.count("<style>") == 1


def test_text_from_the_report_is_escaped(report: dict[str, Any]) -> None:
    hostile = copy.deepcopy(report)
    hostile["repository"] = '<img src=x onerror="alert(1)">'
    hostile["regressions"][0]["tests"][0]["after"]["message"] = ATTACK
    hostile["regressions"][0]["owners"].append('"><b>owner</b>')
    hostile["notes"].append(ATTACK)
    hostile["stats"]["trend"][0]["short"] = "<svg onload=alert(1)>"
    html = render_html(hostile)

    assert ATTACK not in html and "<img" not in html and "<b>owner" not in html
    assert "<svg onload" not in html
    assert html.count(ESCAPED_ATTACK) >= 2
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    dom = parse(html)
    assert dom.find_all("script") == [] and dom.find_all("img") == []
    assert ATTACK in dom.find_all("article", "culprit-card")[0].text()


def test_a_first_night_without_baseline_or_stats_renders() -> None:
    html = render_html({"schema": 1, "repository": "calc", "status": "no-baseline",
                        "exit_code": 0, "regressions": [], "grid": None, "stats": None})
    dom = parse(html)
    assert dom.one(cls="badge").text() == "no baseline yet"
    assert dom.find_all(cls="culprit-card") == []
    assert "No new regressions tonight." in dom.text()
    assert dom.find_all("table", "grid") == [] and dom.find_all("svg") == []
    assert "Stats" not in dom.text()
    # Nothing at all is still a page, not a crash.
    assert "<html" in render_html({})


def test_missing_and_null_keys_render_what_is_there() -> None:
    data: dict[str, Any] = {
        "status": "flaky",
        "run": {"outcomes": None, "seconds": None},
        "regressions": [{"culprit": None, "tests": [{"test": "t.py::a", "note": "no pass"}]},
                        {"culprit": {"sha": "f" * 40}, "probes": [{"sha": "e" * 40}],
                         "bisection": {"good": "a" * 40}}],
        "still_failing": [{"test": "t.py::b", "culprit": None}],
        "flaky": [{"test": "t.py::c", "false_fail_rate": None, "false_fail_interval": None}],
        "grid": {"commits": [{"sha": "a" * 40}], "tests": ["t.py::a"], "cells": {}},
        "stats": {"window": None, "regressions": None, "flaky": None, "trend": None,
                  "slowest": [{"test": "t.py::d"}]},
    }
    dom = parse(render_html(data))
    text = " ".join(dom.one("body").text().split())
    assert dom.one(cls="badge").text() == "flaky"
    assert dom.one("article", "culprit-card").attrs["data-sha"] == "f" * 40
    assert "ffffffffff" in text and "eeeeeeeeee" in text
    assert "not isolated" in text and "no pass" in text and "culprit unknown" in text
    assert [td.text() for td in grid_rows(dom)["t.py::a"]] == ["·"]
    assert "— regressions" in text and "— mean hours to detection" in text
    assert "no tracked commits" in dom.one("svg", "trend").text()
    # Absent figures are left out, not printed as blanks ("#", " candidates", "— s").
    assert "searched aaaaaaaaaa..—" in text
    assert "candidates" not in text and "reused" not in text and " s " not in text
    assert "tonight's run" in text and "#" not in text and "always passed" not in text


def test_the_template_ships_inside_the_package() -> None:
    """An editable install reads the source tree, so the wheel's package data is checked
    from pyproject.toml: a template it leaves out would be missing from an installed
    bisector."""
    import fnmatch
    import tomllib

    template = resources.files("bisector.reports") / "templates" / "nightly.html.j2"
    assert template.is_file()
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bisector.reports.templates"]
    assert any(fnmatch.fnmatch("nightly.html.j2", p) for p in patterns)


# --- the trend chart ----------------------------------------------------------------------------

def test_an_empty_trend_is_a_small_wellformed_svg() -> None:
    root = ET.fromstring(trend_svg([]))
    assert root.tag == f"{SVG}svg"
    assert "no tracked commits" in "".join(root.itertext())
    assert root.findall(f".//{SVG}rect") == []


def test_the_trend_has_one_bar_per_commit_scaled_to_its_failures(
        report: dict[str, Any]) -> None:
    trend = report["stats"]["trend"]
    root = ET.fromstring(trend_svg(trend))
    assert (root.get("width"), root.get("height")) == ("720", "180")

    hits = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "hit"]
    assert len(hits) == len(trend)  # every commit can be pointed at, a green one too
    xs = [float(b.get("x", "nan")) for b in hits]
    assert xs == sorted(xs)  # oldest on the left
    tips = [b.findtext(f"{SVG}title") for b in hits]
    assert tips[4] == (f"{trend[4]['short']}: 3 failed, 41 passed, 2 new regressions "
                       f"({trend[4]['committed_at']})")
    bars = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    drawn = [p for p in trend if p["failed"]]
    assert len(bars) == len(drawn) == len(trend) - 1  # no bar for the commit with 0 failed
    heights = [float(b.get("height", "nan")) for b in bars]
    failed = [p["failed"] for p in drawn]
    assert heights.index(max(heights)) == failed.index(max(failed))
    assert heights[3] < heights[6] and heights[0] == heights[1]  # 3 < 7 failed, 1 == 1
    marked = ["regression" in b.get("class", "") for b in bars]
    assert marked == [p["regressions"] > 0 for p in drawn]
    assert [b.findtext(f"{SVG}title") for b in bars] == [
        t for t, p in zip(tips, trend, strict=True) if p["failed"]]
    labels = "".join(root.itertext())
    assert trend[0]["short"][:7] in labels and trend[-1]["short"][:7] in labels


def test_trend_text_is_escaped_and_bad_counts_draw_as_zero() -> None:
    svg = trend_svg([{"short": "<&>\"'", "failed": None, "regressions": "many"},
                     {"sha": "b" * 40, "failed": "3"}])
    root = ET.fromstring(svg)  # would raise on unescaped text
    assert "<&>" in "".join(root.itertext())
    bars = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "")]
    assert [b.findtext(f"{SVG}title") for b in bars] == ["bbbbbbbbbb: 3 failed"]
    assert "bbbbbbb" in "".join(root.itertext())


def test_a_commit_with_no_failure_has_no_bar_and_markers_are_drawn_where_promised() -> None:
    trend = [{"short": "aaaaaaa", "failed": 0, "regressions": 0},
             {"short": "bbbbbbb", "failed": 2, "regressions": 1},
             {"short": "ccccccc", "failed": 0, "regressions": 0}]
    root = ET.fromstring(trend_svg(trend))
    hits = {r.findtext(f"{SVG}title"): r for r in root.iter(f"{SVG}rect")
            if r.get("class") == "hit"}
    assert list(hits) == ["aaaaaaa: 0 failed", "bbbbbbb: 2 failed, 1 new regression",
                          "ccccccc: 0 failed"]
    coloured = [r for r in root.iter(f"{SVG}rect") if r.get("fill") not in (None, "transparent")]
    assert [r.findtext(f"{SVG}title") for r in coloured] == [
        "bbbbbbb: 2 failed, 1 new regression"]  # no red sliver at the zeros
    # the legend promises ▼ for new regressions: one marker, over b's column
    assert "▼ new regressions" in "".join(root.itertext())
    [marker] = [p for p in root.iter(f"{SVG}path") if p.get("class") == "marker"]
    b = hits["bbbbbbb: 2 failed, 1 new regression"]
    left, width = float(b.get("x", "nan")), float(b.get("width", "nan"))
    tip_x = float(marker.get("d", "").split("L")[-1].split(",")[0])
    assert left < tip_x < left + width


# --- in a real browser --------------------------------------------------------------------------

@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium not installed: apt-get install chromium", what="Chromium",
                    how=".ci/run installs it with scripts/ensure-chromium")
    assert path is not None
    return path


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless, with a fresh profile and everything that would reach the network switched off:
    the page must render from the file alone."""
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def write_page(tmp_path: Path, report: dict[str, Any]) -> str:
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    return page.as_uri()


@pytest.mark.chromium
def test_chromium_builds_the_cards_grid_and_chart(chromium: str, tmp_path: Path,
                                                  report: dict[str, Any]) -> None:
    url = write_page(tmp_path, report)
    proc = run_chromium(chromium, tmp_path, "--dump-dom", url)
    dom = parse(proc.stdout)

    isolated = [e for e in report["regressions"] if e["culprit"]]
    cards = dom.find_all(cls="culprit-card")
    assert len(cards) == len(isolated) == 2
    for card, entry in zip(cards, isolated, strict=True):
        assert card.attrs["data-sha"] == entry["culprit"]["sha"]
        text = card.text()
        assert entry["culprit"]["short"] in text
        assert all(owner in text for owner in entry["owners"])
        assert len(card.find_all("li", "probe")) == len(entry["probes"])
    assert len(dom.find_all(cls="not-isolated")) == 1

    # The failure message with a <script> in it stayed text: the browser built no script.
    assert dom.find_all("script") == []
    assert ATTACK in cards[1].text()

    rows = grid_rows(dom)
    shas = [c["sha"] for c in reversed(report["grid"]["commits"])]
    for test, culprit in report["grid"]["regressions"].items():
        at = rows[test][shas.index(culprit)]
        assert {"regression", "failed"} <= at.classes, test
    assert len(dom.find_all("td", "regression")) == len(report["grid"]["regressions"])
    assert len(dom.find_all("td", "flaky")) == 1
    assert "flaky" in rows["tests/test_net.py::test_fetch_times_out"][5].classes

    chart = dom.one("svg", "trend")
    assert len(chart.find_all("rect", "hit")) == len(report["stats"]["trend"])
    assert len(chart.find_all("rect", "bar")) == sum(
        1 for p in report["stats"]["trend"] if p["failed"])


@pytest.mark.chromium
def test_chromium_paints_a_readable_page(chromium: str, tmp_path: Path,
                                         report: dict[str, Any]) -> None:
    from PIL import Image

    url = write_page(tmp_path, report)
    shot = tmp_path / "shot.png"
    run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", url)

    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        pixels = image.convert("RGB")
    colours = pixels.getcolors(maxcolors=1 << 24)
    assert colours is not None
    total = 1280 * 1600
    background_count, _ = max(colours)
    assert len(colours) > 50, "a flat page: the CSS or the content did not render"
    assert (total - background_count) / total >= 0.03
    # The status badge, failed outcomes and the culprit cards' edge are red: the regression shows.
    red = sum(n for n, (r, g, b) in colours if r >= 150 and g <= 80 and b <= 80)
    assert red >= 500, f"only {red} red pixels"


def test_a_culprit_from_a_merged_branch_shows_its_merge(report: dict[str, Any]) -> None:
    """The card names both commits: the culprit, and the first-parent merge it came in by."""
    merge = {"sha": "9" * 40, "short": "9" * 10, "subject": "Merge branch 'signs'",
             "author": "Erin", "author_email": "erin@example.com",
             "committed_at": "2024-05-06T09:00:00+00:00"}
    report["regressions"][0]["merge"] = merge
    cards = parse(render_html(report)).find_all("article", "culprit-card")
    merged = cards[0].one(cls="merged")
    assert " ".join(merged.text().split()) == (
        f"merged by {'9' * 10} Merge branch 'signs' (the first-parent merge that brought it in)")
    assert not cards[1].find_all(cls="merged")  # no merge key: a culprit on the line itself


# --- evidence: tracebacks and links ------------------------------------------------------------

TRACEBACK = (
    "def test_add_negative():\n"
    ">       assert add(-2, -3) == -5\n"
    "E       assert 5 == -5\n"
    "E        +  where 5 = add(-2, -3)\n"
    "E        +  and a very long line of repr that must scroll in its box, not widen the page: "
    + "x" * 300 + "\n\n"
    "tests/test_calc.py:12: AssertionError <script>alert(1)</script>"
)
COMMIT_URL = "https://git.example.com/org/calc/commit/{sha}"
RUN_URL = "https://ci.example.com/org/calc/runs/42"


@pytest.fixture
def evidence(report: dict[str, Any]) -> dict[str, Any]:
    """The fixture night with a traceback on each failure and links to the forge and CI."""
    data = copy.deepcopy(report)
    data["regressions"][0]["tests"][0]["after"]["traceback"] = TRACEBACK
    data["still_failing"][0]["traceback"] = "E   OSError: read 65536 bytes\n" * 40
    data["flaky"][0]["traceback"] = "E   TimeoutError: no answer"
    data["failing"][0]["traceback"] = "E   SystemExit: 2"
    data["links"] = {"commit": COMMIT_URL, "run": RUN_URL}
    return data


def test_each_failure_shows_its_traceback_folded(evidence: dict[str, Any]) -> None:
    dom = parse(render_html(evidence))
    card = dom.find_all("article", "culprit-card")[0]
    [folded] = card.find_all("details", "tb")
    assert "open" not in folded.attrs  # folded: the page stays a summary until asked
    assert folded.one("summary").text() == "traceback"
    assert folded.one("pre", "tb").text() == TRACEBACK  # whole, as text: the <script> too
    assert dom.find_all("script") == []
    for section in ("still-failing", ):
        assert dom.one("tr", section).one("pre", "tb").text().startswith("E   OSError")
    texts = [p.text() for p in dom.find_all("pre", "tb")]
    assert "E   TimeoutError: no answer" in texts and "E   SystemExit: 2" in texts


def test_commits_the_diff_and_the_run_are_links(evidence: dict[str, Any]) -> None:
    dom = parse(render_html(evidence))
    culprit = evidence["regressions"][0]["culprit"]["sha"]
    card = dom.find_all("article", "culprit-card")[0]
    assert card.one("h3").one("a", "commit-link").attrs["href"] == COMMIT_URL.format(sha=culprit)
    assert card.one("a", "diff-link").attrs["href"] == COMMIT_URL.format(sha=culprit) + ".diff"
    assert {a.attrs["href"] for a in dom.find_all("a", "run-link")} == {RUN_URL}
    carried = evidence["still_failing"][0]["culprit"]["sha"]
    assert dom.one("tr", "still-failing").one("a", "commit-link").attrs["href"] == (
        COMMIT_URL.format(sha=carried))
    # navigation only: every URL on the page is an <a href>, nothing is fetched
    html = render_html(evidence)
    assert not re.search(r"""\bsrc\s*=|<link\b|url\(|@import""", html, re.I)


def test_a_hostile_link_template_stays_an_attribute(evidence: dict[str, Any]) -> None:
    """A commit-url read back from an archived report is data: it is URL-escaped, and it can
    neither close the attribute nor add markup."""
    evidence["links"] = {"commit": 'https://x.example/"><script>alert(1)</script>/{sha}',
                         "run": 'javascript:alert(1)'}
    html = render_html(evidence)
    assert "<script" not in html and "javascript:" not in html
    [link, *_] = parse(html).find_all("a", "commit-link")
    assert link.attrs["href"].startswith("https://x.example/%22%3E%3Cscript%3E")


def test_no_links_without_a_place_to_link_to(report: dict[str, Any]) -> None:
    dom = parse(render_html(report))
    assert dom.find_all("a") == []


# Headless Chromium will not make a window narrower than 500 px: a phone's width is had by
# loading the page in an iframe that wide (its media queries see the iframe's viewport).
OVERFLOW_PROBE = """<script>
  const inScroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > innerWidth + 1 && !inScroller(el))
      out.push(el.tagName + "." + el.className + " right=" + Math.round(r.right));
  }
  const report = parent.document.body;
  report.setAttribute("data-width", String(innerWidth));
  report.setAttribute("data-scroll-width", String(document.documentElement.scrollWidth));
  report.setAttribute("data-overflow", JSON.stringify(out.slice(0, 20)));
</script></body>"""


def write_framed_page(tmp_path: Path, report: dict[str, Any], width: int, *,
                      probe: bool = False) -> str:
    """The report in an iframe `width` px wide, at the top left of an empty page. With `probe`,
    every traceback unfolded and a script (the test's; the report has none) that lists what
    sticks out of the frame's viewport: an element whose right edge passes it, unless a
    scrolling box holds it (the grid, a traceback's own box)."""
    page = render_html(report)
    if probe:
        page = page.replace('<details class="tb">', '<details class="tb" open>')
        page = page.replace("</body>", OVERFLOW_PROBE)
    frame = (f'<!DOCTYPE html><html><body style="margin:0;background:#fff">'
             f'<iframe style="border:0;display:block;width:{width}px;height:1600px" '
             f'srcdoc="{html_escape(page, quote=True)}"></iframe></body></html>')
    path = tmp_path / "framed.html"
    path.write_text(frame, encoding="utf-8")
    return path.as_uri()


@pytest.mark.chromium
@pytest.mark.parametrize("width", [1280, 420])
def test_chromium_lays_the_evidence_out_without_cutting_anything_off(
        chromium: str, tmp_path: Path, evidence: dict[str, Any], width: int) -> None:
    """At a laptop's width and a phone's (420 px): the tests table wraps into stacked cells,
    a long traceback wraps inside its own box, and nothing passes the right edge."""
    url = write_framed_page(tmp_path, evidence, width, probe=True)
    proc = run_chromium(chromium, tmp_path, f"--window-size={max(width, 500) + 20},1700",
                        "--virtual-time-budget=2000", "--dump-dom", url)
    body = parse(proc.stdout).one("body")
    assert body.attrs["data-width"] == str(width)
    assert json.loads(body.attrs["data-overflow"]) == []
    assert int(body.attrs["data-scroll-width"]) <= width


@pytest.mark.chromium
@pytest.mark.parametrize("width", [1280, 420])
def test_chromium_paints_the_evidence(chromium: str, tmp_path: Path, evidence: dict[str, Any],
                                      width: int) -> None:
    from PIL import Image

    url = write_framed_page(tmp_path, evidence, width)
    shot = tmp_path / "shot.png"
    run_chromium(chromium, tmp_path, f"--screenshot={shot}",
                 f"--window-size={max(width, 500)},1600", url)
    with Image.open(shot) as image:
        page = image.convert("RGB").crop((0, 0, width, 1600))
    colours = page.getcolors(maxcolors=1 << 24)
    assert colours is not None and len(colours) > 50, "a flat page: nothing rendered"
    red = sum(n for n, (r, g, b) in colours if r >= 150 and g <= 80 and b <= 80)
    assert red >= 300, f"only {red} red pixels: the regression does not show"
    # the page's own background reaches the frame's right edge (short of its scroll bar)
    assert page.getpixel((width - 20, 5)) == (246, 248, 250)  # --bg
