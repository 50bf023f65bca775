"""The local executor's probe environment (executors/local.py): a venv without its own pip
that still installs the commit's package into itself, never into bisector's environment."""

from __future__ import annotations

import sys
from pathlib import Path

from bisector.executors import Probe
from bisector.executors.local import LocalExecutor, _has_pip
from bisector.gitrepo import Repository
from bisector.model import Outcome

from .conftest import commit

PYPROJECT = ('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
             '[project]\nname = "bisector-probe-pkg"\nversion = "0"\n')
TEST = ("import sys, probe_pkg\n\n"
        "def test_installed():\n"
        "    assert probe_pkg.__file__.startswith(sys.prefix)\n"
        "    assert sys.prefix != sys.base_prefix\n"
        "    assert probe_pkg.VALUE == 1\n")


def test_the_setups_pip_installs_into_the_probe_venv(repo: Path) -> None:
    assert _has_pip(), "the test environment has pip: the borrowed-pip path is the one tested"
    sha = commit(repo, {"pyproject.toml": PYPROJECT, "src/probe_pkg/__init__.py": "VALUE = 1\n",
                        "tests/test_i.py": TEST})
    setup = "pip install --no-deps --quiet . && pip --version"
    with Repository(repo) as r, LocalExecutor(r, setup=setup) as executor:
        outcome = executor.run(Probe(sha, ("tests/test_i.py::test_installed",)))
        venv = executor.tree.with_name(executor.tree.name + "-venv")
        own_pips = list(venv.glob("lib/python*/site-packages/pip"))
    result = outcome.results["tests/test_i.py::test_installed"]
    assert result.outcome is Outcome.PASSED, (outcome.problem, result.message, result.traceback)
    assert own_pips == [], "the venv borrows bisector's pip instead of installing its own"
    # nothing went into the environment bisector runs in
    assert not list(Path(sys.prefix).glob("lib/python*/site-packages/probe_pkg"))
