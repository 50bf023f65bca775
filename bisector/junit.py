"""JUnit XML to `TestResult`s, through junitparser.

Node ids are matched the way pytest writes them (`tests/test_x.py::TestA::test_b[1]` becomes
classname `tests.test_x.TestA`, name `test_b[1]`), so a probe's results line up with what the
plugin recorded for the same tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ExecutorError
from .model import Outcome, TestResult
from .signature import first_line, short_message, signature

_PHASE = re.compile(r'^failed on (setup|teardown) with "(.*)"$', re.S)


@dataclass(frozen=True, slots=True)
class Case:
    classname: str
    name: str
    result: TestResult


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's junitxml writes for a node id."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _result(name: str, case: object) -> TestResult:
    duration = float(getattr(case, "time", 0.0) or 0.0)
    for res in getattr(case, "result", []) or []:
        kind = type(res).__name__
        message = str(getattr(res, "message", "") or "")
        if kind == "Failure":
            return TestResult(name, Outcome.FAILED, duration, signature(message),
                              short_message(message) or None)
        if kind == "Error":
            phase = "call"
            match = _PHASE.match(message)
            if match:
                phase, message = match.group(1), match.group(2)
            if message == "collection failure":
                text = str(getattr(res, "text", "") or "")
                crash = next((ln[4:] for ln in text.splitlines() if ln.startswith("E   ")), message)
                return TestResult(name, Outcome.ERROR, duration, signature(crash),
                                  short_message(crash), phase="collect")
            return TestResult(name, Outcome.ERROR, duration, signature(message),
                              short_message(message) or None, phase=phase)
        if kind == "Skipped":
            xfail = str(getattr(res, "type", "") or "") == "pytest.xfail"
            outcome = Outcome.XFAILED if xfail else Outcome.SKIPPED
            return TestResult(name, outcome, duration, None, first_line(message) or None)
    return TestResult(name, Outcome.PASSED, duration)


def read_cases(path: Path) -> list[Case]:
    from junitparser import JUnitXml, TestSuite
    from junitparser.junitparser import JUnitXmlError

    try:
        xml = JUnitXml.fromfile(str(path))
    except (OSError, JUnitXmlError, ValueError, SyntaxError) as exc:
        raise ExecutorError(f"cannot read JUnit XML {path} ({exc})") from None
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    cases = []
    while suites:
        suite = suites.pop(0)
        for child in suite:
            if isinstance(child, TestSuite):  # nested suites
                suites.append(child)
                continue
            classname = str(child.classname or "")
            name = str(child.name or "")
            nodeid = f"{classname}::{name}" if classname else name
            cases.append(Case(classname, name, _result(nodeid, child)))
    return cases


def results_for(path: Path, nodeids: list[str]) -> dict[str, TestResult]:
    """The results of the asked node ids found in a pytest JUnit file (missing ones left out)."""
    by_address = {(c.classname, c.name): c.result for c in read_cases(path)}
    out = {}
    for nodeid in nodeids:
        found = by_address.get(junit_address(nodeid))
        if found is not None:
            out[nodeid] = TestResult(
                nodeid, found.outcome, found.duration, found.signature, found.message,
                found.reruns, found.phase,
            )
    return out
