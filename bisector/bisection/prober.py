"""Where a probe runs and where its result is stored: the only bisection code that writes.

A `ProbeRequest` asks for tests at a commit, with the reason the journal records. The prober
reuses what the store and earlier probes know, runs the rest as one round through the
`Executor` (`run_round`: at most `jobs` probes at once), and records each probe's run, then its
journal row, in the order asked, from this thread only. Every result becomes `Evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..executors import PATCH_REFUSED, Executor, Patch, Probe, ProbeOutcome
from ..gitrepo import Repository
from ..history import HistoryStore
from ..model import Outcome, Run, TestResult, Trigger
from ..progress import ProbeDone, ProbeStart, Progress, Silent, outcome_words
from .evidence import Evidence


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """Run `tests` at `sha`; `why` is the reason the journal and the progress line give,
    `left` the candidates a search still had when it asked (shown by the progress bar)."""

    sha: str
    tests: tuple[str, ...]
    why: str
    left: int | None = None
    # an isolation probe: `patch` applied in the probe's checkout at `at` (sha when None);
    # stored at `sha` under the patch's key, never read as the commit's own results
    patch: Patch | None = None
    at: str | None = None

    @property
    def place(self) -> tuple[str, str | None]:
        """Where the results belong: the commit, and the patch on it (None: the commit)."""
        return self.sha, None if self.patch is None else self.patch.key

    @classmethod
    def of(cls, sha: str, tests: Iterable[str], why: str, left: int | None = None
           ) -> ProbeRequest:
        return cls(sha, tuple(tests), why, left)

    @classmethod
    def repeated(cls, sha: str, wants: Mapping[str, int], why: str, slots: int
                 ) -> list[ProbeRequest]:
        """The runs at sha that tests want (`wants`: test -> runs still wanted), as many at
        once as `slots` allows (one at least): the k-th request holds only the tests that
        want more than k, so a test short of one run is not run again with one short of
        three. None when nothing is wanted."""
        count = min(max(wants.values(), default=0), max(1, slots))
        return [cls.of(sha, [t for t, n in wants.items() if n > k], why) for k in range(count)]


@dataclass
class Tally:
    """What the probes cost: runs made, commits answered from what was known, rounds."""

    runs: int = 0
    reused: int = 0
    rounds: int = 0


@dataclass
class Prober:
    repo: Repository
    store: HistoryStore
    executor: Executor
    evidence: Evidence
    env_key: str
    jobs: int = 1
    progress: Progress = field(default_factory=Silent)
    tally: Tally = field(default_factory=Tally)
    # ids the store has never seen: stored from their first result that is not untestable
    unseen: set[str] = field(default_factory=set)
    journal_id: int | None = None
    # probes recorded before the journal existed (the --test-file probe), to put in it then
    _unjournaled: list[tuple[int, str, str]] = field(default_factory=list)
    _loaded: set[str] = field(default_factory=set)
    # what this prober has stored: commit rows and test ids need no looking up again
    _stored_commits: set[str] = field(default_factory=set)
    # the commits this prober already answered (ran, or counted as reused) in this
    # bisection: a search reading their results again counts no reuse
    answered: set[str] = field(default_factory=set)
    _test_ids: dict[str, int] = field(default_factory=dict)
    # results of patched trees, (commit, patch key) -> test -> latest: never Evidence
    patched: dict[tuple[str, str], dict[str, TestResult]] = field(default_factory=dict)

    def attach(self, journal_id: int) -> None:
        """The bisection's journal row exists: the probes recorded before it go in first."""
        self.journal_id = journal_id
        for run_id, sha, why in self._unjournaled:
            self.store.add_probe(journal_id, run_id, sha, why)
        self._unjournaled.clear()

    def load_known(self, shas: list[str], tests: Iterable[str]) -> None:
        """Stored results at these commits, each commit loaded once (evidence is counted)."""
        shas = [s for s in dict.fromkeys(shas) if s not in self._loaded]
        self._loaded.update(shas)
        ids = self.store.tests()
        wanted = [ids[t] for t in tests if t in ids]
        if not wanted or not shas:
            return
        rows = self.store.results_at(shas, env_key=self.env_key, test_ids=wanted)
        rows.sort(key=lambda r: (r.started_at, r.run_id))
        for row in rows:
            if row.outcome == Outcome.UNTESTABLE:
                continue  # a timeout or a broken setup back then may not be one now: run again
            self.evidence.add(TestResult(row.nodeid, Outcome(row.outcome), 0.0, row.signature,
                                         row.message, row.reruns, row.phase, row.traceback),
                              row.sha)

    def load_patched(self, sha: str, tests: Iterable[str]) -> None:
        """Stored results of patched trees on `sha` (isolation probes of an earlier run), so
        a rerun or a resumed isolation runs none of them again. A patch that did not apply
        will not apply now either; other untestable results (a timeout) are run again."""
        ids = self.store.tests()
        wanted = [ids[t] for t in tests if t in ids]
        if not wanted:
            return
        rows = self.store.results_at([sha], env_key=self.env_key, test_ids=wanted,
                                     patched=True)
        rows.sort(key=lambda r: (r.started_at, r.run_id))
        for row in rows:
            if row.outcome == Outcome.UNTESTABLE and not (row.message or "").startswith(
                    PATCH_REFUSED):
                continue
            self.patched.setdefault((sha, str(row.patch_key)), {})[row.nodeid] = TestResult(
                row.nodeid, Outcome(row.outcome), 0.0, row.signature, row.message,
                row.reruns, row.phase, row.traceback)

    def known(self, request: ProbeRequest, test: str) -> TestResult | None:
        """The latest result known for a test where a request would run it."""
        sha, key = request.place
        if key is None:
            return self.evidence.latest(test, sha)
        return self.patched.get((sha, key), {}).get(test)

    def run(self, requests: list[ProbeRequest]) -> list[dict[str, TestResult]]:
        """One round: these probes at once, then recorded in order.

        Only this thread writes the store; the executor's threads only run tests. Without
        --jobs the probes run one by one, each recorded before the next starts: a Ctrl-C then
        loses only the probe it interrupts.
        """
        if not requests:
            return []
        if len(requests) > 1 and len(requests) > self.jobs:
            return [self.run([request])[0] for request in requests]
        starts = []
        for request in requests:
            start = ProbeStart(self.tally.runs + len(starts) + 1, request.sha, request.why,
                               len(request.tests), request.left)
            self.progress.probe_started(start)
            starts.append(start)
        probes = [Probe(request.at or request.sha, request.tests, patch=request.patch)
                  for request in requests]
        if len(probes) > 1:
            outcomes = self.executor.run_round(probes)
        else:
            outcomes = [self.executor.run(probes[0])]
        self.tally.rounds += 1
        for start, outcome in zip(starts, outcomes, strict=True):
            self._done(start, outcome)
        return [self.record(request.sha, request.why, outcome, request.place[1])
                for request, outcome in zip(requests, outcomes, strict=True)]

    def keep(self, shas: Iterable[str]) -> None:
        """Tell the executor which commits the search will most likely probe again (its
        bounds: they become the culprit and its parent), so that their setups are kept."""
        self.executor.keep(frozenset(shas))

    def known_or_run(self, requests: list[ProbeRequest]) -> list[dict[str, TestResult]]:
        """Known results where there are some; what is unknown runs as one round."""
        found: list[dict[str, TestResult]] = []
        wanted: list[ProbeRequest] = []
        slots: list[int] = []
        for slot, request in enumerate(requests):
            out = {t: r for t in request.tests if (r := self.known(request, t)) is not None}
            missing = [t for t in request.tests if t not in out]
            if out and not missing:
                self.tally.reused += 1
                if request.patch is None:
                    self.answered.add(request.sha)
            if missing:
                wanted.append(replace(request, tests=tuple(missing)))
                slots.append(slot)
            found.append(out)
        if wanted:
            for slot, results in zip(slots, self.run(wanted), strict=True):
                found[slot].update(results)
        return found

    def record(self, sha: str, why: str, outcome: ProbeOutcome, patch_key: str | None = None
               ) -> dict[str, TestResult]:
        """A probe's outcome as a stored run (and in the journal), and as evidence; a patched
        tree's as a run of trigger `isolate` under its patch key, kept apart from evidence."""
        self.tally.runs += 1
        kept = tuple(r for r in outcome.results.values() if not self._held_back(r))
        run = Run(
            sha=sha, dirty=False, branch=None, environment=outcome.environment,
            trigger=Trigger.PROBE if patch_key is None else Trigger.ISOLATE,
            host=outcome.host or _host(), started_at=outcome.started_at,
            finished_at=outcome.finished_at, exit_status=outcome.exit_status,
            results=kept, patch_key=patch_key,
        )
        if kept or not outcome.results:  # a run of held-back ids only is not stored
            commits = () if sha in self._stored_commits else self.repo.commits([sha]).values()
            if self.journal_id is not None:
                self.store.record_probe(run, commits, self.journal_id, why,
                                        known_tests=self._test_ids)
            else:
                self._unjournaled.append((self.store.record_run(run, commits), sha, why))
            self._stored_commits.add(sha)
        if patch_key is not None:
            self.patched.setdefault((sha, patch_key), {}).update(outcome.results)
            return outcome.results
        self.answered.add(sha)
        for result in outcome.results.values():
            self.evidence.add(result, sha)
        return outcome.results

    def _held_back(self, result: TestResult) -> bool:
        """An untestable result of an id the store has never seen is not stored: a mistyped id
        that no end can run must not become a test (a column of `bisector history` for good).
        Its first result that is not untestable makes it known, and stored from then on."""
        if result.nodeid not in self.unseen:
            return False
        if result.outcome is Outcome.UNTESTABLE:
            return True
        self.unseen.discard(result.nodeid)
        return False

    def probe_files(self, sha: str, files: list[str]) -> tuple[list[str], ProbeOutcome,
                                                               dict[str, TestResult]]:
        """Run whole test files at sha: the node ids they hold, the outcome, the results.

        Earlier stored runs of those tests at sha are loaded first, so that the bisection
        does not load this probe's results a second time.
        """
        start = ProbeStart(self.tally.runs + 1, sha,
                           f"check bad end, list the tests of {', '.join(files)}", None)
        self.progress.probe_started(start)
        outcome = self.executor.run(Probe(sha, tuple(files), whole_files=True))
        self.tally.rounds += 1
        self._done(start, outcome)
        tests = [t for t, r in outcome.results.items()  # not a file that did not collect
                 if t not in files and r.outcome is not Outcome.UNTESTABLE
                 and r.phase != "collect"]
        self.load_known([sha], tests)
        return tests, outcome, self.record(sha, "check bad end", outcome)

    def _done(self, start: ProbeStart, outcome: ProbeOutcome) -> None:
        """The progress event of a probe that ran: its time, outcome and output."""
        words = outcome_words((r.outcome.value for r in outcome.results.values()),
                              outcome.problem)
        self.progress.probe_done(ProbeDone(start.number, start.sha,
                                           outcome.finished_at - outcome.started_at, words,
                                           outcome.log))


def _host() -> str:
    import socket

    return socket.gethostname()

