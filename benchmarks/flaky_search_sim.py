"""Flake-aware search vs plain bisection against a simulated oracle (algorithm level, fast).

A range of N candidates, culprit uniform (or none: the failure that started it was a flake);
on a good commit the test fails with probability f, on a bad one it always fails. Both
searches start from the same observed failure at the bad end. bisector's search is given the
test's false-failure rate, as it would estimate it from history (floored at 0.01).
An answer counts as right when it names the culprit, or "no culprit" for a flake-only range,
with the asked confidence; inconclusive answers count as not right.

    python benchmarks/flaky_search_sim.py [--trials 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from bisector.bayes import FlakySearch
from bisector.flakiness import RATE_FLOOR, Rates


def oracle(culprit: int | None, f: float, rng: random.Random):
    def run(c: int) -> bool:
        return (culprit is not None and c >= culprit) or rng.random() < f
    return run


def bisector_search(n: int, f: float, run) -> tuple[int | None, bool, int]:
    rates = Rates(max(f, RATE_FLOOR), RATE_FLOOR) if f else Rates.deterministic()
    search = FlakySearch(n, ["t"], {"t": rates})
    search.observe("t", n - 1, True)
    while (c := search.next_probe()) is not None:
        search.observe_probe(c, {"t": run(c)})
    belief = search.belief("t")
    return belief.culprit, belief.probability >= search.confidence, search.probes


def plain_bisection(n: int, run) -> tuple[int, int]:
    lo, hi, probes = -1, n - 1, 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probes += 1
        if run(mid):
            hi = mid
        else:
            lo = mid
    return hi, probes


def p95(xs: list[int]) -> int:
    return sorted(xs)[max(0, math.ceil(0.95 * len(xs)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"simulated oracle, {args.trials} trials per row, confidence 0.99")
    print(f"{'N':>5} {'f':>5} {'culprit':>8} | {'bisector acc':>12} {'inconcl':>7} "
          f"{'mean':>6} {'p95':>4} | {'plain acc':>9} {'mean':>5} {'p95':>4}")
    started = time.monotonic()
    for n in (20, 200, 2000):
        rows = [(f, True) for f in (0.0, 0.05, 0.1, 0.2, 0.3)] + [
            (f, False) for f in (0.1, 0.2, 0.3)]
        for f, has_culprit in rows:
            b_right = b_inc = p_right = 0
            b_probes: list[int] = []
            p_probes: list[int] = []
            for _ in range(args.trials):
                culprit = rng.randrange(n) if has_culprit else None
                found, sure, probes = bisector_search(n, f, oracle(culprit, f, rng))
                b_probes.append(probes)
                b_right += sure and found == culprit
                b_inc += not sure
                found_p, probes_p = plain_bisection(n, oracle(culprit, f, rng))
                p_probes.append(probes_p)
                p_right += found_p == culprit
            t = args.trials
            print(f"{n:>5} {f:>5.2f} {'yes' if has_culprit else 'none':>8} | "
                  f"{b_right / t:>12.3f} {b_inc / t:>7.3f} {statistics.mean(b_probes):>6.1f} "
                  f"{p95(b_probes):>4} | {p_right / t:>9.3f} {statistics.mean(p_probes):>5.1f} "
                  f"{p95(p_probes):>4}", flush=True)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
