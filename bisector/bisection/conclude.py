"""From what the searches suspect to `Finding`s: confirmation, verdicts, owners.

`confirm` runs each isolated culprit and its parent again until each has its agreeing runs
(two at the parent; at the culprit two, or four with no steady history), stored runs counted
(an inconsistency is reported, not hidden); `flaky_finding` words the
flake-aware search's belief; `Owners` names a culprit's owners by one CODEOWNERS, the rule
find-break and the nightly share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..bayes import Belief
from ..flakiness import Estimate, wilson
from ..gitrepo import Repository
from ..model import BisectResult, CommitInfo, Finding, TestResult
from ..owners import Rule, culprit_owners, parse
from ..search import Verdict
from .bisect_log import Trails, replayable, start_line
from .context import Context
from .evidence import Evidence, verdict_of
from .prober import ProbeRequest, Tally

# Runs that must agree at the culprit (failing as bisected) and at its parent (passing)
# before a culprit is confirmed: the search's run and one more. Where the store or this
# bisection already holds that many agreeing runs, none is made again (ADR 0022).
CONFIRM_RUNS = 2
# A test with no steady history may be flaky without anyone knowing: one false failure on a
# good commit leads the search to it (most cold searches of a test flaking 20 % of the time
# meet one), and one more run there fails again as often as the test flakes (1 in 5). Its
# culprit needs three more failing runs (1 in 125; two more, 1 in 25, still named a wrong
# culprit in 1 of 20 cold bisections; ADR 24). At --jobs 2 the four cost no more rounds than
# three: culprit and parent, then the culprit twice. A test whose stored history holds
# STEADY_RUNS clean runs needs CONFIRM_RUNS.
CONFIRM_RUNS_COLD = 4
STEADY_RUNS = 20


def steady_tests(ctx: Context, tests: Iterable[str], line: list[str]) -> frozenset[str]:
    """The tests whose runs on the rate line (history, before this bisection ran anything)
    number STEADY_RUNS or more, none of them flaky."""
    return frozenset(t for t in tests
                     if (e := ctx.evidence.estimate(t, line)).runs >= STEADY_RUNS
                     and not e.flaky)


def confirm(ctx: Context, tests: list[str], suspects: dict[str, tuple[str, ...]],
            merged_by: dict[str, str]) -> list[Finding]:
    """Run each culprit and its parent again until each has its agreeing runs
    (`_confirmation_runs`); a test not isolated is bracketed."""
    by_culprit: dict[str, list[str]] = {}
    for t in tests:
        if len(suspects[t]) == 1:
            by_culprit.setdefault(suspects[t][0], []).append(t)
    merges = {merged_by[t] for t in tests if t in merged_by}
    infos = ctx.repo.commits(sorted({*by_culprit, *merges}))
    confirmations: dict[str, tuple[TestResult, TestResult]] = {}
    if by_culprit:
        ctx.progress.plan("confirm culprits", 0, CONFIRM_RUNS_COLD * len(by_culprit))
    for sha, group in sorted(by_culprit.items()):
        parent = infos[sha].parents[0]
        confirmations.update(_confirmation_runs(ctx, sha, parent, group))
    findings = []
    for t in tests:
        merge = infos.get(merged_by[t]) if t in merged_by else None
        if len(suspects[t]) != 1:
            findings.append(_bracketed(ctx, t, suspects[t], merge))
        else:
            findings.append(_confirmed(ctx, t, infos[suspects[t][0]], confirmations[t], merge))
    return findings


def _confirmation_runs(ctx: Context, sha: str, parent: str, group: list[str]
                       ) -> dict[str, tuple[TestResult, TestResult]]:
    """Per test, the (culprit, parent) runs its confirmation reads. Rounds of one more run of
    each commit short of its agreeing runs (CONFIRM_RUNS at the parent; at the culprit, as
    many as `_culprit_runs` says), culprit and parent in one round (`--jobs` 2 or more runs
    them at once), until each has them or a run disagrees; stored runs count (a warm rerun
    runs nothing). What is read: a disagreeing run where there is one, else the latest."""
    ev = ctx.evidence
    need = {sha: {t: _culprit_runs(ctx, t) for t in group},
            parent: dict.fromkeys(group, CONFIRM_RUNS)}
    for round_no in range(CONFIRM_RUNS_COLD):  # a round at most per run a commit may need
        wants: dict[str, dict[str, int]] = {}
        for commit, verdict in ((sha, Verdict.BAD), (parent, Verdict.GOOD)):
            wants[commit] = {t: need[commit][t] - ev.agreeing(t, commit, verdict)
                             for t in group if not _disagreed(ev, t, sha, parent)
                             and ev.short_of(t, commit, verdict, need[commit][t])}
            if round_no == 0 and len(wants[commit]) < len(group):
                ctx.prober.tally.reused += 1
        # the parent once a round; the culprit's further runs in the slots --jobs leaves
        parents = ProbeRequest.repeated(parent, wants[parent], "confirm parent", 1)
        culprits = ProbeRequest.repeated(sha, wants[sha], "confirm culprit",
                                         ctx.jobs - len(parents))
        if not culprits and not parents:
            break
        ctx.prober.run([*culprits[:1], *parents, *culprits[1:]])
    out: dict[str, tuple[TestResult, TestResult]] = {}
    for t in group:
        again = ev.disagreeing(t, sha, Verdict.BAD) or ev.last_failure(t, sha)
        before = ev.disagreeing(t, parent, Verdict.GOOD) or ev.latest(t, parent)
        if again is not None and before is not None:
            out[t] = (again, before)
    return out


def _culprit_runs(ctx: Context, t: str) -> int:
    return CONFIRM_RUNS if t in ctx.steady else CONFIRM_RUNS_COLD


def _disagreed(ev: Evidence, t: str, sha: str, parent: str) -> bool:
    """A run at the culprit that passed, or at the parent that failed: no more runs."""
    return (ev.disagreeing(t, sha, Verdict.BAD) is not None
            or ev.disagreeing(t, parent, Verdict.GOOD) is not None)


def _bracketed(ctx: Context, t: str, suspects: tuple[str, ...], merge: CommitInfo | None
               ) -> Finding:
    untestable = sum(1 for s in suspects[:-1]
                     if (r := ctx.evidence.latest(t, s)) and verdict_of(r) is Verdict.UNTESTABLE)
    return Finding(
        t, None, suspects,
        note=f"culprit is one of {len(suspects)} commits {suspects[0][:10]}..{suspects[-1][:10]}"
             f"; {untestable} of them are untestable",
        verdict="bracketed", merge=merge,
    )


def _confirmed(ctx: Context, t: str, culprit: CommitInfo,
               runs: tuple[TestResult, TestResult], merge: CommitInfo | None) -> Finding:
    again, before = runs
    sha, parent = culprit.sha, culprit.parents[0]
    confirmed = (ctx.evidence.verdict(t, again, sha) is Verdict.BAD
                 and ctx.evidence.verdict(t, before, parent) is Verdict.GOOD)
    note = None
    if confirmed:  # the trail ends on the culprit, after its parent
        ctx.trails.mark(t, Verdict.GOOD, parent)
        ctx.trails.mark(t, Verdict.BAD, sha)
    else:
        note = (f"not confirmed: run again, the culprit gave {again.outcome} and its "
                f"parent {before.outcome}; the test may be flaky")
    return Finding(
        t, culprit, (sha,), signature=again.signature or None,
        message=again.message, traceback=again.traceback, confirmed=confirmed, note=note,
        files=tuple(ctx.repo.changed_files(sha)),
        confidence=1.0 if confirmed else None, merge=merge,
    )


@dataclass(frozen=True, slots=True)
class FlakyAnswer:
    """What the flake-aware search believes of one test, with what the finding quotes."""

    test: str
    belief: Belief
    estimate: Estimate
    confirmed: bool
    probes: int


def flaky_finding(ctx: Context, answer: FlakyAnswer, candidates: list[str], line: list[str]
                  ) -> Finding:
    """A culprit, "no culprit: a flake", or the range still possible, as the belief says."""
    b, t = answer.belief, answer.test
    interval = answer.estimate.false_fail_interval()
    common = dict(confidence=b.probability, false_fail_rate=answer.estimate.false_fail_rate,
                  false_fail_interval=(interval.low, interval.high))
    if b.probability >= ctx.confidence and b.culprit is not None:
        sha = candidates[b.culprit]
        last = ctx.evidence.last_failure(t, sha)
        return Finding(
            t, ctx.repo.commits([sha]).get(sha), (sha,),
            signature=last.signature if last else None,
            message=last.message if last else None,
            traceback=last.traceback if last else None,
            confirmed=answer.confirmed, files=tuple(ctx.repo.changed_files(sha)),
            note=f"culprit {sha[:10]} with confidence {b.probability:.3f}",
            verdict="culprit", **common,  # type: ignore[arg-type]
        )
    if b.probability >= ctx.confidence:
        return _no_culprit(ctx, t, b, line)
    hi = min(b.high, len(candidates) - 1)
    lo = min(b.low, hi)
    tail = " (or no culprit at all)" if b.high >= len(candidates) else ""
    return Finding(
        t, None, tuple(candidates[lo:hi + 1]), verdict="inconclusive",
        note=f"inconclusive after {answer.probes} probes: the range is "
             f"{candidates[lo][:10]}..{candidates[hi][:10]}{tail}; the most likely "
             f"answer has probability {b.probability:.2f}",
        **common,  # type: ignore[arg-type]
    )


def _no_culprit(ctx: Context, t: str, b: Belief, line: list[str]) -> Finding:
    fails = runs = 0
    for sha in line:  # no culprit: every run on the line was on a good commit
        f, p = ctx.evidence.counts(t, sha)
        fails, runs = fails + f, runs + f + p
    ci = wilson(fails, runs)
    rate = fails / runs if runs else 0.0
    return Finding(
        t, None, (), verdict="flaky", confidence=b.probability,
        false_fail_rate=rate, false_fail_interval=(ci.low, ci.high),
        note=f"no culprit: test is flaky at both ends (false-failure rate "
             f"{rate:.2f}, 95% CI {ci.low:.2f}-{ci.high:.2f}; confidence "
             f"{b.probability:.3f})",
    )


@dataclass(frozen=True, slots=True)
class Owners:
    """Owners of culprits by the CODEOWNERS of one commit (who owns the files then), with the
    problems of that file; the one rule find-break and the nightly both show."""

    rules: list[Rule]
    problems: list[str]

    @classmethod
    def at(cls, repo: Repository, sha: str) -> Owners:
        text = repo.codeowners(sha)
        rules, problems = parse(text) if text is not None else ([], [])
        return cls(rules, problems)

    def of(self, culprit: CommitInfo, files: Iterable[str]) -> tuple[str, ...]:
        return culprit_owners(files, self.rules, culprit.author_name, culprit.author_email)


def bisect_result(good: str, bad: str, candidates: int, findings: Sequence[Finding],
                  notes: Sequence[str], tally: Tally, seconds: float, jobs: int
                  ) -> BisectResult:
    """The result of the searches, before its log and owners (`concluded`)."""
    return BisectResult(
        good=good, bad=bad, candidates=candidates, findings=tuple(findings),
        probes_run=tally.runs, probes_reused=tally.reused, seconds=seconds, bisect_log=(),
        notes=tuple(notes), rounds=tally.rounds, jobs=jobs,
    )


def concluded(repo: Repository, result: BisectResult, first_parent: bool,
              probed: Sequence[str], trails: Trails, journal_id: int) -> BisectResult:
    """The result with its replayable `git bisect` log, its culprits' owners and its
    journal row."""
    log = replayable(repo, start_line(result.bad, result.good, first_parent), probed, trails,
                     result.findings)
    return replace(with_owners(repo, result), journal_id=journal_id, bisect_log=log)


def with_owners(repo: Repository, result: BisectResult) -> BisectResult:
    """Each culprit's owners, by the CODEOWNERS of the bad commit (who owns it now); the
    file's problems become notes."""
    if not any(f.culprit for f in result.findings):
        return result
    owners = Owners.at(repo, result.bad)
    findings = tuple(replace(f, owners=owners.of(f.culprit, f.files)) if f.culprit else f
                     for f in result.findings)
    return replace(result, findings=findings, notes=(*result.notes, *owners.problems))
