"""JUnit XML to `TestResult`s, through junitparser, for the dialects tools actually write.

Read correctly: pytest (xunit1, with `file`/`line`, and xunit2, without), Maven Surefire
(`<flakyFailure>`/`<flakyError>` in a passing case and `<rerunFailure>`/`<rerunError>` in a
failing one count as reruns), jest-junit (any classname/title template), gotestsum
(`--junitfile`), a bare `<testsuite>` root and suites nested in suites.

Node ids are matched the way pytest writes them (`tests/test_x.py::TestA::test_b[1]` becomes
classname `tests.test_x.TestA`, name `test_b[1]`), so a probe's or an imported file's results
line up with what the plugin recorded for the same tests. Other dialects are keyed
`classname::name`.

A test named twice in a file (pytest-rerunfailures, `gotestsum --rerun-fails`) is one test
that was rerun: its last entry is its outcome and each earlier one counts as a rerun.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ExecutorError
from .model import Outcome, TestResult
from .nodeids import usable
from .signature import first_line, short_message, signature, traceback_tail

DIALECTS = ("pytest", "generic")

_PHASE = re.compile(r'^failed on (setup|teardown) with "(.*)"$', re.S)
# Children of a <testcase> that record an earlier, failed attempt (Surefire's rerun feature).
_RERUNS = frozenset({"rerunFailure", "rerunError", "flakyFailure", "flakyError"})
# `message` attributes that say nothing the element's kind does not (gotestsum: "Failed").
_VACUOUS = frozenset({"", "failed", "failure", "error", "skipped"})
# Lines of go test output and jest's banners that frame a failure rather than describe it.
_FRAMING = re.compile(r"^(=== (RUN|PAUSE|CONT|NAME)\b|--- (FAIL|SKIP|PASS):|● )")
# `file_test.go:12: ` in front of a Go failure: the line moves from commit to commit.
_GO_LOCATION = re.compile(r"^[\w./-]+\.go:\d+:\s*")
# jest-junit's classname for a test file that failed to load (reportTestSuiteErrors).
_JEST_SUITE_ERROR = "Test suite failed to run"


@dataclass(frozen=True, slots=True)
class Case:
    """One <testcase>: its address as written and what it says (`result.nodeid` is
    `classname::name`). `file` is pytest xunit1's attribute, None where absent."""

    classname: str
    name: str
    result: TestResult
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A whole JUnit file: results by node id, and when and where the tests ran, if it says."""

    results: dict[str, TestResult]
    started_at: float | None = None  # earliest <testsuite timestamp>, epoch seconds
    finished_at: float | None = None  # latest timestamp + time
    hostname: str | None = None
    # a note for each case whose id could not be a test id (see `nodeids`): left out
    notes: tuple[str, ...] = ()


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's junitxml writes for a node id."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


# -- one <testcase> ---------------------------------------------------------------------------


def _seconds(value: str | None) -> float:
    """A `time` attribute; Surefire writes thousands separators (`1,234.5`)."""
    try:
        number = float((value or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _telling_line(text: str) -> str:
    """The first line of a failure's text that describes it, skipping go test's and jest's
    framing (`=== RUN`, `--- FAIL: T (0.00s)`, `● Test suite failed to run`); "" if none
    does (a Go test that failed only through its subtests)."""
    lines = (line.strip() for line in text.splitlines())
    return next((line for line in lines if line and not _FRAMING.match(line)), "")


def _crash(elem: Any, *, typed: bool = True) -> str:
    """`Type: message` of a failure element, as close as the dialect allows to pytest's crash
    line: the `message` attribute, else the element's text; the `type` attribute in front
    when it names an exception the message does not already start with (Surefire)."""
    message = (elem.get("message") or "").strip()
    if message.lower() in _VACUOUS:
        message = _telling_line(elem.text or "")
    elif _FRAMING.match(message):  # gotestsum puts a skipped test's output in `message`
        message = _telling_line(message)
    kind = (elem.get("type") or "").strip()
    if typed and kind and kind.lower() not in _VACUOUS and not message.startswith(kind):
        message = f"{kind}: {message}" if message else kind
    return message


def _failure(nodeid: str, outcome: Outcome, duration: float, crash: str, reruns: int,
             phase: str = "call", elem: Any = None) -> TestResult:
    line = first_line(crash)
    return TestResult(nodeid, outcome, duration, signature(_GO_LOCATION.sub("", line)),
                      short_message(line) or None, reruns, phase, _long_text(elem))


def _long_text(elem: Any) -> str | None:
    """The failure or error element's text: pytest's long representation (the same text
    `--track-history` stores), Surefire's stack trace, jest's and Go's output; its tail."""
    if elem is None:
        return None
    return traceback_tail(elem.text or elem.get("message") or "")


def _case_result(nodeid: str, elem: Any) -> TestResult:
    """The result one <testcase> element records, under the given node id.

    A failure outranks an error (pytest: a test that failed and then broke in teardown
    failed), an error outranks a skip (a skipped test whose teardown broke is an error).
    """
    duration = _seconds(elem.get("time"))
    children = [child for child in elem if isinstance(child.tag, str)]
    reruns = sum(child.tag in _RERUNS for child in children)
    found = {child.tag: child for child in reversed(children)}  # the first of each kind
    failure, error, skipped = found.get("failure"), found.get("error"), found.get("skipped")
    if (failure is not None or error is not None) and (
            (elem.get("classname") or "").strip() == _JEST_SUITE_ERROR):
        text = (error if error is not None else failure).text or ""
        return _failure(nodeid, Outcome.ERROR, duration, _telling_line(text), reruns, "collect",
                        error if error is not None else failure)
    if failure is not None:
        return _failure(nodeid, Outcome.FAILED, duration, _crash(failure), reruns, elem=failure)
    if error is not None:
        message = (error.get("message") or "").strip()
        if message == "collection failure":  # pytest: the file could not be collected
            text = error.text or ""
            crash = next((ln[4:] for ln in text.splitlines() if ln.startswith("E   ")), message)
            return _failure(nodeid, Outcome.ERROR, duration, crash, reruns, "collect", error)
        match = _PHASE.match(message)
        if match:
            return _failure(nodeid, Outcome.ERROR, duration, match.group(2), reruns,
                            match.group(1), error)
        return _failure(nodeid, Outcome.ERROR, duration, _crash(error), reruns, elem=error)
    if skipped is not None:
        xfail = (skipped.get("type") or "") == "pytest.xfail"
        reason = _crash(skipped, typed=False)
        return TestResult(nodeid, Outcome.XFAILED if xfail else Outcome.SKIPPED, duration,
                          None, short_message(reason) or None, reruns)
    return TestResult(nodeid, Outcome.PASSED, duration, reruns=reruns)


# -- whole files ------------------------------------------------------------------------------


def _load(path: Path) -> Any:
    """The root element of a JUnit file, `<testsuites>` or a bare `<testsuite>`."""
    from xml.etree.ElementTree import ParseError

    from junitparser import JUnitXml
    from junitparser.junitparser import JUnitXmlError

    try:
        return JUnitXml.fromfile(str(path))._elem
    except OSError as exc:
        raise ExecutorError(f"cannot read JUnit XML {path} ({exc.strerror or exc})",
                            hint="check the path") from None
    except ParseError as exc:
        raise ExecutorError(f"{path} is not valid XML ({exc})",
                            hint="give a JUnit XML file") from None
    except (JUnitXmlError, ValueError, SyntaxError) as exc:
        raise ExecutorError(f"{path} is not JUnit XML ({exc})",
                            hint="its root must be <testsuites> or <testsuite>") from None


def _cases(root: Any) -> list[Case]:
    cases = []
    for elem in root.iter("testcase"):  # document order, at any depth of nested suites
        classname = (elem.get("classname") or "").strip()
        name = (elem.get("name") or "").strip()
        file = elem.get("file")
        address = f"{classname}::{name}" if classname else name
        cases.append(Case(classname, name, _case_result(address, elem),
                          file.replace("\\", "/") if file else None))
    return cases


def read_cases(path: Path) -> list[Case]:
    """Every <testcase> of a file, in document order (a rerun test appears more than once)."""
    return _cases(_load(path))


def merge(results: Iterable[TestResult]) -> dict[str, TestResult]:
    """Results by node id; a node id seen again is a rerun: the last outcome, reruns counted.

    A file that failed to load reported twice (jest-junit writes the error and then the
    suite's failure under the same name) stays one collection error.
    """
    out: dict[str, TestResult] = {}
    for result in results:
        previous = out.get(result.nodeid)
        if previous is not None:
            if previous.phase == "collect" and result.phase == "collect":
                continue
            result = replace(result, reruns=result.reruns + previous.reruns + 1)
        out[result.nodeid] = result
    return out


def _module_index(files: Iterable[str]) -> dict[str, str]:
    """The dotted module name pytest's junitxml writes for each repository file."""
    index: dict[str, str] = {}
    for path in sorted(files, key=lambda p: (p.endswith(".py"), p), reverse=True):
        index.setdefault(re.sub(r"\.py$", "", path).replace("/", "."), path)
    return index  # a .py file wins over a same-named data file


def _within(classname: str, name: str, module: str, file: str) -> str | None:
    """The node id of a case whose classname starts with `module` (the dotted `file`)."""
    if classname == module:
        return f"{file}::{name}"
    if classname.startswith(module + "."):
        return "::".join([file, *classname[len(module) + 1:].split("."), name])
    if not classname and name == module:  # a collection error names the file itself
        return file
    return None


def _pytest_nodeid(case: Case, modules: dict[str, str] | None = None) -> str:
    """The pytest node id of a case: by its `file` attribute (xunit1), else by the longest
    dotted prefix of its classname that is a file of the repository (`modules`, from
    `_module_index`), else `classname::name`."""
    if case.file:
        module = re.sub(r"\.py$", "", case.file).replace("/", ".")
        found = _within(case.classname, case.name, module, case.file)
        if found is not None:
            return found
    if modules:
        if not case.classname:
            if case.name in modules:
                return modules[case.name]
        else:
            parts = case.classname.split(".")
            for end in range(len(parts), 0, -1):
                module = ".".join(parts[:end])
                if module in modules:
                    found = _within(case.classname, case.name, module, modules[module])
                    if found is not None:
                        return found
    return f"{case.classname}::{case.name}" if case.classname else case.name


def _timestamp(value: str | None) -> float | None:
    """Epoch seconds of a `timestamp` attribute; one without a zone is UTC (jest-junit's)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if seconds > 0 else None  # 1970 and year 1: "not set"


def read_report(path: Path, dialect: str = "pytest", *,
                files: set[str] | None = None) -> Report:
    """A whole JUnit file, keyed by node id (see `read_results`), with its suites' times."""
    if dialect not in DIALECTS:
        raise ExecutorError(f"unknown JUnit dialect {dialect!r}",
                            hint="use one of " + ", ".join(DIALECTS))
    root = _load(path)
    cases = _cases(root)
    if dialect == "pytest":
        modules = _module_index(files) if files else None
        results = merge(replace(c.result, nodeid=_pytest_nodeid(c, modules)) for c in cases)
    else:
        results = merge(c.result for c in cases)
    # a file anyone could have written: its ids are data, never a probe's options
    kept, notes = usable(results, str(path))
    results = {nodeid: results[nodeid] for nodeid in kept}
    starts, ends, hostname = [], [], None
    for suite in root.iter("testsuite"):
        hostname = hostname or (suite.get("hostname") or "").strip() or None
        start = _timestamp(suite.get("timestamp"))
        if start is not None:
            starts.append(start)
            ends.append(start + _seconds(suite.get("time")))
    return Report(results, min(starts, default=None), max(ends, default=None), hostname,
                  tuple(notes))


def read_results(path: Path, dialect: str = "pytest", *,
                 files: set[str] | None = None) -> dict[str, TestResult]:
    """Every result in a JUnit file, keyed by node id.

    `dialect="pytest"` maps cases back to pytest node ids: by the `file` attribute where
    pytest wrote one (xunit1), else by `files`, the repository's paths, which tell which dotted
    prefix of a classname is the module (xunit2); failing both, `classname::name`.
    `dialect="generic"` keys every case `classname::name` (`name` when the classname is
    empty). Raises `ExecutorError` for a missing, unreadable or invalid file.
    """
    return read_report(path, dialect, files=files).results


def results_for(path: Path, nodeids: list[str]) -> dict[str, TestResult]:
    """The results of the asked node ids found in a pytest JUnit file (missing ones left out)."""
    by_address = merge(c.result for c in read_cases(path))
    out = {}
    for nodeid in nodeids:
        classname, name = junit_address(nodeid)
        found = by_address.get(f"{classname}::{name}" if classname else name)
        if found is not None:
            out[nodeid] = replace(found, nodeid=nodeid)
    return out
