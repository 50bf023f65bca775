"""Hunk isolation, pure: which subsets of a culprit's units to probe, and the guilty set.

Units are indexed 0..n-1 (bisector.hunks numbers them); a candidate is the frozenset of units
applied on top of the parent P, so the empty set is P (good) and the full set is the culprit C
(bad). The goal is a set S with P + S failing the way C fails and C - S (the candidate
"everything but S") passing, minimal in the sense of ddmin: dropping any one unit of S no longer
fails.

The search is a prefix bisection (the "binary ddmin" of QuickXplain and of creduce's
passes) rather than ddmin's halving: the units are put in a priority order and it looks for the
shortest prefix R[:i] that fails together with the units found so far. The unit R[i-1] is then
needed, joins the found set, and the search repeats inside R[:i-1] until the found set fails by
itself. Under a monotone failure (a superset of a failing set fails) that costs
g * ceil(log2 n) + g probes for g guilty units, with no assumption on how they interact: one
unit of 2,000 in 12, a pair that fails only together in about 24. Then C - S is probed; when it
still fails there is a second, independent cause inside the rest, searched the same way.

An unresolved probe (the subset does not apply, import or collect, times out, or fails another
way) is never guilty: for the prefix search it is "did not fail", so a unit that cannot fail
without another (a call and the helper it needs) is only taken with its partner, and the two
come out as one set. Whenever an unresolved probe, a flaky test or a second cause was met, the
found set is checked unit by unit (S minus each unit): a unit whose removal still fails is
dropped; one whose removal leaves the probe unresolved is reported as glued to the rest.

Flaky tests: a probe that passes is good; one that fails is bad only after failing `repeats`
times in a row, where flake_rate ** repeats <= alpha (the test fails falsely at flake_rate).
A budget of probe runs (and a run of 2 * ceil(log2(n + 1)) + 2 unresolved probes in a row,
the sign of a change that does not come apart) stops the search with the smallest set known to
fail, flagged not minimal ("could not isolate below N hunks"); it never names a set it has not
seen fail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .search import Verdict

Candidate = frozenset[int]

PREFIX, VERIFY, MINCHECK, DONE = "prefix", "verify", "mincheck", "done"


def repeats_for(flake_rate: float, alpha: float = 0.001, cap: int = 6) -> int:
    """Failing runs in a row that make a subset bad for a test failing falsely at flake_rate."""
    if flake_rate <= 0.0:
        return 1
    if flake_rate >= 1.0:
        return cap
    return max(1, min(cap, math.ceil(math.log(alpha) / math.log(flake_rate))))


def aggregate(verdicts: dict[str, Verdict]) -> Verdict:
    """One verdict for a probe of several tests: unresolved when any test is, bad only when every
    test fails (P + S must reproduce the whole failure of C), good otherwise."""
    values = list(verdicts.values())
    if not values or any(v is Verdict.UNTESTABLE for v in values):
        return Verdict.UNTESTABLE
    return Verdict.BAD if all(v is Verdict.BAD for v in values) else Verdict.GOOD


def section(lo: int, hi: int, k: int) -> list[int]:
    """k points strictly inside (lo, hi) cutting it into k + 1 near-equal parts."""
    points = {lo + (j * (hi - lo)) // (k + 1) for j in range(1, k + 1)}
    return sorted(p for p in points if lo < p < hi)


@dataclass(frozen=True, slots=True)
class IsolationResult:
    """The answer: `hunks` (unit ids); `minimal` when the search finished (every unit needed);
    `verified` when C - hunks passed (None: not probed); `glued` units could not be dropped
    because the set without them was unresolved; `reason` says why it is not minimal."""

    hunks: frozenset[int]
    total: int
    minimal: bool
    verified: bool | None
    probes: int
    unresolved: int
    glued: frozenset[int]
    reason: str


class HunkIsolation:
    """The search over subsets of n units, for `tests` that pass at P and fail at C.

    `priority` lists unit ids to try first (the hunks in the failure's traceback); the first
    round then probes exactly them as a prefix, so a cause among them costs log2 of their count.
    `max_probes` bounds the probe runs (None: no bound).
    """

    def __init__(self, n: int, tests: Iterable[str], *, priority: Sequence[int] = (),
                 max_probes: int | None = 100, flake_rate: float = 0.0,
                 alpha: float = 0.001) -> None:
        if n < 1:
            raise ValueError("isolation needs at least one unit")
        self.n = n
        self.tests = list(tests)
        self.universe: Candidate = frozenset(range(n))
        first = list(dict.fromkeys(i for i in priority if 0 <= i < n))
        self.order = first + [i for i in range(n) if i not in set(first)]
        self.boundary = len(first) if 0 < len(first) < n else None
        self.max_probes = max_probes
        self.repeats = repeats_for(flake_rate, alpha)
        self.careful = flake_rate > 0.0
        self.known: dict[Candidate, Verdict] = {frozenset(): Verdict.GOOD,
                                                self.universe: Verdict.BAD}
        self.tally: dict[Candidate, list[int]] = {}  # fails, passes, unresolved
        self.partial: dict[Candidate, dict[str, Verdict]] = {}
        self.probes = 0
        self.unresolved = 0
        self.streak = 0  # unresolved probes in a row
        self.stall = 2 * math.ceil(math.log2(n + 1)) + 2
        self.phase = PREFIX
        self.rounds = 1
        self.accepted: Candidate = frozenset()
        self.chosen: Candidate = frozenset()
        self.verified: bool | None = None
        self.glued: frozenset[int] = frozenset()
        self._start_round(self.order)

    # -- state -------------------------------------------------------------------------------

    def _start_round(self, rest: list[int]) -> None:
        self.found: list[int] = []
        self.rest = rest
        self.hi = len(rest)  # found + rest[:hi] is known to fail
        self.lo = 0  # found + rest[:lo] is known not to fail (-1: not known)
        self.marks: dict[int, Candidate] = {}

    def _cand(self, i: int) -> Candidate:
        return frozenset(self.found).union(self.rest[:i])

    def _settle(self) -> None:
        steps = {PREFIX: self._step_prefix, VERIFY: self._step_verify,
                 MINCHECK: self._step_mincheck}
        while self.phase in steps and steps[self.phase]():
            pass

    def _step_prefix(self) -> bool:
        for i, cand in self.marks.items():
            verdict = self.known.get(cand)
            if verdict is Verdict.BAD and i < self.hi:
                self.hi = i
        for i, cand in self.marks.items():
            verdict = self.known.get(cand)
            if verdict is not None and verdict is not Verdict.BAD and self.lo < i < self.hi:
                self.lo = i
        if self.hi == 0:
            return self._end_round()
        if self.lo != self.hi - 1:
            return False
        self.found.append(self.rest[self.hi - 1])
        self.rest = self.rest[: self.hi - 1]
        self.hi, self.lo, self.marks = len(self.rest), -1, {}
        return self._end_round() if self.hi == 0 else True

    def _end_round(self) -> bool:
        self.chosen = self.accepted | frozenset(self.found)
        self.phase = VERIFY
        return True

    def _step_verify(self) -> bool:
        verdict = self.known.get(self.universe - self.chosen)
        if verdict is None:
            return False
        if verdict is Verdict.BAD:  # a second cause, in what is left: search it the same way
            self.accepted, self.rounds = self.chosen, self.rounds + 1
            self.phase = PREFIX
            self._start_round([i for i in self.order if i not in self.chosen])
            return True
        self.verified = verdict is Verdict.GOOD
        needs_check = self.careful or self.unresolved > 0 or self.rounds > 1
        self.phase = MINCHECK if needs_check and len(self.chosen) > 1 else DONE
        return True

    def _mincheck(self, x: int) -> tuple[Verdict | None, Candidate | None]:
        """Whether unit x of the found set is needed: (its verdict, or None and the subset to
        probe next). Needed unless the set without x still fails at P and its removal from C
        passes: a second, independent cause stays even though the set fails without it."""
        without = self.chosen - {x}
        verdict = self.known.get(without)
        if verdict is None:
            return None, without
        if verdict is not Verdict.BAD:
            return verdict, None
        rest = self.known.get(self.universe - without)
        if rest is None:
            return None, self.universe - without
        return (Verdict.BAD if rest is Verdict.GOOD else Verdict.GOOD), None

    def _step_mincheck(self) -> bool:
        checks = {x: self._mincheck(x)[0] for x in sorted(self.chosen)}
        droppable = [x for x, v in checks.items() if v is Verdict.BAD]
        if droppable:  # fails without it, and passes with it removed from C: not needed
            self.chosen = self.chosen - {droppable[0]}
            self.verified = True
            return True
        if any(v is None for v in checks.values()):
            return False
        self.glued = frozenset(x for x, v in checks.items() if v is Verdict.UNTESTABLE)
        self.phase = DONE
        return True

    # -- what to probe -----------------------------------------------------------------------

    def _wanted(self, k: int) -> list[Candidate]:
        if self.phase == VERIFY:
            return [self.universe - self.chosen]
        if self.phase == MINCHECK:
            return [c for x in sorted(self.chosen) if (c := self._mincheck(x)[1]) is not None]
        lo = max(self.lo, 0)
        # cuts seen failing fewer times than a flaky test's verdict needs are run again first
        points = [p for p, c in self.marks.items()
                  if lo < p < self.hi and c not in self.known and self.tally.get(c)]
        if self.lo == -1:
            points.append(0)
        if self.rounds == 1 and not self.found and self.boundary is not None \
                and lo < self.boundary < self.hi and self.boundary not in points:
            points.append(self.boundary)
        points += [p for p in section(lo, self.hi, max(1, k - len(points))) if p not in points]
        for p in points:
            self.marks[p] = self._cand(p)
        return [self.marks[p] for p in points]

    def next_probes(self, k: int = 1) -> list[Candidate]:
        """The next round: up to k subsets to run at once (repeats of unsettled ones first)."""
        while True:
            self._settle()
            if self.phase == DONE or self.budget_spent:
                return []
            wanted = self._wanted(k)
            if any(c in self.known for c in wanted):
                continue  # the store already answered some: take that in first
            return wanted[: max(1, k)]

    # -- what was seen -----------------------------------------------------------------------

    def _record(self, cand: Candidate, verdict: Verdict) -> None:
        tally = self.tally.setdefault(cand, [0, 0, 0])
        tally[{Verdict.BAD: 0, Verdict.GOOD: 1, Verdict.UNTESTABLE: 2}[verdict]] += 1
        if cand in self.known:
            return
        if tally[2] or tally[1]:
            self.known[cand] = Verdict.UNTESTABLE if tally[2] else Verdict.GOOD
        elif tally[0] >= self.repeats:
            self.known[cand] = Verdict.BAD

    def observe(self, test: str, candidate: Candidate, verdict: Verdict) -> None:
        """A known result (from the store) of one test for a subset; counted once every test
        of the search has one."""
        seen = self.partial.setdefault(frozenset(candidate), {})
        seen[test] = verdict
        if set(self.tests) <= set(seen):
            del self.partial[frozenset(candidate)]
            self._record(frozenset(candidate), aggregate(seen))

    def observe_probe(self, candidate: Candidate, verdicts: dict[str, Verdict]) -> None:
        """A probe that ran: one run of the search's tests with `candidate` applied at P."""
        self.probes += 1
        verdict = aggregate({t: verdicts.get(t, Verdict.UNTESTABLE) for t in self.tests})
        if verdict is Verdict.UNTESTABLE:
            self.unresolved += 1
        self.streak = self.streak + 1 if verdict is Verdict.UNTESTABLE else 0
        self._record(frozenset(candidate), verdict)

    # -- answers -----------------------------------------------------------------------------

    @property
    def budget_spent(self) -> bool:
        """Out of probes, or stalled: two bisections' worth of unresolved probes in a row say
        the change does not come apart (every subset tried fails to apply, import or run)."""
        spent = self.max_probes is not None and self.probes >= self.max_probes
        return spent or self.streak >= self.stall

    @property
    def done(self) -> bool:
        self._settle()
        return self.phase == DONE

    def open_tests(self) -> list[str]:
        return [] if self.done or self.budget_spent else list(self.tests)

    def suspects(self) -> frozenset[int]:
        """The smallest set known to fail that the search stands by now."""
        self._settle()
        if self.phase == PREFIX:
            return self.accepted | self._cand(self.hi)
        return self.chosen

    def suspect_list(self, test: str) -> list[int]:
        return sorted(self.suspects())

    def result(self) -> IsolationResult:
        best = self.suspects()
        inseparable = self.phase == DONE and len(best) > 1 and self.glued == best
        if inseparable:
            reason = (f"could not isolate below {len(best)} hunks: without any one of them the "
                      "rest does not apply, import or run")
        elif self.phase != DONE and self.streak >= self.stall:
            reason = (f"could not isolate below {len(best)} hunks: the last {self.streak} "
                      "subsets tried were unresolved")
        elif self.phase != DONE:
            reason = (f"probe budget ({self.max_probes}) spent: could not isolate below "
                      f"{len(best)} hunks")
        elif self.verified is False:
            reason = "the change without these hunks is unresolved: C - S was not verified"
        else:
            reason = ""
        return IsolationResult(best, self.n, self.phase == DONE and not inseparable,
                               self.verified, self.probes, self.unresolved, self.glued, reason)
