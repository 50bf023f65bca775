"""How long work tells the user where it is: events, and the three ways they are shown.

A bisection (and any later stage that probes: hunk isolation) reports through `Progress`:
`plan` when a stage starts (its span and the probes it should take at most), `probe_started`
and `probe_done` around each probe, `note` for anything else, `finish` when the work is over.
The search code only calls these; what is printed is decided here, as mozregression's
`BisectorHandler` does it:

- `Lines`: one plain line per probe, for logs and CI (stderr not a terminal), worded as
  `probe N: <sha> (<why>), K test(s)`; with `verbose`, each probe's outcome and output tail.
- `Live`: a `rich.progress` bar on a terminal: candidates left, probes done against the
  stage's bound, the running probe's elapsed time and an ETA from the measured probe times.
- `Silent`: `-q`.

`Board` is the pure state the bar is drawn from (no clock of its own, no I/O). Everything
shown is `rich.text.Text`: a commit subject, a test id or a probe's output is never markup.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

TAIL_LINES = 15  # lines of a probe's output -v shows
TAIL_CHARS = 2000  # and at most this many characters of them
REASON_CHARS = 120  # of an untestable probe's reason, in its one-line outcome


@dataclass(frozen=True, slots=True)
class ProbeStart:
    """A probe about to run: its number in the work (from 1), commit, reason, how many tests
    (None when it runs whole files), and how many candidates the search still had when it
    chose it (None outside a search)."""

    number: int
    sha: str
    why: str
    tests: int | None
    left: int | None = None


@dataclass(frozen=True, slots=True)
class ProbeDone:
    """A probe that ran: how long, its outcome in a few words, and its output (-v's tail)."""

    number: int
    sha: str
    seconds: float
    outcome: str
    output: str = field(default="", repr=False)


class Progress(Protocol):
    """What long work reports to; each implementation decides what (if anything) to show."""

    def plan(self, stage: str, span: int, bound: int | None) -> None: ...

    def probe_started(self, probe: ProbeStart) -> None: ...

    def probe_done(self, probe: ProbeDone) -> None: ...

    def note(self, message: str) -> None: ...

    def finish(self) -> None: ...


class Silent:
    """`-q`, and the default of library callers that asked for nothing."""

    def plan(self, stage: str, span: int, bound: int | None) -> None:
        pass

    def probe_started(self, probe: ProbeStart) -> None:
        pass

    def probe_done(self, probe: ProbeDone) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass


SILENT = Silent()  # the default reporter: stateless, so one is enough


# -- words ---------------------------------------------------------------------------------


def start_line(probe: ProbeStart) -> str:
    """The line every probe has printed since the first release (tests and logs grep it)."""
    line = f"probe {probe.number}: {probe.sha[:10]} ({probe.why})"
    return line if probe.tests is None else f"{line}, {probe.tests} test(s)"


def outcome_words(outcomes: Iterable[str], problem: str | None = None) -> str:
    """A probe's outcome in a few words: `failed`, `2 passed, 1 failed`, `untestable (...)`."""
    if problem:
        one = " ".join(problem.split())
        cut = one if len(one) <= REASON_CHARS else one[:REASON_CHARS - 3] + "..."
        return f"untestable ({cut})"
    counts = Counter(outcomes)
    if not counts:
        return "no result"
    if sum(counts.values()) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items())


def done_line(probe: ProbeDone, why: str | None = None) -> str:
    reason = f" ({why})" if why else ""
    took = f"{probe.seconds:.1f}s" if probe.seconds < 60 else clock(probe.seconds)
    return f"probe {probe.number}: {probe.sha[:10]}{reason} {probe.outcome} in {took}"


def tail(output: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> list[str]:
    """The last lines of a probe's output, bounded in lines and characters; [] for none."""
    kept = [line.rstrip() for line in output.strip("\n").splitlines()][-lines:]
    while kept and sum(len(line) + 1 for line in kept) > chars:
        if len(kept) == 1:
            kept = [kept[0][-chars:]]
            break
        kept.pop(0)
    return kept if any(kept) else []


def clock(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def eta(seconds: list[float], remaining: int, width: int = 1, running_for: float = 0.0
        ) -> float | None:
    """Seconds until `remaining` more probes are done, `width` at a time, at the mean of the
    measured probe times, less what the running round has already taken; None with nothing
    measured or nothing left."""
    if not seconds or remaining <= 0:
        return None
    mean = sum(seconds) / len(seconds)
    return max(math.ceil(remaining / max(width, 1)) * mean - running_for, 0.0)


# -- the state a bar is drawn from --------------------------------------------------------


@dataclass
class Board:
    """Where the work is: the stage, its span and bound, the probes done and running, the
    probe times measured so far (kept across stages: a probe costs what it costs)."""

    stage: str = ""
    span: int = 0
    bound: int | None = None
    done: int = 0  # probes finished in this stage
    left: int | None = None  # candidates the search still had at its last probe
    running: dict[int, tuple[ProbeStart, float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    width: int = 1  # most probes seen running at once

    def plan(self, stage: str, span: int, bound: int | None) -> None:
        self.stage, self.span, self.bound, self.done, self.left = stage, span, bound, 0, None

    def started(self, probe: ProbeStart, now: float) -> None:
        self.running[probe.number] = (probe, now)
        self.width = max(self.width, len(self.running))
        if probe.left is not None:
            self.left = probe.left

    def finished(self, probe: ProbeDone) -> ProbeStart | None:
        self.done += 1
        self.seconds.append(probe.seconds)
        start = self.running.pop(probe.number, None)
        return start[0] if start else None

    def description(self) -> str:
        stage = self.stage or "probing"
        if self.left is not None and self.span:
            return f"{stage}: {self.left} of {self.span} candidates left"
        if self.span:
            return f"{stage}: {self.span} candidate{'s' if self.span != 1 else ''}"
        return stage

    def total(self) -> int | None:
        """The bar's end: the bound, or past it when the search needs more than expected."""
        if self.bound is None:
            return None
        return max(self.bound, self.done + len(self.running))

    def count(self) -> str:
        total = self.total()
        return f"{self.done}/{total} probes" if total is not None else f"{self.done} probes"

    def running_for(self, now: float) -> float:
        return now - min(t for _, t in self.running.values()) if self.running else 0.0

    def timing(self, now: float) -> str:
        """`probe 0:12 · ETA 0:40`: the running probe's time, and what is likely left."""
        parts = [f"probe {clock(self.running_for(now))}"] if self.running else []
        total = self.total()
        if total is not None:
            left = eta(self.seconds, total - self.done, self.width, self.running_for(now))
            if left is not None:
                parts.append(f"ETA {clock(left)}")
        return " · ".join(parts)


# -- the three ways of showing it ---------------------------------------------------------


class Lines:
    """Plain lines through `write`: one per probe; with `verbose`, its outcome and tail."""

    def __init__(self, write: Callable[[str], None], *, verbose: bool = False) -> None:
        self.write, self.verbose = write, verbose

    def plan(self, stage: str, span: int, bound: int | None) -> None:
        pass

    def probe_started(self, probe: ProbeStart) -> None:
        self.write(start_line(probe))

    def probe_done(self, probe: ProbeDone) -> None:
        if not self.verbose:
            return
        self.write(done_line(probe))
        for line in tail(probe.output):
            self.write(f"  | {line}")

    def note(self, message: str) -> None:
        self.write(message)

    def finish(self) -> None:
        pass


class Live:
    """A `rich.progress` bar on `console` (a terminal), started at the first event and
    stopped by `finish` (call it in a `finally`: Ctrl-C must leave the terminal clean).
    Finished probes and notes are printed above the bar as dim lines."""

    def __init__(self, console: Any, *, verbose: bool = False,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.console, self.verbose, self.now = console, verbose, now
        self.board = Board()
        self._bar: Any = None
        self._task: Any = None

    def plan(self, stage: str, span: int, bound: int | None) -> None:
        self.board.plan(stage, span, bound)
        self._refresh()

    def probe_started(self, probe: ProbeStart) -> None:
        self.board.started(probe, self.now())
        self._refresh()

    def probe_done(self, probe: ProbeDone) -> None:
        start = self.board.finished(probe)
        self._print(done_line(probe, start.why if start else None))
        if self.verbose:
            for line in tail(probe.output):
                self._print(f"  | {line}")
        self._refresh()

    def note(self, message: str) -> None:
        self._print(message)

    def finish(self) -> None:
        bar, self._bar, self._task = self._bar, None, None
        if bar is not None:
            bar.stop()

    def _print(self, line: str) -> None:
        from rich.text import Text

        self.console.print(Text(line, style="dim"), soft_wrap=True)

    def _refresh(self) -> None:
        if self._bar is None:
            self._bar = _bar(self)
            self._task = self._bar.add_task("", total=None)
            self._bar.start()
        self._bar.update(self._task, completed=self.board.done, total=self.board.total(),
                         refresh=True)


def _bar(live: Live) -> Any:
    """The bar's columns read the board at every refresh, so the running probe's clock
    ticks between events. Each column is a `Text`: nothing in it is markup."""
    from rich.progress import BarColumn, ProgressColumn, SpinnerColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class Read(ProgressColumn):
        def __init__(self, read: Callable[[], str], style: str = "") -> None:
            super().__init__()
            self.read, self.style = read, style

        def render(self, task: Any) -> Text:
            return Text(self.read(), style=self.style)

    board = live.board
    return RichProgress(
        SpinnerColumn(), Read(board.description), BarColumn(), Read(board.count),
        Read(lambda: board.timing(live.now()), style="cyan"),
        console=live.console, transient=True, redirect_stdout=False, redirect_stderr=True)


def for_stderr(*, quiet: bool = False, verbose: bool = False) -> Progress:
    """What the commands report to: nothing with -q, a bar on a terminal, lines otherwise."""
    if quiet:
        return Silent()
    if not _animated(sys.stderr):  # a log, a pipe, CI (even with FORCE_COLOR set)
        return Lines(_stderr_line, verbose=verbose)
    from rich.console import Console

    return Live(Console(stderr=True, highlight=False, markup=False, emoji=False),
                verbose=verbose)


def _animated(stream: Any) -> bool:
    """A terminal that redraws a line: a tty whose TERM is not `dumb`."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed, or no file at all
        return False
    return bool(tty) and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
