"""Store figures: ingest rate into SQLite, and `bisector regressions` latency on 1,000,000 results.

A real git repository of 1,000 commits (made with `git fast-import`), one tracked run of 1,000
tests on each: 1,000,000 results. Ten tests start failing 7 commits before HEAD. Goals: ingest
>= 100,000 results/s; detection < 200 ms.

    python benchmarks/store_ingest.py [--commits 1000] [--tests 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bisector.gitrepo import Repository
from bisector.history import HistoryStore
from bisector.model import Environment, Outcome, Run, TestResult, Trigger
from bisector.queries import regressions_at_head

ENV = Environment("cpython-3.11", "linux-x86_64", "none", "bench-key", "bench-fp")
BROKEN_AT = 7  # commits before HEAD
FAILING = 10


def make_repo(root: Path, commits: int) -> list[str]:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    chunks = []
    for i in range(1, commits + 1):
        msg, content = f"commit {i}\n", f"{i}\n"
        chunks.append(
            f"commit refs/heads/main\nmark :{i}\n"
            f"committer Bench <bench@example.invalid> {1_700_000_000 + i} +0000\n"
            f"data {len(msg)}\n{msg}" + (f"from :{i - 1}\n" if i > 1 else "")
            + f"M 644 inline notes.txt\ndata {len(content)}\n{content}\n"
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input="".join(chunks),
                   text=True, check=True)
    out = subprocess.run(["git", "rev-list", "--reverse", "main"], cwd=root, check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisector-bench-") as tmp:
        root = Path(tmp) / "repo"
        shas = make_repo(root, args.commits)
        url = f"sqlite:///{Path(tmp) / 'history.db'}"
        nodeids = [f"tests/test_m{i // 100:03d}.py::test_{i}" for i in range(args.tests)]
        total = 0
        elapsed = 0.0
        with HistoryStore.open(url) as store:
            for index, sha in enumerate(shas):
                broken = index >= len(shas) - BROKEN_AT
                results = tuple(
                    TestResult(n, Outcome.FAILED if broken and i < FAILING else Outcome.PASSED,
                               0.001, "sig" if broken and i < FAILING else None)
                    for i, n in enumerate(nodeids)
                )
                run = Run(sha=sha, dirty=False, branch="main", environment=ENV,
                          trigger=Trigger.PYTEST, host="bench", started_at=float(index),
                          finished_at=float(index) + 1, exit_status=int(broken), results=results)
                start = time.perf_counter()
                store.record_run(run)
                elapsed += time.perf_counter() - start
                total += len(results)
            rate = total / elapsed
            print(f"ingest: {total:,} results in {len(shas):,} runs of {args.tests:,} tests, "
                  f"{elapsed:.2f} s, {rate:,.0f} results/s (goal >= 100,000)")
            latencies = []
            with Repository(root) as repo:
                for _ in range(7):
                    start = time.perf_counter()
                    report = regressions_at_head(repo, store, 20)
                    latencies.append(time.perf_counter() - start)
            assert len(report.regressions) == FAILING, report.regressions
            print(f"regressions_at_head over {total:,} results: median "
                  f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} "
                  f"ms over 7 calls, {len(report.regressions)} regressions found (goal < 200 ms)")
        cli = []
        for _ in range(3):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bisector", "regressions", "--json",
                                   "--history-db", url, "-C", str(root)],
                                  capture_output=True, text=True, check=True)
            cli.append(time.perf_counter() - start)
        assert len(json.loads(proc.stdout)["regressions"]) == FAILING
        base = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            base.append(time.perf_counter() - start)
        print(f"`bisector regressions --json` whole command: median "
              f"{statistics.median(cli) * 1000:.0f} ms (a bare `python -c pass` takes "
              f"{statistics.median(base) * 1000:.0f} ms here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
