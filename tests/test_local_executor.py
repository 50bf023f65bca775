"""The local executor's probe environment (executors/local.py): a venv without its own pip
that still installs the commit's package into itself, never into bisector's environment; and
a setup reused by the next probe of the same commit only while nothing undid it (ADR 25)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bisector.executors import Patch, Probe
from bisector.executors.local import LocalExecutor, _has_pip
from bisector.executors.worktree import VENV
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
        venv = executor.tree.with_name(executor.tree.name + VENV)
        assert venv.is_dir(), "the setup ran in a venv of the probe's own"
        own_pips = list(venv.glob("lib/python*/site-packages/pip"))
    result = outcome.results["tests/test_i.py::test_installed"]
    assert result.outcome is Outcome.PASSED, (outcome.problem, result.message, result.traceback)
    assert own_pips == [], "the venv borrows bisector's pip instead of installing its own"
    # nothing went into the environment bisector runs in
    assert not list(Path(sys.prefix).glob("lib/python*/site-packages/probe_pkg"))


COUNTED = "test_c.py::test_c"


@pytest.fixture
def counted(repo: Path, tmp_path: Path) -> tuple[list[str], str, Path]:
    """Two commits whose test passes, and a setup that notes each commit it runs for."""
    test = "def test_c():\n    assert open('built.txt').read() == 'built'\n"
    shas = [commit(repo, {"test_c.py": test, ".gitignore": "built.txt\n"}),
            commit(repo, {"notes.txt": "1\n"})]
    log = tmp_path / "setups"
    return shas, f"git rev-parse HEAD >> {log} && printf built > built.txt", log


def _passed(executor: LocalExecutor, sha: str, patch: Patch | None = None) -> bool:
    outcome = executor.run(Probe(sha, (COUNTED,), patch=patch))
    return outcome.results[COUNTED].outcome is Outcome.PASSED


def test_a_commit_probed_again_reuses_its_setup(repo: Path, counted: tuple[list[str], str, Path]
                                               ) -> None:
    shas, setup, log = counted
    with Repository(repo) as r, LocalExecutor(r, setup=setup) as executor:
        assert _passed(executor, shas[0]) and _passed(executor, shas[0])
        assert executor.holds(Probe(shas[0], (COUNTED,)))
        assert not executor.holds(Probe(shas[1], (COUNTED,)))
        assert _passed(executor, shas[1]) and _passed(executor, shas[0])
    assert log.read_text().split() == [shas[0], shas[1], shas[0]]


def test_a_test_run_that_changed_the_checkout_sets_up_again(
        repo: Path, counted: tuple[list[str], str, Path]) -> None:
    """A test that leaves a file git sees (or removes one) may have undone the setup."""
    shas, setup, log = counted
    with Repository(repo) as r, LocalExecutor(r, setup=setup) as executor:
        assert _passed(executor, shas[0])
        (executor.tree / "left-by-the-test.txt").write_text("x")
        assert _passed(executor, shas[0])
        assert _passed(executor, shas[0])
        (executor.tree / "test_c.py").write_text("def test_c():\n    assert False\n")
        assert _passed(executor, shas[0]), "the changed file is checked out again"
    assert log.read_text().split() == [shas[0]] * 3


def test_a_failed_setup_or_a_patch_is_not_reused(
        repo: Path, counted: tuple[list[str], str, Path], tmp_path: Path) -> None:
    shas, setup, log = counted
    flag = tmp_path / "fail-once"
    flag.write_text("")
    once = f"if [ -e {flag} ]; then rm {flag}; exit 3; fi; {setup}"
    patch = Patch("--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-1\n+2\n", "p1")
    with Repository(repo) as r, LocalExecutor(r, setup=once) as executor:
        assert not _passed(executor, shas[1]), "the setup failed"
        assert not executor.holds(Probe(shas[1], (COUNTED,)))
        assert _passed(executor, shas[1])
        assert _passed(executor, shas[1], patch)
        assert not executor.holds(Probe(shas[1], (COUNTED,))), "the patched tree is held"
        assert _passed(executor, shas[1])
    assert log.read_text().split() == [shas[1]] * 3


def test_without_a_setup_every_probe_checks_out(repo: Path, counted: tuple[list[str], str, Path]
                                               ) -> None:
    shas, _, _ = counted
    with Repository(repo) as r, LocalExecutor(r) as executor:
        executor.run(Probe(shas[0], (COUNTED,)))
        assert not executor.holds(Probe(shas[0], (COUNTED,)))


def test_a_reused_setup_whose_tests_time_out_is_not_reused_again(repo: Path, tmp_path: Path
                                                                  ) -> None:
    """A test run killed at the timeout may have left the checkout half written where git
    does not look: the next probe of the commit sets up anew."""
    flag, log = tmp_path / "hang", tmp_path / "setups"
    test = (f"import os, time\n\ndef test_c():\n    if os.path.exists({str(flag)!r}):\n"
            "        time.sleep(60)\n")
    sha = commit(repo, {"test_c.py": test})
    setup = f"git rev-parse HEAD >> {log}"
    with Repository(repo) as r, LocalExecutor(r, setup=setup, timeout=5) as executor:
        assert _passed(executor, sha) and executor.holds(Probe(sha, (COUNTED,)))
        flag.write_text("")
        timed_out = executor.run(Probe(sha, (COUNTED,)))
        assert timed_out.problem is not None and "timed out" in timed_out.problem
        assert not executor.holds(Probe(sha, (COUNTED,)))
        flag.unlink()
        assert _passed(executor, sha)
    assert log.read_text().split() == [sha, sha], "set up again after the timeout, not before"


def test_reuse_holds_whatever_the_users_bytecode_setting(
        repo: Path, counted: tuple[list[str], str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PYTHONDONTWRITEBYTECODE in the user's environment the tests still write no
    __pycache__ into the checkout (which git status would see, and no setup would ever be
    reused); the setup keeps the user's setting (a build is faster writing bytecode)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    shas, setup, log = counted
    seen = tmp_path / "seen"
    with Repository(repo) as r, LocalExecutor(
            r, setup=f"echo x${{PYTHONDONTWRITEBYTECODE}}x >> {seen} && {setup}") as executor:
        assert _passed(executor, shas[0]) and _passed(executor, shas[0])
        assert _passed(executor, shas[0])
        assert not list(executor.tree.rglob("__pycache__"))
    assert log.read_text().split() == [shas[0]]
    assert seen.read_text().split() == ["xx"]


def test_tests_that_leave_files_in_the_checkout_hold_no_setup(repo: Path, tmp_path: Path
                                                             ) -> None:
    """A commit whose tests write a file git sees is not held after them: the pool then sends
    its next probes elsewhere at once instead of queueing builds one after another here."""
    log = tmp_path / "setups"
    sha = commit(repo, {"test_c.py": "def test_c():\n    open('out.txt', 'w').write('x')\n"})
    with Repository(repo) as r, LocalExecutor(r, setup=f"git rev-parse HEAD >> {log}"
                                              ) as executor:
        assert _passed(executor, sha)
        assert not executor.holds(Probe(sha, (COUNTED,)))
        assert _passed(executor, sha)
    assert log.read_text().split() == [sha, sha]
