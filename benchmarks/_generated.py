"""Generated repositories for the benchmarks: one linear history written by git fast-import.

Hundreds of commits in well under a second, so the benchmarks time the tools, not the set-up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True, env=ENV).stdout.strip()


def build_linear(repo: Path, commits: int, files_at: Callable[[int], dict[str, str]],
                 message_at: Callable[[int], str] = lambda i: f"c{i}") -> list[str]:
    """Commit i holds files_at(i) (on top of the earlier ones); the shas, oldest first."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    stream = []
    for i in range(commits):
        msg = message_at(i)
        stream.append(f"commit refs/heads/main\nmark :{i + 1}\n"
                      f"committer Bench <bench@example.invalid> {1700000000 + i * 60} +0000\n"
                      f"data {len(msg.encode())}\n{msg}\n")
        if i:
            stream.append(f"from :{i}\n")
        for name, text in files_at(i).items():
            stream.append(f"M 100644 inline {name}\ndata {len(text.encode())}\n{text}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream),
                   text=True, check=True, env=ENV)
    git(repo, "checkout", "-q", "main")
    return git(repo, "rev-list", "--reverse", "main").split()


def probe_script(path: Path, counter: Path, command: str) -> Path:
    """A `git bisect run`-style script that counts its runs in `counter`, then runs command.

    Without bytecode: a tool that checks commits out in one checkout can rewrite a module
    within the second its .pyc was written, at the same size (`return 1` -> `return 2`), and
    Python then imports the stale .pyc; git bayesect ran 700 runs without converging on that.
    (bisector's probes run with PYTHONDONTWRITEBYTECODE=1 for the same reason.)"""
    counter.write_text("")
    path.write_text(f"#!/bin/sh\necho x >> {counter}\nexport PYTHONDONTWRITEBYTECODE=1\n"
                    f"exec {command}\n")
    path.chmod(0o755)
    return path


INSTALLABLE_TEST = "tests/test_pkg.py::test_value"


def build_installable(repo: Path, commits: int, culprit: int, modules: int = 12) -> list[str]:
    """An installable package (pyproject.toml, src layout, setuptools) whose history changes
    one module per commit; `core.value()` returns 2 from commit `culprit` on, 1 before.

    The test imports the *installed* copy (src layout, nothing on sys.path), so each step
    must `pip install --no-deps .` first, as a project with a build step must. pip's time
    here is mostly its isolated build environment (setuptools installed into it each time).
    """
    pyproject = ('[build-system]\nrequires = ["setuptools>=61"]\n'
                 'build-backend = "setuptools.build_meta"\n\n'
                 '[project]\nname = "benchpkg"\nversion = "0.1"\nrequires-python = ">=3.9"\n\n'
                 '[tool.setuptools.packages.find]\nwhere = ["src"]\n')
    test = ("import benchpkg.core\n\n\ndef test_value():\n"
            "    assert benchpkg.core.value() == 1\n")

    def module(i: int, rev: int) -> str:
        return (f'"""Module {i}."""\n\nREV = {rev}\n\n\n'
                + "".join(f"def f{j}(x):\n    return x * {j} + REV\n\n\n" for j in range(20)))

    def core(i: int) -> str:
        return f"def value():\n    return {2 if i >= culprit else 1}\n"

    def files_at(i: int) -> dict[str, str]:
        if i == 0:
            files = {f"src/benchpkg/mod_{m:02d}.py": module(m, 0) for m in range(modules)}
            return {**files, "pyproject.toml": pyproject, "tests/test_pkg.py": test,
                    ".gitignore": "build/\n*.egg-info/\n__pycache__/\n",
                    "src/benchpkg/__init__.py": "", "src/benchpkg/core.py": core(0)}
        m = i % modules
        out = {f"src/benchpkg/mod_{m:02d}.py": module(m, i)}
        if i == culprit:
            out["src/benchpkg/core.py"] = core(i)
        return out

    return build_linear(repo, commits, files_at,
                        lambda i: "Change value()" if i == culprit else f"c{i}: touch mod {i}")


def parent_env_venv(path: Path, python: str) -> Path:
    """A venv of `python` made as bisector's probe venv is: it sees that interpreter's
    site-packages behind its own (a .pth), pytest comes from behind, and `pip` is a shim that
    runs that interpreter's pip into this venv. So both tools install with the same pip (a
    venv's own, from ensurepip, is an older and slower pip than an upgraded environment's)."""
    from bisector.executors.local import write_pip_shims

    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True,
                   capture_output=True)
    write_pip_shims(path)
    parents = subprocess.run(
        [python, "-c", "import site, sys; print('\\n'.join([*site.getsitepackages(), "
         "site.getusersitepackages()]))"],
        check=True, capture_output=True, text=True).stdout.split("\n")
    [site_dir] = path.glob("lib/python*/site-packages")
    (site_dir / "zz_parent_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents
                if p and Path(p).is_dir()))
    return path
