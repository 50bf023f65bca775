"""The package as a user gets it: the sdist and the wheel built from a copy of this checkout
(as `python -m build` builds them: the wheel from the sdist), what they hold, and the wheel
installed with no extras into a fresh virtual environment, where the pytest plugin, a
find-break and the shipped suite definitions must work without this checkout on the path.

One test does it all: building and installing (from PyPI, into the fresh environment) is the
slow part, and every check needs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import bisector

from .conftest import git, planted
from .integration.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
VERSION = bisector.__version__
TEST_M = "from m import value\n\n\ndef test_value():\n    assert value() == 1\n"
# What must not leak from this session into the fresh environment: it would import this
# checkout's bisector instead of the installed one.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS",
         "PYTEST_XDIST_WORKER", "BISECTOR_DB")

pytestmark = pytest.mark.slow


def source_copy(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked, and new ones git does not
    ignore), so the build neither sees nor writes anything else here (`*.egg-info`)."""
    listed = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout
    for name in sorted(set(listed.decode().split("\0")) - {""}):
        src, dst = ROOT / name, dest / name
        if not src.is_symlink() and not src.is_file():
            continue  # deleted in the work tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    return {**env, **extra}


def run(*args: str | Path, cwd: Path, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env=env or clean_env(), timeout=timeout)


def shipped_suites() -> list[str]:
    return sorted(p.name for p in (ROOT / "suites").glob("*.toml"))


def package_files() -> list[str]:
    """Every file of the bisector package in this checkout, as the wheel names it."""
    names = git(ROOT, "ls-files", "bisector").splitlines()
    return sorted(n for n in names if n.endswith(".py") or n.endswith(".j2"))


def check_sdist(path: Path) -> None:
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ["LICENSE", "bisector/py.typed", *package_files(),
                 *(f"bisector/_suites/{s}" for s in shipped_suites())]:
        assert name in names, f"{name} is not in the sdist {path.name}"


def check_wheel(path: Path) -> None:
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"bisector-{VERSION}.dist-info/METADATA").decode()
    assert shipped_suites(), "no suites/*.toml in this checkout"
    for name in ["bisector/py.typed", f"bisector-{VERSION}.dist-info/licenses/LICENSE",
                 *package_files(), *(f"bisector/_suites/{s}" for s in shipped_suites())]:
        assert name in names, f"{name} is not in the wheel {path.name}"
    assert not [n for n in names if not n.startswith(("bisector/", "bisector-"))], names
    fields = [line.split(": ", 1) for line in metadata.splitlines() if ": " in line]
    assert ["Version", VERSION] in fields
    assert ["License-Expression", "MIT"] in fields
    assert ["Classifier", "Typing :: Typed"] in fields
    assert ["Classifier", "Framework :: Pytest"] in fields


def test_the_wheel_installs_and_works_with_no_extras(tmp_path: Path) -> None:
    try:
        import build  # noqa: F401  (the `test` extra installs it)
    except ImportError:
        unavailable("the build package is not installed (pip install -e '.[test]')",
                    "packaging", "the Makefile installs the test extra")
    src = source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    # this session's environment: `build` is importable here (it isolates the build itself)
    built = run(sys.executable, "-m", "build", "--outdir", dist, src, cwd=tmp_path,
                env=dict(os.environ))
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-4000:]
    # setuptools' warnings (a data directory missing from the packages, a license format it
    # deprecates) are a banner on every install. Not compiling bytecode is this machine's
    # PYTHONDONTWRITEBYTECODE.
    warnings = [line for line in output.splitlines() if re.search(r"(?i)warning", line)
                and "byte-compiling is disabled" not in line]
    assert not warnings, "\n".join(warnings)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    assert (sdist.name, wheel.name) == (f"bisector-{VERSION}.tar.gz",
                                       f"bisector-{VERSION}-py3-none-any.whl")
    check_sdist(sdist)
    check_wheel(wheel)

    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python, command = venv / "bin" / "python", venv / "bin" / "bisector"
    installed = run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # the installed copy, its version and its suites, not this checkout's
    where = run(python, "-c", "import json, bisector, bisector.suites as s; "
                "from importlib.metadata import version; "
                "print(json.dumps([bisector.__file__, version('bisector'), str(s.SHIPPED), "
                "s.load_suite('python-pytest', None).source]))", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    init, dist_version, shipped, source = json.loads(where.stdout)
    site = str(venv / "lib")
    assert init.startswith(site) and shipped.startswith(site), (init, shipped)
    assert source == str(Path(shipped) / "python-pytest.toml")
    assert dist_version == VERSION
    version = run(command, "--version", cwd=tmp_path)
    assert version.returncode == 0 and VERSION in version.stdout, version.stdout + version.stderr

    # the plugin, registered by the entry point, records a session
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = planted(repo, TEST_M, n=6, culprit=3)
    session = run(python, "-m", "pytest", "--track-history", "-q", cwd=repo)
    assert session.returncode == 1, session.stdout + session.stderr
    assert f"bisector: recorded 1 results for {shas[-1][:10]}" in session.stdout, session.stdout
    regressions = run(command, "regressions", "--json", cwd=repo)
    assert regressions.returncode == 0, regressions.stderr

    # a find-break on the planted regression, probes run with the fresh interpreter
    found = run(command, "find-break", "--json", "test_m.py::test_value", "--good", shas[0],
                cwd=repo)
    assert found.returncode == 0, found.stdout + found.stderr
    [group] = json.loads(found.stdout)["culprits"]
    assert group["commit"]["sha"] == shas[3]

    # the shipped suites are found: what stops a container probe is Docker, not the suite
    for args in ([command, "find-break", "test_m.py::test_value", "--good", shas[0],
                  "--suite", "python-pytest"],
                 [python, "-m", "pytest", "--container", "python-pytest"]):
        probe = run(*args, cwd=repo)
        said = probe.stdout + probe.stderr
        assert probe.returncode == 2, said
        assert "no suite named" not in said, said
        assert "docker" in said.lower(), said
