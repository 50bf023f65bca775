"""The nightly on a culprit of many hunks (issue 17): its HTML shows the culprit's whole diff
with the guilty hunk highlighted and the rest folded, beside the failure's traceback at the
culprit; its Markdown, the Actions step summary, shows the guilty hunk as a diff and the
revert's result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bisector.cli import main

from .conftest import commit
from .test_isolate_e2e import SCATTERED, TEST_F4, module


@pytest.fixture(autouse=True)
def _a_session_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


def _night(repo: Path, reports: Path, capsys: pytest.CaptureFixture[str]) -> int:
    code = main(["nightly", "-C", str(repo), "--report-dir", str(reports)])
    out, err = capsys.readouterr()
    assert code in (0, 1), out + err
    return code


def test_a_nights_culprit_of_nine_hunks_in_html_and_step_summary(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit(repo, {**{f"pkg{j}.py": module({}) for j in range(3)}, "test_x.py": TEST_F4,
                  ".gitignore": "__pycache__/\n"}, "start")
    assert _night(repo, tmp_path / "n1", capsys) == 0
    culprit = commit(repo, SCATTERED, "the big change")
    commit(repo, {"notes.txt": "1\n"}, "notes")
    reports = tmp_path / "n2"
    assert _night(repo, reports, capsys) == 1
    data = json.loads((reports / "nightly.json").read_text())
    [group] = data["regressions"]
    assert group["culprit"]["sha"] == culprit
    iso = group["isolation"]
    # the documented keys, unchanged; the rest of the change beside them
    assert {"hunks", "total_hunks", "probes", "minimal", "unresolved"} <= set(iso)
    assert [(h["file"], h["new_start"]) for h in iso["hunks"]] == [("pkg1.py", 18)]
    others = iso["other_hunks"]
    assert len(others) == 8 and all(h["text"].startswith("@@ ") for h in others)
    assert sorted(h["index"] for h in iso["hunks"] + others) == list(range(9))
    # a patched tree's probe says which patch it applied; a commit's own probe says none
    keyed = {p["purpose"]: bool(p["patch_key"]) for p in group["probes"]}
    assert keyed["isolate"] and keyed["revert"] and not keyed["bisect"], keyed

    html = (reports / "nightly.html").read_text()
    change = html[html.index('<div class="change">'):html.index('<details class="tb at-culprit"')]
    # diff order: pkg0's two hunks and pkg1's first, the guilty one, then the five after it
    assert re.findall(r'<details class="hunk (\w+)"', change) == ["folded", "guilty", "folded"]
    assert "<summary>3 other hunks</summary>" in change
    assert "<summary>5 other hunks</summary>" in change
    assert '<summary><code>pkg1.py:18</code> guilty</summary>' in change
    assert '<span class="add">+    return 104</span>' in change
    assert '<span class="add">+    return 109</span>' in change  # folded, but there
    assert f'<details class="tb at-culprit" open><summary>the failure at <code class="sha">' \
           f'{culprit[:10]}</code>' in html
    assert "assert f4() == 4" in html[html.index("tb at-culprit"):]

    md = (reports / "nightly.md").read_text()  # what the action appends to the step summary
    assert "```diff\n--- a/pkg1.py\n+++ b/pkg1.py\n@@ -18 +18 @@" in md
    assert "+    return 104" in md and "+    return 109" not in md
    assert "**Revert**: verified: reverting this hunk at" in md
