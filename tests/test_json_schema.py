"""Every JSON document bisector prints or writes says its `schema` (docs/adr/0019), and
find-break's carries the failure's traceback as its probe read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisector.cli import main
from bisector.model import TRACEBACK_MAX

from .conftest import planted

TEST = """\
from m import value


def test_a():
    assert value() == 1, "value changed"
"""


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return json.loads(out)


@pytest.fixture(autouse=True)
def _a_session_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


def test_every_json_output_says_its_schema_and_find_break_its_traceback(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shas = planted(repo, TEST, 3, 1)
    here = ["-C", str(repo)]
    found = _json(capsys, "find-break", "--json", *here, "test_m.py::test_a",
                  "--good", shas[0], "--bad", shas[-1])
    assert found["schema"] == 1
    [culprit] = found["culprits"]
    assert culprit["commit"]["sha"] == shas[1]
    [test] = culprit["tests"]
    traceback = test["traceback"]
    assert traceback is not None and len(traceback) <= TRACEBACK_MAX
    assert 'assert value() == 1, "value changed"' in traceback
    assert "AssertionError: value changed" in traceback
    for argv in (["history", "--json"], ["regressions", "--json"], ["flaky", "--json"],
                 ["stats", "--json"]):
        data = _json(capsys, *argv, *here)
        assert isinstance(data["schema"], int) and data["schema"] == 1, argv
