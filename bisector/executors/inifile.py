"""Which pytest configuration a probe runs with: its commit's, found as pytest finds it, but
never above the probe's worktree (ADR 0023).

The local executor's worktrees live under `.bisector/worktrees/` inside the user's checkout.
pytest looks for its rootdir and config file by walking up from the tests it is given, and for a
commit without a config file of its own it walks out of the worktree into the checkout and takes
the checkout's (HEAD's) `addopts`, `filterwarnings`, markers, rootdir and conftest.py files. So
the probe is not left to look: `determine` follows pytest's `determine_setup` (and its
`locate_config`, `_pytest/config/findpaths.py`, pytest 8.1 to 9) with every walk up stopped at
the worktree's root, and `pytest_options` names the result on the command line, `-c FILE
--rootdir=DIR`; a commit with no config gets an empty one from the probe's scratch directory,
and `--confcutdir` at its rootdir, where pytest would have put it, so conftest.py files above
the worktree are not loaded either. A commit's config is what a fresh clone of it would use.

Which files count as configuration follows the pytest installed beside bisector, which is the
probes' unless a `--setup` installs another: `pytest.toml` and the native `[tool.pytest]` table
only from pytest 9 on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# The probe's pytest reads `-c FILE`: for a commit without configuration, this one.
EMPTY_INI = "pytest.ini"


@cache
def config_names() -> tuple[str, ...]:
    """The files pytest takes its configuration from, in the order it prefers them in one
    directory: `pytest.toml` is pytest 9's."""
    older = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
    return ("pytest.toml", ".pytest.toml", *older) if _pytest_major() >= 9 else older


def _pytest_major() -> int:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("pytest").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 9


@dataclass(frozen=True)
class Setup:
    """Where pytest puts a probe's rootdir, and the config file it reads (None: none)."""

    rootdir: Path
    inifile: Path | None

    @property
    def confcutdir(self) -> Path:
        """Where pytest stops looking for conftest.py files when not told: the config file's
        directory, else the rootdir."""
        return self.inifile.parent if self.inifile is not None else self.rootdir


def pytest_options(setup: Setup, scratch: Path) -> list[str]:
    """The options that make the probe's pytest use `setup` whatever lies above its worktree;
    without a config file, an empty one is written in `scratch` (the probe's own directory)."""
    if setup.inifile is not None:
        return ["-c", str(setup.inifile), f"--rootdir={setup.rootdir}"]
    empty = scratch / EMPTY_INI
    empty.write_text("[pytest]\n", encoding="utf-8")
    return ["-c", str(empty), f"--rootdir={setup.rootdir}",
            f"--confcutdir={setup.confcutdir}"]


def determine(top: Path, invocation_dir: Path, args: Sequence[str]) -> Setup:
    """pytest's rootdir and config file for `args` (its free arguments: test paths and node
    ids), run from `invocation_dir`, as if nothing existed above `top`."""
    top = _real(top)
    invocation_dir = _real(invocation_dir)
    dirs = _dirs_from_args(invocation_dir, args)
    ancestor = _common_ancestor(invocation_dir, dirs)
    found = _locate(top, [ancestor])
    if found is not None:
        return found
    for possible in _up_to(ancestor, top):
        if (possible / "setup.py").is_file():
            return Setup(possible, None)
    if dirs != [ancestor]:
        found = _locate(top, dirs)
        if found is not None:
            return found
    rootdir = _common_ancestor(invocation_dir, [invocation_dir, ancestor])
    if rootdir != top and top not in rootdir.parents:  # arguments outside the worktree
        rootdir = top
    return Setup(rootdir, None)


def _real(path: Path) -> Path:
    """A directory as the probe's pytest sees it: its working directory is a real path."""
    return Path(os.path.realpath(path))


def _absolute(base: Path, arg: str) -> Path:
    return Path(os.path.normpath(os.path.join(base, arg)))


def _up_to(path: Path, top: Path) -> Iterator[Path]:
    """`path` and its parents, nearest first, down to `top`: none of them above it."""
    for base in (path, *path.parents):
        if base != top and top not in base.parents:
            return
        yield base


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _dirs_from_args(invocation_dir: Path, args: Iterable[str]) -> list[Path]:
    """The directories of the arguments that exist (a node id's file, or the directory)."""
    paths = (_absolute(invocation_dir, arg.partition("::")[0])
             for arg in args if not arg.startswith("-"))
    return [p if p.is_dir() else p.parent for p in paths if _exists(p)]


def _common_ancestor(invocation_dir: Path, paths: Iterable[Path]) -> Path:
    ancestor: Path | None = None
    for path in paths:
        if not path.exists():
            continue
        if ancestor is None or path in ancestor.parents:
            ancestor = path
        elif ancestor not in path.parents and path != ancestor:
            try:
                ancestor = Path(os.path.commonpath((str(path), str(ancestor))))
            except ValueError:  # another drive
                continue
    if ancestor is None:
        return invocation_dir
    return ancestor.parent if ancestor.is_file() else ancestor


def _locate(top: Path, args: Iterable[Path]) -> Setup | None:
    """The first directory, walking up from each argument, with a file holding pytest
    configuration; else the first `pyproject.toml` seen, which pytest takes as an empty one."""
    pyproject: Path | None = None
    for arg in args:
        for base in _up_to(arg, top):
            for name in config_names():
                path = base / name
                if not path.is_file():
                    continue
                if name == "pyproject.toml" and pyproject is None:
                    pyproject = path
                if holds_config(path):
                    return Setup(base, path)
    return Setup(pyproject.parent, pyproject) if pyproject is not None else None


def holds_config(path: Path) -> bool:
    """Does pytest take its configuration from this file when it meets it walking up?

    A file pytest cannot read counts: named with `-c`, it makes pytest say what is wrong with
    it, as meeting it would have.
    """
    name = path.name
    if name in ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini"):
        return True
    if name == "pyproject.toml":
        return _pyproject_holds_config(path)
    sections = _ini_sections(path)
    if sections is None:
        return True
    if name == "tox.ini":
        return "pytest" in sections
    return "tool:pytest" in sections or "pytest" in sections  # [pytest]: pytest refuses it


def _pyproject_holds_config(path: Path) -> bool:
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        table = document.get("tool", {}).get("pytest", {})
        if _pytest_major() >= 9 and any(key != "ini_options" for key in table):
            return True  # pytest 9's native table
        return "ini_options" in table
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        return True


def _ini_sections(path: Path) -> set[str] | None:
    """The sections of an ini file as pytest's parser (iniconfig) reads them; None when it
    cannot."""
    import iniconfig

    try:
        return set(iniconfig.IniConfig(str(path)).sections)
    except (iniconfig.ParseError, OSError, UnicodeDecodeError):
        return None
