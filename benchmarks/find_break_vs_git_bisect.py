"""bisector find-break against `git bisect run`, side by side on the same generated repository.

A 200-commit repository (bisector.demo.build_repo) with one planted regression; both tools run
the same pytest command per probe. Three figures per culprit position:
  git bisect run       pytest runs and wall time (it trusts the given ends and never confirms)
  find-break, no history  probes for the search alone, plus end checks and the confirmation
  find-break, history     the same after `pytest --track-history` ran on every 25th commit

    python benchmarks/find_break_vs_git_bisect.py [--commits 200] [--culprits 37,101,180]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bisector.demo import build_repo

TEST = "tests/test_calc.py::test_add_negative"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_bisect(repo: Path, good: str, bad: str, tmp: Path) -> tuple[int, float, str]:
    clone = tmp / "gb-clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    counter = tmp / "gb-count"
    counter.write_text("")
    script = tmp / "probe.sh"
    script.write_text(
        f"#!/bin/sh\necho x >> {counter}\nexec {sys.executable} -m pytest -q "
        f"-p no:cacheprovider -p no:bisector {TEST}\n"
    )
    script.chmod(0o755)
    start = time.perf_counter()
    git(clone, "bisect", "start", bad, good)
    out = git(clone, "bisect", "run", str(script))
    elapsed = time.perf_counter() - start
    culprit = next(
        line.split()[0] for line in out.splitlines() if "is the first bad commit" in line
    )
    return len(counter.read_text().split()), elapsed, culprit


def find_break(repo: Path, db: Path, *args: str) -> tuple[dict, float]:
    env = {**os.environ}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "find-break", "--json", "--history-db", str(db), *args],
        cwd=repo, capture_output=True, text=True, env=env,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--culprits", default="37,101,180")
    args = parser.parse_args()
    rows = []
    for culprit in (int(c) for c in args.culprits.split(",")):
        with tempfile.TemporaryDirectory(prefix="bisector-bench-") as tmpdir:
            tmp = Path(tmpdir)
            repo = tmp / "repo"
            shas = build_repo(repo, commits=args.commits, culprit=culprit)
            good, bad = shas[0], shas[-1]
            gb_runs, gb_time, gb_culprit = git_bisect(repo, good, bad, tmp)
            data, fb_time = find_break(repo, tmp / "cold.db", TEST, "--good", good)
            fb_culprit = data["culprits"][0]["commit"]["sha"]
            # history: the tracked suite ran on every 25th commit and at HEAD
            warm = tmp / "warm.db"
            for i in [*range(0, args.commits, 25), args.commits - 1]:
                git(repo, "checkout", "-q", shas[i])
                subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "--track-history", f"--history-db={warm}"], cwd=repo,
                               capture_output=True, check=False)
            git(repo, "checkout", "-q", "main")
            hist, hist_time = find_break(repo, warm)
            rows.append({
                "culprit": culprit,
                "right": (gb_culprit[:10] == shas[culprit][:10],
                          fb_culprit == shas[culprit],
                          hist["culprits"][0]["commit"]["sha"] == shas[culprit]),
                "git_bisect": (gb_runs, gb_time),
                "cold": (data["probes_run"], fb_time),
                "history": (hist["probes_run"], hist_time),
            })
    n = args.commits - 1
    print(f"find-break vs git bisect run: {args.commits} commits ({n} candidates), "
          f"ceil(log2 {n}) = {math.ceil(math.log2(n))}")
    print("find-break's probe counts include 2 end checks (where history lacks them) and the")
    print("2 confirmation runs; 'search' is what remains, the figure comparable to git bisect's.")
    print(f"{'culprit':>7}  {'right (gb/fb/fb+h)':>18}  {'git bisect':>15}  "
          f"{'find-break cold':>26}  {'find-break w/ history':>26}  {'wall fb/gb':>10}")
    for r in rows:
        gb_runs, gb_time = r["git_bisect"]
        cold_runs, cold_time = r["cold"]
        h_runs, h_time = r["history"]
        right = "/".join("yes" if x else "NO" for x in r["right"])
        print(f"{r['culprit']:>7}  {right:>18}  {gb_runs:>3} runs {gb_time:5.1f}s  "
              f"{cold_runs:>3} runs ({cold_runs - 4} search) {cold_time:5.1f}s  "
              f"{h_runs:>3} runs ({h_runs - 2} search) {h_time:5.1f}s  "
              f"{cold_time / gb_time:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
