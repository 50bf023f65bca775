"""The guilty hunks and the revert check in find-break's and the nightly's reports."""

from __future__ import annotations

import copy
import json
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

from bisector.reports.html import render_html
from bisector.reports.isolation import (
    DIFF_LINES_MAX,
    change_blocks,
    diff_lines,
    markdown,
    terminal_lines,
)
from bisector.reports.nightly import summary_lines, to_markdown
from bisector.reports.nightly_model import as_report

FIXTURE = Path(__file__).parent / "fixtures" / "nightly" / "report.json"
HUNK = {"file": "pkg/<m>.py", "old_start": 18, "old_lines": 1, "new_start": 18, "new_lines": 1,
        "text": "@@ -18 +18 @@ def f4():\n-    return 4\n+    return 104\n"}
ISOLATION = {"hunks": [HUNK], "total_hunks": 9, "probes": 5, "minimal": True, "unresolved": 0,
             "parent": "a" * 40, "note": None}
REVERT = {"verified": True, "at": "b" * 40, "patch": "/r/revert-cccccccccc.patch",
          "detail": None, "hunks": 1}


def _night() -> dict[str, Any]:
    data = json.loads(FIXTURE.read_text())
    group = next(g for g in data["regressions"] if g["culprit"])
    group.update(isolation=copy.deepcopy(ISOLATION), revert=copy.deepcopy(REVERT))
    return data


def test_markdown_shows_the_hunks_as_a_diff_and_the_revert() -> None:
    lines = markdown(ISOLATION, REVERT)
    text = "\n".join(lines)
    assert "**Guilty hunks**: 1 hunk of 9 (minimal, 5 probes, 0 unresolved): pkg/<m>.py:18" \
        in text
    assert "```diff\n--- a/pkg/<m>.py\n+++ b/pkg/<m>.py\n@@ -18 +18 @@ def f4():" in text
    assert "**Revert**: verified: reverting this hunk at bbbbbbbbbb" in text
    assert "`git apply /r/revert-cccccccccc.patch`" in text


def test_a_change_not_isolated_and_a_revert_that_conflicts_are_said() -> None:
    single = {**ISOLATION, "probes": 0, "note": "the change is a single hunk"}
    failed = {**REVERT, "verified": False, "patch": None, "detail": "the revert conflicts"}
    assert terminal_lines(single, failed) == [
        "  hunks   not isolated: the change is a single hunk",
        "  revert  NOT verified: the revert conflicts"]
    assert "```diff" not in "\n".join(markdown(single, failed))


def test_the_nightly_carries_them_in_json_markdown_summary_and_html() -> None:
    data = _night()
    report = as_report(data)
    again = next(g for g in report.to_json()["regressions"] if g["culprit"])
    assert again["isolation"] == ISOLATION and again["revert"] == REVERT
    assert "```diff" in to_markdown(data) and "**Revert**: verified" in to_markdown(data)
    assert any("hunks   1 hunk of 9" in line for line in summary_lines(data))
    html = render_html(data)
    assert '<details class="hunk guilty" open>' in html
    assert '<span class="add">+    return 104</span>' in html
    assert "pkg/&lt;m&gt;.py:18" in html and "<m>" not in html  # data is escaped
    assert 'class="revert verified"' in html
    assert "reverting this hunk makes the tests pass" in html


def test_the_revert_line_counts_its_hunks_in_plain_words() -> None:
    """One hunk is "this hunk", not "these 1 hunk" (seen on more-itertools)."""
    from bisector.reports.isolation import revert_line

    one = revert_line({"verified": True, "at": "a" * 40, "hunks": 1, "patch": "p.patch"})
    three = revert_line({"verified": True, "at": "a" * 40, "hunks": 3, "patch": "p.patch"})
    assert one.startswith("verified: reverting this hunk at aaaaaaaaaa")
    assert three.startswith("verified: reverting these 3 hunks at aaaaaaaaaa")


def _other(i: int, line: int, text: str = "") -> dict[str, Any]:
    return {"file": "pkg/b.py", "old_start": line, "old_lines": 1, "new_start": line,
            "new_lines": 1, "index": i,
            "text": text or f"@@ -{line} +{line} @@\n-    return {i}\n+    return {i + 100}\n"}


def test_the_html_shows_the_whole_change_guilty_hunks_open_the_others_folded() -> None:
    data = _night()
    group = next(g for g in data["regressions"] if g["culprit"])
    iso = group["isolation"]
    iso["hunks"] = [{**HUNK, "index": 2}]
    iso["other_hunks"] = [_other(0, 3), _other(1, 6), _other(3, 30), _other(4, 40, "x")]
    iso["other_hunks"][3]["text"] = ""  # past SHOWN_MAX: numbers only
    group["tests"][0]["after"]["traceback"] = "def test_f4():\n>   assert f4() == 4\nE   <no>"
    html = render_html(data)
    change = html[html.index('<div class="change">'):html.index('class="revert')]
    assert re.findall(r'<details class="hunk (\w+)"', change) == ["folded", "guilty", "folded"]
    assert "<summary>2 other hunks</summary>" in change
    assert '<span class="add">+    return 103</span>' in change
    assert change.count("text left out: the change is too long") == 1
    assert '<details class="tb at-culprit" open><summary>the failure at' in change
    assert html_escape(">   assert f4() == 4\nE   <no>") in change


def test_a_whole_file_units_header_is_not_drawn_as_a_change() -> None:
    text = "diff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n" \
           "@@ -0,0 +1 @@\n+x = 1\n"
    assert [k for k, _ in diff_lines(text)] == ["ctx"] * 5 + ["add"]


def test_an_older_report_without_other_hunks_still_renders_its_guilty_hunks() -> None:
    assert change_blocks(ISOLATION) == [{"guilty": True, "hunks": [HUNK]}]
    unsearched = {**ISOLATION, "probes": 0, "hunks": [HUNK, HUNK]}
    assert change_blocks(unsearched) == [{"guilty": False, "hunks": [HUNK, HUNK]}]


def test_the_step_summarys_diff_block_is_capped_and_says_what_it_left_out() -> None:
    big = {**HUNK, "text": "@@ -0,0 +1,1000 @@\n" + "".join(f"+x{i} = {i}\n" for i in range(1000)),
           "new_lines": 1000}
    two = {**REVERT, "hunks": 2}
    text = "\n".join(markdown({**ISOLATION, "hunks": [big]}, two))
    block = text[text.index("```diff\n"):text.index("\n```\n")]
    assert len(block.splitlines()) == 1 + DIFF_LINES_MAX
    assert f"({1003 - DIFF_LINES_MAX} more lines of these hunks are not shown here" in text
    assert "reverting these 2 hunks at bbbbbbbbbb" in text
