"""The flake-aware search over the first-parent line, driven by the one loop, then its
confirmation: the culprit and its parent are run once more when the search is sure; if that
shakes its confidence the search goes on, within the same probe budget."""

from __future__ import annotations

from dataclasses import dataclass

from ..bayes import FlakySearch
from ..flakiness import Learnt, Rates
from ..model import Finding, TestResult
from ..search import Verdict
from .bisect_log import bisect_line
from .conclude import FlakyAnswer, flaky_finding
from .context import Context
from .drive import drive
from .prober import ProbeRequest

CONFIRMATIONS = 3  # rounds of "search, then confirm what it is sure of"


@dataclass(frozen=True, slots=True)
class FlakyResult:
    findings: tuple[Finding, ...]
    probed: tuple[str, ...]  # a `git bisect` line per probe, as the first test read it
    notes: tuple[str, ...]


class _Flaky:
    """One flake-aware search: its candidates, its posterior, and the lines of its probes."""

    def __init__(self, ctx: Context, tests: list[str], good_sha: str, candidates: list[str],
                 line: list[str]) -> None:
        self.ctx, self.tests, self.good_sha = ctx, tests, good_sha
        self.candidates, self.line = candidates, line
        self.probed: list[str] = []
        self.confirmed: set[str] = set()
        before = line[:len(line) - len(candidates)]  # up to the good end: all good commits
        rates: dict[str, Rates | Learnt] = {t: ctx.evidence.prior(t, before) for t in tests}
        self.search = FlakySearch(len(candidates), tests, rates, confidence=ctx.confidence,
                                  max_probes=ctx.max_probes, max_untestable=ctx.max_untestable)

    def start(self) -> None:
        """What is known of the candidates, then a progress line with the learnt rates."""
        for t in self.tests:
            for i, sha in enumerate(self.candidates):
                f, p = self.ctx.evidence.counts(t, sha)
                if f:
                    self.search.observe(t, i, True, f)
                if p:
                    self.search.observe(t, i, False, p)
        self.ctx.progress.plan("flake-aware search", len(self.candidates),
                               self.search.max_probes)
        self.ctx.progress.note(
            f"flake-aware search over {len(self.candidates)} commits for {len(self.tests)} "
            "test(s), false-failure rates learnt from the runs, starting from "
            + ", ".join(f"{self.search.posteriors[t].current_rates().false_fail:.2f}"
                        for t in self.tests))

    def read(self, i: int, group: list[str], results: dict[str, TestResult]
             ) -> dict[str, Verdict]:
        """Verdicts for the search; failed rerun attempts count too, as `counts` does."""
        sha = self.candidates[i]
        verdicts = {t: self.ctx.evidence.verdict(t, results[t], sha) for t in group}
        for t in group:
            if verdicts[t] is not Verdict.UNTESTABLE and results[t].reruns:
                self.search.observe(t, i, True, results[t].reruns)
        self.probed.append(bisect_line(verdicts[group[0]], sha))
        return verdicts

    def observe(self, i: int, group: list[str], results: dict[str, TestResult]) -> None:
        self.search.observe_probe(i, self.read(i, group, results))

    def ask(self, i: int, group: list[str]) -> ProbeRequest:
        return ProbeRequest.of(self.candidates[i], group,
                               f"flake-aware, {len(self.candidates)} candidates")

    def pending(self) -> dict[int, list[str]]:
        """The culprits the search is sure of and has not run twice, with their tests."""
        out: dict[int, list[str]] = {}
        for t in self.tests:
            b = self.search.belief(t)
            if b.culprit is None or b.probability < self.ctx.confidence or t in self.confirmed:
                continue
            parent = self.candidates[b.culprit - 1] if b.culprit else self.good_sha
            if min(sum(self.ctx.evidence.counts(t, self.candidates[b.culprit])),
                   sum(self.ctx.evidence.counts(t, parent))) >= 2:
                self.confirmed.add(t)  # the search ran both again itself: sure with that
            else:
                out.setdefault(b.culprit, []).append(t)
        return out

    def confirm(self, pending: dict[int, list[str]]) -> None:
        """The culprit and its parent once more (one round with --jobs)."""
        for i, group in sorted(pending.items()):
            culprit = ProbeRequest.of(self.candidates[i], group, "confirm culprit")
            if i > 0:
                again, before = self.ctx.prober.run([
                    culprit, ProbeRequest.of(self.candidates[i - 1], group, "confirm parent")])
                self.observe(i, group, again)
                self.observe(i - 1, group, before)
            else:
                self.observe(i, group, self.ctx.prober.run([culprit])[0])
                self.ctx.prober.run([ProbeRequest.of(self.good_sha, group, "confirm parent")])
            self.confirmed.update(group)

    def run(self) -> None:
        for _ in range(CONFIRMATIONS):
            drive(self.search, self.ctx.prober, jobs=self.ctx.jobs, ask=self.ask,
                  read=self.read, reuse=False)
            pending = self.pending()
            if not pending:
                break
            self.confirm(pending)
            if all(self.search.belief(t).probability >= self.ctx.confidence
                   for t in self.tests):
                break

    def notes(self) -> tuple[str, ...]:
        search = self.search
        if not search.budget_spent:
            return ()
        if search.probes >= (search.max_probes or 0):
            return (f"the flake-aware search spent its budget of {search.max_probes} probes",)
        return (f"stopped after {search.untestable_probes} untestable probes",)

    def findings(self) -> tuple[Finding, ...]:
        out = []
        for t in self.tests:
            answer = FlakyAnswer(t, self.search.belief(t), self.ctx.evidence.estimate(t, self.line),
                                 t in self.confirmed, self.search.probes)
            out.append(flaky_finding(self.ctx, answer, self.candidates, self.line))
        return tuple(out)


def flaky_search(ctx: Context, tests: list[str], good_sha: str, candidates: list[str],
                 line: list[str]) -> FlakyResult:
    """The flake-aware search of `candidates` (good's successors up to bad, on the first-parent
    `line`, which starts with history before good for the rates), then its findings."""
    flaky = _Flaky(ctx, tests, good_sha, candidates, line)
    flaky.start()
    flaky.run()
    notes = flaky.notes()
    return FlakyResult(flaky.findings(), tuple(flaky.probed), notes)
