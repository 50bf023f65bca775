"""`python -m bisector.annotations`: what action.yml prints for the runner (an `::error` on
each culprit line) and writes to $GITHUB_OUTPUT, from nightly.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bisector.annotations import annotations, git_first_lines, main, outputs

from .conftest import commit


def _night(group: dict[str, Any]) -> dict[str, Any]:
    return {"status": "regression", "regressions": [group], "still_failing": [],
            "flaky": [], "failing": []}


def _group(sha: str, files: list[str], subject: str = "Clamp add() at zero",
           hunks: list[dict[str, Any]] | None = None, tests: int = 1) -> dict[str, Any]:
    group: dict[str, Any] = {
        "culprit": {"sha": sha, "short": sha[:10], "subject": subject},
        "files": files,
        "tests": [{"test": f"tests/test_calc.py::test_{i}"} for i in range(tests)],
    }
    if hunks is not None:
        group["isolation"] = {"hunks": hunks}
    return group


def test_isolated_hunks_are_annotated_line_by_line() -> None:
    hunks = [{"file": "calc.py", "old_start": 3, "old_lines": 1, "new_start": 3,
              "new_lines": 2, "text": "@@ -3 +3,2 @@\n-x\n+y\n+z\n"},
             {"file": "util.py", "old_start": 9, "old_lines": 1, "new_start": 9,
              "new_lines": 1, "text": "..."}]
    found = annotations(_night(_group("a" * 40, ["calc.py", "util.py", "README"],
                                      hunks=hunks, tests=5)))
    assert found == [
        "::error file=calc.py,line=3,endLine=4,title=bisector%3A regression::this change in "
        "aaaaaaaaaa Clamp add() at zero breaks tests/test_calc.py::test_0, "
        "tests/test_calc.py::test_1, tests/test_calc.py::test_2 and 2 more (isolated hunk)",
        "::error file=util.py,line=9,title=bisector%3A regression::this change in "
        "aaaaaaaaaa Clamp add() at zero breaks tests/test_calc.py::test_0, "
        "tests/test_calc.py::test_1, tests/test_calc.py::test_2 and 2 more (isolated hunk)",
    ]


def test_data_cannot_start_another_command() -> None:
    """A subject and a path from the repository, escaped as the runner reads them."""
    [line] = annotations(_night(_group("b" * 40, ["we,ird:na%me.py"],
                                       subject="100% done\n::add-mask::x\ry")))
    assert line.startswith("::error file=we%2Cird%3Ana%25me.py,line=1,")
    assert "\n" not in line and "\r" not in line
    assert "100%25 done%0A::add-mask::x%0Dy" in line


def test_without_hunks_each_file_at_its_first_changed_line(repo: Path) -> None:
    commit(repo, {"calc.py": "a = 1\nb = 2\nc = 3\n", "other.py": "x = 1\n"}, "base")
    culprit = commit(repo, {"calc.py": "a = 1\nb = 2\nc = 4\n", "other.py": "x = 2\n",
                            "new.py": "y = 1\n"}, "culprit")
    found = annotations(_night(_group(culprit, ["calc.py", "new.py", "other.py", "gone.py"])),
                        git_first_lines(repo))
    assert [line.split(",title=")[0] for line in found] == [
        "::error file=calc.py,line=3", "::error file=new.py,line=1",
        "::error file=other.py,line=1", "::error file=gone.py,line=1"]
    assert found[0].endswith(f"::changed by {culprit[:10]} Clamp add() at zero, which broke "
                             "tests/test_calc.py::test_0")


def test_git_that_cannot_say_is_line_one(tmp_path: Path) -> None:
    found = annotations(_night(_group("c" * 40, ["calc.py"])), git_first_lines(tmp_path))
    assert found[0].startswith("::error file=calc.py,line=1,")


def test_no_culprit_no_annotation() -> None:
    group = _group("d" * 40, ["calc.py"])
    group["culprit"] = None
    assert annotations(_night(group)) == []
    assert annotations({"regressions": [], "still_failing": [{"test": "t"}]}) == []


def test_outputs() -> None:
    assert outputs(_night(_group("a" * 40, ["calc.py"], tests=2))) == {
        "status": "regression", "new-regressions": "2"}
    assert outputs({"status": "clean", "regressions": []}) == {
        "status": "clean", "new-regressions": "0"}
    assert outputs(None) == {"status": "error", "new-regressions": "0"}


def test_main_writes_outputs_and_prints_commands(tmp_path: Path,
                                                 capsys: Any) -> None:
    report = tmp_path / "nightly.json"
    report.write_text(json.dumps(_night(_group("a" * 40, ["calc.py"]))))
    github_output = tmp_path / "out"
    github_output.write_text("earlier=1\n")
    assert main([str(report), "--repo", str(tmp_path), "--github-output",
                 str(github_output)]) == 0
    assert github_output.read_text() == "earlier=1\nstatus=regression\nnew-regressions=1\n"
    assert capsys.readouterr().out.startswith("::error file=calc.py,line=1,")


def test_a_missing_report_is_a_warning_and_status_error(tmp_path: Path) -> None:
    github_output = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "bisector.annotations",
                           str(tmp_path / "nope.json"), "--github-output", str(github_output)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("::warning::no readable nightly report at ")
    assert github_output.read_text() == "status=error\nnew-regressions=0\n"
