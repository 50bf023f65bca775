"""Flake-aware find-break vs `git bisect run` and `git bayesect run`, end to end.

A generated repository of 200 commits whose test fails falsely with probability f = 0.2 on
good commits (random.random(), a real flake) and always from the planted culprit on. Each
trial plants the culprit at a random position and runs both tools on the same repository, side
by side. bisector gets what a team's history would hold: the tracked suite ran 10 times on
the good end (the nightly, or CI reruns), from which it estimates the test's flakiness.
git-bayesect (PyPI, `pip install -e '.[bench]'`) runs at its default confidence 0.95 and at
0.99 when it is installed; it knows no history and probes in the checkout, one at a time.

`--cold`: no history at all, as a first find-break on a new test is. For f = 0.1 and 0.2
(`--rates`), each trial runs bisector (default settings), `git bayesect run` at 0.99 and
`git bisect run` on the same repository, and a table gives right culprits / trials and mean
runs per tool and rate. bisector must learn the rates from its own runs, as git-bayesect does.

    python benchmarks/flaky_find_break_vs_git_bisect.py [--trials 10] [--commits 200] [--f 0.2]
    python benchmarks/flaky_find_break_vs_git_bisect.py --cold [--trials 20] [--rates 0.1 0.2]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _generated import ENV, build_linear, git, probe_script

TEST = "tests/test_m.py::test_value"


def build(repo: Path, commits: int, culprit: int, f: float) -> list[str]:
    """One commit per version of m.py and notes, written with git fast-import (fast)."""
    test = (f"import random\nimport m\n\ndef test_value():\n"
            f"    assert random.random() >= {f}, 'flaked'\n    assert m.value() == 1\n")
    return build_linear(
        repo, commits,
        lambda i: {"tests/test_m.py": test, "notes.txt": f"{i}\n",
                   "m.py": f"def value():\n    return {2 if i >= culprit else 1}\n"},
        lambda i: f"c{i}" if i != culprit else "Change value()")


PROBE = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:bisector {TEST}"


def git_bisect(repo: Path, good: str, bad: str, tmp: Path) -> tuple[str, int, float]:
    counter = tmp / "gb-count"
    script = probe_script(tmp / "probe.sh", counter, PROBE)
    start = time.perf_counter()
    git(repo, "bisect", "start", bad, good)
    out = git(repo, "bisect", "run", str(script))
    elapsed = time.perf_counter() - start
    git(repo, "bisect", "reset")
    culprit = next(line.split()[0] for line in out.splitlines()
                   if "is the first bad commit" in line)
    return culprit, len(counter.read_text().split()), elapsed


def bayesect_command() -> str | None:
    """git-bayesect's script, beside this interpreter first (the venv), then on PATH."""
    here = Path(sys.executable).parent / "git-bayesect"
    return str(here) if here.exists() else shutil.which("git-bayesect")


def bayesect(command: str, repo: Path, good: str, bad: str, tmp: Path,
             confidence: float) -> tuple[str | None, int, float]:
    """`git bayesect run` to its own stopping rule; the culprit it converged to, and its runs."""
    counter = tmp / "bs-count"
    script = probe_script(tmp / "probe.sh", counter, PROBE)
    start = time.perf_counter()
    subprocess.run([command, "start", "--old", good, "--new", bad], cwd=repo, check=True,
                   capture_output=True, env=ENV)
    proc = subprocess.run([command, "run", "--confidence", str(confidence), str(script)],
                          cwd=repo, capture_output=True, text=True, env=ENV, check=True)
    elapsed = time.perf_counter() - start
    subprocess.run([command, "reset"], cwd=repo, check=True, capture_output=True, env=ENV)
    git(repo, "checkout", "-q", "main")
    named = [line.split()[3] for line in proc.stdout.splitlines()
             if line.startswith("Bisection converged to ")]
    return (named[-1] if named else None), len(counter.read_text().split()), elapsed


def find_break(repo: Path, db: Path, good: str) -> tuple[str | None, str, int, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bisector", "find-break", "--json",
                           "--history-db", str(db), TEST, "--good", good],
                          cwd=repo, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return None, "error: " + proc.stderr.strip()[-200:], 0, elapsed
    data = json.loads(proc.stdout)
    named = [g["commit"]["sha"] for g in data["culprits"] if g["commit"]]
    verdicts = [t["verdict"] for g in data["culprits"] for t in g["tests"]]
    return (named[0] if named else None), verdicts[0], data["probes_run"], elapsed


def cold(args: argparse.Namespace, command: str | None) -> int:
    """No tracked runs: bisector, git bayesect @0.99 and git bisect on the same repositories."""
    if command is None:
        print("git-bayesect is not installed (pip install 'git-bayesect>=1.2'): cold mode "
              "compares against it")
        return 2
    rng = random.Random(args.seed)
    table = []
    for f in args.rates:
        rows = []
        for trial in range(args.trials):
            culprit = rng.randrange(1, args.commits)
            with tempfile.TemporaryDirectory(prefix="bisector-flaky-cold-") as tmpdir:
                tmp = Path(tmpdir)
                repo = tmp / "repo"
                shas = build(repo, args.commits, culprit, f)
                good, bad = shas[0], shas[-1]
                fb_sha, verdict, fb_runs, _ = find_break(repo, tmp / "history.db", good)
                bs_sha, bs_runs, _ = bayesect(command, repo, good, bad, tmp, 0.99)
                gb_sha, gb_runs, _ = git_bisect(repo, good, bad, tmp)
                row = {"fb": (fb_sha == shas[culprit], fb_runs),
                       "bs": (bs_sha is not None and shas[culprit].startswith(bs_sha), bs_runs),
                       "gb": (gb_sha == shas[culprit], gb_runs)}
                rows.append(row)
                print(f"f = {f}, trial {trial + 1:>2}: culprit {culprit:>3}  bisector "
                      f"{'right' if row['fb'][0] else 'WRONG'} [{verdict}] ({fb_runs} runs)  "
                      f"bayesect@0.99 {'right' if row['bs'][0] else 'WRONG'} ({bs_runs} runs)  "
                      f"git bisect {'right' if row['gb'][0] else 'WRONG'} ({gb_runs} runs)",
                      flush=True)
        table.append((f, rows))
    print()
    print(f"cold: {args.commits} commits, no tracked runs, same repositories per trial")
    print(f"{'tool':<26} {'f':>4} {'right':>7} {'mean runs':>10}")
    for name, key in (("bisector find-break", "fb"), ("git bayesect run @0.99", "bs"),
                      ("git bisect run", "gb")):
        for f, rows in table:
            right = sum(r[key][0] for r in rows)
            runs = statistics.mean(r[key][1] for r in rows)
            print(f"{name:<26} {f:>4} {right:>3}/{len(rows):<3} {runs:>10.1f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--f", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="no history; see the module's doc")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.2],
                    help="false-failure rates of the --cold mode")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    command = bayesect_command()
    if args.cold:
        return cold(args, command)
    if command is None:
        print("git-bayesect is not installed (pip install -e '.[bench]'): its rows are left out")
    rows = []
    for trial in range(args.trials):
        culprit = rng.randrange(1, args.commits)
        with tempfile.TemporaryDirectory(prefix="bisector-flaky-bench-") as tmpdir:
            tmp = Path(tmpdir)
            repo = tmp / "repo"
            shas = build(repo, args.commits, culprit, args.f)
            good, bad = shas[0], shas[-1]
            gb_sha, gb_runs, gb_time = git_bisect(repo, good, bad, tmp)
            db = tmp / "history.db"
            git(repo, "checkout", "-q", good)
            for _ in range(10):
                subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "--track-history", f"--history-db={db}"], cwd=repo,
                               capture_output=True, check=False, env=ENV)
            git(repo, "checkout", "-q", "main")
            fb_sha, verdict, fb_runs, fb_time = find_break(repo, db, good)
            row = {"culprit": culprit, "gb_right": gb_sha == shas[culprit], "gb_runs": gb_runs,
                   "gb_time": gb_time, "fb_right": fb_sha == shas[culprit], "verdict": verdict,
                   "fb_runs": fb_runs, "fb_time": fb_time}
            line = (f"trial {trial + 1:>2}: culprit {culprit:>3}  git bisect "
                    f"{'right' if row['gb_right'] else 'WRONG'} ({gb_runs} runs)  bisector "
                    f"{'right' if row['fb_right'] else 'WRONG'} [{verdict}] ({fb_runs} probes)")
            if command is not None:
                for key, confidence in (("b95", 0.95), ("b99", 0.99)):
                    sha, runs, wall = bayesect(command, repo, good, bad, tmp, confidence)
                    right = sha is not None and shas[culprit].startswith(sha)
                    row |= {f"{key}_right": right, f"{key}_runs": runs, f"{key}_time": wall}
                    line += (f"  bayesect@{confidence} {'right' if right else 'WRONG'} "
                             f"({runs} runs)")
            rows.append(row)
            print(line, flush=True)
    t = len(rows)
    print()
    print(f"{args.commits} commits, f = {args.f}, {t} trials, same repositories, one run")
    print(f"{'tool':<24} {'right':>7} {'mean runs':>10} {'p95 runs':>9} {'mean wall s':>12}")
    tools = [("git bisect run", "gb"), ("bisector find-break", "fb")]
    if command is not None:
        tools += [("git bayesect run @0.95", "b95"), ("git bayesect run @0.99", "b99")]
    for name, key in tools:
        right = sum(r[f"{key}_right"] for r in rows)
        runs = statistics.mean(r[f"{key}_runs"] for r in rows)
        wall = statistics.mean(r[f"{key}_time"] for r in rows)
        p95 = sorted(r[f"{key}_runs"] for r in rows)[max(0, -(-95 * t // 100) - 1)]
        print(f"{name:<24} {right:>3}/{t:<3} {runs:>10.1f} {p95:>9} {wall:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
