"""The replayable `bisect_log`: `git bisect replay` on a fresh clone ends on the named culprit.

`assert_replays` (tests/replay_helpers.py) is called on every JSON result the find-break tests
produce (the `every_log_replays` fixture of conftest.py); the tests
here cover each mode on purpose: first-parent, full-dag, a merge followed into its branch (and a
branch merged into a branch), reused results, several tests with different culprits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bisector.demo import CALC_BAD, CALC_GOOD, TESTS

from .conftest import commit, git, planted, run_cli
from .replay_helpers import assert_replays, lead_culprit

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
    (merged_branch, [], 2),  # the rerun reuses every result, the confirmation too
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
