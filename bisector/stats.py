"""`bisector stats`: how a branch has been doing over a window of its recent history.

The window is the first-parent line of HEAD: its last N commits (`commits`), or the commits
dated (committer time) at most D days before now (`days`; the walk back stops at the first
commit dated earlier, as `git log --since` does). Its commits, in the whole graph, are those
that the window's first-parent commits brought in: the commits reachable from HEAD and not from
the first parent of the window's oldest commit (`git rev-list HEAD ^oldest^1`), so a culprit
inside a merged branch counts in the window of the merge that brought it in.

Figures (only finished bisections, status `done`, are read; a test's list of suspects, when no
culprit was isolated, names no culprit):

- `regressions`: distinct culprit commits inside the window; `regressions_per_100_commits`:
  that number per 100 first-parent commits of the window, rounded to 2 places.
- `mean_hours_to_detection`: over (test, culprit) pairs, the start of the first bisection that
  named that culprit for that test minus the culprit's committer time, in hours. A bisection is
  started when the failure is detected (the nightly and auto-bisect start it right after the run
  that saw it), so this is how long a regression stayed in before a run caught it.
- `mean_seconds_to_culprit`: mean duration (finished - started) of the bisections that named at
  least one culprit inside the window.
- `flaky`: `queries.flaky_tests` over the window's first-parent commits.
- `slowest`: the tests with the slowest mean duration over clean runs on the window's
  first-parent commits (skipped and untestable results left out).
- `trend`: one point per commit of the first-parent window with a clean run of the suite (not
  only bisection probes, which run just the tests bisected), oldest first: failed (failed or
  error) and passed counts of its latest such run, and the new regressions first seen there:
  the culprits brought in (a commit itself, or the commits of the branch it merged) by it or
  by the commits since the previous point, which no whole run saw (a culprit is usually one
  only probes ran at). Culprits brought in after the newest point are on no point.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .gitrepo import Repository
from .history import HistoryStore
from .model import CommitInfo, FlakyTest
from .queries import flaky_tests

SLOWEST = 10
_DAY = 86400.0
_PAGE = 256


@dataclass(frozen=True, slots=True)
class Named:
    """One test's culprit, as one finished bisection named it."""

    bisection: int
    test: str
    culprit: str
    started_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class SlowTest:
    nodeid: str
    mean_seconds: float
    max_seconds: float
    runs: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    sha: str
    committed_at: int
    failed: int  # failed or error in the commit's latest clean run that is not a probe
    passed: int
    regressions: int  # culprits first seen here (brought in since the previous point)

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True, slots=True)
class Stats:
    commits: int | None  # the window asked for: N first-parent commits ...
    days: float | None  # ... or D days
    size: int  # first-parent commits in the window
    first: CommitInfo | None  # its oldest commit
    last: CommitInfo | None  # its newest (HEAD)
    regressions: int
    regressions_per_100_commits: float
    mean_hours_to_detection: float | None
    mean_seconds_to_culprit: float | None
    flaky: tuple[FlakyTest, ...]
    slowest: tuple[SlowTest, ...]
    trend: tuple[TrendPoint, ...]

    @property
    def tracked_commits(self) -> int:
        return len(self.trend)


# -- pure arithmetic ----------------------------------------------------------------------------

def per_100(regressions: int, commits: int) -> float:
    """Regressions per 100 commits, rounded to 2 places (0.0 for an empty window)."""
    if commits <= 0:
        return 0.0
    return round(regressions * 100 / commits, 2)


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return math.fsum(items) / len(items) if items else None


def named_culprits(bisections: Iterable[Mapping[str, Any]]) -> list[Named]:
    """The culprits finished bisections named, one per (bisection, test); a list of suspects
    (no culprit isolated), an unreadable result and an unfinished bisection name none."""
    out = []
    for b in bisections:
        if b.get("status") != "done":
            continue
        try:
            result = json.loads(str(b.get("result") or "null"))
        except ValueError:
            continue
        if not isinstance(result, dict):
            continue
        finished = b.get("finished_at")
        for test, culprit in result.items():
            if isinstance(culprit, str) and culprit:
                out.append(Named(
                    bisection=int(b["id"]), test=str(test), culprit=culprit,
                    started_at=float(b["started_at"]),
                    finished_at=None if finished is None else float(finished),
                ))
    return out


def hours_to_detection(named: Iterable[Named], committed_at: Mapping[str, int]) -> list[float]:
    """Per (test, culprit): the first bisection's start minus the culprit's commit time, hours."""
    first: dict[tuple[str, str], float] = {}
    for n in named:
        key = (n.test, n.culprit)
        if n.culprit in committed_at and (key not in first or n.started_at < first[key]):
            first[key] = n.started_at
    return [(started - committed_at[culprit]) / 3600.0
            for (_, culprit), started in sorted(first.items())]


def seconds_to_culprit(named: Iterable[Named]) -> list[float]:
    """The duration of each bisection among `named` (once each, unfinished ones left out)."""
    spans: dict[int, float] = {}
    for n in named:
        if n.finished_at is not None:
            spans[n.bisection] = n.finished_at - n.started_at
    return [spans[k] for k in sorted(spans)]


def introduced_by(line: Sequence[str], parents: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Which commit of the first-parent `line` (oldest first) brought each commit of the range
    in: a line commit itself, a commit of a merged branch the merge. `parents` holds every
    commit of the range (the commits outside it are absent and end the walk)."""
    owner = {sha: sha for sha in line}
    for sha in line:
        stack = list(parents.get(sha, ())[1:])
        while stack:
            x = stack.pop()
            if x in owner or x not in parents:
                continue
            owner[x] = sha
            stack.extend(parents[x])
    return owner


# -- assembly from git and the store ------------------------------------------------------------

def _line(repo: Repository, commits: int | None, days: float | None,
          now: float) -> list[CommitInfo]:
    """The window's first-parent commits, newest first."""
    if days is None:
        shas = repo.first_parent("HEAD", limit=commits)
        infos = repo.commits(shas)
        return [infos[s] for s in shas if s in infos]
    cutoff = now - days * _DAY
    out: list[CommitInfo] = []
    skip = 0
    while True:
        page = repo.first_parent("HEAD", limit=_PAGE, skip=skip)
        infos = repo.commits(page)
        for sha in page:
            info = infos.get(sha)
            if info is None or info.committed_at < cutoff:
                return out
            out.append(info)
        if len(page) < _PAGE:
            return out
        skip += _PAGE


def _range(repo: Repository, line: list[CommitInfo]) -> dict[str, str]:
    """Every commit the window brought in -> the first-parent commit that brought it."""
    if not line:
        return {}
    head, oldest = line[0], line[-1]
    if oldest.parents:
        _, parents = repo.graph(oldest.parents[0], head.sha)
    else:  # the window reaches a root: everything but the root comes from HEAD ^root
        _, parents = repo.graph(oldest.sha, head.sha)
        parents[oldest.sha] = ()
    return introduced_by([c.sha for c in reversed(line)], parents)


def _trend(store: HistoryStore, line: list[CommitInfo], tracked: set[str],
           brought: Counter[str]) -> list[TrendPoint]:
    """Oldest first, per tracked commit its latest whole run's failures and passes, and the
    regressions brought in since the point before (`brought`: commit -> culprits it
    brought in)."""
    trend = []
    pending = 0  # culprits brought in by commits no whole run saw: marked where first seen
    for c in reversed(line):
        pending += brought.get(c.sha, 0)
        if c.sha not in tracked:
            continue
        # the latest whole run: a probe runs only the tests being bisected, so a commit only
        # probes ran at says nothing of how many tests failed there
        run = next((r for r in store.runs(sha=c.sha) if not r.dirty and r.trigger != "probe"
                    and r.patch_key is None),
                   None)
        if run is None:
            continue
        counts = store.outcome_counts(run.id)
        trend.append(TrendPoint(
            sha=c.sha, committed_at=c.committed_at,
            failed=counts.get("failed", 0) + counts.get("error", 0),
            passed=counts.get("passed", 0), regressions=pending,
        ))
        pending = 0
    return trend


def compute_stats(repo: Repository, store: HistoryStore, *, commits: int | None = 100,
                  days: float | None = None, now: float | None = None) -> Stats:
    """The figures for the window: `days` when given (then `commits` is not used), else the
    last `commits` first-parent commits of HEAD (all of them when None). See the module."""
    now = time.time() if now is None else now
    line = _line(repo, commits, days, now)
    owner = _range(repo, line)
    named = [n for n in named_culprits(store.bisections()) if n.culprit in owner]
    culprits = sorted({n.culprit for n in named})
    when = {c.sha: c.committed_at for c in line}
    missing = [c for c in culprits if c not in when]
    when.update((sha, info.committed_at) for sha, info in repo.commits(missing).items())

    shas = [c.sha for c in line]
    tracked = store.tracked_shas() & set(shas)
    trend = _trend(store, line, tracked, Counter(owner[c] for c in culprits))
    flaky = flaky_tests(repo, store, len(line)) if tracked else []
    slowest = [SlowTest(*d) for d in store.durations(tracked, limit=SLOWEST)] if tracked else []
    return Stats(
        commits=None if days is not None else commits,
        days=days,
        size=len(line),
        first=line[-1] if line else None,
        last=line[0] if line else None,
        regressions=len(culprits),
        regressions_per_100_commits=per_100(len(culprits), len(line)),
        mean_hours_to_detection=mean(hours_to_detection(named, when)),
        mean_seconds_to_culprit=mean(seconds_to_culprit(named)),
        flaky=tuple(flaky),
        slowest=tuple(slowest),
        trend=tuple(trend),
    )
