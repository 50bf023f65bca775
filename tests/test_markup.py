"""Subjects, author names, test ids, messages and paths are data in every report: never rich
markup or emoji codes on a terminal, escaped in HTML, kept on one line and inside their cell or
code span in Markdown."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import re
from html import escape as html_escape
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from rich.console import Console

from bisector.model import (
    BisectResult,
    CommitInfo,
    Finding,
    FlakyTest,
    Grid,
    Outcome,
    Regression,
    RegressionReport,
)
from bisector.reports import bisect, flaky, history, html, nightly
from bisector.reports import stats as stats_report
from bisector.reports.markdown import cell, code
from bisector.stats import SlowTest, Stats, TrendPoint

from .conftest import commit, run_cli, run_pytest

FIXTURE = Path(__file__).parent / "fixtures" / "nightly" / "report.json"
GOOD, BAD = "a" * 40, "b" * 40

# Printable text, with a bias for what markup, emoji codes, Markdown and HTML give meaning to.
SPECIAL = st.sampled_from([*"[]/\\:@`|*_<>&\"'#!", "[/]", "[bold]", ":bug:", "[/tmp]",
                           "[pre-commit.ci]", "\\[", "```", "&amp;", "<script>"])
CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"))


def _text(limit: int) -> st.SearchStrategy[str]:
    """Whitespace is one space between words (terminals and Markdown cells keep no more); at
    most `limit` characters, so that no column clips it (two cells each for wide ones)."""
    return (st.lists(SPECIAL | CHARS, min_size=1, max_size=limit)
            .map(lambda parts: " ".join("".join(parts)[:limit].split()))
            .filter(bool))


TEXT = _text(60)


def _terminal(render: Any, *args: Any, **kwargs: Any) -> str:
    """What a renderer prints on a default console (markup and emoji on), wide enough that
    nothing wraps: the renderers must be safe whatever console they are given."""
    out = io.StringIO()
    render(*args, Console(file=out, width=2000, color_system=None), **kwargs)
    return out.getvalue()


def _commit(subject: str, author: str) -> CommitInfo:
    return CommitInfo(BAD, (GOOD,), author, f"{author}@example.com", 1_700_000_000, subject)


def _result(subject: str, author: str, nodeid: str, message: str, path: str) -> BisectResult:
    found = Finding(nodeid, _commit(subject, author), (BAD,), "sig", message, True,
                    files=(path,), owners=(author,), confidence=1.0)
    lost = Finding(f"{nodeid}2", None, (GOOD, BAD), note=message, verdict="inconclusive")
    return BisectResult(GOOD, BAD, 2, (found, lost), 1, 0, 1.0, notes=(message,))


def _nightly(subject: str, author: str, nodeid: str, message: str, path: str
             ) -> dict[str, Any]:
    data = json.loads(FIXTURE.read_text())
    group = data["regressions"][0]
    group["culprit"].update(subject=subject, author=author)
    group["files"], group["owners"] = [path], [author]
    group["tests"][0].update(test=nodeid, note=message)
    group["tests"][0]["after"]["message"] = message
    data["still_failing"][0].update(test=nodeid, message=message)
    data["still_failing"][0]["culprit"]["subject"] = subject
    data["flaky"][0].update(test=nodeid, message=message)
    data["failing"][0].update(test=nodeid, message=message)
    data["notes"] = [message]
    data["grid"]["commits"][0].update(subject=subject, author=author)
    data["grid"]["tests"][0] = nodeid
    return data


class _Shown(HTMLParser):
    """The page's text and attribute values, unescaped as a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.texts += [value for _, value in attrs if value]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _tables_intact(md: str) -> None:
    """Every row of every table has its header's number of cells: no value split a row."""
    width = None
    for line in md.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        width = width or cells
        assert cells == width, line


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_text(20), author=TEXT, nodeid=TEXT, message=_text(20), path=TEXT)
def test_text_is_data_in_every_report(subject: str, author: str, nodeid: str, message: str,
                                      path: str) -> None:
    c = _commit(subject, author)
    grid = Grid([c], [nodeid], {(nodeid, BAD): ["failed"]}, {BAD: 1})
    out = _terminal(history.render_grid, grid, named=True)
    assert subject in out and nodeid in out

    report = RegressionReport(BAD, "env", [GOOD, BAD],
                              [Regression(nodeid, GOOD, BAD, 1, Outcome.FAILED, "s", message)])
    out = _terminal(history.render_regressions, report, lookback=5)
    assert nodeid in out and f"failed: {message}" in out

    found = FlakyTest(nodeid, "env", 0.2, (0.1, 0.4), 0.0, 10, 1_700_000_000.0, (BAD,))
    assert nodeid in _terminal(flaky.render_flaky, [found], window=50)

    figures = Stats(10, None, 10, c, c, 1, 10.0, 1.0, 2.0, (found,),
                    (SlowTest(f"{nodeid}~slow", 1.0, 2.0, 3),),
                    (TrendPoint(BAD, 1_700_000_000, 1, 2, 1),))
    out = _terminal(stats_report.render_stats, figures)
    assert nodeid in out and f"{nodeid}~slow" in out

    result = _result(subject, author, nodeid, message, path)
    out = _terminal(bisect.render, result)
    for text in (subject, author, f"{nodeid}: {message}", f"{nodeid}2: {message}", path,
                 f"note: {message}"):
        assert text in out
    md = bisect.to_markdown(result)
    for text in (cell(subject, None), cell(author, None), code(nodeid), cell(message, None),
                 code(path)):
        assert text in md
    _tables_intact(md)
    assert all(text in "\n".join(bisect.summary_lines(result))
               for text in (subject, author, nodeid, message))

    data = _nightly(subject, author, nodeid, message, path)
    lines = "\n".join(nightly.summary_lines(data))
    for text in (f"{subject} ({author})", f"    {nodeid}", f"{subject}: {nodeid}",
                 f"note: {message}"):
        assert text in lines
    md = nightly.to_markdown(data)
    for text in (cell(subject), cell(author), code(nodeid), cell(message), code(path)):
        assert text in md
    _tables_intact(md)
    page = html.render_html(copy.deepcopy(data))
    shown = _Shown()
    shown.feed(page)
    for text in (subject, author, nodeid, message, path):
        assert str(escape(text)) in page
        assert any(text in s for s in shown.texts), text  # what a browser shows: unchanged


def test_bracketed_subjects_print_as_written_in_history(repo: Path) -> None:
    """`[/tmp]` was read as a closing tag (MarkupError), `[pre-commit.ci]` as a style."""
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"}, "[pre-commit.ci] autoupdate")
    run_pytest(repo, "--track-history")
    commit(repo, {"test_a.py": "def test_a():\n    assert 1\n"}, "handle [/tmp] paths :bug:")
    run_pytest(repo, "--track-history")
    proc = run_cli("history", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "[pre-commit.ci] autoupdate" in proc.stdout
    assert "handle [/tmp] paths :bug:" in proc.stdout


TRACEBACK_LINES = st.lists(
    st.lists(SPECIAL | CHARS | st.sampled_from(["</details>", "</pre>", "````", "  ```x"]),
             max_size=12).map("".join),
    min_size=1, max_size=8).map("\n".join).filter(str.strip)


def _code_blocks(md: str) -> list[str]:
    """The code blocks a CommonMark renderer (markdown-it, with raw HTML on, as GitHub's
    Markdown has it) builds from `md`, as text; and no element from the data."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(md)
    blocks = re.findall(r"<pre><code[^>]*>(.*?)</code></pre>", rendered, re.S)
    return [html_unescape(b) for b in blocks]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traceback=TRACEBACK_LINES, nodeid=TEXT)
def test_a_traceback_is_one_code_block_in_markdown(traceback: str, nodeid: str) -> None:
    """Whatever a traceback holds (backtick fences, `</details>`, HTML), the Markdown shows it
    as one code block, whole, inside a <details> whose summary is escaped."""
    data = json.loads(FIXTURE.read_text())
    data["regressions"][0]["tests"][0].update(test=nodeid)
    data["regressions"][0]["tests"][0]["after"]["traceback"] = traceback
    md = nightly.to_markdown(data)
    body = traceback.rstrip("\n")
    assert body in _code_blocks(md) or body + "\n" in _code_blocks(md)
    assert f"<summary>Traceback of {html_escape(' '.join(nodeid.split()))} at" in md

    result = _result("s", "a", nodeid, "m", "p.py")
    found = dataclasses.replace(result.findings[0], traceback=traceback)
    md = bisect.to_markdown(dataclasses.replace(result, findings=(found,)))
    assert body + "\n" in _code_blocks(md)


def test_links_in_markdown_cannot_leave_their_parentheses() -> None:
    data = json.loads(FIXTURE.read_text())
    data["links"] = {"commit": "https://x.example/a) [evil](https://evil.example/{sha}",
                     "run": "https://ci.example/run/1 (x)"}
    md = nightly.to_markdown(data)
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(md)
    hrefs = [h for h in re.findall(r'href="([^"]*)"', rendered) if h.startswith("http")]
    assert "evil.example/" not in rendered.replace("%28https://evil.example/", "")
    assert hrefs and all(h.startswith(("https://x.example/a%29", "https://ci.example/run/1%20"))
                         for h in hrefs)
