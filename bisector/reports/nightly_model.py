"""The nightly report as frozen dataclasses: one model, whose `to_json()` is nightly.json.

ADR 0009 makes one report model the contract that every format renders (Markdown, HTML, the
terminal lines); docs/nightly-report.md lays its JSON out. The model is built once by
`bisector.nightly` and read by attribute everywhere, so a renamed field is a type error, not a
silently empty cell. `from_json` reads a report back (an archived nightly.json, a hand-written
fixture) tolerantly: a missing or null key becomes the field's default, so that one renderer
serves a first night with nothing in it and a full night alike.

`to_json` gives the keys docs/nightly-report.md documents, in its order; `SCHEMA` changes only
when a key is removed or changes meaning (new keys, like `traceback` and `links`, may appear
within a schema).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import CommitInfo
from .history import commit_ref
from .links import Links

SCHEMA = 1
KIND = "bisector-nightly"
Json = dict[str, Any]


def _get(data: Any, key: str, default: Any = None) -> Any:
    """`data[key]`, or `default` when data is not a mapping or the value is missing or null."""
    if not isinstance(data, Mapping):
        return default
    value = data.get(key)
    return default if value is None else value


def _list(data: Any, key: str) -> list[Any]:
    value = _get(data, key, [])
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _dict(data: Any, key: str) -> Json | None:
    value = _get(data, key)
    return value if isinstance(value, dict) else None


def _strs(data: Any, key: str) -> tuple[str, ...]:
    return tuple(str(v) for v in _list(data, key))


@dataclass(frozen=True, slots=True)
class CommitRef:
    """A commit as the reports show it; only `sha` and `short` for one git could not describe."""

    sha: str | None
    short: str = ""
    subject: str | None = None
    author: str | None = None
    author_email: str | None = None
    committed_at: str | None = None  # ISO 8601, UTC

    @classmethod
    def of(cls, commit: CommitInfo | None, sha: str | None = None) -> CommitRef | None:
        ref = commit_ref(commit, sha)
        return cls.from_json(ref) if ref else None

    @classmethod
    def from_json(cls, data: Any) -> CommitRef | None:
        if not isinstance(data, Mapping):
            return None
        sha = _get(data, "sha")
        return cls(sha=sha, short=str(_get(data, "short") or (sha or "")[:10]),
                   subject=_get(data, "subject"), author=_get(data, "author"),
                   author_email=_get(data, "author_email"),
                   committed_at=_get(data, "committed_at"))

    def to_json(self) -> Json:
        out: Json = {"sha": self.sha}
        if self.subject is not None:  # a described commit: every key, as commit_json has them
            out.update(subject=self.subject, author=self.author,
                       author_email=self.author_email, committed_at=self.committed_at)
        out["short"] = self.short
        return out


def _ref_json(ref: CommitRef | None) -> Json | None:
    return ref.to_json() if ref else None


@dataclass(frozen=True, slots=True)
class Side:
    """A test's outcome at one end of its break (the culprit's parent, or the culprit)."""

    sha: str | None
    outcome: str = "not run"
    message: str | None = None
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Side | None:
        if not isinstance(data, Mapping):
            return None
        return cls(_get(data, "sha"), str(_get(data, "outcome", "not run")),
                   _get(data, "message"), _get(data, "traceback"))

    def to_json(self) -> Json:
        return {"sha": self.sha, "outcome": self.outcome, "message": self.message,
                "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class TestEntry:
    """One new regression's test: how the search concluded, and what it saw on either side."""

    __test__ = False  # not a pytest test class

    test: str
    last_good: str | None = None
    verdict: str | None = None
    suspects: tuple[str, ...] = ()
    confidence: float | None = None
    confirmed: bool | None = None
    note: str | None = None
    before: Side | None = None
    after: Side | None = None

    @classmethod
    def from_json(cls, data: Any) -> TestEntry:
        return cls(test=str(_get(data, "test", "")), last_good=_get(data, "last_good"),
                   verdict=_get(data, "verdict"), suspects=_strs(data, "suspects"),
                   confidence=_get(data, "confidence"), confirmed=_get(data, "confirmed"),
                   note=_get(data, "note"), before=Side.from_json(_get(data, "before")),
                   after=Side.from_json(_get(data, "after")))

    def to_json(self) -> Json:
        return {"test": self.test, "last_good": self.last_good, "verdict": self.verdict,
                "suspects": list(self.suspects), "confidence": self.confidence,
                "confirmed": self.confirmed, "note": self.note,
                "before": self.before.to_json() if self.before else None,
                "after": self.after.to_json() if self.after else None}


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe of the bisection, in the order it ran; `purpose` is a word to switch on."""

    sha: str
    short: str
    purpose: str = "other"
    detail: str | None = None
    started_at: str | None = None
    seconds: float | None = None
    outcomes: Mapping[str, str] = field(default_factory=dict)  # test -> outcome
    # an isolation or revert probe's patch (the subset's store key): the tree was the commit's
    # with that patch applied, not the commit's own; None for every other probe
    patch_key: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Probe:
        sha = str(_get(data, "sha", ""))
        return cls(sha, str(_get(data, "short") or sha[:10]), str(_get(data, "purpose", "other")),
                   _get(data, "detail"), _get(data, "started_at"), _get(data, "seconds"),
                   dict(_get(data, "outcomes", {})), _get(data, "patch_key"))

    def to_json(self) -> Json:
        return {"sha": self.sha, "short": self.short, "purpose": self.purpose,
                "detail": self.detail, "started_at": self.started_at, "seconds": self.seconds,
                "outcomes": dict(self.outcomes), "patch_key": self.patch_key}


@dataclass(frozen=True, slots=True)
class Bisection:
    good: str | None = None
    bad: str | None = None
    candidates: int | None = None
    probes_run: int | None = None
    probes_reused: int | None = None
    seconds: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> Bisection | None:
        if not isinstance(data, Mapping):
            return None
        return cls(*(_get(data, k) for k in ("good", "bad", "candidates", "probes_run",
                                              "probes_reused", "seconds")))

    def to_json(self) -> Json:
        return {"good": self.good, "bad": self.bad, "candidates": self.candidates,
                "probes_run": self.probes_run, "probes_reused": self.probes_reused,
                "seconds": self.seconds}


@dataclass(frozen=True, slots=True)
class RegressionGroup:
    """The tests one culprit broke (`culprit` None: not isolated; `reason` says why when no
    bisection ran: `not-bisected` is tried again the next night, `collection-error` is not)."""

    culprit: CommitRef | None
    tests: tuple[TestEntry, ...]
    merge: CommitRef | None = None  # the first-parent merge that brought the culprit in
    files: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    bisection: Bisection | None = None
    reason: str | None = None
    # --isolate / --verify-revert: find-break's JSON of them (reports/isolation.py), as is
    isolation: Json | None = None
    revert: Json | None = None

    @classmethod
    def from_json(cls, data: Any) -> RegressionGroup:
        return cls(culprit=CommitRef.from_json(_get(data, "culprit")),
                   tests=tuple(TestEntry.from_json(t) for t in _list(data, "tests")),
                   merge=CommitRef.from_json(_get(data, "merge")),
                   files=_strs(data, "files"), owners=_strs(data, "owners"),
                   probes=tuple(Probe.from_json(p) for p in _list(data, "probes")),
                   bisection=Bisection.from_json(_get(data, "bisection")),
                   reason=_get(data, "reason"), isolation=_dict(data, "isolation"),
                   revert=_dict(data, "revert"))

    def to_json(self) -> Json:
        out: Json = {"culprit": _ref_json(self.culprit)}
        if self.reason is None:
            out["merge"] = _ref_json(self.merge)
        out.update(files=list(self.files), owners=list(self.owners),
                   tests=[t.to_json() for t in self.tests],
                   probes=[p.to_json() for p in self.probes],
                   bisection=self.bisection.to_json() if self.bisection else None)
        if self.reason is not None:
            out["reason"] = self.reason
        if self.isolation is not None:
            out["isolation"] = self.isolation
        if self.revert is not None:
            out["revert"] = self.revert
        return out


@dataclass(frozen=True, slots=True)
class StillFailing:
    """A regression an earlier night reported, failing tonight still."""

    test: str
    culprit: CommitRef | None = None
    owners: tuple[str, ...] = ()
    since: str | None = None  # ISO 8601: when it was first reported
    message: str | None = None
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> StillFailing:
        return cls(str(_get(data, "test", "")), CommitRef.from_json(_get(data, "culprit")),
                   _strs(data, "owners"), _get(data, "since"), _get(data, "message"),
                   _get(data, "traceback"))

    def to_json(self) -> Json:
        return {"test": self.test, "culprit": _ref_json(self.culprit),
                "owners": list(self.owners), "since": self.since, "message": self.message,
                "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class FlakyFailure:
    """A failure tonight that the flake-aware search put down to chance."""

    test: str
    message: str | None = None
    false_fail_rate: float | None = None
    false_fail_interval: tuple[float, float] | None = None
    note: str | None = None
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> FlakyFailure:
        interval = _list(data, "false_fail_interval")
        return cls(str(_get(data, "test", "")), _get(data, "message"),
                   _get(data, "false_fail_rate"),
                   (interval[0], interval[1]) if len(interval) == 2 else None,
                   _get(data, "note"), _get(data, "traceback"))

    def to_json(self) -> Json:
        interval = self.false_fail_interval
        return {"test": self.test, "message": self.message,
                "false_fail_rate": self.false_fail_rate,
                "false_fail_interval": list(interval) if interval else None,
                "note": self.note, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class Failing:
    """A test failing tonight with no pass in the window: no culprit to look for."""

    test: str
    outcome: str = "failed"
    message: str | None = None
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Failing:
        return cls(str(_get(data, "test", "")), str(_get(data, "outcome", "failed")),
                   _get(data, "message"), _get(data, "traceback"))

    def to_json(self) -> Json:
        return {"test": self.test, "outcome": self.outcome, "message": self.message,
                "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Tonight's tracked run of the suite."""

    id: int | None = None
    container: str | None = None
    exit_status: int | None = None
    seconds: float | None = None
    outcomes: Mapping[str, int] = field(default_factory=dict)  # outcome -> count

    @classmethod
    def from_json(cls, data: Any) -> RunInfo | None:
        if not isinstance(data, Mapping):
            return None
        return cls(_get(data, "id"), _get(data, "container"), _get(data, "exit_status"),
                   _get(data, "seconds"), dict(_get(data, "outcomes", {})))

    def to_json(self) -> Json:
        return {"id": self.id, "container": self.container, "exit_status": self.exit_status,
                "seconds": self.seconds, "outcomes": dict(self.outcomes)}


@dataclass(frozen=True, slots=True)
class GridCommit(CommitRef):
    """A column of the grid: a commit and how many tracked runs it has."""

    runs: int = 0

    @classmethod
    def from_json(cls, data: Any) -> GridCommit:
        ref = CommitRef.from_json(data) or CommitRef(None)
        return cls(ref.sha, ref.short, ref.subject, ref.author, ref.author_email,
                   ref.committed_at, int(_get(data, "runs", 0)))

    @classmethod
    def at(cls, ref: CommitRef, runs: int) -> GridCommit:
        return cls(ref.sha, ref.short, ref.subject, ref.author, ref.author_email,
                   ref.committed_at, runs)

    def to_json(self) -> Json:
        return {**CommitRef.to_json(self), "runs": self.runs}


@dataclass(frozen=True, slots=True)
class Grid:
    """The history grid: tests (rows) by commits (newest first), the interesting tests only."""

    commits: tuple[GridCommit, ...] = ()
    tests: tuple[str, ...] = ()
    passing_tests: int | None = None
    skipped_tests: int | None = None
    cells: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    regressions: Mapping[str, str] = field(default_factory=dict)  # test -> culprit sha
    flaky: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> Grid | None:
        if not isinstance(data, Mapping):
            return None
        return cls(tuple(GridCommit.from_json(c) for c in _list(data, "commits")),
                   _strs(data, "tests"), _get(data, "passing_tests"),
                   _get(data, "skipped_tests"), dict(_get(data, "cells", {})),
                   dict(_get(data, "regressions", {})), _strs(data, "flaky"))

    def to_json(self) -> Json:
        return {"commits": [c.to_json() for c in self.commits], "tests": list(self.tests),
                "passing_tests": self.passing_tests, "skipped_tests": self.skipped_tests,
                "cells": {t: dict(c) for t, c in self.cells.items()},
                "regressions": dict(self.regressions), "flaky": list(self.flaky)}


@dataclass(frozen=True, slots=True)
class NightlyReport:
    """One night: what ran, what broke and who broke it, what still fails, what flaked."""

    status: str = "unknown"
    exit_code: int | None = None
    repository: str | None = None
    branch: str | None = None
    head: CommitRef | None = None
    generated_at: str | None = None
    lookback: int | None = None
    fail_on: str | None = None
    run: RunInfo | None = None
    regressions: tuple[RegressionGroup, ...] = ()
    still_failing: tuple[StillFailing, ...] = ()
    flaky: tuple[FlakyFailure, ...] = ()
    failing: tuple[Failing, ...] = ()
    grid: Grid | None = None
    # `bisector stats --json`'s document, embedded as it is (its own contract, reports/stats.py)
    stats: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    links: Links = field(default_factory=Links)
    schema: int = SCHEMA

    @property
    def new_regressions(self) -> int:
        """Tests newly broken tonight (with or without a culprit named)."""
        return sum(len(g.tests) for g in self.regressions)

    @classmethod
    def from_json(cls, data: Any) -> NightlyReport:
        return cls(
            status=str(_get(data, "status", "unknown")), exit_code=_get(data, "exit_code"),
            repository=_get(data, "repository"), branch=_get(data, "branch"),
            head=CommitRef.from_json(_get(data, "head")),
            generated_at=_get(data, "generated_at"), lookback=_get(data, "lookback"),
            fail_on=_get(data, "fail_on"), run=RunInfo.from_json(_get(data, "run")),
            regressions=tuple(RegressionGroup.from_json(g) for g in _list(data, "regressions")),
            still_failing=tuple(StillFailing.from_json(s) for s in _list(data, "still_failing")),
            flaky=tuple(FlakyFailure.from_json(f) for f in _list(data, "flaky")),
            failing=tuple(Failing.from_json(f) for f in _list(data, "failing")),
            grid=Grid.from_json(_get(data, "grid")), stats=_get(data, "stats"),
            notes=_strs(data, "notes"), links=Links.from_json(_get(data, "links")),
            schema=int(_get(data, "schema", SCHEMA)),
        )

    def to_json(self) -> Json:
        """nightly.json (docs/nightly-report.md)."""
        return {
            "schema": self.schema, "kind": KIND, "generated_at": self.generated_at,
            "repository": self.repository, "branch": self.branch,
            "head": _ref_json(self.head), "lookback": self.lookback, "fail_on": self.fail_on,
            "status": self.status, "exit_code": self.exit_code,
            "run": self.run.to_json() if self.run else None,
            "regressions": [g.to_json() for g in self.regressions],
            "still_failing": [s.to_json() for s in self.still_failing],
            "flaky": [f.to_json() for f in self.flaky],
            "failing": [f.to_json() for f in self.failing],
            "grid": self.grid.to_json() if self.grid else None,
            "stats": dict(self.stats) if self.stats is not None else None,
            "notes": list(self.notes), "links": self.links.to_json(),
        }


def as_report(data: NightlyReport | Mapping[str, Any]) -> NightlyReport:
    """The renderers' one entry: a report, or its JSON (an archived nightly.json) read back."""
    return data if isinstance(data, NightlyReport) else NightlyReport.from_json(data)
