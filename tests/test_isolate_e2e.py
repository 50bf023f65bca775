"""--isolate end to end (docs/adr/0021): generated repositories whose culprit changes several
files, real worktrees, real pytest probes with some of the culprit's hunks applied."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bisector.bisection.isolate import IsolateOptions
from bisector.finder import find_break
from bisector.model import BisectResult, Finding

from .conftest import commit, git, query, run_cli

NODE = "test_x.py::test_it"


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # probes start faster


def module(values: dict[int, str], extra: str = "") -> str:
    """f0..f9, each returning its number unless `values` says otherwise, 3 lines apart."""
    return "".join(f"def f{i}():\n    return {values.get(i, str(i))}\n\n\n"
                   for i in range(10)) + extra


def history(repo: Path, test: str, changed: dict[str, str], *, after: int = 1
            ) -> tuple[str, str, str]:
    """good (pkg0..pkg2 plain, the test), the culprit (`changed` files), `after` commits
    more: (good, culprit, bad)."""
    base = {f"pkg{j}.py": module({}) for j in range(3)}
    good = commit(repo, {**base, "test_x.py": test}, "start")
    culprit = commit(repo, changed, "the big change")
    bad = culprit
    for i in range(after):
        bad = commit(repo, {"notes.txt": f"{i}\n"}, f"note {i}")
    return good, culprit, bad


def isolate(repo: Path, good: str, **options: object) -> tuple[BisectResult, Finding]:
    result = find_break(repo, tests=[NODE], good=good,
                        isolate=IsolateOptions(isolate=True, **options))  # type: ignore[arg-type]
    [finding] = result.findings
    return result, finding


def hunk_files(finding: Finding) -> list[tuple[str, int]]:
    assert finding.isolation is not None
    return sorted((h.file, h.new_start) for h in finding.isolation.hunks)


TEST_F4 = "from pkg1 import f4\n\n\ndef test_it():\n    assert f4() == 4\n"
# nine hunks in three files; the one in pkg1.f4 breaks the test
SCATTERED = {"pkg0.py": module({2: "102", 7: "107"}), "pkg1.py": module({1: "101", 4: "104",
                                                                        8: "108"}),
             "pkg2.py": module({0: "100", 3: "103", 5: "105", 9: "109"})}


def test_one_guilty_hunk_among_nine_its_revert_and_a_rerun(repo: Path) -> None:
    good, culprit, bad = history(repo, TEST_F4, SCATTERED)
    _, finding = isolate(repo, good)
    assert finding.culprit is not None and finding.culprit.sha == culprit
    iso = finding.isolation
    assert iso is not None and iso.total_hunks == 9 and iso.minimal and iso.note == ""
    assert hunk_files(finding) == [("pkg1.py", 18)]
    assert "+    return 104" in iso.hunks[0].text
    assert 0 < iso.probes <= 9
    revert = finding.revert
    assert revert is not None and revert.verified and revert.at == bad and revert.hunks == 1
    assert revert.patch == str(repo / ".bisector" / "reports" / f"revert-{culprit[:10]}.patch")
    check = subprocess.run(["git", "apply", "--check", revert.patch], cwd=repo,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # the user's checkout is at the bad end
    assert git(repo, "status", "--porcelain") == ""  # nothing applied to the checkout
    stored = query(repo / ".bisector" / "history.db",
                   "select count(*) from runs where trigger = 'isolate'")[0][0]
    assert stored == iso.probes + 1  # every subset, and the revert check
    again, same = isolate(repo, good)
    assert again.probes_run == 0  # the subsets and the revert check are reused
    assert hunk_files(same) == hunk_files(finding) and same.revert == revert


def test_two_hunks_that_fail_only_together(repo: Path) -> None:
    test = ("from pkg0 import f3\nfrom pkg2 import f6\n\n\n"
            "def test_it():\n    assert not (f3() == 'on' and f6() == 'on')\n")
    changed = {"pkg0.py": module({1: "101", 3: "'on'", 8: "108"}),
               "pkg1.py": module({2: "102", 5: "105"}),
               "pkg2.py": module({0: "100", 6: "'on'", 9: "109"})}
    good, _, _ = history(repo, test, changed, after=0)
    _, finding = isolate(repo, good)
    assert hunk_files(finding) == [("pkg0.py", 14), ("pkg2.py", 26)]
    assert finding.isolation is not None and finding.isolation.minimal
    assert finding.revert is not None and finding.revert.verified and finding.revert.hunks == 2


def test_a_call_and_the_helper_it_needs_come_out_as_one_set(repo: Path) -> None:
    """The call alone raises AttributeError, another failure than the AssertionError at the
    culprit: unresolved, never guilty; only with its helper does it fail as bisected."""
    changed = {"pkg0.py": module({2: "102"}),
               "pkg1.py": module({4: "__import__('pkg2').helper()", 7: "107"}),
               "pkg2.py": module({1: "101", 5: "105"},
                                 extra="def helper():\n    return 104\n")}
    good, _, _ = history(repo, TEST_F4, changed)
    _, finding = isolate(repo, good)
    assert hunk_files(finding) == [("pkg1.py", 18), ("pkg2.py", 41)]
    assert finding.isolation is not None and finding.isolation.unresolved >= 1
    assert finding.revert is not None and finding.revert.verified


def test_a_single_hunk_change_is_said_with_no_probe(repo: Path) -> None:
    good, _, _ = history(repo, TEST_F4, {"pkg1.py": module({4: "104"})})
    _, finding = isolate(repo, good)
    iso = finding.isolation
    assert iso is not None and iso.probes == 0 and iso.total_hunks == 1
    assert iso.note == "the change is a single hunk"
    stored = query(repo / ".bisector" / "history.db",
                   "select count(*) from runs where trigger = 'isolate'")[0][0]
    assert stored == 1  # the revert check only
    assert finding.revert is not None and finding.revert.verified


def test_a_merge_culprit_is_isolated_against_its_first_parent(repo: Path) -> None:
    """An evil merge: the branch is harmless, the merge itself breaks the test; its change
    is the whole merged diff from the first parent."""
    good = commit(repo, {**{f"pkg{j}.py": module({}) for j in range(3)}, "test_x.py": TEST_F4},
                  "start")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, {"pkg0.py": module({2: "102", 7: "107"}), "pkg2.py": module({3: "103"})},
           "topic work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"notes.txt": "main\n"}, "main work")
    git(repo, "merge", "-q", "--no-ff", "--no-commit", "topic")
    (repo / "pkg1.py").write_text(module({4: "104", 8: "108"}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "merge topic")
    merge = git(repo, "rev-parse", "HEAD")
    _, finding = isolate(repo, good)
    assert finding.culprit is not None and finding.culprit.sha == merge
    iso = finding.isolation
    assert iso is not None and iso.parent == git(repo, "rev-parse", "HEAD^1")
    assert iso.total_hunks == 5 and hunk_files(finding) == [("pkg1.py", 18)]
    assert finding.revert is not None and finding.revert.verified


def test_the_cli_with_jobs_2_writes_the_hunks_and_the_revert_beside_the_reports(
        repo: Path, tmp_path: Path) -> None:
    good, culprit, bad = history(repo, TEST_F4, SCATTERED)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("find-break", NODE, "--good", good, "--isolate", "--jobs", "2", "-q",
                   "--report", "json", str(out / "r.json"), "--report", "md", str(out / "r.md"),
                   cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "hunks   1 hunk of 9 (minimal" in proc.stdout and "pkg1.py:18" in proc.stdout
    assert "revert  verified: reverting this hunk at" in proc.stdout
    data = json.loads((out / "r.json").read_text())
    [group] = data["culprits"]
    iso, revert = group["isolation"], group["revert"]
    assert [(h["file"], h["old_start"], h["old_lines"], h["new_start"], h["new_lines"])
            for h in iso["hunks"]] == [("pkg1.py", 18, 1, 18, 1)]
    assert iso["total_hunks"] == 9 and iso["minimal"] is True and iso["probes"] >= 1
    assert revert["verified"] is True and revert["at"] == bad
    assert revert["patch"] == str(out / f"revert-{culprit[:10]}.patch")  # beside the report
    assert data["rounds"] < data["probes_run"]  # some rounds ran two subsets at once
    md = (out / "r.md").read_text()
    assert "```diff\n--- a/pkg1.py\n+++ b/pkg1.py\n@@ -18 +18 @@" in md
    assert "+    return 104" in md and "**Revert**: verified" in md


@pytest.mark.parametrize("args", [["--isolate-max-probes", "0"], ["--isolate-max-probes", "x"]])
def test_a_bad_isolation_flag_is_one_line_and_exit_2(repo: Path, args: list[str]) -> None:
    good, _, _ = history(repo, TEST_F4, {"pkg1.py": module({4: "104"})})
    proc = run_cli("find-break", NODE, "--good", good, "--isolate", *args, cwd=repo)
    assert proc.returncode == 2
    assert "--isolate-max-probes" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_isolate_setting_is_one_line_and_exit_2(repo: Path) -> None:
    (repo / "pyproject.toml").write_text("[tool.bisector]\nisolate-min-hunks = 0\n")
    good, _, _ = history(repo, TEST_F4, {"pkg1.py": module({4: "104"})})
    proc = run_cli("find-break", NODE, "--good", good, cwd=repo)
    assert proc.returncode == 2
    assert "isolate-min-hunks must be a whole number >= 1, not 0" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["flag", "pyproject"])
def test_auto_bisect_isolates_the_culprits_hunks(repo: Path, how: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`pytest --auto-bisect --auto-bisect-isolate`, or `[tool.bisector] isolate = true`:
    the session's summary names the guilty hunk and the verified revert."""
    from .conftest import run_pytest

    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")  # the session needs bisector's plugin

    config = {"pyproject.toml": "[tool.bisector]\nisolate = true\n"} if how == "pyproject" else {}
    commit(repo, {**{f"pkg{j}.py": module({}) for j in range(3)}, "test_x.py": TEST_F4,
                  **config}, "start")
    run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    commit(repo, SCATTERED, "the big change")
    commit(repo, {"notes.txt": "1\n"}, "a note")
    flag = ["--auto-bisect-isolate"] if how == "flag" else []
    proc = run_pytest(repo, "--track-history", "--auto-bisect", *flag, "-p", "no:cacheprovider")
    assert proc.returncode == 1, proc.stdout  # the session's own status
    assert "hunks   1 hunk of 9 (minimal" in proc.stdout and "pkg1.py:18" in proc.stdout
    assert "revert  verified: reverting this hunk at" in proc.stdout
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
