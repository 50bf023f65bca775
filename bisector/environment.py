"""The environment fingerprint: which runs are the same experiment.

Two hashes, because they answer two questions. `key` (interpreter and platform) says whether
results on different commits may be compared at all. `fingerprint` adds the hash of the
dependency lock (or, lacking one, the project metadata) and says whether a stored result of a
commit may stand in for running that commit again.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

from .model import Environment

# The first of these found in the repository root describes the installed dependencies.
LOCKFILES = (
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "requirements.lock",
    "requirements.txt",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
)


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def deps_hash(root: Path) -> str:
    for name in LOCKFILES:
        path = root / name
        try:
            data = path.read_bytes()
        except OSError:
            continue
        return f"{name}:{hashlib.sha256(data).hexdigest()[:16]}"
    return "none"


def current(root: Path, *, extra: str = "") -> Environment:
    """The environment of this interpreter running the suite of the checkout at `root`.

    `extra` carries what an executor adds (an image digest, say) so that it becomes part of
    both hashes.
    """
    python = f"{sys.implementation.name}-{platform.python_version()}"
    plat = f"{sys.platform}-{platform.machine()}"
    deps = deps_hash(root)
    key = digest(python, plat, extra)
    return Environment(
        python=python,
        platform=plat,
        deps_hash=deps,
        key=key,
        fingerprint=digest(key, deps),
    )
