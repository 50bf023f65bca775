"""Suite definitions: how to run a project's integration suite in a container.

A suite is a TOML table; one file per suite. They are looked up, first found wins, in the
user's repository (`.bisector/suites/NAME.toml`, then `[tool.bisector.suites.NAME]` in
pyproject.toml), then in the templates this project ships: the top-level `suites/`, which an
installed copy carries as the package data `bisector/_suites/` (docs/adr/0015-packaging.md).
Validation is strict and names the file, the key and what is expected, because a typo in a
suite otherwise shows up as a probe that is silently untestable at every commit.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .config import read_pyproject
from .errors import ConfigError

# Where the commit's tree, the writable copy and the results live inside the container.
SOURCE_DIR = "/src"
SCRATCH_DIR = "/work"
RESULTS_DIR = "/results"
# Package data, so an installed copy finds them too; in a checkout, bisector/_suites is a
# symlink to the top-level suites/. pip installs packages as files, so this is a real path.
SHIPPED = Path(str(resources.files("bisector").joinpath("_suites")))
USER_DIR = Path(".bisector") / "suites"
DIALECTS = ("pytest", "generic")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)([bkmg]?)", re.I)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # Docker's own floor; 0 would mean "no limit"
SUITE_KEYS = ("description", "image", "dockerfile", "context", "setup", "command", "junit",
              "dialect", "env", "services", "scratch", "timeout", "memory", "cpus", "pids",
              "network")
SERVICE_KEYS = ("image", "env", "command", "ready", "ready-timeout")


@dataclass(frozen=True, slots=True)
class Service:
    """A container the tests talk to, reachable by its name on the probe's private network."""

    name: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    ready: str | None = None  # shell command run inside the service until it exits 0
    ready_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    source: str  # the file (and table) it came from, for messages
    command: str  # shell command; {tests} becomes the quoted test selection
    junit: str  # where the command writes JUnit XML, inside the container
    image: str | None = None
    dockerfile: str | None = None  # relative to the repository root, built per commit
    context: str = "."  # the build context of the Dockerfile, relative to the root
    setup: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    dialect: str = "pytest"  # how test names in the JUnit XML map back to node ids
    scratch: bool = False  # run in a writable copy of the read-only tree
    timeout: float = 600.0
    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 1024
    description: str = ""

    @property
    def workdir(self) -> str:
        return SCRATCH_DIR if self.scratch else SOURCE_DIR

    @property
    def network(self) -> str:
        """`none` unless services need a network: then a private one per probe."""
        return "private" if self.services else "none"


class _Table:
    """Reads one TOML table, remembering what it was asked for so leftovers can be named."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def get(self, key: str, kind: type | tuple[type, ...], expected: str,
            default: Any = None) -> Any:
        self.seen.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(f"{self.where}: {key} must be {expected}, not {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.where}: {key} must be {expected}, not {value!r}")
        return value

    def need(self, key: str, kind: type | tuple[type, ...], expected: str) -> Any:
        value = self.get(key, kind, expected)
        if value is None:
            raise ConfigError(f"{self.where}: {key} is missing", hint=f"give {expected}")
        return value

    def text(self, key: str, expected: str, *, required: bool = False,
             default: str | None = None) -> Any:
        """A string that must say something: an empty image or command fails every probe."""
        value = self.need(key, str, expected) if required else self.get(key, str, expected)
        if value is None:
            return default
        if not value.strip():
            raise ConfigError(f"{self.where}: {key} is empty", hint=f"give {expected}")
        return value

    def known(self, keys: tuple[str, ...]) -> None:
        """Name a misspelt key first: otherwise `comand` reads as "command is missing"."""
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r}",
                              hint=f"expected one of: {', '.join(sorted(keys))}")

    def strings(self, key: str) -> dict[str, str]:
        table = self.get(key, dict, "a table of strings", {})
        for name, value in table.items():
            if not name or "=" in name or "\0" in name:
                raise ConfigError(f"{self.where}: {key} has an invalid variable name {name!r}")
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ConfigError(f"{self.where}: {key}.{name} must be a string, "
                                  f"not {value!r}")
        return {str(k): str(v) for k, v in table.items()}

    def done(self, allowed_extra: tuple[str, ...] = ()) -> None:
        unknown = sorted(set(self.data) - self.seen - set(allowed_extra))
        if unknown:
            known = ", ".join(sorted(self.seen))
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r}",
                              hint=f"expected one of: {known}")


def _positive(table: _Table, key: str, default: float, expected: str) -> float:
    value = table.get(key, (int, float), expected, default)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{table.where}: {key} must be {expected}, not {value!r}")
    return float(value)


def _service(name: str, data: Any, where: str) -> Service:
    here = f"{where} [services.{name}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{here}: must be a table with at least an image")
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{here}: the service name must be letters, digits, '.', '_' or '-'")
    table = _Table(data, here)
    table.known(SERVICE_KEYS)
    image = table.text("image", "an image name (string)", required=True)
    command = table.get("command", (str, list), "a shell command or a list of strings")
    if isinstance(command, list) and not all(isinstance(c, str) for c in command):
        raise ConfigError(f"{here}: command must be a list of strings")
    service = Service(
        name=name,
        image=image,
        env=table.strings("env"),
        command=(("sh", "-c", command) if isinstance(command, str)
                 else tuple(command) if command else None),
        ready=table.get("ready", str, "a shell command run in the service until it exits 0"),
        ready_timeout=_positive(table, "ready-timeout", 30.0, "seconds (a number > 0)"),
    )
    table.done()
    return service


def parse_suite(name: str, data: Any, where: str) -> Suite:
    """A validated `Suite` from one TOML table; `where` names it in every message.

    Each helper checks one group of keys, always in this order, so that a table with several
    mistakes names the same one first whatever the order of its keys."""
    table = _suite_table(name, data, where)
    image, dockerfile = _image_or_dockerfile(table, where)
    setup = _setup(table, where)
    junit, dialect = _junit(table, where)
    memory, pids = _limits(table, where)
    services = _services(table, where)
    suite = Suite(
        name=name,
        source=where,
        command=table.text("command", "the test command (a shell command)", required=True),
        junit=junit,
        image=image,
        dockerfile=dockerfile,
        context=table.get("context", str, "a directory", "."),
        setup=tuple(setup),
        env=table.strings("env"),
        services=services,
        dialect=dialect,
        scratch=table.get("scratch", bool, "true or false", False),
        timeout=_positive(table, "timeout", 600.0, "seconds (a number > 0)"),
        memory=memory,
        cpus=_positive(table, "cpus", 1.0, "a number of CPUs > 0"),
        pids=pids,
        description=table.get("description", str, "a string", ""),
    )
    table.done()
    return suite


def _suite_table(name: str, data: Any, where: str) -> _Table:
    """The suite's table, once its name (which names images and containers) and its keys
    are known to be usable."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: the suite name {name!r} must be letters, digits, '.', '_' "
                          f"or '-', starting with a letter or digit", hint="rename the file")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a suite must be a table")
    table = _Table(data, where)
    table.known(SUITE_KEYS)
    return table


def _image_or_dockerfile(table: _Table, where: str) -> tuple[str | None, str | None]:
    """Exactly one of image and dockerfile; a dockerfile and its context inside the
    repository (a build must not read the host's files)."""
    image = table.text("image", "an image name (string)")
    dockerfile = table.text("dockerfile", "a path to a Dockerfile in the repository")
    if (image is None) == (dockerfile is None):
        raise ConfigError(f"{where}: give exactly one of image or dockerfile",
                          hint="image = 'NAME:TAG' or dockerfile = 'path/Dockerfile'")
    for key, value in (("dockerfile", dockerfile),
                       ("context", table.get("context", str, "a directory", "."))):
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
            raise ConfigError(f"{where}: {key} must be a path inside the repository")
    return image, dockerfile


def _setup(table: _Table, where: str) -> list[str]:
    """The setup commands: one shell command or a list of them."""
    setup = table.get("setup", (str, list), "a shell command or a list of them", [])
    if isinstance(setup, str):
        setup = [setup]
    if not all(isinstance(s, str) for s in setup):
        raise ConfigError(f"{where}: setup must be a list of shell commands (strings)")
    return setup


def _junit(table: _Table, where: str) -> tuple[str, str]:
    """Where in the container the command writes JUnit XML, and in which dialect."""
    junit = table.need("junit", str, "the path the command writes JUnit XML to")
    if not junit.startswith("/"):
        raise ConfigError(f"{where}: junit must be an absolute path in the container, "
                          f"e.g. {RESULTS_DIR}/junit.xml")
    dialect = table.get("dialect", str, f"one of {', '.join(DIALECTS)}", "pytest")
    if dialect not in DIALECTS:
        raise ConfigError(f"{where}: dialect must be one of {', '.join(DIALECTS)}, "
                          f"not {dialect!r}")
    return junit, dialect


def _limits(table: _Table, where: str) -> tuple[str, int]:
    """The container's memory and process limits, each above what any test run needs."""
    memory = table.get("memory", str, "a size such as '512m' or '2g'", "2g")
    size = _MEMORY.fullmatch(memory)
    if not size or float(size.group(1)) * _UNITS[size.group(2).lower()] < MIN_MEMORY:
        raise ConfigError(f"{where}: memory must be a size of at least 6m such as '512m' or "
                          f"'2g', not {memory!r}")
    pids = table.get("pids", int, "a whole number of processes", 1024)
    if pids < 16:
        raise ConfigError(f"{where}: pids must be at least 16, not {pids}")
    return memory, pids


def _services(table: _Table, where: str) -> tuple[Service, ...]:
    """The service containers, and a network setting they can live with (never the
    host's)."""
    network = table.get("network", str, "'none' or 'private'", None)
    services_data = table.get("services", dict, "a table of service tables", {})
    services = tuple(_service(n, d, where) for n, d in services_data.items())
    if network == "none" and services:
        raise ConfigError(f"{where}: network = 'none' leaves the services unreachable",
                          hint="drop the network key: services get a private network")
    if network not in (None, "none", "private"):
        raise ConfigError(f"{where}: network must be 'none' or 'private' (never the host's), "
                          f"not {network!r}")
    return services


def _load_file(path: Path) -> Suite:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})", hint="fix the TOML syntax") from None
    return parse_suite(path.stem, data, str(path))


def _sources(root: Path | None) -> list[tuple[str, Path | None, Any]]:
    """(name, file, table) for every suite visible from the repository, first wins."""
    found: list[tuple[str, Path | None, Any]] = []
    if root is not None:
        for path in sorted((root / USER_DIR).glob("*.toml")):
            found.append((path.stem, path, None))
        section = read_pyproject(root).get("suites", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{root / 'pyproject.toml'}: [tool.bisector.suites] must be "
                              f"a table of suite tables")
        for name, table in section.items():
            found.append((name, None, table))
    if SHIPPED.is_dir():
        for path in sorted(SHIPPED.glob("*.toml")):
            found.append((path.stem, path, None))
    return found


def available(root: Path | None) -> list[str]:
    return list(dict.fromkeys(name for name, _, _ in _sources(root)))


def load_suite(name: str, root: Path | None) -> Suite:
    """The suite called `name`, as the user's repository (or the shipped templates) define it."""
    for found, path, table in _sources(root):
        if found != name:
            continue
        if path is not None:
            return _load_file(path)
        assert root is not None
        return parse_suite(name, table,
                           f"{root / 'pyproject.toml'} [tool.bisector.suites.{name}]")
    names = ", ".join(available(root)) or "none defined"
    raise ConfigError(f"no suite named {name!r} (available: {names})",
                      hint="add .bisector/suites/NAME.toml or [tool.bisector.suites.NAME]")
