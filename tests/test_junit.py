from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bisector.errors import ExecutorError
from bisector.junit import (
    junit_address,
    read_cases,
    read_report,
    read_results,
    results_for,
)
from bisector.model import TRACEBACK_MAX, Outcome, TestResult
from bisector.nodeids import refusal
from bisector.signature import signature

FIXTURES = Path(__file__).parent / "fixtures" / "junit"
SAMPLE_FILES = {"pytest.ini", "tests/test_sample.py", "tests/test_broken.py"}

P, F, E, S, X = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.XFAILED


def table(results: dict[str, TestResult]) -> dict[str, tuple]:
    """(outcome, reruns, phase, message) by node id; the keys must be the results' node ids."""
    assert all(key == r.nodeid for key, r in results.items())
    return {key: (r.outcome, r.reruns, r.phase, r.message) for key, r in results.items()}


SAMPLE = "tests/test_sample.py"
PYTEST_EXPECTED = {
    "tests/test_broken.py": (
        E, 0, "collect", "ModuleNotFoundError: No module named 'not_a_module'"),
    f"{SAMPLE}::test_pass": (P, 0, "call", None),
    f"{SAMPLE}::test_fail": (F, 0, "call", "assert [1, 2] == [1, 3]"),
    f"{SAMPLE}::test_setup_error": (E, 0, "setup", "ConnectionError: database is down"),
    f"{SAMPLE}::test_teardown_error": (E, 0, "teardown", "RuntimeError: cleanup failed"),
    f"{SAMPLE}::test_skip": (S, 0, "call", "not on this platform"),
    f"{SAMPLE}::test_xfail": (X, 0, "call", "known bug #12"),
    f"{SAMPLE}::test_xpass": (P, 0, "call", None),  # junitxml writes a non-strict xpass as a pass
    f"{SAMPLE}::test_param[1]": (P, 0, "call", None),
    f"{SAMPLE}::test_param[a.b]": (F, 0, "call", "AssertionError: assert 'a.b' != 'a.b'"),
    f"{SAMPLE}::test_param[x[y]]": (P, 0, "call", None),
    f"{SAMPLE}::test_param[\\xfc]": (P, 0, "call", None),
    f"{SAMPLE}::TestGroup::test_method": (P, 0, "call", None),
    f"{SAMPLE}::TestGroup::TestNested::test_inner": (F, 0, "call", "KeyError: 'missing'"),
    f"{SAMPLE}::test_flaky": (P, 1, "call", None),  # pytest-rerunfailures: written twice
}


# -- pytest -----------------------------------------------------------------------------------


def test_pytest_xunit1_maps_to_node_ids_by_the_file_attribute() -> None:
    results = read_results(FIXTURES / "pytest-xunit1.xml")
    assert table(results) == PYTEST_EXPECTED
    # the same signatures the plugin computes from pytest's crash lines
    assert results[f"{SAMPLE}::test_setup_error"].signature == signature(
        "ConnectionError: database is down")
    assert results[f"{SAMPLE}::test_fail"].signature == signature("assert [1, 2] == [1, 3]")
    assert results[f"{SAMPLE}::test_pass"].signature is None


def test_pytest_xunit2_needs_the_repository_files_to_find_modules() -> None:
    path = FIXTURES / "pytest-xunit2.xml"
    assert table(read_results(path, files=SAMPLE_FILES)) == PYTEST_EXPECTED
    bare = read_results(path)  # without them: classname::name
    assert set(bare) == {
        "tests.test_broken" if k == "tests/test_broken.py" else
        "::".join(junit_address(k)) for k in PYTEST_EXPECTED
    }
    assert bare["tests.test_sample.TestGroup.TestNested::test_inner"].outcome is F


def test_xunit1_and_xunit2_agree_on_signatures() -> None:
    one = read_results(FIXTURES / "pytest-xunit1.xml")
    two = read_results(FIXTURES / "pytest-xunit2.xml", files=SAMPLE_FILES)
    assert {k: r.signature for k, r in one.items()} == {k: r.signature for k, r in two.items()}


def test_a_file_attribute_elsewhere_falls_back_to_the_repository_files(tmp_path: Path) -> None:
    # An inherited test: pytest writes where the function is defined, not the module it ran in.
    path = tmp_path / "inherited.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_child.TestChild" name="test_shared[a.b]"'
        ' file="tests/base.py" line="3" time="0.5"/>'
        '<testcase classname="pkg.my.mod" name="test_x" time="0.1"/>'
        "</testsuite></testsuites>"
    )
    assert set(read_results(path)) == {
        "tests.test_child.TestChild::test_shared[a.b]", "pkg.my.mod::test_x"}
    files = {"tests/base.py", "tests/test_child.py", "pkg/my.mod.py", "pkg/my/data"}
    assert set(read_results(path, files=files)) == {
        "tests/test_child.py::TestChild::test_shared[a.b]", "pkg/my.mod.py::test_x"}


def test_results_for_keeps_its_contract() -> None:
    wanted = [f"{SAMPLE}::test_fail", f"{SAMPLE}::test_flaky", f"{SAMPLE}::test_param[x[y]]",
              "tests/test_broken.py", f"{SAMPLE}::test_gone"]
    found = results_for(FIXTURES / "pytest-xunit1.xml", wanted)
    assert table(found) == {k: PYTEST_EXPECTED[k] for k in wanted[:4]}


def test_read_cases_lists_every_testcase_with_its_file() -> None:
    cases = read_cases(FIXTURES / "pytest-xunit1.xml")
    assert len(cases) == 16  # test_flaky twice
    assert cases[0].classname == "" and cases[0].name == "tests.test_broken"
    assert cases[0].file == "tests/test_broken.py"
    assert cases[0].result.nodeid == "tests.test_broken"


def test_report_carries_suite_time_and_host() -> None:
    report = read_report(FIXTURES / "pytest-xunit1.xml")
    assert report.hostname == "vm"
    assert report.started_at is not None and report.finished_at is not None
    assert report.finished_at - report.started_at == pytest.approx(0.062)


# -- Surefire ---------------------------------------------------------------------------------


def test_surefire_flaky_and_rerun_elements_count_as_reruns() -> None:
    results = read_results(FIXTURES / "surefire.xml", "generic")
    c = "com.example.CalculatorTest"
    assert table(results) == {
        f"{c}::addsNumbers": (P, 0, "call", None),
        f"{c}::dividesByZero": (
            F, 2, "call", "org.opentest4j.AssertionFailedError: expected: <0> but was: <1>"),
        f"{c}::parsesInput": (E, 0, "call", "java.lang.NullPointerException"),
        f"{c}::connectsToServer": (E, 1, "call", "java.net.ConnectException: Connection refused"),
        f"{c}::multipliesLater": (S, 0, "call", "not implemented yet"),
        f"{c}::roundsHalfUp": (P, 1, "call", None),
        f"{c}::cachesResults": (P, 2, "call", None),
        f"{c}$Nested::nestedWorks": (P, 0, "call", None),
    }
    assert results[f"{c}::connectsToServer"].duration == 2.5
    # no timestamp in a Surefire file: the importer uses the time of import
    report = read_report(FIXTURES / "surefire.xml", "generic")
    assert report.started_at is None and report.hostname is None


def test_surefire_times_may_have_thousands_separators(tmp_path: Path) -> None:
    path = tmp_path / "TEST-slow.xml"
    path.write_text('<testsuite name="s" tests="2"><testcase classname="A" name="slow"'
                    ' time="1,234.5"/><testcase classname="A" name="odd" time="soon"/>'
                    "</testsuite>")
    results = read_results(path, "generic")
    assert results["A::slow"].duration == 1234.5 and results["A::odd"].duration == 0.0


# -- jest-junit -------------------------------------------------------------------------------


def test_jest_junit_default_templates() -> None:
    results = read_results(FIXTURES / "jest-junit-default.xml", "generic")
    expect_fail = "Error: expect(received).toBe(expected) // Object.is equality"
    assert table(results) == {
        "adds at top level::adds at top level": (P, 0, "call", None),
        "calc adds::calc adds": (P, 0, "call", None),
        "calc subtracts wrongly::calc subtracts wrongly": (F, 0, "call", expect_fail),
        "calc multiplies (not yet)::calc multiplies (not yet)": (S, 0, "call", None),
        "calc divides::calc divides": (P, 0, "call", None),  # jest-junit: a todo "passes"
        "calc edge cases throws on purpose::calc edge cases throws on purpose": (
            F, 0, "call", "TypeError: boom: cannot add undefined"),
        "calc edge cases add(1, 1) = 2::calc edge cases add(1, 1) = 2": (P, 0, "call", None),
        "calc edge cases add(2, 3) = 5::calc edge cases add(2, 3) = 5": (P, 0, "call", None),
    }
    assert results["calc subtracts wrongly::calc subtracts wrongly"].signature == signature(
        expect_fail)


def test_jest_junit_templates_and_a_suite_that_failed_to_load() -> None:
    results = read_results(FIXTURES / "jest-junit-templates.xml", "generic")
    assert table(results) == {
        "adds at top level": (P, 0, "call", None),
        "calc::adds": (P, 0, "call", None),
        "calc::subtracts wrongly": (
            F, 0, "call", "Error: expect(received).toBe(expected) // Object.is equality"),
        "calc::multiplies (not yet)": (S, 0, "call", None),
        "calc::divides": (P, 0, "call", None),
        "calc › edge cases::throws on purpose": (
            F, 0, "call", "TypeError: boom: cannot add undefined"),
        "calc › edge cases::add(1, 1) = 2": (P, 0, "call", None),
        "calc › edge cases::add(2, 3) = 5": (P, 0, "call", None),
        # written twice (<error>, then <failure> with JSON): one collection error, no rerun
        "Test suite failed to run::src/broken.test.js": (
            E, 0, "collect", "Cannot find module './does-not-exist' from 'src/broken.test.js'"),
    }


# -- gotestsum --------------------------------------------------------------------------------


def test_gotestsum_messages_and_rerun_fails() -> None:
    results = read_results(FIXTURES / "gotestsum.xml", "generic")
    pkg = "example.com/calc"
    assert table(results) == {
        "TestMain": (F, 0, "call", "sometimes main can exit 2"),
        f"{pkg}::TestDivide": (
            F, 0, "call", "calc_test.go:27: Divide(1, 0): expected an error, got 0"),
        f"{pkg}::TestParse/negative": (F, 0, "call", 'parse_test.go:44: Parse("-1") = 1, want -1'),
        f"{pkg}::TestParse": (F, 0, "call", None),  # failed only through its subtest
        f"{pkg}::TestFlakyNetwork": (P, 1, "call", None),  # --rerun-fails: failed, then passed
        f"{pkg}::TestWindowsOnly": (S, 0, "call", "calc_test.go:51: only on windows"),
        f"{pkg}::TestAdd": (P, 0, "call", None),
        f"{pkg}::TestParse/positive": (P, 0, "call", None),
    }
    # the failing line's position is not part of the signature: it moves between commits
    assert results[f"{pkg}::TestDivide"].signature == signature(
        "Divide(1, 0): expected an error, got 0")
    assert results[f"{pkg}::TestFlakyNetwork"].duration == 0.6
    report = read_report(FIXTURES / "gotestsum.xml", "generic")
    assert report.started_at == 1714637730.0  # 2024-05-02T10:15:30+02:00
    assert report.finished_at == pytest.approx(1714637730.0 + 1.18)


# -- structure --------------------------------------------------------------------------------


def test_nested_suites() -> None:
    results = read_results(FIXTURES / "nested.xml", "generic")
    cls = "Tests.Unit.CartTest"
    assert table(results) == {
        f"{cls}::testEmptyCartTotalsZero": (P, 0, "call", None),
        f'{cls}::testDiscount with data set "none"': (P, 0, "call", None),
        f'{cls}::testDiscount with data set "ten percent"': (
            F, 0, "call", 'PHPUnit\\Framework\\ExpectationFailedException: '
                          'Tests\\Unit\\CartTest::testDiscount with data set "ten percent" '
                          "(10, 90.0)"),
        f'{cls}::testDiscount with data set "full"': (P, 0, "call", None),
        f"{cls}::testCheckoutNeedsNetwork": (S, 0, "call", None),
    }


def test_bare_testsuite_root_and_suites_in_suites(tmp_path: Path) -> None:
    path = tmp_path / "bare.xml"
    path.write_text(
        '<testsuite name="outer"><testcase classname="a" name="one"/>'
        '<testsuite name="inner"><testcase classname="a.b" name="two"><failure message="x"/>'
        '</testcase><testsuite name="innermost"><testcase name="three"><skipped/></testcase>'
        "</testsuite></testsuite><testcase classname=\"a\" name=\"four\"><error/></testcase>"
        "</testsuite>"
    )
    assert {k: r.outcome for k, r in read_results(path, "generic").items()} == {
        "a::one": P, "a.b::two": F, "three": S, "a::four": E}


def test_a_name_seen_again_is_a_rerun_and_the_last_outcome_wins(tmp_path: Path) -> None:
    path = tmp_path / "reruns.xml"
    path.write_text(
        '<testsuites><testsuite name="first"><testcase classname="k" name="t"><failure/>'
        '<rerunFailure type="E"/></testcase></testsuite><testsuite name="second">'
        '<testcase classname="k" name="t"><error message="boom"/></testcase>'
        '<testcase classname="k" name="t" time="2"/></testsuite></testsuites>'
    )
    [result] = read_results(path, "generic").values()
    assert (result.outcome, result.reruns, result.duration) == (P, 3, 2.0)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "says"), [
    ("<testsuites><testsuite>", "is not valid XML"),
    ("", "is not valid XML"),
    ("<html><body>not a report</body></html>", "is not JUnit XML"),
])
def test_unreadable_files_raise_one_line_naming_the_file(tmp_path: Path, content: str,
                                                         says: str) -> None:
    path = tmp_path / "report.xml"
    path.write_text(content)
    with pytest.raises(ExecutorError) as info:
        read_results(path)
    line = info.value.one_line()
    assert str(path) in line and says in line and "\n" not in line


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match=r"cannot read JUnit XML .*nowhere\.xml"):
        read_results(tmp_path / "nowhere.xml")
    with pytest.raises(ExecutorError, match="cannot read JUnit XML"):
        read_results(tmp_path)  # a directory


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ExecutorError, match="unknown JUnit dialect 'maven'"):
        read_results(FIXTURES / "surefire.xml", "maven")


# -- properties -------------------------------------------------------------------------------

# Any text XML 1.0 can carry in an attribute, without surrounding whitespace (which the reader
# strips: jest-junit's default template puts a space in front of top-level tests).
_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"),
                       exclude_characters="\ufffe\uffff")
_TEXT = st.text(_CHARS, min_size=1, max_size=20).filter(lambda s: s == s.strip())
_NAME = st.one_of(_TEXT, st.builds(lambda a, b: f"{a}.{b}[{b}]", _TEXT, _TEXT))
_OUTCOMES = st.sampled_from([P, F, E, S, X])
_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_PARAM = st.text(_CHARS, max_size=12)


def _write(path: Path, cases: list[tuple[str, str, Outcome, str | None]]) -> None:
    """A report written by junitparser, as other tools would: one case per tuple."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    suite = TestSuite("random")
    for classname, name, outcome, file in cases:
        case = TestCase(name, classname or None, 0.25)
        if file:
            case._elem.set("file", file)
        if outcome is F:
            case.result = [Failure("ValueError: bad value")]
        elif outcome is E:
            case.result = [Error("OSError: no disk")]
        elif outcome is S:
            case.result = [Skipped("later")]
        elif outcome is X:
            case.result = [Skipped("known", "pytest.xfail")]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.just(""), _NAME), _NAME, _OUTCOMES), min_size=1,
                max_size=8, unique_by=lambda c: f"{c[0]}::{c[1]}" if c[0] else c[1]))
def test_generic_round_trip(cases: list[tuple[str, str, Outcome]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.xml"
        _write(path, [(c, n, o, None) for c, n, o in cases])
        report = read_report(path, "generic")
    results = report.results
    every = {(f"{c}::{n}" if c else n): o for c, n, o in cases}
    # an id that would be an option on a command line is left out, with a note
    expected = {k: o for k, o in every.items() if refusal(k) is None}
    assert {k: r.outcome for k, r in results.items()} == expected
    assert len(report.notes) == len(every) - len(expected)
    for result in results.values():
        assert result.duration == 0.25 and result.reruns == 0
        if result.outcome is F:
            assert result.message == "ValueError: bad value"


_NODEID = st.builds(
    lambda dirs, module, classes, func, params: "::".join(
        ["/".join([*dirs, f"test_{module}.py"]), *classes, func])
    + ("" if params is None else f"[{params}]"),
    st.lists(_IDENT, max_size=3), _IDENT, st.lists(_IDENT.map(str.title), max_size=2),
    _IDENT.map(lambda s: f"test_{s}"), st.none() | _PARAM,
).filter(lambda nodeid: nodeid == nodeid.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_NODEID, _OUTCOMES), min_size=1, max_size=8,
                unique_by=lambda c: c[0]))
def test_pytest_node_ids_round_trip(cases: list[tuple[str, Outcome]]) -> None:
    files = {nodeid.split("::", 1)[0] for nodeid, _ in cases}
    expected = {nodeid: outcome for nodeid, outcome in cases}
    with tempfile.TemporaryDirectory() as tmp:
        xunit1, xunit2 = Path(tmp) / "xunit1.xml", Path(tmp) / "xunit2.xml"
        _write(xunit1, [(*junit_address(n), o, n.split("::", 1)[0]) for n, o in cases])
        _write(xunit2, [(*junit_address(n), o, None) for n, o in cases])
        by_file = read_results(xunit1)
        by_files = read_results(xunit2, files=files | {"README.md"})
    assert {k: r.outcome for k, r in by_file.items()} == expected
    assert {k: r.outcome for k, r in by_files.items()} == expected


def test_junit_address_matches_pytest() -> None:
    assert junit_address("tests/test_x.py::TestA::test_b[1]") == ("tests.test_x.TestA", "test_b[1]")
    assert junit_address("tests/test_x.py::test_c[a::b.c]") == ("tests.test_x", "test_c[a::b.c]")
    assert re.fullmatch(r"tests\.test_x", junit_address("tests/test_x.py")[1])


def test_a_failure_carries_its_long_text_as_the_traceback(tmp_path: Path) -> None:
    """What a probe read from JUnit shows a person: pytest's long representation (the element's
    text), the tail kept when it is longer than TRACEBACK_MAX; none for a pass."""
    long_text = "x = 1\n" * 3000 + "E   AssertionError: assert 1\n\ntest_a.py:3: AssertionError"
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="test_a" name="test_ok" file="test_a.py"/>'
        '<testcase classname="test_a" name="test_short" file="test_a.py">'
        '<failure message="assert 1 == 2">def test_short():\n&gt;   assert 1 == 2\n'
        'E   assert 1 == 2</failure></testcase>'
        '<testcase classname="test_a" name="test_long" file="test_a.py">'
        f'<error message="failed on setup with &quot;boom&quot;">{long_text}</error></testcase>'
        "</testsuite></testsuites>")
    got = read_results(xml, files={"test_a.py"})
    assert got["test_a.py::test_ok"].traceback is None
    assert got["test_a.py::test_short"].traceback == (
        "def test_short():\n>   assert 1 == 2\nE   assert 1 == 2")
    tail = got["test_a.py::test_long"].traceback
    assert tail is not None and len(tail) == TRACEBACK_MAX
    assert tail.endswith("test_a.py:3: AssertionError") and tail.startswith("…")
