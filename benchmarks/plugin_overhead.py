"""Plugin overhead: `pytest --track-history` over plain `pytest` on 5,000 trivial tests.

Runs are interleaved (plain, tracked, plugin disabled, plain, tracked, ...) so machine noise
hits all variants alike; the figure is the ratio of medians. Goal: tracked/plain <= 1.03.

    python benchmarks/plugin_overhead.py [--runs 5] [--tests 5000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "plain pytest": [],
    "pytest --track-history": ["--track-history"],
    "pytest -p no:bisector": ["-p", "no:bisector"],
}


def make_suite(root: Path, tests: int) -> None:
    per_file = 100
    for f in range(max(1, tests // per_file)):
        body = "".join(f"def test_{i}():\n    pass\n\n" for i in range(per_file))
        (root / f"test_gen_{f:03d}.py").write_text(body)
    (root / ".gitignore").write_text("__pycache__/\n")
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"],
                ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "suite"]):
        subprocess.run(["git", *cmd], cwd=root, check=True)


def timed(root: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisector-bench-") as tmp:
        root = Path(tmp)
        make_suite(root, args.tests)
        timed(root, [])  # warm the bytecode cache and the page cache
        timed(root, ["--track-history"])  # create the store
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.runs):
            for name, extra in VARIANTS.items():
                times[name].append(timed(root, extra))
    base = statistics.median(times["plain pytest"])
    print(f"plugin overhead, {args.tests} trivial tests, {args.runs} interleaved runs each")
    print(f"{'variant':28} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:28} {med:9.3f} {min(values):7.3f} {max(values):7.3f} {med / base:7.3f}")
    ratio = statistics.median(times["pytest --track-history"]) / base
    print(f"\ntracked / plain = {ratio:.3f} (goal <= 1.03)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
