"""The replayable `bisect_log`: `git bisect replay` on a fresh clone ends on the named culprit.

`assert_replays` is called on every JSON result the find-break tests produce (see the
`replayed` fixtures of tests/test_find_break.py and tests/test_parallel_find_break.py); the tests
here cover each mode on purpose: first-parent, full-dag, a merge followed into its branch (and a
branch merged into a branch), reused results, several tests with different culprits.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bisector.demo import CALC_BAD, CALC_GOOD, TESTS

from .conftest import commit, git, planted, run_cli, run_pytest

Run = Callable[..., subprocess.CompletedProcess[str]]

FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.MULTILINE)


def replay(repo: Path, log: list[str]) -> subprocess.CompletedProcess[str]:
    """`git bisect replay` of `log` in a fresh clone of `repo`: the user's checkout (and the
    test's) is never in a bisect state."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bisector-replay-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", "--no-checkout", root, str(clone)],
                       check=True, capture_output=True)
        path = Path(tmp) / "bisect.log"
        path.write_text("\n".join(log) + "\n")
        return subprocess.run(["git", "bisect", "replay", str(path)], cwd=clone,
                              capture_output=True, text=True, timeout=60)


def lead_culprit(data: dict[str, Any]) -> str | None:
    """The culprit the log says it ends on (`# first bad commit: [SHA] subject`), if any."""
    for line in data["bisect_log"]:
        if line.startswith("# first bad commit: ["):
            return line.split("[", 1)[1].split("]", 1)[0]
    return None


def assert_replays(repo: Path, data: dict[str, Any]) -> None:
    """The log of a find-break JSON result replays to its culprit.

    With several culprits, one `git bisect` can end on only one: the log follows the first test
    that has a culprit and names it in its last line, as `git bisect log` does.
    """
    culprits = [g["commit"]["sha"] for g in data["culprits"] if g["commit"]]
    if not culprits:
        assert lead_culprit(data) is None, data["bisect_log"]
        return
    proc = replay(repo, data["bisect_log"])
    found = FIRST_BAD.findall(proc.stdout)
    assert proc.returncode == 0 and len(found) == 1 and found[0] in culprits, (
        f"replay did not end on a culprit of {culprits}:\n{proc.stdout}\n{proc.stderr}\n"
        + "\n".join(data["bisect_log"]))
    assert lead_culprit(data) == found[0], data["bisect_log"]  # the one the log says


def replaying(run: Run) -> Run:
    """`run_cli` that replays the log of every find-break it runs that writes JSON (stdout
    with --json, or a --report json file) and succeeds."""
    def wrapper(*args: str, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = run(*args, cwd=cwd, env=env)
        if args[:1] != ("find-break",) or proc.returncode != 0 or cwd is None:
            return proc
        reports = [Path(cwd, args[i + 2]) for i, arg in enumerate(args[:-2])
                   if arg == "--report" and args[i + 1] == "json"]
        texts = ([proc.stdout] if "--json" in args else []) + [p.read_text() for p in reports]
        for text in texts:
            assert_replays(cwd, json.loads(text))
        return proc
    return wrapper


# --- repositories with merges (`git merge --no-ff`), each returning (good, culprit, merge) ------

def _merge(repo: Path, branch: str) -> str:
    git(repo, "merge", "-q", "--no-ff", "--no-edit", branch)
    return git(repo, "rev-parse", "HEAD")


def merged_branch(repo: Path) -> tuple[str, str, str]:
    """A branch that forked before the good commit breaks add() in its first commit: the
    culprit's parent is the merge base, off the first-parent line and older than good."""
    commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS}, "start")
    git(repo, "checkout", "-q", "-b", "feature")
    culprit = commit(repo, {"calc.py": CALC_BAD}, "feature breaks add")
    commit(repo, {"f.txt": "2"}, "feature 2")
    git(repo, "checkout", "-q", "main")
    good = [commit(repo, {"main.txt": str(i)}, f"main {i}") for i in range(3)][1]
    merge = _merge(repo, "feature")
    commit(repo, {"main.txt": "after"}, "after merge")
    return good, culprit, merge


def nested_merges(repo: Path) -> tuple[str, str, str]:
    """`sub` merged into `feature`, `feature` into main; the culprit is on `sub`. The merge
    returned is main's: the first-parent merge that brought the culprit into the line."""
    good = commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS}, "start")
    commit(repo, {"main.txt": "0"}, "main 0")
    git(repo, "checkout", "-q", "-b", "feature", good)
    commit(repo, {"f.txt": "1"}, "feature 1")
    git(repo, "checkout", "-q", "-b", "sub")
    commit(repo, {"s.txt": "1"}, "sub 1")
    culprit = commit(repo, {"calc.py": CALC_BAD}, "sub breaks add")
    commit(repo, {"s.txt": "3"}, "sub 3")
    git(repo, "checkout", "-q", "feature")
    _merge(repo, "sub")
    commit(repo, {"f.txt": "2"}, "feature 2")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"main.txt": "1"}, "main 1")
    merge = _merge(repo, "feature")
    commit(repo, {"main.txt": "after"}, "after merge")
    return good, culprit, merge


def linear(repo: Path) -> tuple[str, str, None]:
    shas = planted(repo, PLANTED_TEST, 12, 7)
    return shas[0], shas[7], None


PLANTED_TEST = "import m\n\ndef test_v():\n    assert m.value() == 1\n"
NODEIDS = {linear: "test_m.py::test_v", merged_branch: "tests/test_calc.py::test_add_negative",
           nested_merges: "tests/test_calc.py::test_add_negative"}


@pytest.mark.parametrize(("build", "args", "runs"), [
    (linear, [], 1),
    (linear, ["--jobs", "3"], 1),
    (merged_branch, [], 1),
    (merged_branch, ["--full-dag"], 1),
    (nested_merges, [], 1),
    (nested_merges, ["--full-dag"], 1),
    (merged_branch, [], 2),  # the rerun reuses every result but the confirmation's
], ids=["first-parent", "jobs", "merge", "merge-full-dag", "nested", "nested-full-dag",
        "rerun"])
def test_every_mode_replays_to_its_culprit(repo: Path, build: Callable[[Path], tuple],
                                           args: list[str], runs: int) -> None:
    good, culprit, _ = build(repo)
    for _ in range(runs):
        proc = run_cli("find-break", "--json", NODEIDS[build], "--good", good, *args,
                       cwd=repo)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert [g["commit"]["sha"] for g in data["culprits"]] == [culprit]
        assert_replays(repo, data)
    first_parent = "--full-dag" not in args
    assert ("'--first-parent'" in data["bisect_log"][0]) is first_parent


def test_a_flaky_search_replays_to_its_culprit(repo: Path, tmp_path: Path) -> None:
    """Its runs disagree, so they are comments; its conclusion is what replays."""
    from .test_flaky_find_break import TEST_ID as FLAKY_ID  # it imports `replaying` from here
    from .test_flaky_find_break import build as build_flaky

    shas = build_flaky(repo, tmp_path / "runs")
    git(repo, "checkout", "-q", shas[0])
    for _ in range(4):  # three passes and a false failure on the good end
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    data = json.loads(run_cli("find-break", "--json", FLAKY_ID, "--good", shas[0],
                              cwd=repo).stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[15]
    assert any(line.startswith("# flake-aware probe: ") for line in data["bisect_log"])
    assert_replays(repo, data)


def test_the_log_follows_the_first_test_with_a_culprit(repo: Path) -> None:
    """Two tests, two culprits: one `git bisect` ends on one, so the log is the first test's,
    never a mix of both tests' verdicts."""
    test = ("import m\n\ndef test_a():\n    assert m.A == 1\n\n"
            "def test_b():\n    assert m.B == 1\n")
    shas = [commit(repo, {"m.py": "A = 1\nB = 1\n", "test_m.py": test}, "start")]
    for i in range(1, 16):
        files = {"n.txt": str(i)}
        if i == 3:
            files["m.py"] = "A = 1\nB = 2\n"
        if i == 11:
            files["m.py"] = "A = 2\nB = 2\n"
        shas.append(commit(repo, files, f"c{i}"))
    data = json.loads(run_cli("find-break", "--json", "test_m.py::test_a", "test_m.py::test_b",
                              "--good", shas[0], cwd=repo).stdout)
    assert lead_culprit(data) == shas[11]
    assert "# the verdicts of test_m.py::test_a" in data["bisect_log"]
    assert_replays(repo, data)
