"""Deterministic bisection, pure: which commit to probe next, and when the culprit is known.

Candidates are indexed 0..n-1, oldest first; index n-1 is the known-bad end and index -1 the
known-good end. Each test keeps its own bracket (latest good, earliest bad), so one probe that
runs several tests narrows each of them, and tests that broke at different commits get
different culprits.

Untestable commits (build failure, collection error, timeout: `git bisect`'s exit 125) are
stepped over. Next to a commit found untestable the search hops outward with doubling offsets,
so a stretch of L untestable commits costs O(log L) probes to get past, and an optional budget
of untestable probes stops it with the culprit bracketed, never guessed.

Every search (these two, `bayes.FlakySearch`, and a search over hunks) implements `Search`,
so that one loop (`bisection.drive`) drives any of them, as pytest-xdist's one `DSession`
drives any scheduling.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

C = TypeVar("C")


class Verdict(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    UNTESTABLE = "untestable"


class Search(Protocol[C]):
    """A search over candidates of type C (a commit's index, a set of hunks), several tests
    at once, pure: it proposes probes and learns from their verdicts, never runs one.

    `next_probes(k)`: up to k candidates to run in one round ([] once done or out of budget);
    `observe_probe`: the verdicts of a probe that ran, per test; `suspects`: the candidates a
    test still suspects, oldest first (one when its culprit is isolated).
    """

    def open_tests(self) -> list[str]: ...

    def next_probes(self, k: int = 1) -> list[C]: ...

    def observe_probe(self, candidate: C, verdicts: Mapping[str, Verdict]) -> None: ...

    @property
    def budget_spent(self) -> bool: ...

    def suspects(self, test: str) -> list[C]: ...


class Spending:
    """The bookkeeping every search shares: the probes run (and which were untestable for
    every test), and the budgets that stop a search: None for no bound."""

    def __init__(self, *, max_untestable: int | None = None,
                 max_probes: int | None = None) -> None:
        self.max_untestable = max_untestable
        self.max_probes = max_probes
        self.probes = 0
        self.untestable_probes = 0
        self.probed: set[int] = set()
        # (test, index, verdict) of verdicts that contradict the earlier ones (flake evidence)
        self.inconsistent: list[tuple[str, int, Verdict]] = []

    def spend(self, index: int, all_untestable: bool) -> None:
        self.probes += 1
        self.probed.add(index)
        if all_untestable:
            self.untestable_probes += 1

    @property
    def budget_spent(self) -> bool:
        return ((self.max_probes is not None and self.probes >= self.max_probes)
                or (self.max_untestable is not None
                    and self.untestable_probes >= self.max_untestable))


def untestable_for_all(verdicts: Mapping[str, object]) -> bool:
    """A probe that told nothing: every test's verdict untestable (or None: could not tell)."""
    return bool(verdicts) and all(v is None or v is Verdict.UNTESTABLE
                                  for v in verdicts.values())


def max_probes(n: int) -> int:
    """What a plain bisection needs for n candidates: ceil(log2 n) (0 for a single one)."""
    return math.ceil(math.log2(n)) if n > 1 else 0


def _offsets() -> Iterator[int]:
    yield 0
    step = 1
    while True:
        yield step
        yield -step
        step *= 2


def hop(target: int, lo: int, hi: int, blocked: Container[int]) -> int | None:
    """The target, or the point nearest it strictly inside (lo, hi) that is not blocked.

    Doubling offsets first, so a blocked stretch of L commits costs O(log L) probes to get
    past; they leave gaps only inside long stretches, so the nearest open point comes last.
    """
    for offset in _offsets():
        point = target + offset
        if offset > 0 and point >= hi and target - offset <= lo:
            break
        if lo < point < hi and point not in blocked:
            return point
    left = [i for i in range(lo + 1, hi) if i not in blocked]
    return min(left, key=lambda i: (abs(i - target), i)) if left else None


@dataclass
class Track:
    """One test's state: good at `lo`, bad at `hi`, culprit somewhere in (lo, hi]."""

    n: int
    lo: int = -1
    hi: int = -2  # set to n - 1 in __post_init__
    untestable: set[int] = field(default_factory=set)
    inconsistent: list[tuple[int, Verdict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("a bisection needs at least one candidate")
        if self.hi == -2:
            self.hi = self.n - 1

    def observe(self, index: int, verdict: Verdict) -> None:
        if verdict is Verdict.UNTESTABLE:
            self.untestable.add(index)
        elif verdict is Verdict.GOOD:
            if index >= self.hi:
                self.inconsistent.append((index, verdict))
            else:
                self.lo = max(self.lo, index)
        elif index <= self.lo:
            self.inconsistent.append((index, verdict))
        else:
            self.hi = min(self.hi, index)

    def unknown(self) -> list[int]:
        return [i for i in range(self.lo + 1, self.hi) if i not in self.untestable]

    @property
    def done(self) -> bool:
        return not self.unknown()

    @property
    def culprit(self) -> int | None:
        """The first bad commit, once nothing but it is left between the brackets."""
        return self.hi if self.hi - self.lo == 1 else None

    @property
    def suspects(self) -> range:
        return range(self.lo + 1, self.hi + 1)

    def propose(self) -> int | None:
        """The midpoint, or the nearest point to it that hops over known-untestable commits."""
        if self.done:
            return None
        return hop((self.lo + self.hi) // 2, self.lo, self.hi, self.untestable)

    def propose_many(self, k: int) -> list[int]:
        """Up to k points that cut (lo, hi] into parts, oldest first.

        No part holds more than (k+1)**(r-1) of the suspects, r the rounds they need
        (`rounds_needed`), so ceil(log_{k+1} N) rounds isolate the culprit, as an equal
        n-section does; within that, the parts are powers of k + 1 where that makes the
        rounds fewer on average (`round_cuts`: 36 suspects at k = 2 become 9, 9 and 18, 3.39
        rounds on average, not 12, 12 and 12, 3.5). Past EXACT_CUTS, equal parts.
        """
        if self.done:
            return []
        size = self.hi - self.lo
        parts = round_cuts(size, k)
        targets = [self.lo + 1 + i
                   for i in (_ends(parts) if parts is not None else _equal_ends(size, k))]
        points: list[int] = []
        for target in targets:
            if target <= self.lo:
                continue
            blocked = self.untestable | set(points)
            point = hop(target, self.lo, self.hi, blocked)
            if point is not None:
                points.append(point)
        return sorted(points)


class Bisection(Spending):
    """Several tests bisected together over the same candidates (a `Search[int]`).

    `max_untestable` bounds how many untestable probes are spent (None: no bound); when it is
    reached the remaining tests stop with their culprit bracketed in `suspects`.
    """

    def __init__(self, n: int, tests: Iterable[str], *, max_untestable: int | None = None) -> None:
        super().__init__(max_untestable=max_untestable)
        self.n = n
        self.tracks = {t: Track(n) for t in tests}

    def observe(self, test: str, index: int, verdict: Verdict) -> None:
        """A verdict, known or probed; one against the brackets is kept as flake evidence."""
        track = self.tracks[test]
        before = len(track.inconsistent)
        track.observe(index, verdict)
        if len(track.inconsistent) > before:
            self.inconsistent.append((test, index, verdict))

    def observe_probe(self, index: int, verdicts: Mapping[str, Verdict]) -> None:
        """Record a probe that ran (unlike known results fed with `observe`)."""
        self.spend(index, untestable_for_all(verdicts))
        for test, verdict in verdicts.items():
            self.observe(test, index, verdict)

    def open_tests(self) -> list[str]:
        return [t for t, tr in self.tracks.items() if not tr.done]

    def suspects(self, test: str) -> list[int]:
        """The indices a test still suspects, oldest first."""
        return list(self.tracks[test].suspects)

    def next_probe(self) -> int | None:
        """The next commit to run, for the test with the most left to search."""
        if self.budget_spent:
            return None
        open_tracks = [self.tracks[t] for t in self.open_tests()]
        if not open_tracks:
            return None
        widest = max(open_tracks, key=lambda tr: len(tr.unknown()))
        return widest.propose()

    def next_probes(self, k: int = 1) -> list[int]:
        """The next round: k commits to run at once, n-secting the widest open test's range."""
        if k <= 1:
            point = self.next_probe()
            return [] if point is None else [point]
        if self.budget_spent:
            return []
        open_tracks = [self.tracks[t] for t in self.open_tests()]
        if not open_tracks:
            return []
        return max(open_tracks, key=lambda tr: len(tr.unknown())).propose_many(k)


def rounds_needed(n: int, k: int) -> int:
    """ceil(log_{k+1} n), in integers: the rounds of k probes a deterministic search needs."""
    rounds, reach = 0, 1
    while reach < n:
        reach *= k + 1
        rounds += 1
    return rounds


# Cuts per round up to which parts are chosen exactly (`_best`; its work grows as
# (log n) ** cuts: 0.5 s at a million suspects and 4, once); with more, equal parts.
EXACT_CUTS = 4


def head_start(n: int, m: int, k: int) -> list[int]:
    """Where m probes run beside the bad end's check, before a search of n suspects (indices
    0..n-1, the last the bad end) in rounds of k: the indices, oldest first, that make the
    expected number of later rounds least, the culprit equally likely anywhere.

    Each probe ends a part of the suspects (a failure there keeps that part and the ones
    before it). A part of (k+1)**j suspects takes j rounds, so the parts are such powers and
    the last takes what is left: 63 suspects at k = 2 become 27 (3 rounds) and 36 (3.39 on
    average), where the good end's check and then 63 suspects would take 1 + 3.86.
    """
    m = min(m, n - 1)
    if m < 1:
        return []
    if m > EXACT_CUTS or k > EXACT_CUTS:  # equal parts, as such a round cuts
        return sorted(set(_equal_ends(n, m)) - {-1, n - 1})
    return _ends(cut(n, m, k, cap=n))


def cut(n: int, m: int, k: int, *, cap: int) -> tuple[int, ...]:
    """The sizes of the parts before the last that at most m probes cut n suspects into,
    oldest first, for the fewest rounds of k on average after them; no part (the last
    included) larger than `cap`. Exact up to EXACT_CUTS cuts and k (the caller cuts
    equally past that)."""
    return _best(n, m, k, cap)[1]


def round_cuts(n: int, k: int) -> tuple[int, ...] | None:
    """One search round's parts (as `cut`) for n suspects: each part at most
    (k+1)**(r-1), r the rounds n needs (`rounds_needed`), so no culprit takes more rounds
    than an equal n-section gives; None past EXACT_CUTS."""
    if k > EXACT_CUTS or n < 2:
        return None
    return cut(n, k, k, cap=_round_cap(n, k))


def _round_cap(n: int, k: int) -> int:
    """The most suspects one part of a round may hold: (k+1)**(r-1), r the rounds n need."""
    return (k + 1) ** (rounds_needed(n, k) - 1)


def _equal_ends(n: int, m: int) -> list[int]:
    """Where m cuts end m + 1 equal parts of n suspects, from 0 (the n-section of ADR 8;
    a part of none repeats the index before it, or is -1)."""
    return [(j * n) // (m + 1) - 1 for j in range(1, m + 1)]


def _ends(sizes: Iterable[int]) -> list[int]:
    """The index each part ends at, from 0: where its probe goes."""
    points, end = [], 0
    for size in sizes:
        end += size
        points.append(end - 1)
    return points


@functools.cache
def _weighted(n: int, k: int) -> float:
    """n times the expected rounds the search (`round_cuts` each round) takes on n suspects."""
    if n < 2:
        return 0.0
    return n + _best(n, k, k, _round_cap(n, k))[0]


@functools.cache
def _best(n: int, m: int, k: int, cap: int) -> tuple[float, tuple[int, ...]]:
    """(least sum of size * expected rounds over the parts, the sizes before the last): at
    most m cuts, each part a power of k + 1 (a size in between costs about what the next
    power costs and holds fewer suspects), none over cap; infinite where none fits."""
    best: tuple[float, tuple[int, ...]] = (_weighted(n, k) if n <= cap else math.inf, ())
    if m == 0:
        return best
    size = 1
    while size < n and size <= cap:
        rest, sizes = _best(n - size, m - 1, k, cap)
        cost = _weighted(size, k) + rest
        if cost < best[0]:
            best = (cost, (size, *sizes))
        size *= k + 1
    return best


class DagBisection(Spending):
    """Bisection over a commit graph (a `Search[int]`), the way `git bisect` models it.

    `commits` are in topological order (parents first) with their parents inside the range.
    A test is bad at a commit iff the culprit is that commit or one of its ancestors, so a bad
    probe keeps only its ancestors as suspects and a good probe removes its ancestors. Each
    probe goes where it best halves the suspects of the test with the most left. Ancestor
    sets are bitmasks, built once in topological order.
    """

    def __init__(self, commits: list[str], parents: dict[str, tuple[str, ...]],
                 tests: Iterable[str], *, max_untestable: int | None = None) -> None:
        super().__init__(max_untestable=max_untestable)
        self.commits = commits
        index = {sha: i for i, sha in enumerate(commits)}
        self.ancestors: list[int] = []
        for i, sha in enumerate(commits):
            mask = 1 << i
            for p in parents.get(sha, ()):
                if p in index:
                    mask |= self.ancestors[index[p]]
            self.ancestors.append(mask)
        everything = (1 << len(commits)) - 1
        # the last commit is the bad end: every suspect is one of its ancestors
        self.masks = {t: self.ancestors[-1] & everything for t in tests}
        self.known_bad = {t: 1 << (len(commits) - 1) for t in self.masks}
        self.untestable: dict[str, int] = dict.fromkeys(self.masks, 0)

    def observe(self, test: str, index: int, verdict: Verdict) -> None:
        """A verdict, known or probed. Good with a known-bad ancestor (or itself bad), or bad
        with no suspect among its ancestors, contradicts the graph: it is kept as flake
        evidence and not applied (as `Track` does), so the suspects never run out."""
        bit = 1 << index
        if verdict is Verdict.UNTESTABLE:
            self.untestable[test] |= bit
        elif verdict is Verdict.BAD:
            if not self.masks[test] & self.ancestors[index]:
                self.inconsistent.append((test, index, verdict))
                return
            self.masks[test] &= self.ancestors[index]
            self.known_bad[test] |= bit
        else:
            if self.ancestors[index] & self.known_bad[test]:
                self.inconsistent.append((test, index, verdict))
                return
            self.masks[test] &= ~self.ancestors[index]

    def observe_probe(self, index: int, verdicts: Mapping[str, Verdict]) -> None:
        self.spend(index, untestable_for_all(verdicts))
        for test, verdict in verdicts.items():
            self.observe(test, index, verdict)

    def _open_points(self, test: str) -> int:
        return self.masks[test] & ~self.untestable[test] & ~self.known_bad[test]

    def open_tests(self) -> list[str]:
        return [t for t in self.masks
                if self.masks[t].bit_count() > 1 and self._open_points(t)]

    def next_probe(self) -> int | None:
        if self.budget_spent:
            return None
        tests = self.open_tests()
        if not tests:
            return None
        test = max(tests, key=lambda t: self.masks[t].bit_count())
        suspects = self.masks[test]
        total = suspects.bit_count()
        open_points = self._open_points(test)
        best, best_score = None, -1
        i = 0
        while open_points:
            if open_points & 1:
                below = (self.ancestors[i] & suspects).bit_count()
                score = min(below, total - below)
                if score > best_score:
                    best, best_score = i, score
            open_points >>= 1
            i += 1
        return best

    def next_probes(self, k: int = 1) -> list[int]:
        """k commits for one round: the points whose share of the suspects below them is
        nearest j/(k+1), j = 1..k, as n-section does on a line (one point per share)."""
        first = self.next_probe()
        if first is None or k <= 1:
            return [] if first is None else [first]
        test = max(self.open_tests(), key=lambda t: self.masks[t].bit_count())
        suspects = self.masks[test]
        total = suspects.bit_count()
        scored = []
        open_points, i = self._open_points(test), 0
        while open_points:
            if open_points & 1:
                scored.append(((self.ancestors[i] & suspects).bit_count(), i))
            open_points >>= 1
            i += 1
        chosen: list[int] = []
        shares: set[int] = set()
        for j in range(1, k + 1):
            want = total * j / (k + 1)
            options = [(abs(below - want), i, below) for below, i in scored
                       if 0 < below < total and below not in shares and i not in chosen]
            if options:
                _, point, below = min(options)
                chosen.append(point)
                shares.add(below)
        return sorted(chosen) or [first]

    def suspects(self, test: str) -> list[int]:
        mask, out, i = self.masks[test], [], 0
        while mask:
            if mask & 1:
                out.append(i)
            mask >>= 1
            i += 1
        return out
