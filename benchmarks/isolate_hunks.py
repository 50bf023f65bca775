"""Hunk isolation: how many probes to go from a culprit commit to its guilty hunks.

A culprit changes H hunks across 20 files (every hunk one unchanged line from the next); the
test `value() == 1` breaks because of
  one     one hunk (`value` returns 2),
  pair    two hunks that fail only together (a constant set to 2 in one file, and a `value`
          that multiplies by it in another: either alone still gives 1),
  helper  a call and the helper it needs in another file (the call alone raises
          AttributeError: another failure, so unresolved, never guilty),
  flaky   `one`, with a test that also fails falsely 10 % of the time (the search is told
          the rate, as the store would tell it).

Simulated mode (pure search, an oracle over hunk ids) runs every row; real mode generates the
repository, applies each subset with `git apply` in a worktree at P, runs the test with
`python -c`, then writes the revert patch, applies it at a later bad end (which moved the
guilty file's lines) and runs the test there. Rows: exact guilty set over the trials, mean
and max probes, wall time; "tb-first" is the mean with the hunks of the failure's traceback
file tried first (the failing line's hunk, then the rest of that file), as --isolate does;
"reverted" counts the trials where the test passed at the bad end with the found hunks
reverted and the revert, written against the bad end, applies there with plain `git apply`.

    python benchmarks/isolate_hunks.py [--trials 10] [--real-trials 3] [--real-sizes 50,500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _generated import ENV, build_linear, git

from bisector import hunks
from bisector.isolation import HunkIsolation
from bisector.search import Verdict

FILES = 20
KINDS = ("one", "pair", "helper", "flaky")
FLAKE = 0.1
BUDGET = 200


@dataclass
class Row:
    exact: int = 0
    trials: int = 0
    probes: list[int] | None = None
    first: list[int] | None = None
    seconds: float = 0.0
    reverted: int = 0


def slots_of(h: int, f: int) -> range:
    """The hunks of file f: H spread over the 20 files as evenly as integers allow."""
    return range(f * h // FILES, (f + 1) * h // FILES)


def file_of(h: int, i: int) -> int:
    return next(f for f in range(FILES) if i in slots_of(h, f))


# -- simulated --------------------------------------------------------------------------------


def sim_oracle(kind: str, guilty: list[int], rng: random.Random) -> Callable[
        [frozenset[int]], Verdict]:
    def run(cand: frozenset[int]) -> Verdict:
        if kind == "helper" and guilty[0] in cand and guilty[1] not in cand:
            return Verdict.UNTESTABLE
        need = guilty[:1] if kind in ("one", "flaky") else guilty
        if all(g in cand for g in need):
            return Verdict.BAD
        return Verdict.BAD if kind == "flaky" and rng.random() < FLAKE else Verdict.GOOD
    return run


def search(h: int, kind: str, oracle: Callable[[frozenset[int]], Verdict],
           priority: list[int]) -> tuple[frozenset[int], int]:
    s = HunkIsolation(h, ["t"], priority=priority, max_probes=BUDGET,
                      flake_rate=FLAKE if kind == "flaky" else 0.0)
    while batch := s.next_probes(1):
        for cand in batch:
            s.observe_probe(cand, {"t": oracle(cand)})
    result = s.result()
    return result.hunks, result.probes


def simulated(h: int, kind: str, trials: int, seed: int) -> Row:
    row = Row(probes=[], first=[])
    start = time.perf_counter()
    for trial in range(trials):
        rng = random.Random(seed * 1000 + trial)
        guilty = rng.sample(range(h), 2)  # [call or use, helper or constant]
        want = frozenset(guilty[:1] if kind in ("one", "flaky") else guilty)
        found, probes = search(h, kind, sim_oracle(kind, guilty, rng), [])
        row.exact += found == want
        row.probes.append(probes)
        home = slots_of(h, file_of(h, guilty[0]))  # the traceback's file: the failing line's
        tb = [guilty[0]] + [i for i in home if i != guilty[0]]
        _, probes = search(h, kind, sim_oracle(kind, guilty, random.Random(trial)), tb)
        row.first.append(probes)
        row.trials += 1
    row.seconds = time.perf_counter() - start
    return row


# -- real git ---------------------------------------------------------------------------------


def sources(h: int, kind: str, slots: dict[int, tuple[str, str]], changed: bool,
            moved: bool = False) -> dict[str, str]:
    """Files of the generated project at P (changed=False) or C: slot i is line pair i of
    file f holding slots f*h/20 .. (f+1)*h/20 - 1; special slots hold (P text, C text)."""
    files = {"pkg/__init__.py": "", "notes.txt": "moved\n" if moved else "start\n"}
    for f in range(FILES):
        lines = []
        for i in slots_of(h, f):
            before, after = slots.get(i, (f"V_{i} = {i}", f"V_{i} = -{i}"))
            lines += [after if changed else before, "# -"]
        top = "# moved\n# down\n" if moved else ""
        files[f"pkg/m{f:02d}.py"] = top + "\n".join(lines) + "\n"
    return files


def plant(h: int, kind: str, rng: random.Random) -> tuple[dict[int, tuple[str, str]], int]:
    """The special slots of a case, and the slot of `value` (the test's module)."""
    a, b = rng.sample(range(FILES), 2)
    use, other = rng.choice(slots_of(h, a)), rng.choice(slots_of(h, b))
    mod = f"m{b:02d}"
    slots = {use: ("def value(): return 1", "def value(): return 2")}
    if kind == "pair":
        slots[use] = ("def value(): return 1",
                      f"def value(): from pkg import {mod}; return 1 * {mod}.FACTOR")
        slots[other] = ("FACTOR = 1", "FACTOR = 2")
    elif kind == "helper":
        slots[use] = ("def value(): return 1",
                      f"def value(): from pkg import {mod}; return {mod}.helper()")
        slots[other] = (f"V_{other} = {other}", "def helper(): return 2")
    return slots, use


def run_test(workdir: Path, module: str, flaky: bool, rng: random.Random) -> Verdict:
    code = (f"import sys; sys.path.insert(0, '.'); from pkg import {module} as m; "
            f"assert m.value() == 1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True,
                          text=True, env=ENV, check=False)
    if proc.returncode == 0:
        return Verdict.BAD if flaky and rng.random() < FLAKE else Verdict.GOOD
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return Verdict.BAD if last.startswith("AssertionError") else Verdict.UNTESTABLE


def real_trial(h: int, kind: str, rng: random.Random, base: Path) -> tuple[bool, int, bool]:
    slots, use = plant(h, kind, rng)
    module = f"m{file_of(h, use):02d}"
    repo = base / "repo"
    shas = build_linear(repo, 3, lambda i: sources(h, kind, slots, i >= 1, moved=i == 2))
    parent, culprit, bad_end = shas
    units = hunks.split(repo, parent, culprit)
    want = frozenset(u.id for u in units if any(
        word in u.text.partition("\n")[2] for word in ("value()", "FACTOR", "helper")))
    probe = base / "probe"
    git(repo, "worktree", "add", "--detach", str(probe), parent)
    flaky = kind == "flaky"

    def oracle(cand: frozenset[int]) -> Verdict:
        git(probe, "reset", "--hard", "-q", parent)
        if not hunks.apply_units(probe, units, cand).ok:
            return Verdict.UNTESTABLE
        return run_test(probe, module, flaky, rng)

    found, probes = search(len(units), kind, oracle, [])
    git(probe, "reset", "--hard", "-q", bad_end)
    reverted = hunks.revert_at(probe, hunks.revert_patch(repo, culprit, units, found))
    passes = reverted.ok and run_test(probe, module, False, rng) is Verdict.GOOD
    git(probe, "reset", "--hard", "-q", bad_end)  # what revert-<short>.patch would hold
    applies = reverted.ok and hunks.apply_patch(probe, reverted.patch).ok
    return found == want, probes, passes and applies


def real(h: int, kind: str, trials: int, seed: int) -> Row:
    row = Row(probes=[])
    start = time.perf_counter()
    for trial in range(trials):
        rng = random.Random(seed * 1000 + trial)
        with tempfile.TemporaryDirectory(prefix="bisector-isolate-bench-") as tmp:
            exact, probes, reverted = real_trial(h, kind, rng, Path(tmp))
        row.exact += exact
        row.reverted += reverted
        row.probes.append(probes)
        row.trials += 1
    row.seconds = time.perf_counter() - start
    return row


def show(mode: str, h: int, kind: str, row: Row) -> None:
    probes = row.probes or [0]
    first = f"{statistics.mean(row.first):8.1f}" if row.first else "       -"
    reverted = f"{row.reverted}/{row.trials}" if mode == "real" else "-"
    print(f"{mode:5} {h:5} {kind:7} {row.exact:3}/{row.trials:<3} {statistics.mean(probes):7.1f} "
          f"{max(probes):5} {first} {row.seconds:8.2f}s {reverted:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--real-trials", type=int, default=3)
    parser.add_argument("--real-sizes", default="50,500")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print("mode      H kind    exact   mean    max tb-first     wall  reverted")
    for h in (50, 500, 2000):
        for kind in KINDS:
            show("sim", h, kind, simulated(h, kind, args.trials, args.seed))
    for h in [int(x) for x in args.real_sizes.split(",") if x]:
        for kind in KINDS:
            show("real", h, kind, real(h, kind, args.real_trials, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
