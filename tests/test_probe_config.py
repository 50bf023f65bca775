"""Probing projects that have their own pytest configuration (issue 14, section 3).

pytest's own reason for a run that collects nothing, node ids that no project option can
hide, --pytest-arg for the probes' pytest, and no hidden collection run before the search.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bisector.config import check_pytest_args, load_settings
from bisector.errors import ConfigError
from bisector.executors import pytest_reason

from .conftest import commit, git, planted, query, run_cli, run_pytest

NEW_TEST = ("import m\n\n\ndef test_value():\n    assert m.value() == 1\n\n\n"
            "def test_other():\n    assert True\n")
PLANTED = "import m\n\n\ndef test_value():\n    assert m.value() == 1\n"


def pytest_output(where: Path, files: dict[str, str], *args: str) -> str:
    """What a probe reads: pytest's stdout and stderr, merged, as the probe runs it."""
    for name, text in files.items():
        (where / name).write_text(text)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--no-header", "-p",
                           "no:cacheprovider", "-p", "no:randomly", *args], cwd=where,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)
    assert proc.returncode != 0, proc.stdout
    return proc.stdout


def find_break(repo: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    return run_cli("find-break", "--json", *args, cwd=repo, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str], *, alone: bool = False) -> str:
    """The error line of a failed command (exit 2); `alone`: nothing else was printed."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("bisector: error:")]
    assert errors == lines[-1:], proc.stderr
    assert len(lines) == 1 or not alone, proc.stderr
    return errors[0]


# -- pytest's reason, from real pytest output ------------------------------------------------


def test_reason_of_a_root_conftest_that_does_not_import(tmp_path: Path) -> None:
    log = pytest_output(tmp_path, {"conftest.py": "import nosuchmod_bisector\n",
                                   "test_a.py": "def test_a():\n    pass\n"})
    reason = pytest_reason(log, str(tmp_path))
    assert "ModuleNotFoundError: No module named 'nosuchmod_bisector'" in reason
    assert "conftest" in reason and str(tmp_path) not in reason


def test_reason_of_an_internal_error(tmp_path: Path) -> None:
    # a plugin's deprecation that the project's `filterwarnings = error` turns into an error
    log = pytest_output(tmp_path, {
        "pytest.ini": "[pytest]\nfilterwarnings = error\n",
        "conftest.py": "import warnings\n\n\ndef pytest_configure(config):\n"
                       "    warnings.warn(DeprecationWarning('old hook'))\n",
        "test_a.py": "def test_a():\n    pass\n"})
    assert pytest_reason(log) == "INTERNALERROR> DeprecationWarning: old hook"


def test_reason_of_an_internal_error_during_collection(tmp_path: Path) -> None:
    log = pytest_output(tmp_path, {
        "conftest.py": "def pytest_collection_modifyitems(items):\n"
                       "    raise RuntimeError('plugin broke')\n",
        "test_a.py": "def test_a():\n    pass\n"})
    assert "no tests ran" in log.strip().splitlines()[-1]  # what the last line would say
    assert pytest_reason(log) == "INTERNALERROR> RuntimeError: plugin broke"


def test_reason_of_an_unknown_config_option(tmp_path: Path) -> None:
    log = pytest_output(tmp_path, {"pytest.ini": "[pytest]\naddopts = --strict-config\n"
                                                 "bogus_option = 1\n",
                                   "test_a.py": "def test_a():\n    pass\n"})
    assert pytest_reason(log) == "ERROR: Unknown config option: bogus_option"


def test_reason_of_a_usage_error(tmp_path: Path) -> None:
    log = pytest_output(tmp_path, {"test_a.py": "def test_a():\n    pass\n"}, "--bogus-flag")
    reason = pytest_reason(log)
    assert "error: unrecognized arguments: --bogus-flag" in reason
    assert "[file_or_dir]" not in reason  # the usage line says nothing about the cause


def test_reason_falls_back_on_the_last_line() -> None:
    assert pytest_reason("") == ""
    assert pytest_reason("something\nwent wrong\n\n") == "went wrong"
    assert len(pytest_reason("x" * 1000)) <= 300


# -- the reason reaches the user ---------------------------------------------------------------


def test_a_root_conftest_that_does_not_import_at_bad_is_named(repo: Path) -> None:
    shas = planted(repo, PLANTED, 8, 4)
    commit(repo, {"conftest.py": "import nosuchmod_bisector\n"}, "a plugin the env lacks")
    (repo / "test_new.py").write_text(NEW_TEST)
    line = one_line_error(find_break(repo, "--test-file", "test_new.py", "--good", shas[0]))
    assert "ModuleNotFoundError: No module named 'nosuchmod_bisector'" in line
    assert "check the --test-file paths" not in line.split(":", 1)[0]


def test_an_untestable_probe_says_what_pytest_said(repo: Path) -> None:
    commit(repo, {"conftest.py": "def pytest_collection_modifyitems(items):\n"
                                 "    raise RuntimeError('plugin broke')\n"}, "plugin")
    shas = planted(repo, PLANTED, 6, 3)
    line = one_line_error(run_cli("find-break", "test_m.py::test_value", "--good", shas[0],
                                  cwd=repo))
    assert "cannot be run at either end" in line
    assert "RuntimeError: plugin broke" in line


# -- node ids whatever the project's options ---------------------------------------------------


@pytest.mark.parametrize("addopts", ["-v --tb=short", "-vv", "-rA --tb=line"])
def test_a_test_file_with_verbose_addopts(repo: Path, addopts: str) -> None:
    commit(repo, {"pytest.ini": f"[pytest]\naddopts = {addopts}\n"}, "config")
    shas = planted(repo, PLANTED, 8, 5)
    (repo / "test_new.py").write_text(NEW_TEST)
    proc = find_break(repo, "--test-file", "test_new.py", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[5]
    assert [t["test"] for t in group["tests"]] == ["test_new.py::test_value"]
    assert any("test_new.py::test_other: does not fail at bad" in n for n in data["notes"])


# -- no hidden run: the bad-end probe lists the file's tests ----------------------------------


def test_the_test_files_tests_come_from_a_counted_probe(repo: Path, tmp_path: Path) -> None:
    shas = planted(repo, PLANTED, 8, 5)
    sessions = tmp_path / "sessions.txt"
    (repo / "test_new.py").write_text(
        f"import m\n\nwith open({str(sessions)!r}, 'a') as f:\n    f.write('x')\n\n\n"
        + NEW_TEST.split("\n", 1)[1])
    proc = find_break(repo, "--test-file", "test_new.py", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[5]
    # every pytest session that imported the file is a probe: counted, stored, journaled
    assert len(sessions.read_text()) == data["probes_run"]
    db = repo / ".bisector" / "history.db"
    assert query(db, "select count(*) from runs")[0][0] == data["probes_run"]
    assert query(db, "select count(*) from probes")[0][0] == data["probes_run"]
    assert query(db, "select purpose from probes order by run_id")[0] == ("check bad end",)


# -- --pytest-arg -------------------------------------------------------------------------------


NEEDS_OPTION = ("import pytest\n\n\ndef pytest_addoption(parser):\n"
                "    parser.addoption('--needed', action='store_true')\n\n\n"
                "def pytest_configure(config):\n    if not config.getoption('--needed'):\n"
                "        raise pytest.UsageError('give --needed')\n")


def test_a_pytest_arg_reaches_the_probes(repo: Path) -> None:
    commit(repo, {"conftest.py": NEEDS_OPTION}, "conftest")
    shas = planted(repo, PLANTED, 8, 3)
    without = find_break(repo, "test_m.py::test_value", "--good", shas[0])
    assert "give --needed" in one_line_error(without)
    proc = find_break(repo, "test_m.py::test_value", "--good", shas[0],
                      "--pytest-arg=--needed")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[3]


def test_pytest_args_override_the_projects_addopts(repo: Path) -> None:
    commit(repo, {"pytest.ini": "[pytest]\naddopts = --no-such-option\n"}, "config")
    shas = planted(repo, PLANTED, 8, 6)
    (repo / "test_new.py").write_text(NEW_TEST)
    proc = find_break(repo, "--test-file", "test_new.py", "--good", shas[0],
                      "--pytest-arg", "-o", "--pytest-arg", "addopts=")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[6]


def test_pytest_args_from_pyproject(repo: Path) -> None:
    commit(repo, {"conftest.py": NEEDS_OPTION, "pyproject.toml":
                  '[tool.bisector]\npytest-args = ["--needed"]\n'}, "conftest")
    shas = planted(repo, PLANTED, 6, 2)
    proc = find_break(repo, "test_m.py::test_value", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[2]


@pytest.mark.parametrize("args", [
    ["--pytest-arg=--junitxml=out.xml"],
    ["--pytest-arg", "-p", "--pytest-arg", "no:junitxml"],
    ["--pytest-arg", "-o", "--pytest-arg", "junit_family=xunit2"],
    ["--pytest-arg=--collect-only"],
    ["--pytest-arg=--rootdir=/"],
    ["--pytest-arg", "-c", "--pytest-arg", "tox.ini"],
    ["--pytest-arg=--confcutdir=."],
    ["--pytest-arg=-x\n--junitxml=a"],
    ["--pytest-arg=@more-args.txt"],
])
def test_a_bad_pytest_arg_is_refused_in_one_line(repo: Path, args: list[str]) -> None:
    shas = planted(repo, PLANTED, 4, 2)
    line = one_line_error(find_break(repo, "test_m.py::test_value", "--good", shas[0], *args),
                          alone=True)
    assert line.startswith("bisector: error: --pytest-arg ")
    assert not (repo / ".bisector").exists()  # refused before a store is created


def test_bad_pytest_args_in_pyproject_are_refused(repo: Path) -> None:
    commit(repo, {"pyproject.toml": '[tool.bisector]\npytest-args = ["--junit-xml", "x"]\n'})
    shas = planted(repo, PLANTED, 4, 2)
    line = one_line_error(find_break(repo, "test_m.py::test_value", "--good", shas[0]),
                          alone=True)
    assert "pytest-args '--junit-xml' would change what bisector reads" in line
    with pytest.raises(ConfigError, match="must be a list"):
        (repo / "pyproject.toml").write_text('[tool.bisector]\npytest-args = "-x"\n')
        load_settings(repo)


def test_the_deny_list() -> None:
    allowed = [["-p", "no:randomly"], ["-o", "addopts="], ["-Werror"], ["-W", "error"],
               ["--noconftest"], ["-pno:cacheprovider"], ["-o", "filterwarnings=ignore"]]
    for args in allowed:
        assert check_pytest_args(args) == tuple(args)
    for args in (["-pno:junitxml"], ["--override-ini=junit_family=xunit2"], ["-ojunit_family=x"],
                 ["--junit-prefix=x"], ["--co"], ["--track-history"], ["-h"], [""], ["a\0"]):
        with pytest.raises(ConfigError):
            check_pytest_args(args)


@pytest.mark.parametrize("args", [["-c", "tox.ini"], ["-ctox.ini"], ["--config-file=a.ini"],
                                  ["--config-file", "a.ini"], ["--rootdir", "."],
                                  ["--confcutdir=."], ["-x", "--confcutdir", "/"]])
def test_the_probes_config_file_and_rootdir_are_bisectors(args: list[str]) -> None:
    # the local executor names the commit's own config file, rootdir and confcutdir (ADR 0023)
    with pytest.raises(ConfigError, match="its commit's own config file, rootdir and "
                                          "confcutdir") as info:
        check_pytest_args(args)
    assert "\n" not in str(info.value)
    assert check_pytest_args(["--capture=no", "-k", "config"]) == ("--capture=no", "-k", "config")


def test_probes_with_other_pytest_args_are_another_experiment(repo: Path) -> None:
    shas = planted(repo, PLANTED, 10, 6)
    test = "test_m.py::test_value"
    first = json.loads(find_break(repo, test, "--good", shas[0], "--pytest-arg=-x").stdout)
    other = json.loads(find_break(repo, test, "--good", shas[0],
                                  "--pytest-arg=--maxfail=3").stdout)
    same = json.loads(find_break(repo, test, "--good", shas[0], "--pytest-arg=-x").stdout)
    plain = json.loads(find_break(repo, test, "--good", shas[0]).stdout)
    for data in (first, other, same, plain):
        assert data["culprits"][0]["commit"]["sha"] == shas[6]
    assert other["probes_run"] == first["probes_run"] and other["probes_reused"] == 0
    assert plain["probes_run"] == first["probes_run"] and plain["probes_reused"] == 0
    assert same["probes_run"] == 0  # all of it is the first run's, confirmation included


def test_auto_bisect_probes_get_the_pyproject_pytest_args(repo: Path) -> None:
    commit(repo, {"conftest.py": NEEDS_OPTION, "pyproject.toml":
                  '[tool.bisector]\npytest-args = ["--needed"]\n'}, "conftest")
    shas = planted(repo, PLANTED, 6, 3)
    git(repo, "checkout", "-q", shas[1])
    run_pytest(repo, "--track-history", "--needed", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    proc = run_pytest(repo, "--track-history", "--auto-bisect", "--needed",
                      "-p", "no:cacheprovider")
    assert proc.returncode == 1, proc.stdout  # the tests' own status
    assert f"culprit {shas[3][:10]}" in proc.stdout, proc.stdout


def test_the_nightly_hands_pytest_args_to_its_probes(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import bisector.finder as finder_module
    from bisector.cli import main
    from bisector.errors import BisectError
    from bisector.executors.factory import ExecutorOptions

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the nightly's own session
    commit(repo, {"m.py": "def value():\n    return 1\n", "test_m.py": PLANTED}, "start")
    assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "n1")]) == 0
    commit(repo, {"m.py": "def value():\n    return 2\n"}, "break")
    capsys.readouterr()
    assert main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "n2"),
                 "--pytest-arg=--junitxml=x.xml"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--pytest-arg '--junitxml=x.xml' would change" in err and "\n" not in err
    seen: dict[str, object] = {}

    def bisect(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise BisectError("not this time")

    monkeypatch.setattr(finder_module, "find_break", bisect)
    main(["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "n3"),
          "--pytest-arg", "-p", "--pytest-arg", "no:randomly"])
    probes = seen["probes"]
    assert isinstance(probes, ExecutorOptions)
    assert probes.pytest_args == ("-p", "no:randomly") and probes.kind == "local"


def test_a_pytest_suite_in_a_container_gets_the_pytest_args() -> None:
    from bisector.executors.docker import SuiteRunner
    from bisector.suites import load_suite

    suite = load_suite("python-pytest", None)
    runner = SuiteRunner(None, suite, "session", pytest_args=("-o", "addopts=", "-W", "error"))
    assert runner._quiet_plugin() == {"PYTEST_ADDOPTS": "-p no:bisector -o addopts= -W error"}
    assert SuiteRunner(None, suite, "session")._quiet_plugin() == {
        "PYTEST_ADDOPTS": "-p no:bisector"}
