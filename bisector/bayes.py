"""Flake-aware culprit finding: a posterior over the commits, pure, no I/O.

After Henderson et al., "Flake Aware Culprit Finding" (ICST 2023). Candidates are indexed
0..n-1, oldest first (n-1 is the bad end; the good end, -1, is taken as good). Hypothesis h in
0..n-1 says "commit h is the culprit: commits >= h are bad, older ones good"; hypothesis n says
"no culprit: every commit is good and the failures were flakes". A run at commit c fails with
probability 1 - false_pass when c is bad under h, and false_fail when it is good.

Every observation multiplies a prefix of the hypotheses by one factor and the rest by another,
so the posterior is constant between observed commits: it is kept as the observed commits'
counts and evaluated per segment in O(observed commits), whatever n is.

Where to probe: a probe at c splits the hypotheses into h <= c (c bad) and h > c (c good). The
search looks where the cumulative posterior crosses 1/2 (i/(k+1) for k probes at once) and takes
whichever of the two commits beside the crossing has the more informative outcome (mutual
information of the probe's result with the split). The pure median rule gets stuck once the
culprit is likely: re-running the culprit cannot tell it from its parent, only the parent can.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .flakiness import Learnt, Rates
from .search import Spending, Verdict, hop, untestable_for_all


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _h(p: float) -> float:
    """Binary entropy in bits."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


@dataclass(frozen=True, slots=True)
class Belief:
    """The search's answer for one test: `culprit` index, or None for "no culprit"."""

    culprit: int | None
    probability: float
    low: int  # the central range of hypotheses holding `confidence` of the mass
    high: int  # (n: "no culprit" is inside it)


@dataclass
class Posterior:
    n: int
    rates: Rates
    prior_flake: float = 0.5
    counts: dict[int, list[int]] = field(default_factory=dict)  # index -> [fails, passes]
    learn: Learnt | None = None  # rates learnt from the runs, from this prior; None: `rates`

    def observe(self, index: int, failed: bool, times: int = 1) -> None:
        if not 0 <= index < self.n:
            raise ValueError(f"index {index} outside 0..{self.n - 1}")
        self.counts.setdefault(index, [0, 0])[0 if failed else 1] += times

    def _pieces(self) -> list[tuple[int, int, int, int, int, int]]:
        """(first h, last h, fails and passes on the good side, on the bad side) per segment,
        then the no-culprit hypothesis n, under which every run was on a good commit."""
        points = sorted(self.counts)
        total_f = sum(f for f, _ in self.counts.values())
        total_p = sum(p for _, p in self.counts.values())
        # segment j holds h in (points[j-1], points[j]]: observed points < j good, rest bad
        out = []
        fg = pg = 0
        lo = 0
        for j, point in enumerate([*points, self.n - 1]):
            if point >= lo:
                out.append((lo, point, fg, pg, total_f - fg, total_p - pg))
                lo = point + 1
            if j < len(points):
                fg += self.counts[point][0]
                pg += self.counts[point][1]
        out.append((self.n, self.n, total_f, total_p, 0, 0))
        return out

    def _log_likelihood(self, fg: int, pg: int, fb: int, pb: int) -> float:
        """log P(runs | the good side's and the bad side's counts), rates fixed or learnt."""
        if self.learn is not None:  # the rates integrated out: Beta-binomial
            b = self.learn
            return (_lbeta(b.fails_good + fg, b.passes_good + pg)
                    - _lbeta(b.fails_good, b.passes_good)
                    + _lbeta(b.passes_bad + pb, b.fails_bad + fb)
                    - _lbeta(b.passes_bad, b.fails_bad))
        ff = min(max(self.rates.false_fail, 1e-12), 1 - 1e-12)
        fp = min(max(self.rates.false_pass, 1e-12), 1 - 1e-12)
        return (fg * math.log(ff) + pg * math.log1p(-ff)  # fail / pass at a good commit
                + fb * math.log1p(-fp) + pb * math.log(fp))  # fail / pass at a bad commit

    def segments(self) -> list[tuple[int, int, float]]:
        """(first h, last h, probability of each h in it), covering 0..n, normalised."""
        log_each = math.log((1 - self.prior_flake) / self.n)
        raw = [(a, b, (math.log(self.prior_flake) if a == self.n else log_each)
                + self._log_likelihood(fg, pg, fb, pb))
               for a, b, fg, pg, fb, pb in self._pieces()]
        top = max(w for _, _, w in raw)
        weights = [(a, b, math.exp(w - top)) for a, b, w in raw]
        total = sum((b - a + 1) * w for a, b, w in weights)
        return [(a, b, w / total) for a, b, w in weights]

    def current_rates(self, segs: list[tuple[int, int, float]] | None = None) -> Rates:
        """The rates to expect of the next run: fixed, or the posterior means when learnt."""
        if self.learn is None:
            return self.rates
        b = self.learn
        segs = segs if segs is not None else self.segments()
        ff = fp = 0.0
        for (a, last, w), (_, _, fg, pg, fb, pb) in zip(segs, self._pieces(), strict=True):
            mass = (last - a + 1) * w
            ff += mass * (b.fails_good + fg) / (b.fails_good + b.passes_good + fg + pg)
            fp += mass * (b.passes_bad + pb) / (b.passes_bad + b.fails_bad + fb + pb)
        return Rates(ff, fp)

    def belief(self, confidence: float) -> Belief:
        segs = self.segments()
        first, _, p = max(segs, key=lambda s: (s[2], -s[0]))
        low, high = self._credible(segs, confidence)
        return Belief(None if first == self.n else first, p, low, high)

    def _credible(self, segs: list[tuple[int, int, float]], mass: float) -> tuple[int, int]:
        """The commits between the (1-mass)/2 and (1+mass)/2 quantiles of the culprit."""
        tail = (1 - mass) / 2
        return self.quantile(tail, segs), self.quantile(1 - tail, segs)

    def cumulative(self, c: int, segs: list[tuple[int, int, float]] | None = None) -> float:
        """P(h <= c): the probability that commit c is bad."""
        segs = segs if segs is not None else self.segments()
        return sum((min(b, c) - a + 1) * w for a, b, w in segs if a <= c)

    def quantile(self, q: float, segs: list[tuple[int, int, float]] | None = None) -> int:
        """The first commit c with P(h <= c) >= q (n for the no-culprit end)."""
        segs = segs if segs is not None else self.segments()
        acc = 0.0
        for a, b, w in segs:
            size = b - a + 1
            if acc + size * w >= q - 1e-15:
                need = max(0, math.ceil((q - acc) / w - 1e-9) - 1) if w > 0 else 0
                return min(b, a + need)
            acc += size * w
        return self.n

    def information(self, c: int, segs: list[tuple[int, int, float]] | None = None) -> float:
        """Bits a run at commit c is expected to tell about the culprit: the mutual information
        of its outcome with the hypotheses, each predicting a failure with its own rates (the
        fixed ones, or those learnt from the runs it reads as good and as bad)."""
        segs = segs if segs is not None else self.segments()
        if self.learn is None:
            a = self.cumulative(c, segs)
            ff, fp = self.rates.false_fail, self.rates.false_pass
            p_fail = a * (1 - fp) + (1 - a) * ff
            return _h(p_fail) - a * _h(fp) - (1 - a) * _h(ff)
        b = self.learn
        p_fail = conditional = 0.0
        for (first, last, w), (_, _, fg, pg, fb, pb) in zip(segs, self._pieces(), strict=True):
            ff = (b.fails_good + fg) / (b.fails_good + b.passes_good + fg + pg)
            tp = (b.fails_bad + fb) / (b.passes_bad + b.fails_bad + fb + pb)
            bad = max(0, min(last, c) - first + 1) * w  # mass of h <= c: c is bad
            good = (last - first + 1) * w - bad
            p_fail += bad * tp + good * ff
            conditional += bad * _h(tp) + good * _h(ff)
        return _h(p_fail) - conditional

    def propose(self, q: float = 0.5) -> int:
        """The commit beside the q-crossing whose outcome is the more informative.

        With learnt rates, the commit whose outcome is expected to tell most of all (as
        git-bayesect picks): the crossing alone is misled by the no-culprit hypothesis, which
        learnt rates refute slowly. Information is piecewise smooth in c, so it is looked at
        beside every observed commit and at the posterior's quantiles.
        """
        segs = self.segments()
        if self.learn is not None and q == 0.5:
            points = {c for p in self.counts for c in (p - 1, p + 1)}
            points.update(self.quantile(i / 64, segs) for i in range(1, 64))
            points.update(c - 1 for c in list(points))
            options = sorted(c for c in points if 0 <= c < self.n)
            return max(options, key=lambda c: (self.information(c, segs), c))
        at = min(self.quantile(q, segs), self.n - 1)
        options = [c for c in (at - 1, at) if 0 <= c < self.n]
        return max(options, key=lambda c: (self.information(c, segs), c))


# A probe expected to tell less than this is not worth running (a deterministic test's commit
# whose outcome is already known tells ~1e-8 bits).
MIN_BITS = 1e-4


def failed(verdict: Verdict | bool | None) -> bool | None:
    """A verdict as the posterior reads it: failed (True), passed (False), or None."""
    if isinstance(verdict, Verdict):
        return None if verdict is Verdict.UNTESTABLE else verdict is Verdict.BAD
    return verdict


class FlakySearch(Spending):
    """Several tests, each with its own posterior, probed together (a `Search[int]`).

    Stops a test when one hypothesis reaches `confidence`; stops everything when `max_probes`
    probes were run or `max_untestable` of them could not run any test.
    """

    def __init__(self, n: int, tests: Iterable[str], rates: dict[str, Rates | Learnt], *,
                 confidence: float = 0.99, max_probes: int | None = None,
                 max_untestable: int | None = None, prior_flake: float = 0.5) -> None:
        super().__init__(max_untestable=max_untestable,
                         max_probes=max_probes if max_probes is not None else default_budget(n))
        self.n = n
        self.confidence = confidence
        self.posteriors = {
            t: Posterior(n, r, prior_flake) if isinstance(r, Rates)
            else Posterior(n, Rates(r.fails_good / (r.fails_good + r.passes_good),
                                    r.passes_bad / (r.passes_bad + r.fails_bad)),
                           prior_flake, learn=r)
            for t in tests for r in (rates[t],)
        }
        self.untestable: dict[str, set[int]] = {t: set() for t in self.posteriors}

    def observe(self, test: str, index: int, failed: bool | None, times: int = 1) -> None:
        """A known outcome: failed (True), passed (False) or could not tell (None)."""
        if failed is None:
            self.untestable[test].add(index)
        else:
            self.posteriors[test].observe(index, failed, times)

    def observe_probe(self, index: int,
                      verdicts: Mapping[str, Verdict] | Mapping[str, bool | None]) -> None:
        """A probe that ran: a verdict (or failed / passed / None) per test."""
        outcomes = {t: failed(v) for t, v in verdicts.items()}
        self.spend(index, untestable_for_all(outcomes))
        for test, outcome in outcomes.items():
            self.observe(test, index, outcome)

    def belief(self, test: str) -> Belief:
        return self.posteriors[test].belief(self.confidence)

    def open_tests(self) -> list[str]:
        return [t for t in self.posteriors if self.belief(t).probability < self.confidence]

    def suspects(self, test: str) -> list[int]:
        """The commits holding `confidence` of the test's culprit mass ("no culprit" aside)."""
        b = self.belief(test)
        hi = min(b.high, self.n - 1)
        return list(range(min(b.low, hi), hi + 1))

    def next_probe(self) -> int | None:
        """Where to run next, for the least certain test that a testable commit can still
        inform; None when every test is decided, stuck behind untestable commits, or the
        budget is spent."""
        if self.budget_spent:
            return None
        sure = {t: self.belief(t).probability for t in self.posteriors}
        for test in sorted((t for t in sure if sure[t] < self.confidence), key=sure.__getitem__):
            posterior = self.posteriors[test]
            point = hop(posterior.propose(), -1, self.n, self.untestable[test])
            if point is not None and posterior.information(point) >= MIN_BITS:
                return point
        return None

    def next_probes(self, k: int = 1) -> list[int]:
        """One round of k probes: for the least certain test, the commits beside the points
        where its cumulative posterior crosses i/(k+1), i = 1..k (k = 1: the 1/2 crossing)."""
        if k <= 1:
            point = self.next_probe()
            return [] if point is None else [point]
        if self.budget_spent:
            return []
        room = (self.max_probes or 0) - self.probes
        sure = {t: self.belief(t).probability for t in self.posteriors}
        for test in sorted((t for t in sure if sure[t] < self.confidence), key=sure.__getitem__):
            posterior = self.posteriors[test]
            segs = posterior.segments()
            points: list[int] = []
            for i in range(1, k + 1):
                at = min(posterior.quantile(i / (k + 1), segs), self.n - 1)
                blocked = self.untestable[test] | set(points)
                # beside the crossing, whichever side tells more, as `propose` does
                options = [c for c in (at - 1, at) if 0 <= c < self.n and c not in blocked]
                if not options:
                    hopped = hop(at, -1, self.n, blocked)
                    options = [] if hopped is None else [hopped]
                if options:
                    point = max(options, key=lambda c: (posterior.information(c, segs), c))
                    if posterior.information(point, segs) >= MIN_BITS:
                        points.append(point)
            if points:
                return sorted(points)[:room]
        return []


def default_budget(n: int) -> int:
    """Probes a flaky search may spend: room for a 0.3 false-failure rate at n = 2000."""
    return 6 * max(1, math.ceil(math.log2(n + 1))) + 10
