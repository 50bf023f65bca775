"""What K probes at once cost on this machine: the reason `--jobs auto` is the cores (ADR 22).

Each probe of the installable benchmark is `pip install --no-deps . && pytest -q TEST` in a
checkout and venv of its own (made as bisector's probe venv is). This times K of them started
together, K = 1 .. --max, twice each in the order 1..max, 1..max, and prints the wall of each
batch and its ratio to one alone. On two cores two at once take about the time of one, three
half as long again.

    python benchmarks/concurrent_installs.py [--max 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _generated import INSTALLABLE_TEST, build_installable, parent_env_venv

STEP = ("pip install -q --no-deps . && "
        f"python -m pytest -q -p no:cacheprovider {INSTALLABLE_TEST} >/dev/null")


def batch(checkouts: list[tuple[Path, Path]]) -> float:
    """The wall of all these steps started together."""
    start = time.perf_counter()
    procs = [subprocess.Popen(STEP, shell=True, cwd=tree, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, "VIRTUAL_ENV": str(venv),
                                   "PATH": f"{venv}/bin:{os.environ['PATH']}"})
             for tree, venv in checkouts]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a step failed: exit codes {codes}")
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=4, help="the most steps at once")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisector-concurrent-") as tmpdir:
        tmp = Path(tmpdir)
        build_installable(tmp / "repo", 8, culprit=8)  # no culprit: every step passes
        checkouts = []
        for k in range(args.max):
            tree = tmp / f"tree{k}"
            subprocess.run(["git", "clone", "-q", str(tmp / "repo"), str(tree)], check=True)
            checkouts.append((tree, parent_env_venv(tmp / f"venv{k}", sys.executable)))
        batch(checkouts[:1])  # warm pip's cache and the page cache
        walls: dict[int, list[float]] = {k: [] for k in range(1, args.max + 1)}
        for _ in range(2):
            for k in walls:
                walls[k].append(batch(checkouts[:k]))
    alone = statistics.median(walls[1])
    print(f"steps at once on {os.cpu_count()} cores (load {os.getloadavg()[0]:.1f}): "
          f"`{STEP}`")
    print(f"{'at once':>7}  {'walls':>15}  {'median':>7}  {'/ one alone':>11}")
    for k, ws in walls.items():
        median = statistics.median(ws)
        print(f"{k:>7}  {' '.join(f'{w:6.2f}s' for w in ws):>15}  {median:6.2f}s  "
              f"{median / alone:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
