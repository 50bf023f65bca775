"""find-break --jobs K: rounds and wall time for K = 1, 2, 4, 8 on one repository, one run.

A generated repository of 200 commits whose test takes 2 s (it waits, as integration tests
do), the culprit at a fixed position; each K runs on a fresh history store, so nothing is
reused. Rounds count every round of probes: the two ends (one round with K > 1), the search,
and the confirmation of the culprit and its parent (one round with K > 1).

    python benchmarks/parallel_find_break.py [--commits 200] [--sleep 2] [--jobs 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _generated import ENV, build_linear

from bisector.search import rounds_needed

TEST = "tests/test_m.py::test_value"


def build(repo: Path, commits: int, culprit: int, sleep: float) -> list[str]:
    test = (f"import time\nimport m\n\ndef test_value():\n    time.sleep({sleep})\n"
            f"    assert m.value() == 1\n")
    return build_linear(repo, commits, lambda i: {
        "tests/test_m.py": test, "notes.txt": f"{i}\n",
        "m.py": f"def value():\n    return {2 if i >= culprit else 1}\n"})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--culprit", type=int, default=137)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bisector-parallel-bench-") as tmp:
        repo = Path(tmp) / "repo"
        shas = build(repo, args.commits, args.culprit, args.sleep)
        for k in args.jobs:
            db = Path(tmp) / f"history-{k}.db"
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "bisector", "find-break", "--json", TEST, "--good",
                 shas[0], "--jobs", str(k), "--history-db", str(db)],
                cwd=repo, capture_output=True, text=True, env=ENV)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"K={k}: find-break failed: {proc.stderr.strip()[-300:]}")
                return 1
            data = json.loads(proc.stdout)
            right = data["culprits"][0]["commit"]["sha"] == shas[args.culprit]
            rows.append((k, right, data["rounds"], data["probes_run"], wall))
            print(f"K={k}: {'right' if right else 'WRONG'}, {data['rounds']} rounds, "
                  f"{data['probes_run']} probes, {wall:.1f}s", flush=True)
    base = rows[0][4]
    n = args.commits - 1
    print()
    print(f"{args.commits} commits ({n} candidates), a {args.sleep:g} s test, local executor")
    print(f"{'K':>3} {'right':>6} {'rounds':>7} {'search bound':>13} {'probes':>7} "
          f"{'wall s':>8} {'vs K=1':>7}")
    for k, right, rounds, probes, wall in rows:
        bound = rounds_needed(n, k)
        # + the ends and the confirmation: one round each with K > 1, two each with K = 1
        extra = 2 if k > 1 else 4
        print(f"{k:>3} {'yes' if right else 'NO':>6} {rounds:>7} {f'{bound}+{extra}':>13} "
              f"{probes:>7} {wall:>8.1f} {wall / base:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
