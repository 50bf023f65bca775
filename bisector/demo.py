"""`make demo`: a repository with a planted regression, tracked and shown end to end.

`build_repo` is also what the tests and benchmarks generate their repositories with: a tiny
package (`calc.py`) whose `test_add_negative` breaks at the culprit commit, among commits that
touch only other files, so exactly one commit is to blame.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CALC_GOOD = '''\
"""A tiny calculator: the demo's code under test."""


def add(a, b):
    return a + b


def mul(a, b):
    return a * b
'''

CALC_BAD = '''\
"""A tiny calculator: the demo's code under test."""


def add(a, b):
    # "Optimised": clamp at zero. This is the planted regression.
    return max(a + b, 0)


def mul(a, b):
    return a * b
'''

TESTS = '''\
from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_add_negative():
    assert add(-2, -3) == -5


def test_mul():
    assert mul(4, 5) == 20
'''

CULPRIT_SUBJECT = "Clamp add() results at zero"


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Demo Author",
        "GIT_AUTHOR_EMAIL": "demo@example.invalid",
        "GIT_COMMITTER_NAME": "Demo Author",
        "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    }
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def build_repo(path: Path, *, commits: int = 12, culprit: int = 7) -> list[str]:
    """Create `commits` commits in `path` (oldest first); commit `culprit` breaks the test.

    Returns the shas, oldest first. `culprit` 0 means the test never passed.
    """
    if not 0 <= culprit < commits:
        raise ValueError("culprit must be a commit index")
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "commit.gpgsign", "false")
    (path / "tests").mkdir(exist_ok=True)
    (path / "tests" / "test_calc.py").write_text(TESTS)
    (path / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    shas = []
    for i in range(commits):
        if i == culprit:
            (path / "calc.py").write_text(CALC_BAD)
            subject = CULPRIT_SUBJECT
        else:
            if i == 0:
                (path / "calc.py").write_text(CALC_GOOD)
            with (path / "NOTES.md").open("a") as notes:
                notes.write(f"note {i}\n")
            subject = "Initial calculator" if i == 0 else f"Update notes ({i})"
        _git(path, "add", "-A")
        date = f"--date=2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        _git(path, "commit", "-q", "-m", subject, date)
        shas.append(_git(path, "rev-parse", "HEAD"))
    return shas


def _pytest(repo: Path, db: str | None = None) -> int:
    cmd = [sys.executable, "-m", "pytest", "--track-history", "-q", "-p", "no:cacheprovider"]
    if db:
        cmd += ["--history-db", db]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True).returncode


def _step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def main() -> int:
    from .cli import main as bisector

    keep = os.environ.get("BISECTOR_DEMO_DIR")
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bisector-demo-"))
    repo = base / "calc"
    if repo.exists():
        shutil.rmtree(repo)
    _step(f"building a demo repository with a planted regression in {repo}")
    shas = build_repo(repo, commits=12, culprit=7)
    print(f"12 commits; commit 8 of 12 ({shas[7][:10]}, {CULPRIT_SUBJECT!r}) breaks a test")
    tracked = [0, 4, 10]
    _step("running `pytest --track-history` on commits 1, 5 and 11: the nights before")
    try:
        for i in tracked:
            _git(repo, "checkout", "-q", shas[i])
            status = _pytest(repo)
            print(f"  commit {i + 1:2d} {shas[i][:10]}: pytest exit status {status}")
    finally:
        _git(repo, "checkout", "-q", "main")
    _step("bisector history")
    bisector(["history", "-C", str(repo)])
    _step("bisector nightly at HEAD (commit 12): run the suite, find what broke, bisect it "
          "(probes run in a worktree under .bisector/, reusing history), write the reports")
    reports = base / "reports"
    found = bisector(["nightly", "-C", str(repo), "--report-dir", str(reports)])
    _step("bisector regressions")
    code = bisector(["regressions", "-C", str(repo)])
    print(f"\nThe planted culprit is {shas[7][:10]} {CULPRIT_SUBJECT!r}.")
    print(f"The demo repository stays in {repo}")
    if found != 1:  # the nightly exits 1 when it finds a new regression, as here
        print(f"bisector nightly exited {found}, not 1: it missed the planted regression")
        return 1
    print(f"\nHTML report: {reports / 'nightly.html'}")
    print(f"  open it in a browser: file://{(reports / 'nightly.html').resolve()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
