"""What the executors share (executors/base.py): the end of a probe, the output tail an
untestable result carries, the experiment key, the abort mark; without a Docker engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bisector.executors import Probe, ProbeAborted
from bisector.executors.base import OUTPUT_TAIL, experiment_key, output_tail
from bisector.executors.local import LocalExecutor
from bisector.gitrepo import Repository
from bisector.model import Outcome

from .conftest import commit, git

TEST_ID = "test_t.py::test_ok"
PASSING = "def test_ok():\n    assert True\n"


def test_an_untestable_setup_carries_the_tail_of_its_output(repo: Path) -> None:
    """The one-line reason says that it failed; the traceback says why, as pip printed it."""
    sha = commit(repo, {"test_t.py": PASSING})
    setup = ("python3 -c \"import os; print('x' * 5000); print(os.getcwd() + '/setup.py: "
             "error: no module named build'); raise SystemExit(3)\"")
    with Repository(repo) as r, LocalExecutor(r, setup=setup) as executor:
        outcome = executor.run(Probe(sha, (TEST_ID,)))
        tree = str(executor.tree)
    result = outcome.results[TEST_ID]
    assert result.outcome is Outcome.UNTESTABLE and result.phase == "setup"
    assert outcome.problem is not None and outcome.problem.startswith("setup failed (exit 3)")
    assert result.traceback is not None and len(result.traceback) <= OUTPUT_TAIL
    assert result.traceback.endswith("setup.py: error: no module named build")
    assert tree not in result.traceback, "the probe's checkout path differs per probe"


def test_a_test_that_does_not_collect_carries_pytests_words(repo: Path) -> None:
    sha = commit(repo, {"test_t.py": "import nosuchmodule_bisector\n\n" + PASSING})
    with Repository(repo) as r, LocalExecutor(r) as executor:
        outcome = executor.run(Probe(sha, (TEST_ID,)))
        tree = str(executor.tree)
    result = outcome.results[TEST_ID]
    assert result.outcome is Outcome.UNTESTABLE
    assert result.traceback is not None and "nosuchmodule_bisector" in result.traceback
    assert tree not in result.traceback


def test_a_passing_probe_has_no_traceback(repo: Path) -> None:
    sha = commit(repo, {"test_t.py": PASSING})
    with Repository(repo) as r, LocalExecutor(r) as executor:
        result = executor.run(Probe(sha, (TEST_ID,))).results[TEST_ID]
    assert result.outcome is Outcome.PASSED and result.traceback is None


def test_output_tail_keeps_the_end_without_the_root() -> None:
    assert output_tail("") is None and output_tail("\n  \n") is None
    log = "a" * 3000 + "\n/tmp/wt/x.py: boom\n"
    assert output_tail(log, "/tmp/wt") == ("a" * 3000 + "\nx.py: boom")[-OUTPUT_TAIL:]


def test_the_experiment_key_is_empty_for_a_plain_run_and_tells_set_ups_apart() -> None:
    assert experiment_key(None, {}, ()) == ""
    keys = {experiment_key("pip install .", {}, ()), experiment_key(None, {"t.py": b"1"}, ()),
            experiment_key(None, {"t.py": b"2"}, ()), experiment_key(None, {}, ("-x",))}
    assert len(keys) == 4 and "" not in keys


def test_an_aborted_executor_runs_no_round(repo: Path) -> None:
    sha = commit(repo, {"test_t.py": PASSING})
    with Repository(repo) as r, LocalExecutor(r) as executor:
        executor.abort()
        with pytest.raises(ProbeAborted):
            executor.run_round([Probe(sha, (TEST_ID,))])
        assert not executor.tree.exists(), "an aborted probe checked out"


class _Engine:
    """A Docker client with nothing running and every image present, that refuses to create
    anything: a probe that starts a container fails the test."""

    def __init__(self) -> None:
        empty = SimpleNamespace(list=lambda **kwargs: [])
        self.containers = SimpleNamespace(list=lambda **kwargs: [], create=self._create)
        self.networks = SimpleNamespace(list=lambda **kwargs: [], create=self._create)
        self.volumes = empty
        self.images = SimpleNamespace(get=lambda name: SimpleNamespace(id="sha256:" + "0" * 64))

    def _create(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a container was started for a commit that cannot be tested")


def _clone_without_submodule(tmp_path: Path) -> tuple[Path, str]:
    """A clone of a superproject that never ran `git submodule update --init`."""
    lib = tmp_path / "libsrc"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit(lib, {"m.py": "def value():\n    return 1\n"})
    sup = tmp_path / "sup"
    sup.mkdir()
    git(sup, "init", "-q", "-b", "main")
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    sha = commit(sup, {"test_lib.py": "from lib.m import value\n\ndef test_value():\n"
                                      "    assert value() == 1\n"})
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(sup), str(clone))
    lib.rename(tmp_path / "gone")  # and the submodule's URL leads nowhere
    return clone, sha


def test_the_docker_executor_names_a_missing_submodule_as_the_local_one_does(
        tmp_path: Path) -> None:
    from bisector.executors.docker import DockerExecutor
    from bisector.suites import load_suite

    clone, sha = _clone_without_submodule(tmp_path)
    probe = Probe(sha, ("test_lib.py::test_value",))
    with Repository(clone) as r:
        with LocalExecutor(r) as local:
            expected = local.run(probe)
        with DockerExecutor(r, load_suite("python-pytest", r.root), client=_Engine()) as docker:
            outcome = docker.run(probe)
            key = docker.env_key()
    assert expected.problem is not None and "submodule lib" in expected.problem
    assert outcome.problem == expected.problem
    result = outcome.results["test_lib.py::test_value"]
    assert result.outcome is Outcome.UNTESTABLE and result.message == expected.problem
    assert outcome.environment.key == key
