"""bisector find-break against `git bisect run`, side by side on the same generated repository.

A 200-commit repository (bisector.demo.build_repo) with one planted regression; both tools run
the same pytest command per probe. Three figures per culprit position:
  git bisect run       pytest runs and wall time (it trusts the given ends and never confirms)
  find-break, no history  probes for the search alone, plus end checks and the confirmation
  find-break, history     the same after `pytest --track-history` ran on every 25th commit

    python benchmarks/find_break_vs_git_bisect.py [--commits 200] [--culprits 37,101,180]

`--installable` (issue 15): probes that must build. A generated package (pyproject.toml, src
layout, setuptools; its test imports the installed copy) of 64 and 160 first-parent commits
(`--sizes`), one culprit at a random position (`--seed`). Per pair, interleaved (the order
alternates pair by pair, so a drifting load on a shared machine falls on both):
  git bisect run --first-parent, in a clone of its own with a venv of its own, each step
      `pip install --no-deps . && pytest -q TEST` (its venv made before the clock starts,
      as a user's would be);
  bisector cold: `bisector find-break --good G --bad B --setup 'pip install --no-deps .'
      TEST` at default settings, in a fresh repository (a fresh default store, nothing reused);
  bisector warm: the same command again on the same store.
Both tools see the same interpreter and pytest (bisector's probe venv and git bisect's venv
each put it behind their own site-packages with a .pth). Then the per-probe overhead, on the
culprit's parent (a commit both ran): the bare step timed `--bare-reps` times in git bisect's
checkout against bisector's own record of its probe there (run started_at..finished_at:
checkout, setup, pytest, JUnit parse; the first there, which set up: a later one may have
reused that setup, ADR 25), and what bisector's wall holds beyond its probes.

    python benchmarks/find_break_vs_git_bisect.py --installable [--pairs 3] [--sizes 64 160]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _generated import ENV, INSTALLABLE_TEST, build_installable, parent_env_venv, probe_script

from bisector.demo import build_repo

TEST = "tests/test_calc.py::test_add_negative"
I_TEST = INSTALLABLE_TEST


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_bisect(repo: Path, good: str, bad: str, tmp: Path) -> tuple[int, float, str]:
    clone = tmp / "gb-clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    counter = tmp / "gb-count"
    script = probe_script(tmp / "probe.sh", counter,
                          f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:bisector "
                          f"{TEST}")
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


def search_probes(db: Path) -> int:
    """The latest bisection's search probes, as its journal names them: what the end checks
    and the confirmation (however many runs it needs) leave, comparable to git bisect's."""
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM probes WHERE purpose LIKE 'bisect%' "
            "AND bisection_id = (SELECT max(id) FROM bisections)").fetchone()
    finally:
        conn.close()
    return int(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--culprits", default="37,101,180")
    parser.add_argument("--installable", action="store_true",
                        help="probes that pip-install a generated package (issue 15)")
    parser.add_argument("--pairs", type=int, default=3, help="--installable: pairs per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 160],
                        help="--installable: first-parent commits of each repository")
    parser.add_argument("--seed", type=int, default=15, help="--installable: culprit positions")
    parser.add_argument("--bare-reps", type=int, default=4,
                        help="--installable: bare steps timed for the per-probe overhead")
    parser.add_argument("--bisector-arg", action="append", default=[], metavar="ARG",
                        help="--installable: one more find-break argument (e.g. --jobs=2); "
                             "the default measures default settings")
    parser.add_argument("--keep", type=Path, default=None,
                        help="--installable: keep each pair's files (timelines) under here")
    args = parser.parse_args()
    if args.installable:
        return installable(args)
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
                "cold": (data["probes_run"], search_probes(tmp / "cold.db"), fb_time),
                "history": (hist["probes_run"], search_probes(warm), hist_time),
            })
    n = args.commits - 1
    print(f"find-break vs git bisect run: {args.commits} commits ({n} candidates), "
          f"ceil(log2 {n}) = {math.ceil(math.log2(n))}")
    print("find-break's probe counts include the end checks (where history lacks them) and")
    print("the confirmation runs; 'search' is its bisect probes, comparable to git bisect's.")
    print(f"{'culprit':>7}  {'right (gb/fb/fb+h)':>18}  {'git bisect':>15}  "
          f"{'find-break cold':>26}  {'find-break w/ history':>26}  {'wall fb/gb':>10}")
    for r in rows:
        gb_runs, gb_time = r["git_bisect"]
        cold_runs, cold_search, cold_time = r["cold"]
        h_runs, h_search, h_time = r["history"]
        right = "/".join("yes" if x else "NO" for x in r["right"])
        print(f"{r['culprit']:>7}  {right:>18}  {gb_runs:>3} runs {gb_time:5.1f}s  "
              f"{cold_runs:>3} runs ({cold_search} search) {cold_time:5.1f}s  "
              f"{h_runs:>3} runs ({h_search} search) {h_time:5.1f}s  "
              f"{cold_time / gb_time:10.2f}")
    return 0


# -- --installable: probes that build (issue 15) --------------------------------------------

SETUP = "pip install --no-deps ."


@dataclass
class Timed:
    """One tool's run: the culprit it named, runs made, wall seconds, and a timeline of
    (seconds since its start, line) for the notes: git bisect's steps, bisector's progress."""

    culprit: str | None
    runs: int
    wall: float
    timeline: list[tuple[float, str]] = field(default_factory=list)
    rounds: int = 0
    spans: list[float] = field(default_factory=list)  # git bisect's steps, each


def git_bisect_installable(clone: Path, venv: Path, good: str, bad: str, tmp: Path) -> Timed:
    """`git bisect run --first-parent`, each step `pip install --no-deps . && pytest -q TEST`
    in the clone with its venv first on PATH; each step's start, end and status logged."""
    steps = tmp / "gb-steps"
    steps.write_text("")
    script = tmp / "gb-step.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"export VIRTUAL_ENV={venv} PATH={venv}/bin:$PATH\n"
        "t0=$(date +%s%N)\n"
        f"{SETUP} -q && python -m pytest -q -p no:cacheprovider {I_TEST} >/dev/null\n"
        "rc=$?\n"
        f'echo "$(git rev-parse HEAD) $t0 $(date +%s%N) $rc" >> {steps}\n'
        "exit $rc\n")
    script.chmod(0o755)
    start = time.perf_counter()
    t0 = time.time_ns()
    git(clone, "bisect", "start", "--first-parent", bad, good)
    out = git(clone, "bisect", "run", str(script))
    wall = time.perf_counter() - start
    git(clone, "bisect", "reset")
    culprit = next((line.split()[0] for line in out.splitlines()
                    if "is the first bad commit" in line), None)
    timeline, spans = [], []
    for line in steps.read_text().splitlines():
        sha, a, b, rc = line.split()
        spans.append((int(b) - int(a)) / 1e9)
        timeline.append(((int(a) - t0) / 1e9, f"step {sha[:10]} {spans[-1]:.2f}s exit {rc}"))
    return Timed(culprit, len(timeline), wall, timeline, spans=spans)


def bisector_installable(repo: Path, good: str, bad: str, extra: list[str]) -> Timed:
    """find-break at default settings but --setup (and `extra`, e.g. --jobs 2, only when
    asked), its progress lines timestamped as they come (each `probe N:` line is printed as
    that probe starts)."""
    cmd = [sys.executable, "-m", "bisector", "find-break", "--json", "--good", good,
           "--bad", bad, "--setup", SETUP, *extra, I_TEST]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stderr is not None and proc.stdout is not None
    timeline = [(time.perf_counter() - start, line.rstrip()) for line in proc.stderr]
    out = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - start
    timeline.append((wall, f"exit {proc.returncode}"))
    if proc.returncode != 0:
        print("find-break failed:", *(line for _, line in timeline[-5:]), sep="\n  ")
        return Timed(None, 0, wall, timeline)
    data = json.loads(out)
    named = [c["commit"]["sha"] for c in data["culprits"] if c["commit"]]
    return Timed(named[0] if named else None, data["probes_run"], wall, timeline,
                 data.get("rounds", 0))


def probe_records(repo: Path) -> list[tuple[str, str, float, float]]:
    """bisector's own record of each probe: (sha, purpose, started_at, finished_at)."""
    db = sqlite3.connect(repo / ".bisector" / "history.db")
    try:
        rows = db.execute(
            "SELECT r.sha, p.purpose, r.started_at, r.finished_at FROM runs r "
            "JOIN probes p ON p.run_id = r.id WHERE r.trigger = 'probe' "
            "ORDER BY r.started_at").fetchall()
    finally:
        db.close()
    return [(str(a), str(b), float(c), float(d)) for a, b, c, d in rows]


def bare_steps(clone: Path, venv: Path, sha: str, reps: int) -> list[float]:
    """`pip install --no-deps . && pytest -q TEST` at sha in a plain checkout, timed."""
    git(clone, "checkout", "-q", "--detach", sha)
    env = {**ENV, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{ENV['PATH']}"}
    walls = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(f"{SETUP} -q && python -m pytest -q -p no:cacheprovider {I_TEST}",
                       shell=True, cwd=clone, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
    return walls


def alone_overhead(repo: Path, clone: Path, venv: Path, shas: list[str], reps: int
                   ) -> list[float]:
    """bisector's probe alone (its executor: checkout and clean, setup, pytest with JUnit XML,
    reading it) minus a bare step alone (`git checkout`, pip install, pytest) at the same
    commit, interleaved, `reps` times: the per-probe overhead without the load of a second
    probe beside it. The commits alternate, so each probe sets up (none reuses, ADR 25)."""
    from bisector.executors import Probe
    from bisector.executors.local import LocalExecutor
    from bisector.gitrepo import Repository

    env = {**ENV, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{ENV['PATH']}"}
    step = (f"git checkout -q --detach {{sha}} && {SETUP} -q && "
            f"python -m pytest -q -p no:cacheprovider {I_TEST}")
    diffs = []
    with Repository(repo) as git_repo, LocalExecutor(git_repo, setup=SETUP) as executor:
        executor.run(Probe(shas[0], (I_TEST,)))  # makes the probe venv: not timed
        for i in range(reps):
            sha = shas[i % 2]
            start = time.perf_counter()
            executor.run(Probe(sha, (I_TEST,)))
            probe = time.perf_counter() - start
            start = time.perf_counter()
            subprocess.run(step.format(sha=sha), shell=True, cwd=clone, env=env,
                           capture_output=True, check=False)
            diffs.append(probe - (time.perf_counter() - start))
    return diffs


def one_pair(size: int, culprit: int, gb_first: bool, reps: int, tmp: Path,
             extra: list[str]) -> dict:
    repo = tmp / "repo"
    shas = build_installable(repo, size, culprit)
    good, bad, want = shas[0], shas[-1], shas[culprit]
    clone = tmp / "gb-clone"
    git(tmp, "clone", "-q", str(repo), str(clone))
    venv = parent_env_venv(tmp / "gb-venv", sys.executable)
    subprocess.run([f"{venv}/bin/pip", "--version"], check=True, capture_output=True)
    row: dict = {"size": size, "culprit": culprit}
    parent = shas[culprit - 1]
    # the bare step, half before the pair and half after: a load drifting during the pair
    # (a shared machine) then biases neither side of the per-probe overhead
    before = bare_steps(clone, venv, parent, reps // 2)
    git(clone, "checkout", "-q", "main")
    if gb_first:
        row["gb"] = git_bisect_installable(clone, venv, good, bad, tmp)
    row["cold"] = bisector_installable(repo, good, bad, extra)
    records = probe_records(repo)
    row["warm"] = bisector_installable(repo, good, bad, extra)
    if not gb_first:
        row["gb"] = git_bisect_installable(clone, venv, good, bad, tmp)
    row["right"] = (row["gb"].culprit == want, row["cold"].culprit == want,
                    row["warm"].culprit == want)
    row["records"] = records
    # the first probe there: it set up (a later one may reuse that setup, ADR 25)
    at_parent = [b - a for sha, why, a, b in records if sha == parent][:1]
    row["bare"] = before + bare_steps(clone, venv, parent, reps - reps // 2)
    row["alone"] = alone_overhead(repo, clone, venv, [parent, shas[culprit - 2 if culprit > 1
                                                                  else culprit]], reps)
    row["probe_at_parent"] = at_parent[0] if at_parent else math.nan
    first = records[0][2] if records else 0.0
    row["first_probe"] = records[0][3] - first if records else math.nan
    row["in_probes"] = sum(b - a for _, _, a, b in records)
    return row


def print_pair(row: dict) -> None:
    gb, cold, warm = row["gb"], row["cold"], row["warm"]
    right = "/".join("yes" if r else "NO" for r in row["right"])
    bare = statistics.median(row["bare"])
    outside = cold.wall - row["in_probes"]
    ovh2 = many_ovh(row)
    print(f"{row['size']:>4} {row['culprit']:>4}  {right:>11}  {gb.runs:>2} steps "
          f"{gb.wall:6.1f}s  {cold.runs:>2} probes {cold.rounds:>2} rounds {cold.wall:6.1f}s  "
          f"{cold.wall / gb.wall:5.2f}  {warm.runs:>2} probes {warm.wall:5.1f}s "
          f"{warm.wall / gb.wall:5.2f}  {bare:5.2f}s {row['probe_at_parent']:5.2f}s "
          f"{row['probe_at_parent'] - bare:+5.2f}s {ovh2:+5.2f}s "
          f"{statistics.median(row['alone']):+6.2f}s  {outside:5.1f}s", flush=True)


def many_ovh(row: dict) -> float:
    """The median of bisector's probe records that set up (the first at each commit, but the
    very first: it makes the venv) minus the median of git bisect's steps: other commits, the
    same work, many samples across the pair, so steadier on a shared machine than the one
    probe at the parent."""
    firsts: dict[str, float] = {}
    for sha, _, a, b in row["records"]:
        firsts.setdefault(sha, b - a)
    probes = list(firsts.values())[1:]
    steps = row["gb"].spans
    if not probes or not steps:
        return math.nan
    return statistics.median(probes) - statistics.median(steps)


def print_phases(row: dict) -> None:
    """Where the cold run's wall went: before its first probe (start-up, store, planning),
    the first probe (it creates the probe venv), the others, the gaps between probe records
    (recording, the search's bookkeeping) and after the last one (owners, cleanup)."""
    cold: Timed = row["cold"]
    records = row["records"]
    first = next((t for t, line in cold.timeline if line.startswith("probe 1:")), None)
    if first is None or not records:
        return
    offset = records[0][2] - first  # bisector's clock at the timeline's zero
    spans = [(a - offset, b - offset) for _, _, a, b in records]
    gaps = sum(spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1))
    others = [b - a for a, b in spans[1:]]
    mean = statistics.mean(others) if others else math.nan
    whys = ", ".join(why.split(",")[0] for _, why, _, _ in records)
    print(f"      cold phases: to probe 1 {first:.2f}s, first probe "
          f"{spans[0][1] - spans[0][0]:.2f}s, other probes {mean:.2f}s each (n={len(others)}), "
          f"gaps {gaps:.2f}s, after the last {cold.wall - spans[-1][1]:.2f}s; probes: {whys}",
          flush=True)


def save_pair(keep: Path, index: int, row: dict) -> None:
    """The timelines and records of a pair, for reading where the time went."""
    keep.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in row.items() if k not in ("gb", "cold", "warm")}
    for k in ("gb", "cold", "warm"):
        t: Timed = row[k]
        data[k] = {"culprit": t.culprit, "runs": t.runs, "wall": t.wall, "rounds": t.rounds,
                   "timeline": t.timeline, "spans": t.spans}
    (keep / f"pair-{row['size']}-{index}.json").write_text(json.dumps(data, indent=1))


HEADER = (f"{'n':>4} {'cul':>4}  {'right gb/c/w':>11}  {'git bisect':>15}  "
          f"{'bisector cold':>27}  {'ratio':>5}  {'bisector warm':>16} {'ratio':>5}  "
          f"{'bare':>6} {'probe':>6} {'ovh':>6} {'ovh2':>6} {'alone':>6}  {'outside':>7}")


def installable(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    print(f"bisector find-break vs git bisect run, installable package, {args.pairs} pairs "
          f"per size, interleaved; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"python {sys.executable}; find-break {' '.join(args.bisector_arg) or 'defaults'}")
    print("bare: pip install + pytest at the culprit's parent, median of runs before and after "
          "the pair;\nprobe: bisector's own record of its probe there; ovh = probe - bare; "
          "outside: bisector's wall not inside\nany probe record (start-up, store, planning, "
          "cleanup); ovh2: median of the probe records that set up\n(the first at each "
          "commit, but the first of all) - median git bisect step;\nalone: the per-probe "
          "overhead with no other probe beside it: bisector's probe (its executor) alone\n"
          "minus a bare checkout + pip install + pytest alone, same commits, interleaved, "
          "median of --bare-reps")
    print(HEADER)
    rows = []
    for size in args.sizes:
        for k in range(args.pairs):
            culprit = rng.randrange(1, size)
            with tempfile.TemporaryDirectory(prefix="bisector-speed-") as tmpdir:
                row = one_pair(size, culprit, k % 2 == 0, args.bare_reps, Path(tmpdir),
                               args.bisector_arg)
            rows.append(row)
            print_pair(row)
            print_phases(row)
            if args.keep is not None:
                save_pair(args.keep, k, row)
    print()
    print(f"{'n':>4} {'right gb/cold/warm':>20} {'cold/gb mean':>13} {'warm/gb mean':>13} "
          f"{'mean ovh/probe':>15} {'mean ovh2':>10} {'alone ovh':>10}  "
          f"(load now {os.getloadavg()[0]:.1f})")
    for size in args.sizes:
        mine = [r for r in rows if r["size"] == size]
        right = "/".join(str(sum(r["right"][i] for r in mine)) for i in range(3))
        cold = statistics.mean(r["cold"].wall / r["gb"].wall for r in mine)
        warm = statistics.mean(r["warm"].wall / r["gb"].wall for r in mine)
        ovh = statistics.mean(r["probe_at_parent"] - statistics.median(r["bare"])
                              for r in mine)
        ovh2 = statistics.mean(many_ovh(r) for r in mine)
        alone = statistics.median(d for r in mine for d in r["alone"])
        print(f"{size:>4} {right + f' of {len(mine)}':>20} {cold:>13.2f} {warm:>13.2f} "
              f"{ovh:>+14.2f}s {ovh2:>+9.2f}s {alone:>+9.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
