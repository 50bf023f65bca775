"""Plain, frozen records shared by every layer; no I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    """A test's final outcome in one run, in pytest's vocabulary plus `untestable`.

    `untestable` is the bisection's "could not tell" (collection or build failure, timeout):
    it never counts as bad.
    """

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    UNTESTABLE = "untestable"

    @property
    def is_good(self) -> bool:
        return self is Outcome.PASSED

    @property
    def is_bad(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR)


class Trigger(enum.StrEnum):
    """What started a run; probes and nightly runs are ordinary runs with another label."""

    PYTEST = "pytest"
    PROBE = "probe"
    NIGHTLY = "nightly"
    IMPORT = "import"
    # a commit with a patch applied: an isolation probe or a revert check (Run.patch_key)
    ISOLATE = "isolate"


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    committed_at: int
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True, slots=True)
class Environment:
    """What makes two runs the same experiment.

    `key` (interpreter and platform) decides which runs are comparable across commits;
    `fingerprint` adds the dependency hash and decides whether a stored result may stand in for a
    new run of the same commit.
    """

    python: str
    platform: str
    deps_hash: str
    key: str
    fingerprint: str


TRACEBACK_MAX = 8192  # characters of a stored traceback; a longer one keeps its tail


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    signature: str | None = None
    message: str | None = None
    reruns: int = 0
    phase: str = "call"
    # pytest's long representation of the failure (capped at TRACEBACK_MAX characters), or the
    # tail of an untestable probe's output: what a person reads to act on a failure
    traceback: str | None = None

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0]


@dataclass(frozen=True, slots=True)
class Run:
    sha: str
    dirty: bool
    branch: str | None
    environment: Environment
    trigger: Trigger
    host: str
    started_at: float
    finished_at: float
    exit_status: int | None
    results: tuple[TestResult, ...] = field(default=())
    id: int | None = None
    # the hash of a patch applied on top of the commit (an isolation probe); None for a run of
    # the commit itself, the only kind that is evidence about the commit
    patch_key: str | None = None


@dataclass(frozen=True, slots=True)
class Regression:
    """A test failing at HEAD that passed at `last_good`, first seen failing at `first_bad`."""

    nodeid: str
    last_good: str
    first_bad: str
    # commits after last_good up to and including first_bad: what a bisection must search
    candidates: int
    outcome: Outcome
    signature: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RegressionReport:
    head: str
    env_key: str | None
    window: list[str]
    regressions: list[Regression]
    commits: dict[str, CommitInfo] = field(default_factory=dict)
    # failing ids read from the store that are not fit for a command line: never bisected
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Grid:
    """Outcomes per test and commit along the first-parent line, for `bisector history`."""

    commits: list[CommitInfo]  # newest first
    tests: list[str]
    # (nodeid, sha) -> outcomes of the clean runs there, newest first
    cells: dict[tuple[str, str], list[str]]
    runs: dict[str, int]  # sha -> clean runs recorded there


@dataclass(frozen=True, slots=True)
class Hunk:
    """One unit of a culprit's change as reports show it: git's line numbers in the parent
    (old) and the culprit (new), and the hunk's text (a whole-file unit: its diff section).
    `index` is its place in the change (git's diff order), so that a report can lay the guilty
    hunks out among the others; -1 where unknown."""

    file: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    text: str
    index: int = -1


@dataclass(frozen=True, slots=True)
class Isolation:
    """Which hunks of a culprit's change make the test fail (`--isolate`, docs/adr/0021).

    `hunks` is the set found (all of the change when not isolated); `minimal` when every one is
    needed; `note` says why there is no answer or why it is not minimal (budget, no probe).
    `others` is the rest of the change, in diff order, for a report that shows the whole diff
    with the guilty hunks highlighted and the others folded (their text left out, "", once
    the change's text passes `bisection.isolate.SHOWN_MAX`)."""

    parent: str
    hunks: tuple[Hunk, ...]
    total_hunks: int
    probes: int  # subsets probed (a stored one reused counts: it answered a question)
    minimal: bool
    unresolved: int  # probes whose subset did not apply, import or fail the same way
    note: str = ""
    others: tuple[Hunk, ...] = ()


@dataclass(frozen=True, slots=True)
class RevertCheck:
    """The tests at the bad end with the guilty hunks (or the whole culprit) reverted:
    `verified` when they passed; `patch` the file written (applies with `git apply` at
    `at`); `detail` what happened otherwise (a conflict, still failing)."""

    verified: bool
    at: str
    hunks: int
    patch: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """What a bisection concluded for one test."""

    nodeid: str
    culprit: CommitInfo | None  # None: not isolated (see suspects and note)
    suspects: tuple[str, ...]  # candidate shas still possible, oldest first
    signature: str | None = None
    message: str | None = None
    confirmed: bool | None = None  # culprit fails and its parent passes when run again
    note: str | None = None
    files: tuple[str, ...] = ()
    # culprit | flaky (no culprit: the failure was a flake) | inconclusive | bracketed
    verdict: str = "culprit"
    confidence: float | None = None  # posterior of the answer (1.0: every probe agreed)
    false_fail_rate: float | None = None  # the test's estimated rate, when it is flaky
    false_fail_interval: tuple[float, float] | None = None  # 95% Wilson interval
    owners: tuple[str, ...] = ()  # CODEOWNERS of the culprit's changed files
    # A culprit (or suspects) inside a merged branch: the merge on the first-parent line of the
    # searched range that brought it in. For a branch merged into a branch, still the merge on
    # that line: the commit the first-parent search stopped at, where the break entered it.
    merge: CommitInfo | None = None
    traceback: str | None = None  # the failure's traceback at the culprit (TestResult's)
    isolation: Isolation | None = None  # --isolate: the culprit's guilty hunks
    revert: RevertCheck | None = None  # --verify-revert: the tests with them reverted


@dataclass(frozen=True, slots=True)
class BisectResult:
    good: str
    bad: str
    candidates: int
    findings: tuple[Finding, ...]
    probes_run: int
    probes_reused: int
    seconds: float
    bisect_log: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    rounds: int = 0  # rounds of probes run (--jobs K runs up to K probes per round)
    jobs: int = 1
    journal_id: int | None = None  # the bisections row: its probes, in order, for reports


@dataclass(frozen=True, slots=True)
class FlakyTest:
    """A test whose history in one environment disagrees with itself."""

    nodeid: str
    env_key: str
    false_fail_rate: float
    false_fail_interval: tuple[float, float]  # 95% Wilson
    false_pass_rate: float
    runs: int  # results seen in the window
    last_seen: float  # when it last ran (epoch seconds)
    flipped: tuple[str, ...]  # commits where its outcomes disagreed, newest first
