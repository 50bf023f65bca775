"""From a confirmed culprit to its guilty hunks, and their revert checked at the bad end.

After the commit search confirmed a culprit C against its parent P (a merge's first parent:
the change is the whole merged diff), `isolate_findings` cuts P -> C into units
(`hunks.split`), puts the ones the failure's traceback at C points at first
(`hunks.priority`) and drives `isolation.HunkIsolation` with rounds of patched probes through
the prober (`--jobs K`: K subsets at once). A probe is the tree P + S, built in the probe's own
worktree and stored at P under `subset_key(S)`, so a rerun reuses it; the failure rule is the
commit search's (another exception type is not this failure: unresolved). Then, with
`--verify-revert`, the tests run at the bad end with S reverted (the whole culprit when not
isolating); when they pass, `revert-<short>.patch` is written. docs/adr/0021 has the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .. import hunks
from ..config import Settings
from ..executors import Patch
from ..executors.worktree import Worktree, new_session
from ..isolation import HunkIsolation, IsolationResult, repeats_for
from ..model import CommitInfo, Finding, Hunk, Isolation, Outcome, RevertCheck, TestResult
from ..search import Verdict
from .context import Context
from .drive import drive
from .prober import ProbeRequest

REPORTS = Path(".bisector") / "reports"
# the text of the change's other hunks a report keeps (the HTML folds them): past this many
# characters a hunk keeps its header fields and loses its text, so a 30k-line change does not
# make a 30k-line report
SHOWN_MAX = 512_000


@dataclass(frozen=True, slots=True)
class IsolateOptions:
    """--isolate, --verify-revert (None: on with --isolate), --isolate-max-probes, the
    isolate-min-hunks rule, and where the revert patch goes (None: .bisector/reports/ of the
    checkout). None is "not said": `settle` fills it from [tool.bisector], then `default`
    (the nightly isolates by default). A change of no more than `min_hunks` units is not
    isolated unless --isolate was given (then only an empty or single-hunk one is not)."""

    isolate: bool | None = None
    verify_revert: bool | None = None
    max_probes: int | None = None
    min_hunks: int | None = None
    revert_dir: Path | None = None
    default: bool = False

    def settle(self, settings: Settings) -> IsolateOptions:
        """What was not said, from the configuration and the command's default."""
        explicit = self.isolate is not None
        isolate = self.isolate if explicit else (
            settings.isolate if settings.isolate is not None else self.default)
        return replace(self, isolate=isolate,
                       max_probes=self.max_probes or settings.isolate_max_probes,
                       min_hunks=self.min_hunks or (1 if explicit
                                                    else settings.isolate_min_hunks))

    @property
    def verifying(self) -> bool:
        return bool(self.isolate if self.verify_revert is None else self.verify_revert)

    @property
    def active(self) -> bool:
        return bool(self.isolate) or self.verifying


def isolate_findings(ctx: Context, findings: dict[str, Finding], bad_sha: str,
                     options: IsolateOptions | None) -> dict[str, Finding]:
    """Each confirmed culprit's isolation and revert check, on the findings of its tests (the
    tests sharing a culprit are isolated together: P + S must fail them all)."""
    if options is None or not options.active:
        return findings
    by_culprit: dict[str, list[str]] = {}
    for t, f in findings.items():
        if f.culprit is not None and f.verdict == "culprit" and f.confirmed is not False:
            by_culprit.setdefault(f.culprit.sha, []).append(t)
    out = dict(findings)
    for tests in by_culprit.values():
        first = findings[tests[0]]
        assert first.culprit is not None
        rate = max((findings[t].false_fail_rate or 0.0) for t in tests)
        units, guilty, isolation = _isolate(ctx, first.culprit, tests, first.traceback,
                                            options, rate)
        revert = (verify_revert(ctx, first.culprit, units, guilty, tests, bad_sha, options,
                                rate) if options.verifying else None)
        for t in tests:
            out[t] = replace(out[t], isolation=isolation if options.isolate else None,
                             revert=revert)
    return out


def _hunk(unit: hunks.Unit, text: bool = True) -> Hunk:
    return Hunk(unit.file, unit.old_start, unit.old_lines, unit.new_start, unit.new_lines,
                unit.text if text else "", unit.id)


def _others(units: Sequence[hunks.Unit], guilty: frozenset[int]) -> tuple[Hunk, ...]:
    """The hunks not found guilty, in diff order, for the report's whole diff: their text
    while the change's text stays under SHOWN_MAX (the guilty hunks' counted first)."""
    shown = sum(len(u.text) for u in units if u.id in guilty)
    out = []
    for u in units:
        if u.id not in guilty:
            shown += len(u.text)
            out.append(_hunk(u, text=shown <= SHOWN_MAX))
    return tuple(out)


def _isolate(ctx: Context, culprit: CommitInfo, tests: list[str], traceback: str | None,
             options: IsolateOptions, rate: float
             ) -> tuple[list[hunks.Unit], frozenset[int], Isolation]:
    """The units of P -> C, the guilty ones (all of them when not searched), and what the
    report says of it. An empty, binary-only or single-hunk change is said, not probed."""
    parent = culprit.parents[0]
    units = hunks.split(ctx.repo.root, parent, culprit.sha)
    everything = frozenset(u.id for u in units)
    why = hunks.not_isolable(units)
    if why is None and len(units) <= (options.min_hunks or 1):
        why = (f"the change has {len(units)} hunks, not more than isolate-min-hunks "
               f"({options.min_hunks})")
    if why is not None or not options.isolate:
        if options.isolate:
            ctx.progress.note(f"{culprit.sha[:10]}: not isolated, {why}")
        return units, everything, Isolation(parent, tuple(map(_hunk, units)), len(units), 0,
                                            len(units) == 1, 0, note=why or "")
    result = search_hunks(ctx, culprit, units, tests, traceback, options.max_probes or 100,
                          rate)
    chosen = [u for u in units if u.id in result.hunks]
    return units, result.hunks, Isolation(parent, tuple(map(_hunk, chosen)), len(units),
                                          result.probes, result.minimal, result.unresolved,
                                          note=result.reason,
                                          others=_others(units, result.hunks))


def search_hunks(ctx: Context, culprit: CommitInfo, units: Sequence[hunks.Unit],
                 tests: list[str], traceback: str | None, max_probes: int, rate: float
                 ) -> IsolationResult:
    """Drive the pure search with rounds of patched probes; stored subsets are reused (a
    flaky test's repeats are run again: one stored failure is not three)."""
    parent = culprit.parents[0]
    search = HunkIsolation(len(units), tests, priority=hunks.priority(units, traceback),
                           max_probes=max_probes, flake_rate=rate)
    ctx.prober.load_patched(parent, tests)
    ctx.progress.plan("isolate hunks", len(units), max_probes)

    def ask(candidate: frozenset[int], open_tests: list[str]) -> ProbeRequest:
        left = len(search.suspects())
        return subset_request(units, parent, culprit.sha, candidate, open_tests,
                              f"isolate, {left} of {len(units)} hunks suspected", left)

    def read(candidate: frozenset[int], open_tests: list[str],
             results: dict[str, TestResult]) -> dict[str, Verdict]:
        return {t: ctx.evidence.patched_verdict(t, results[t]) if t in results
                else Verdict.UNTESTABLE for t in open_tests}

    drive(search, ctx.prober, jobs=ctx.jobs, ask=ask, read=read, reuse=rate == 0.0)
    return search.result()


def subset_request(units: Sequence[hunks.Unit], parent: str, culprit: str,
                   candidate: frozenset[int], tests: Sequence[str], why: str,
                   left: int | None = None) -> ProbeRequest:
    """The probe of "P with `candidate` applied": stored at P under the subset's key,
    built with the smaller patch (forward at P, or the rest reversed at C: the same tree)."""
    how, subset = hunks.realize(units, candidate)
    reverse = how == "reverse"
    patch = Patch(hunks.patch_for(units, subset, reverse=reverse),
                  hunks.subset_key(units, candidate), reverse=reverse)
    return ProbeRequest(parent, tuple(tests), why, left, patch=patch,
                        at=culprit if reverse else None)


def verify_revert(ctx: Context, culprit: CommitInfo, units: Sequence[hunks.Unit],
                  guilty: frozenset[int], tests: list[str], bad_sha: str,
                  options: IsolateOptions, rate: float) -> RevertCheck:
    """The tests at the bad end with the guilty units reverted: verified when they pass
    (a failure is run again as often as the test's false-failure rate asks), and then the
    revert is written as a patch that `git apply` takes at the bad end."""
    n = len(guilty)
    patch = hunks.revert_patch(ctx.repo.root, culprit.sha, units, guilty)
    if not patch:
        return RevertCheck(False, bad_sha, 0, detail="nothing to revert: the change is empty")
    reverted = _revert_at(ctx, bad_sha, patch)
    if not reverted.ok:
        return RevertCheck(False, bad_sha, n, detail=f"the revert of {hunks.counted(n)} "
                                                     f"conflicts at {bad_sha[:10]}: "
                                                     f"{reverted.detail}")
    request = ProbeRequest(bad_sha, tuple(tests), f"verify the revert of {hunks.counted(n)}",
                           patch=Patch(reverted.patch, hunks.patch_key(reverted.patch),
                                       zero_context=False))
    ctx.prober.load_patched(bad_sha, tests)
    failing = _revert_failures(ctx, request, repeats_for(rate))
    if failing:
        return RevertCheck(False, bad_sha, n, detail=f"with {hunks.counted(n)} reverted at "
                                                     f"{bad_sha[:10]}, {failing}")
    where = options.revert_dir or ctx.repo.main_root / REPORTS
    where.mkdir(parents=True, exist_ok=True)
    written = hunks.write_revert(where, culprit.sha, reverted.patch)
    return RevertCheck(True, bad_sha, n, patch=str(written))


def _revert_failures(ctx: Context, request: ProbeRequest, repeats: int) -> str:
    """"" when every test passed with the revert in one of `repeats` runs (a flaky test's
    failure is run again: `repeats_for` its rate); else what went wrong, plainly: the test
    that failed in every run, how often, and its message (an untestable run is not repeated:
    it is no flake)."""
    always: set[str] = set(request.tests)
    seen: dict[str, TestResult] = {}
    for attempt in range(repeats):
        runs = ctx.prober.known_or_run if attempt == 0 else ctx.prober.run
        [results] = runs([request])
        bad = [t for t in request.tests
               if t not in results or results[t].outcome is not Outcome.PASSED]
        if not bad:
            return ""
        r = results.get(bad[0])
        if r is None or r.outcome is Outcome.UNTESTABLE:
            return f"{bad[0]} could not be run ({r.message if r else 'no result'})"
        always &= set(bad)
        seen.update((t, results[t]) for t in bad)
    each = f" in each of {repeats} runs" if repeats > 1 else ""
    named = [t for t in request.tests if t in always]
    if named:
        return _still(named[0], seen[named[0]], each)
    return f"some test failed{each} (the last: {_still(bad[0], seen[bad[0]])})"


def _still(test: str, result: TestResult, runs: str = "") -> str:
    message = f" ({result.message})" if result.message else ""
    return f"{test} still {result.outcome}{runs}{message}"


def _revert_at(ctx: Context, bad_sha: str, patch: str) -> hunks.Reverted:
    """The revert applied in a worktree of ours at the bad end (plain, then with less context,
    then a three-way merge), giving the patch as `git apply` takes it there."""
    tree = Worktree(ctx.repo, new_session())
    try:
        return hunks.revert_at(tree.checkout(bad_sha), patch)
    finally:
        tree.close()
