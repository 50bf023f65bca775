"""The ends of the range: run each, run again one that contradicts the user, and split the
tests into those a deterministic search takes (`live`), those the flake-aware search takes
(`flaky`), and those with nothing to find (a note each)."""

from __future__ import annotations

from dataclasses import dataclass

from ..gitrepo import Repository
from ..search import Verdict, head_start
from .context import Context
from .prober import ProbeRequest

# History read before the good end to estimate how flaky a test is.
RATE_WINDOW = 50

# An end that contradicts the user (fails at --good, passes at --bad) is believed only after
# this many runs there all contradict: the first run and up to two more.
END_RUNS = 3
# A test with no steady history (`conclude.steady_tests`) that fails at --good is believed to
# fail there only after this many runs all fail: nothing says it is not a flaky test failing
# falsely, and at a false-failure rate f a refusal after n runs costs f**n of bisections
# (f = 0.2: 0.8 % after 3, 0.03 % after 5; ADR 24).
END_RUNS_COLD = 5


@dataclass(frozen=True, slots=True)
class Split:
    live: tuple[str, ...]
    flaky: tuple[str, ...]
    notes: tuple[str, ...]


# A range this short has its commits' details read in one `git log` up front (a probe's record
# needs them; one call per probe was most of the git time); a longer one reads them per probe.
PREFETCH_MAX = 4096


def rate_line(repo: Repository, good_sha: str, bad_sha: str) -> tuple[list[str], list[str]]:
    """The first-parent line through the range (the candidates, oldest first), and the same
    line with up to RATE_WINDOW commits before the good end, whose runs say how flaky a test
    is."""
    line_range = repo.range(good_sha, bad_sha, first_parent=True)
    before = list(reversed(repo.first_parent(good_sha, limit=RATE_WINDOW)))
    if len(line_range) <= PREFETCH_MAX:  # every probe records its commit's details: one call
        repo.commits([good_sha, *line_range])
    return line_range, before + line_range


def check_ends(ctx: Context, tests: list[str], good_sha: str, bad_sha: str, line: list[str],
               candidates: list[str] | None = None) -> Split:
    """Both ends run (or known), contradictions run again, then each test's way.

    With `candidates` (a first-parent line's) and `--jobs` 2 or more, a good end nothing is
    known at is not run first (`_defers_good_end`): its slots in the first round run the
    search's head start beside the bad end, and the good end runs only if the search ends on
    the first candidate (`check_good_end`; ADR 26).
    """
    first = [ProbeRequest.of(bad_sha, tests, "check bad end")]
    head: list[int] = []
    if candidates is not None and _defers_good_end(ctx, tests, good_sha, line):
        # the slots the bad end leaves (the same whether it is known or not: a warm rerun
        # asks for what the cold one ran), the good end taking one the head start cannot
        # fill (a range of one or a few candidates)
        head = head_start(len(candidates), ctx.jobs - 1, ctx.jobs)
        first += [ProbeRequest.of(candidates[i], tests, f"bisect, head start of "
                                  f"{len(candidates)} candidates", len(candidates))
                  for i in head]
    defer = 0 < len(head) == ctx.jobs - 1
    if not defer:
        first.append(ProbeRequest.of(good_sha, tests, "check good end"))
    ctx.prober.known_or_run(first)
    _recheck(ctx, tests, good_sha, bad_sha, line, good_end=not defer)
    return _split(ctx, tests, good_sha, bad_sha, line)


def _defers_good_end(ctx: Context, tests: list[str], good_sha: str, line: list[str]) -> bool:
    """Whether the good end waits for the search: slots to spare beside the bad end, no run
    of any test known there, and no test history already calls flaky (the flake-aware
    search wants the good end's runs for its prior)."""
    ev = ctx.evidence
    return (ctx.jobs >= 2 and all(ev.latest(t, good_sha) is None for t in tests)
            and not any(ev.estimate(t, line).flaky for t in tests))


def _split(ctx: Context, tests: list[str], good_sha: str, bad_sha: str, line: list[str]
           ) -> Split:
    """Each test's way from what the ends gave; an end not run (a deferred good end) is
    taken to be what the user said it is."""
    live, flaky, notes = [], [], []
    ev = ctx.evidence
    for t in tests:
        if ev.estimate(t, line).flaky:
            if ev.counts(t, bad_sha)[0]:
                flaky.append(t)
            else:
                notes.append(f"{t}: does not fail at bad {bad_sha[:10]}: nothing to find")
            continue
        at_bad, at_good = ev.latest(t, bad_sha), ev.latest(t, good_sha)
        vb = Verdict.UNTESTABLE if at_bad is None else ev.verdict(t, at_bad, bad_sha)
        vg = Verdict.GOOD if at_good is None else ev.verdict(t, at_good, good_sha)
        if vb is Verdict.UNTESTABLE and at_good is None:
            notes.append(f"{t}: cannot be run at bad {bad_sha[:10]} "
                         f"({at_bad.message if at_bad else 'no result'})")
        elif vb is Verdict.UNTESTABLE and vg is Verdict.UNTESTABLE:
            notes.append(f"{t}: cannot be run at either end "
                         f"({at_bad.message if at_bad else 'no result'})")
        elif vb is not Verdict.BAD:
            notes.append(f"{t}: does not fail at bad {bad_sha[:10]} "
                         f"({at_bad.outcome if at_bad else 'no result'}): nothing to find")
        elif vg is Verdict.BAD:
            notes.append(f"{t}: already fails at good {good_sha[:10]}: give an older --good")
        else:
            live.append(t)
    return Split(tuple(live), tuple(flaky), tuple(notes))


def check_good_end(ctx: Context, tests: list[str], good_sha: str, bad_sha: str,
                   line: list[str]) -> Split:
    """The good end that `check_ends` deferred, for tests whose search ended on the first
    candidate: run it, run it again while it fails (as `_recheck` would have before the
    search), and say which tests stay live, which turned out flaky, and which fail there."""
    ctx.prober.known_or_run([ProbeRequest.of(good_sha, tests, "check good end")])
    _recheck(ctx, tests, good_sha, bad_sha, line)
    return _split(ctx, tests, good_sha, bad_sha, line)


def _recheck(ctx: Context, tests: list[str], good_sha: str, bad_sha: str, line: list[str],
             *, good_end: bool = True) -> None:
    """Run an end again while it contradicts the user, until it agrees or has contradicted
    END_RUNS times (END_RUNS_COLD at --good for a test with no steady history): one failure
    at --good (or pass at --bad) may be a flake.

    Nothing runs when the ends agree. The good end is run again for a test that fails at
    both ends (unless history already shows it flaky: the flaky search takes it anyway);
    the bad end only when no test fails there (a test of a --test-file that passes at bad
    is no contradiction, the refusal of the whole bisection is). A re-run that agrees
    leaves both outcomes stored at one commit: flakiness, which the estimate sees and the
    flaky search starts from, its rates learnt from these runs. Without `good_end` (it was
    deferred) only the bad end is run again.
    """
    ev = ctx.evidence
    flaky = {t for t in tests if ev.estimate(t, line).flaky}
    for _ in range(END_RUNS_COLD):  # a round at most per re-run (an untestable one counts)
        ev.set_references(tests, bad_sha)
        requests = []
        fails_at_bad = [t for t in tests if ev.counts(t, bad_sha)[0]]
        if not fails_at_bad:
            group = [t for t in tests if ev.only(t, bad_sha, Verdict.GOOD, END_RUNS)]
            if group:
                requests.append(ProbeRequest.of(bad_sha, group, "recheck bad end"))
        short = {t: _good_end_runs(ctx, t) - ev.agreeing(t, good_sha, Verdict.BAD)
                 for t in fails_at_bad
                 if t not in flaky and ev.only(t, good_sha, Verdict.BAD, _good_end_runs(ctx, t))
                 } if good_end else {}
        # the runs still wanted share a round where --jobs leaves slots free
        requests += ProbeRequest.repeated(good_sha, short, "recheck good end",
                                          ctx.jobs - len(requests))
        if not requests:
            break
        ctx.prober.run(requests)
    ev.set_references(tests, bad_sha)


def _good_end_runs(ctx: Context, test: str) -> int:
    return END_RUNS if test in ctx.steady else END_RUNS_COLD
