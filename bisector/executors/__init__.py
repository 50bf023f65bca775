"""Executors run a probe (a commit and the tests to run there) and return its results.

An executor never decides what a result means for the search; untestable outcomes are
reported as such (missing test, collection error, setup failure, timeout).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol, Self

from ..errors import ExecutorError
from ..model import Environment, Outcome, TestResult
from ..nodeids import refusal, shown

# How a probe whose patch did not apply is worded (its results' message starts so)
PATCH_REFUSED = "the patch does not apply"


@dataclass(frozen=True, slots=True)
class Patch:
    """A change applied with `git apply` in the probe's own checkout, after it moved to the
    commit (never in the user's checkout): some hunks of a culprit on its parent, or their
    revert at the bad end. `key` names the resulting tree in the store (Run.patch_key);
    `zero_context` for hunks cut with no context (`--unidiff-zero`), `reverse` for `-R`."""

    text: str
    key: str
    reverse: bool = False
    zero_context: bool = True


@dataclass(frozen=True, slots=True)
class Probe:
    sha: str
    nodeids: tuple[str, ...]
    # `nodeids` are test files (--test-file without node ids): every test pytest runs in them
    # is a result, keyed by the node id its JUnit XML gives. A probe learns a file's node ids
    # this way, whatever the project's options do to pytest's terminal output.
    whole_files: bool = False
    # applied after the checkout; one that does not apply makes every test untestable
    patch: Patch | None = None


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    probe: Probe
    results: dict[str, TestResult]
    environment: Environment
    started_at: float
    finished_at: float
    exit_status: int | None
    problem: str | None = None  # why the whole probe was untestable, if it was
    log: str = field(default="", repr=False)
    # where it ran, when not on this host (a Dask worker): recorded as the run's host
    host: str | None = None


class ProbeAborted(Exception):
    """The probe was aborted (Ctrl-C, or the Dask client gave up on it): not a result.

    An executor whose `abort()` was called raises this before it would start another process
    or container, so a thread still checking out or setting up ends at once instead of running
    a probe nobody waits for.
    """


class Executor(Protocol):
    """What the finder, the pool, the nightly and the plugin depend on: no concrete executor.

    `run_round` runs probes at once (at most as many as the executor has slots: one for a
    single worktree or container, `--jobs` for a pool or a Dask cluster) and returns their
    outcomes in the order asked. `abort` may be called from another thread (Ctrl-C): running
    probes are killed and no new process starts. `env_key` is the fingerprint under which
    results count as the same experiment. `holds` says whether a probe would reuse the setup
    this executor ran last (ADR 25), which the pool uses to choose where a probe runs; `keep`
    names the commits the search will most likely probe again (its bounds), whose setups a
    pool keeps over others'.
    """

    def run(self, probe: Probe) -> ProbeOutcome: ...

    def holds(self, probe: Probe) -> bool: ...

    def keep(self, shas: Collection[str]) -> None: ...

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]: ...

    def abort(self) -> None: ...

    def env_key(self) -> str: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def last_line(text: str) -> str:
    """The last non-blank line of a log: what a one-line reason quotes."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# The line of a pytest log that says why a run did not get to its tests, most telling first:
# an INTERNALERROR's exception (the last INTERNALERROR> line), a usage error (`ERROR: ...`, with
# argparse's `error:` line for `ERROR: usage:`), a conftest that does not load, and the
# exception (`E   Name: message`) of a traceback pytest printed.
_INTERNAL = "INTERNALERROR>"
_USAGE = re.compile(r"^ERROR: (?!usage:)")
_ARGPARSE = re.compile(r"^[^:]*: error: ")
_CONFTEST = re.compile(r"^ImportError while loading conftest '(?P<path>[^']*)'")
_EXCEPTION = re.compile(r"^E\s+(?P<text>[A-Za-z_][\w.]*(Error|Exception|Warning|Exit|Interrupt|"
                        r"Failed|Skipped)\b.*)")
_E_LINE = re.compile(r"^E\s+(?P<text>\S.*)")
REASON_MAX = 300  # characters of a reason: one line in a terminal table or a JSON note


def pytest_reason(log: str, root: str | None = None) -> str:
    """Why pytest did not run the tests, in one line, from its output (stdout and stderr).

    pytest's last line is often a summary (`no tests ran in 0.02s`) or one frame of a
    traceback: the lines that name the cause are picked instead, in the order pytest printed
    them. `root` (the probe's checkout) is taken out of paths, which differ per probe. Falls
    back on the last line; "" for an empty log.
    """
    lines = [line.rstrip() for line in log.splitlines()]
    found: list[str] = []
    internal = [line for line in lines if line.startswith(_INTERNAL)]
    if internal:
        found.append(internal[-1])
    conftest = None
    for line in lines:
        if _USAGE.match(line) or _ARGPARSE.match(line):
            found.append(line)
        elif (match := _CONFTEST.match(line)) is not None:
            conftest = f"ImportError while loading conftest {match['path']}"
    errors = [m["text"] for line in lines if (m := _EXCEPTION.match(line))]
    if not errors:
        errors = [m["text"] for line in lines if (m := _E_LINE.match(line))][-1:]
    if errors:
        found.append(f"{conftest}: {errors[-1]}" if conftest else errors[-1])
    elif conftest:
        found.append(conftest)
    text = "; ".join(dict.fromkeys(line.strip() for line in found)) or last_line(log)
    if root:
        text = text.replace(root.rstrip("/") + "/", "")
    return text if len(text) <= REASON_MAX else text[:REASON_MAX - 3] + "..."


def in_files(nodeid: str, files: tuple[str, ...]) -> bool:
    """Whether a node id pytest reported is a test of one of these files (or the file)."""
    path = nodeid.split("::", 1)[0]
    return any(path == f or path.endswith("/" + f) for f in files)


def reported_missing(nodeid: str, log: str) -> bool:
    """Whether pytest's usage error names this node id (or its file) as not found."""
    file = nodeid.split("::", 1)[0]
    for line in log.splitlines():
        if "not found:" in line:
            named = line.split("not found:", 1)[1].strip()
            if named.endswith(nodeid) or (named.endswith(file) and "::" not in named):
                return True
    return False


def runnable(nodeids: tuple[str, ...], status: int | None, log: str) -> list[str] | None:
    """pytest refuses a whole run (exit 4) when one node id does not exist at the commit: the
    others, to run again so that one new test does not make the commit untestable for all;
    None when that is not what happened."""
    if status != 4 or len(nodeids) < 2:
        return None
    missing = [n for n in nodeids if reported_missing(n, log)]
    rest = [n for n in nodeids if n not in missing]
    return rest if missing and rest else None


def fill_untestable(results: dict[str, TestResult], nodeids: tuple[str, ...],
                    problem: str | None, *, phase: str = "collect",
                    traceback: str | None = None) -> dict[str, TestResult]:
    """Every asked test has a result: the ones the run did not report are untestable, for the
    probe's problem or because they do not exist at this commit. `traceback` is what a person
    reads to see why (the tail of the probe's output)."""
    for nodeid in nodeids:
        if nodeid not in results:
            reason = problem or f"{nodeid} not found at this commit"
            results[nodeid] = TestResult(nodeid, Outcome.UNTESTABLE, 0.0, None, reason,
                                         phase=phase, traceback=traceback)
    return results


def unreported(probe: Probe, results: dict[str, TestResult]) -> tuple[str, ...]:
    """The asked ids (or, for a whole-file probe, the files) with no result: untestable."""
    if not probe.whole_files:
        return probe.nodeids
    return tuple(f for f in probe.nodeids if not any(in_files(n, (f,)) for n in results))


def checked_ids(nodeids: tuple[str, ...]) -> tuple[list[str], dict[str, TestResult]]:
    """The ids a probe may put on its command line, and an untestable result for each other.

    Ids are checked where they enter bisector; this is the last line, so that one a caller
    missed is never run as an option. A probe left with no id at all is refused: an empty
    selection would run the whole suite.
    """
    kept: list[str] = []
    refused: dict[str, TestResult] = {}
    for nodeid in nodeids:
        why = refusal(nodeid)
        if why is None:
            kept.append(nodeid)
        else:
            refused[nodeid] = TestResult(nodeid, Outcome.UNTESTABLE, 0.0, None,
                                         f"not run: the test id {why}", phase="collect")
    if not kept:
        names = ", ".join(shown(n) for n in nodeids) or "none"
        raise ExecutorError(f"no test id of the probe can be run ({names})",
                            hint="name tests by their node ids")
    return kept, refused
