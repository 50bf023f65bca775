"""How flaky a test is, from the outcomes history holds for it: pure, no I/O.

A test's runs along a first-parent line are read as a step: good up to some commit, bad from it
on (a regression), or the other way round (a fix), or no step at all. The step that leaves the
fewest runs disagreeing with it is taken (ties prefer no step, then the latest step), and the
runs that disagree are the flakes: failures on the good side are false failures, passes on the
bad side false passes. Runs on one commit that disagree (including pytest-rerunfailures'
attempts) are always flakiness, whichever step is chosen; a one-way switch at a commit is a
regression and costs nothing. More than one real switch in the window (broken, fixed, broken
again) is read as flakiness: the window should be kept short enough for that to be rare.

Rates come with a Wilson score interval, which stays honest for small counts and rates near 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A flaky test's rates are never taken below this: a few clean runs are no proof of zero.
RATE_FLOOR = 0.01
# What a test with no flaky evidence is treated as: a rate this small makes the flake-aware
# search behave as a plain bisection (a single disagreeing probe is then strong evidence).
DETERMINISTIC_RATE = 1e-9


@dataclass(frozen=True, slots=True)
class Rates:
    """P(fail | good commit) and P(pass | bad commit), as the search's likelihoods use them."""

    false_fail: float
    false_pass: float

    @classmethod
    def deterministic(cls) -> Rates:
        return cls(DETERMINISTIC_RATE, DETERMINISTIC_RATE)


@dataclass(frozen=True, slots=True)
class Learnt:
    """Rates not known in advance but learnt with the culprit: Beta priors, as pseudo-counts.

    One Beta over P(fail | good commit), one over P(pass | bad commit). Each hypothesis'
    likelihood integrates the rates out (Beta-binomial), so the probes teach the rates as they
    narrow the culprit, as git-bayesect does, and a few runs cannot make the search sure of
    rates it has barely seen. The priors say what a bisection assumes: a good commit fails
    less often than it passes (Beta(1/2, 5/2), mean 1/6, plus the runs known before the
    range), and a regression makes its test fail nearly always (Beta(1/2, 20), mean 0.024),
    unless the runs show it passing at bad commits. A flat (Jeffreys) prior on both reads a
    failure at HEAD as a regression that passes most of the time as readily as a flake, and
    never settles on "no culprit" (measured: benchmarks/flaky_search_sim.py).
    """

    fails_good: float = 0.5
    passes_good: float = 2.5
    passes_bad: float = 0.5
    fails_bad: float = 20.0

    def known(self, fails_good: int = 0, passes_good: int = 0) -> Learnt:
        """This prior after runs on commits known to be good."""
        return Learnt(self.fails_good + fails_good, self.passes_good + passes_good,
                      self.passes_bad, self.fails_bad)


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson(k: int, n: int, z: float = 1.96) -> Interval:
    """Wilson score interval for k successes in n trials (95% by default)."""
    if n <= 0:
        return Interval(0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Estimate:
    """What history says of one test in one environment."""

    false_fails: int  # failures on commits read as good
    good_runs: int  # runs on commits read as good
    false_passes: int
    bad_runs: int
    flipped: tuple[int, ...]  # indexes of commits with disagreeing or off-step outcomes
    step: int | None  # first commit of the second segment; None: no step
    fix: bool = False  # the step goes bad -> good

    @property
    def runs(self) -> int:
        return self.good_runs + self.bad_runs

    @property
    def flaky(self) -> bool:
        return self.false_fails + self.false_passes > 0

    @property
    def false_fail_rate(self) -> float:
        return self.false_fails / self.good_runs if self.good_runs else 0.0

    @property
    def false_pass_rate(self) -> float:
        return self.false_passes / self.bad_runs if self.bad_runs else 0.0

    def false_fail_interval(self) -> Interval:
        return wilson(self.false_fails, self.good_runs)

    def rates(self, floor: float = RATE_FLOOR) -> Rates:
        """The likelihoods to search with: floored when flaky, near-zero when not."""
        if not self.flaky:
            return Rates.deterministic()
        return Rates(max(floor, self.false_fail_rate), max(floor, self.false_pass_rate))


def tally(results: Iterable[tuple[bool | None, int]]) -> tuple[int, int]:
    """(failures, passes) that a commit's results stand for, each given as (failed, rerun
    attempts): a result that could not tell (None) stands for nothing, and every failed
    attempt pytest-rerunfailures made before the final outcome is a failure."""
    fails = passes = 0
    for failed, reruns in results:
        if failed is None:
            continue
        fails += reruns + failed
        passes += not failed
    return fails, passes


def estimate(commits: Sequence[tuple[int, int]]) -> Estimate:
    """Read (failures, passes) per commit, oldest first, as a step plus flakes."""
    n = len(commits)
    fails = [f for f, _ in commits]
    passes = [p for _, p in commits]
    # prefix sums: failures and passes on commits [0, i)
    pf, pp = [0], [0]
    for f, p in commits:
        pf.append(pf[-1] + f)
        pp.append(pp[-1] + p)
    total_f, total_p = pf[-1], pp[-1]

    # (errors, preference, -step, step, fix): fewest errors, then no step, then a regression
    # before a fix, then the latest step
    no_step_fix = total_f > total_p  # no step: all bad iff failures outnumber passes
    candidates = [(min(total_f, total_p), 0, 0, None, no_step_fix)]
    for s in range(1, n):
        candidates.append((pf[s] + (total_p - pp[s]), 1, -s, s, False))  # good | bad
        candidates.append((pp[s] + (total_f - pf[s]), 2, -s, s, True))  # bad | good
    _, _, _, step, is_fix = min(candidates, key=lambda c: c[:3])
    bad = set()
    for i in range(n):
        is_bad = is_fix if step is None else (i < step if is_fix else i >= step)
        if is_bad:
            bad.add(i)
    good = set(range(n)) - bad
    flipped = tuple(
        i for i in range(n)
        if (fails[i] and passes[i]) or (i in good and fails[i]) or (i in bad and passes[i])
    )
    return Estimate(
        false_fails=sum(fails[i] for i in good),
        good_runs=sum(fails[i] + passes[i] for i in good),
        false_passes=sum(passes[i] for i in bad),
        bad_runs=sum(fails[i] + passes[i] for i in bad),
        flipped=flipped,
        step=step,
        fix=bool(is_fix) and step is not None,
    )
