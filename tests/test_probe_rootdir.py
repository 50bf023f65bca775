"""A probe's pytest configuration is its commit's, never the user's checkout's (ADR 0023).

The local executor's worktrees live under `.bisector/worktrees/` inside the user's checkout;
pytest walks up from them looking for a config file, a rootdir and conftest.py files. A commit
with no pytest configuration of its own must not pick up the checkout's (HEAD's) instead.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import commit, run_cli

TEST = "import m\n\n\ndef test_value():\n    assert m.value() == 1\n"
WARNS = ("import warnings\n\n\ndef value():\n"
         "    warnings.warn('value() is old', DeprecationWarning)\n    return 1\n")

# the configuration HEAD adopts once its code no longer warns: old commits warn, and must be
# probed as they were, without it
STRICT = {
    "pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n',
    "setup.cfg": "[tool:pytest]\nfilterwarnings = error\n",
}


def history(repo: Path, head_files: dict[str, str]) -> list[str]:
    """8 commits: `m.value()` warns until commit 2, returns 2 (the break) from commit 5; the
    last commit adds `head_files`, the strict configuration. The shas, oldest first."""
    shas = [commit(repo, {"m.py": WARNS, "test_m.py": TEST}, "start")]
    for i in range(1, 8):
        files = {"notes.txt": f"{i}\n"}
        if i == 2:
            files["m.py"] = "def value():\n    return 1\n"
        if i == 5:
            files["m.py"] = "def value():\n    return 2\n"
        if i == 7:
            files.update(head_files)
        shas.append(commit(repo, files, f"c{i}"))
    return shas


def find_break(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("find-break", "--json", "test_m.py::test_value", *args, cwd=repo)


@pytest.mark.parametrize("name", sorted(STRICT))
def test_a_commit_without_config_is_not_probed_with_the_checkouts(repo: Path, name: str
                                                                   ) -> None:
    shas = history(repo, {name: STRICT[name]})
    proc = find_break(repo, "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [c["commit"]["sha"] for c in data["culprits"]] == [shas[5]], proc.stdout


def test_a_config_only_above_the_probed_commits_tree_is_not_read(repo: Path) -> None:
    # the checkout's config sits in a directory that the probed commit does not have at all
    shas = history(repo, {})
    (repo / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")  # untracked
    proc = find_break(repo, "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[5]
