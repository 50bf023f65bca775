"""bisector.executors.inifile: pytest's rootdir and config file, never above the worktree.

Where nothing lies above the tree, `determine` must say what pytest's own `determine_setup`
says (property tests over generated trees); above it, nothing counts.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _pytest.config import findpaths
from _pytest.config.exceptions import UsageError
from _pytest.outcomes import Failed
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bisector.executors.inifile import Setup, config_names, determine, pytest_options

from .conftest import run_pytest

DIRS = ("", "a", "b", "a/c", "a/c/d", "b/e")
CONTENTS = {
    "pytest.toml": ["", "[pytest]\naddopts = ['-x']\n", "[tool.pytest.ini_options]\n",
                    "not toml ["],
    ".pytest.toml": ["", "[pytest]\n"],
    "pytest.ini": ["", "[pytest]\naddopts = -x\n", "[other]\n"],
    ".pytest.ini": ["[pytest]\n", "[other]\n"],
    "pyproject.toml": ["", "[tool.pytest.ini_options]\n", "[tool.pytest.ini_options]\n"
                       "addopts = '-x'\n", "[tool.other]\nx = 1\n", "[tool.pytest]\n",
                       "[tool.pytest]\naddopts = ['-x']\n", "not toml ["],
    "tox.ini": ["[pytest]\n", "[tox]\n", "", "[broken"],
    "setup.cfg": ["[tool:pytest]\n", "[metadata]\n", "[pytest]\n", "[broken"],
    "setup.py": [""],
    "test_x.py": [""],
}
NAMES = [name for name in CONTENTS if name in (*config_names(), "setup.py", "test_x.py")]


@st.composite
def trees(draw: st.DrawFn) -> dict[str, str]:
    """Files of a tree: relative path to content, in some of DIRS."""
    files = {}
    for folder in draw(st.lists(st.sampled_from(DIRS), unique=True, max_size=3)):
        for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2)):
            files[os.path.join(folder, name)] = draw(st.sampled_from(CONTENTS[name]))
    return files


def arguments(where: str) -> st.SearchStrategy[str]:
    """pytest's free arguments, relative to `where`: test files, node ids, directories,
    paths that do not exist, options."""
    targets = [*DIRS, *(os.path.join(d, "test_x.py") for d in DIRS), "nope/test_y.py"]
    paths = st.sampled_from(targets).map(lambda t: os.path.relpath(t or ".", where or "."))
    return st.one_of(paths, paths.map(lambda p: p + "::test_a"), st.just("-x"))


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, str], str, list[str]]:
    files = draw(trees())
    where = draw(st.sampled_from(DIRS))
    return files, where, draw(st.lists(arguments(where), max_size=3))


@contextmanager
def laid_out(files: dict[str, str]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bisector-inifile-") as tmp:
        top = Path(os.path.realpath(tmp)) / "top"
        for folder in DIRS:
            (top / folder).mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (top / rel).write_text(text)
        yield top


def nothing_above(top: Path) -> bool:
    return not any((parent / name).exists() for parent in top.parents
                   for name in (*config_names(), "setup.py"))


# the property tests lay trees out in the temporary directory: what lies above it must not count
TMP_IS_CLEAN = nothing_above(Path(os.path.realpath(tempfile.gettempdir())) / "tree" / "top")
needs_clean_tmp = pytest.mark.skipif(not TMP_IS_CLEAN, reason="a pytest config or setup.py "
                                     "lies above the temporary directory")


def pytests_setup(invocation_dir: Path, args: list[str]) -> tuple[Path, Path | None]:
    """pytest's own rootdir and config file (its working directory must be the invocation
    directory: it makes relative arguments absolute with it)."""
    wanted = {"inifile": None, "override_ini": None, "args": args, "rootdir_cmd_arg": None,
              "invocation_dir": invocation_dir}
    accepted = inspect.signature(findpaths.determine_setup).parameters
    before = os.getcwd()
    os.chdir(invocation_dir)
    try:
        found = findpaths.determine_setup(**{k: v for k, v in wanted.items() if k in accepted})
    finally:
        os.chdir(before)
    return found[0], found[1]


def unreadable(path: Path) -> bool:
    try:
        findpaths.load_config_dict_from_file(path)
    except (UsageError, Failed):
        return True
    return False


@needs_clean_tmp
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(({"a/setup.py": ""}, "a/c", []))
@example(({"a/pyproject.toml": "", "a/c/d/test_x.py": ""}, "b", ["../a/c/d/test_x.py"]))
def test_determine_is_pytests_where_nothing_lies_above(
        case: tuple[dict[str, str], str, list[str]]) -> None:
    files, where, args = case
    with laid_out(files) as top:
        assume(nothing_above(top))
        mine = determine(top, top / where, args)
        try:
            rootdir, inifile = pytests_setup(top / where, args)
        except (UsageError, Failed):
            # pytest stops at a file it cannot read: named with -c, it is read (and refused)
            # again; pytest may also have refused a file of lower rank beside it
            assert mine.inifile is not None
            assert unreadable(mine.inifile) or any(
                unreadable(p) for p in mine.inifile.parent.iterdir() if p.is_file())
            return
        assert (mine.rootdir, mine.inifile) == (rootdir, inifile), (files, where, args)


@needs_clean_tmp
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(sorted(set(CONTENTS) - {"test_x.py"})))
def test_nothing_above_the_top_counts(case: tuple[dict[str, str], str, list[str]],
                                      above: str) -> None:
    files, where, args = case
    with laid_out(files) as top:
        assume(nothing_above(top))
        alone = determine(top, top / where, args)
        (top.parent / above).write_text(CONTENTS[above][0])
        assert determine(top, top / where, args) == alone


# -- what the options do to a real pytest ------------------------------------------------------


def pytest_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """conftest's run_pytest, quiet and without the cache a probe never writes."""
    return run_pytest(cwd, "-q", "-p", "no:cacheprovider", *args)


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """A checkout whose config, setup.py and conftest.py would break any test under it, and a
    worktree inside it with one passing test and nothing of its own."""
    checkout = tmp_path / "checkout"
    tree = checkout / ".bisector" / "worktrees" / "w"
    (tree / "tests").mkdir(parents=True)
    (checkout / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    (checkout / "setup.py").write_text("")
    (checkout / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef _boom():\n"
        "    raise RuntimeError('the checkout conftest')\n")
    (tree / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    return tree


def test_without_config_the_worktree_is_the_rootdir(nested: Path, tmp_path: Path) -> None:
    args = ["tests/test_a.py::test_a"]
    setup = determine(nested, nested, args)
    assert setup == Setup(nested, None) and setup.confcutdir == nested
    assert pytest_in(nested, *args).returncode != 0  # what a probe got before
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = pytest_options(setup, scratch)
    assert options == ["-c", str(scratch / "pytest.ini"), f"--rootdir={nested}",
                       f"--confcutdir={nested}"]
    proc = pytest_in(nested, *options, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_the_commits_own_config_is_named(nested: Path, tmp_path: Path) -> None:
    (nested / "tox.ini").write_text("[pytest]\naddopts = -p no:doctest\n")
    (nested / "tests" / "conftest.py").write_text(
        "def pytest_configure(config):\n    print('inifile', config.inipath)\n"
        "    print('rootdir', config.rootpath)\n")
    setup = determine(nested, nested / "tests", ["test_a.py"])
    assert setup == Setup(nested, nested / "tox.ini")
    options = pytest_options(setup, tmp_path)
    assert options == ["-c", str(nested / "tox.ini"), f"--rootdir={nested}"]
    assert not list(tmp_path.glob("*.ini"))
    proc = pytest_in(nested / "tests", "-s", *options, "test_a.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"inifile {nested / 'tox.ini'}" in proc.stdout
    assert f"rootdir {nested}" in proc.stdout


def test_a_setup_py_inside_the_worktree_is_its_rootdir(nested: Path) -> None:
    (nested / "tests" / "setup.py").write_text("")
    assert determine(nested, nested, ["tests/test_a.py"]) == Setup(nested / "tests", None)


def test_arguments_outside_the_worktree_root_it_at_the_worktree(nested: Path) -> None:
    assert determine(nested, nested, ["../../../setup.py"]).rootdir == nested
