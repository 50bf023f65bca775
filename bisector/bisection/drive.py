"""Where the next commit is chosen and run: one loop for every `Search`.

`drive` asks the search for the next round (`next_probes(k)`), has the prober answer it (from
what is known, or by running it), hands the verdicts back (`observe_probe`), and stops when the
search has nothing left to ask or its budget is spent. `bisect_range` is the deterministic
search of a range with it: `Bisection` on a first-parent line, `DagBisection` on the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import GitError
from ..model import TestResult
from ..search import Bisection, DagBisection, Search, Verdict, max_probes
from .context import Context
from .prober import Prober, ProbeRequest

C = TypeVar("C")

# What a loop does with a probe's results: the verdict per open test, and any bookkeeping
Read = Callable[[C, list[str], dict[str, TestResult]], dict[str, Verdict]]
Ask = Callable[[C, list[str]], ProbeRequest]


def drive(search: Search[C], prober: Prober, *, jobs: int, ask: Ask[C], read: Read[C],
          reuse: bool = True, bounds: Callable[[], Iterable[str]] | None = None) -> int:
    """Run the search until it asks for nothing more; the number of rounds it asked for.

    `ask` makes a candidate and the round's open tests a `ProbeRequest`; `read` turns a
    probe's results for those tests into verdicts (recording what the caller keeps of them:
    trails, logs). With `reuse`, what the evidence already knows is not run again. `bounds`
    names, before each round, the commits whose setups the executor should keep (ADR 25).
    """
    rounds = 0
    while points := search.next_probes(jobs):
        tests = search.open_tests()
        if bounds is not None:
            prober.keep(bounds())
        requests = [ask(point, tests) for point in points]
        answers = prober.known_or_run(requests) if reuse else prober.run(requests)
        rounds += 1
        for point, results in zip(points, answers, strict=True):
            search.observe_probe(point, read(point, tests, results))
    return rounds


@dataclass(frozen=True, slots=True)
class Searched:
    """A deterministic search's answer: per test the commits still suspected, oldest first
    (one when the culprit is isolated), and what to tell the user."""

    candidates: int
    suspects: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]
    first: str  # the oldest candidate: its parent is the good end on a first-parent line


def bisect_range(ctx: Context, tests: list[str], good_sha: str, bad_sha: str,
                 first_parent: bool) -> Searched:
    """Bisect good..bad for tests known to pass at good and fail at bad.

    Each test's verdicts go to its trail: what history settled first, then each probe's.
    """
    candidates, search = _search_of(ctx, tests, good_sha, bad_sha, first_parent)
    ctx.progress.plan("bisect", len(candidates), max_probes(len(candidates)))
    index = {sha: i for i, sha in enumerate(candidates)}
    ctx.prober.load_known(candidates, tests)
    settled = ctx.evidence.settled(tests, index, bad_sha)
    for t in tests:
        for sha, verdict in settled[t].items():
            search.observe(t, index[sha], verdict)
    for t in tests:
        ctx.trails.mark_settled(t, settled[t], index)
    # a commit this bisection answered already (the head start beside the bad end, run or
    # found stored) is not counted again
    ctx.prober.tally.reused += len({sha for by_sha in settled.values() for sha in by_sha}
                                   - ctx.prober.answered)

    def ask(i: int, open_tests: list[str]) -> ProbeRequest:
        left = len({j for t in open_tests for j in search.suspects(t)})
        return ProbeRequest.of(candidates[i], open_tests,
                               f"bisect, {left} of {len(candidates)} candidates left", left)

    def read(i: int, open_tests: list[str], results: dict[str, TestResult]
             ) -> dict[str, Verdict]:
        sha = candidates[i]
        verdicts = {t: ctx.evidence.verdict(t, results[t], sha) for t in open_tests}
        for t, verdict in verdicts.items():
            ctx.trails.mark(t, verdict, sha)
        return verdicts

    # on a first-parent line only: in the whole graph's topological order the commit before
    # the suspects is no parent of theirs
    drive(search, ctx.prober, jobs=ctx.jobs, ask=ask, read=read,
          bounds=(lambda: _bounds(search, tests, candidates, good_sha)) if first_parent else None)
    notes = [f"{t}: {candidates[i][:10]} was {verdict} against the commits around it; "
             "the test may be flaky" for t, i, verdict in search.inconsistent]
    if search.budget_spent:
        notes.append(f"stopped after {search.untestable_probes} untestable probes: "
                     "culprits are bracketed, not isolated")
    return Searched(len(candidates), {t: tuple(candidates[i] for i in search.suspects(t))
                                      for t in tests}, tuple(notes), candidates[0])


def _bounds(search: Bisection | DagBisection, tests: list[str], candidates: list[str],
            good_sha: str) -> set[str]:
    """Per test, the last commit known to pass and the first known to fail: the culprit's
    parent and the culprit once the search ends, which the confirmation runs again (a test
    done early keeps its own), so their setups are kept (ADR 25)."""
    kept = set()
    for t in tests:
        if suspects := search.suspects(t):
            low, high = min(suspects), max(suspects)
            kept |= {candidates[low - 1] if low else good_sha, candidates[high]}
    return kept


def _search_of(ctx: Context, tests: list[str], good_sha: str, bad_sha: str,
               first_parent: bool) -> tuple[list[str], Bisection | DagBisection]:
    """The candidates of the range, oldest first, and the search over them."""
    if first_parent:
        candidates = ctx.repo.range(good_sha, bad_sha, first_parent=True)
    else:
        candidates, parents = ctx.repo.graph(good_sha, bad_sha)
    if not candidates or candidates[-1] != bad_sha:
        raise GitError(f"cannot list commits {good_sha[:10]}..{bad_sha[:10]}",
                       hint="run `git fetch --unshallow` if this is a shallow clone")
    if first_parent:
        return candidates, Bisection(len(candidates), tests, max_untestable=ctx.max_untestable)
    return candidates, DagBisection(candidates, parents, tests,
                                    max_untestable=ctx.max_untestable)
