"""find-break on a Dask cluster of two local workers (K = 2, 4) against K = 1 local, one run.

The repository is the one of `parallel_find_break.py`: 200 commits, a test that waits 2 s (as
integration tests do), the culprit at a fixed position. A `dask scheduler` and two `dask
worker` processes (`--threads` each) start on 127.0.0.1 for the run and are killed at its end.
Each find-break gets a fresh history store, so nothing is reused; the wall time of a Dask run
includes connecting and setting up the workers (the first one also clones the repository into
the workers' shared cache). Rounds count every round of probes, as in the local benchmark.

    python benchmarks/dask_find_break.py [--commits 200] [--sleep 2] [--jobs 2 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parallel_find_break import ENV, TEST, build

from bisector.search import rounds_needed


def start_cluster(home: Path, threads: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    scheduler_file = home / "scheduler.json"
    env = {**ENV, "BISECTOR_CACHE_DIR": str(home / "cache")}
    procs: list[subprocess.Popen[bytes]] = []

    def daemon(args: list[str], log: str) -> None:
        with (home / log).open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=home, env=env,
                                          stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True))

    try:
        daemon(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                "--no-dashboard", "--scheduler-file", str(scheduler_file)], "scheduler.log")
        address = wait(lambda: scheduler_file.exists()
                       and json.loads(scheduler_file.read_text() or "{}").get("address"))
        for name in ("bench-a", "bench-b"):
            daemon(["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                    "--name", name, "--nworkers", "1", "--nthreads", str(threads), "--host",
                    "127.0.0.1", "--no-dashboard", "--local-directory", str(home / name)],
                   f"{name}.log")
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
    except BaseException:
        stop(procs)
        raise
    return address, procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def wait(predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ValueError, OSError):
            if value := predicate():
                return value
        time.sleep(0.1)
    raise SystemExit("the Dask scheduler did not start")


def find_break(repo: Path, good: str, db: Path, extra: list[str]
               ) -> tuple[dict, float] | str:  # type: ignore[type-arg]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "find-break", "--json", TEST, "--good", good,
         "--history-db", str(db), *extra], cwd=repo, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return proc.stderr.strip()[-300:]
    return json.loads(proc.stdout), wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=2.0)
    ap.add_argument("--culprit", type=int, default=137)
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--threads", type=int, default=2, help="threads (probe slots) per worker")
    args = ap.parse_args()
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("distributed is not installed: pip install 'bisector[dask]'")
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bisector-dask-bench-") as tmp:
        repo = Path(tmp) / "repo"
        shas = build(repo, args.commits, args.culprit, args.sleep)
        home = Path(tmp) / "cluster"
        home.mkdir()
        address, procs = start_cluster(home, args.threads)
        try:
            runs = [("local", 1, [])] + [
                ("dask", k, ["--executor", "dask", "--scheduler", address, "--jobs", str(k)])
                for k in args.jobs]
            for executor, k, extra in runs:
                done = find_break(repo, shas[0], Path(tmp) / f"history-{executor}-{k}.db",
                                  extra)
                if isinstance(done, str):
                    print(f"{executor} K={k}: find-break failed: {done}")
                    return 1
                data, wall = done
                right = data["culprits"][0]["commit"]["sha"] == shas[args.culprit]
                rows.append((executor, k, right, data["rounds"], data["probes_run"], wall))
                print(f"{executor} K={k}: {'right' if right else 'WRONG'}, {data['rounds']} "
                      f"rounds, {data['probes_run']} probes, {wall:.1f}s", flush=True)
        finally:
            stop(procs)
    base = rows[0][5]
    n = args.commits - 1
    print()
    print(f"{args.commits} commits ({n} candidates), a {args.sleep:g} s test; Dask: a scheduler "
          f"and 2 workers x {args.threads} threads on 127.0.0.1")
    print(f"{'executor':>8} {'K':>3} {'right':>6} {'rounds':>7} {'search bound':>13} "
          f"{'probes':>7} {'wall s':>8} {'vs local K=1':>13}")
    for executor, k, right, rounds, probes, wall in rows:
        extra = 2 if k > 1 else 4  # the ends and the confirmation
        print(f"{executor:>8} {k:>3} {'yes' if right else 'NO':>6} {rounds:>7} "
              f"{f'{rounds_needed(n, k)}+{extra}':>13} {probes:>7} {wall:>8.1f} "
              f"{wall / base:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
