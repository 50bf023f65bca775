"""The one place an executor is built, from one checked options object (ADR 0017).

`ExecutorOptions` holds what a user chose (`--executor`, `--suite`, `--setup`, `--jobs`,
`--scheduler`, `--repo-url`, `--timeout`, `--pytest-arg`, `--test-file`); constructing it
checks how they combine, so every rule (and its message) lives here, and the CLI, the plugin
and the nightly only build the object. `build_executor` then makes the executor over an open
checkout: one local or Docker executor, a `Pool` of K of them for `--jobs K`, or a Dask
cluster; whichever it is, the caller holds one `Executor`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BisectError, ConfigError

if TYPE_CHECKING:
    from ..config import Settings
    from ..gitrepo import Repository
    from ..suites import Suite
    from . import Executor

KINDS = ("local", "docker", "dask")
# --test-file without node ids: a container runs the tests it is named, never a whole file
WHOLE_FILES_REFUSED = "the Docker executor runs the tests it is given"
WHOLE_FILES_HINT = "name the tests (node ids) along with --test-file"

Progress = Callable[[str], None]


# `--jobs auto`: probes at once on this machine. Two probes on two cores take about the time of
# one (a build and a pytest are one process each), a third on two cores half as long again;
# past four, a round's extra probe cuts less of the range than it costs (ADR 22).
AUTO_JOBS_MAX = 4


# Local checkouts (each with its probe venv) per --jobs slot when probes run a --setup: K hold
# a round's new probes while K more keep the search's bounds (`Pool.keep`), which the
# confirmation runs again as culprit and parent without building (ADR 25). A checkout is made
# only when a probe first needs it.
SETUPS_KEPT_PER_SLOT = 2


def auto_jobs() -> int:
    """The cores this process may run on (its affinity, as a container's CPU set limits it),
    at most AUTO_JOBS_MAX."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, AUTO_JOBS_MAX))


@dataclass(frozen=True)
class ExecutorOptions:
    """Where and how probes run, checked when made (ConfigError, one line, for a bad mix).

    `kind` None picks the executor the other options imply: dask with a scheduler, docker
    with a suite, local otherwise. `whole_files`: the probes run the `test_files` whole (no
    node ids were named), which only the local executor can.
    """

    kind: str | None = None
    suite: str | None = None
    setup: str | None = None
    jobs: int = 1
    scheduler: str | None = None
    repo_url: str | None = None
    timeout: float | None = None
    pytest_args: tuple[str, ...] = ()
    test_files: tuple[Path, ...] = ()
    whole_files: bool = False

    def __post_init__(self) -> None:
        kind = self.kind or ("dask" if self.scheduler else "docker" if self.suite else "local")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "test_files", tuple(self.test_files))
        if self.pytest_args:
            from ..config import check_pytest_args

            object.__setattr__(self, "pytest_args", check_pytest_args(self.pytest_args))
        _check_kind(self)
        _check_numbers(self)
        if self.repo_url:
            from .dask import check_url

            check_url(self.repo_url)

    @property
    def in_containers(self) -> bool:
        """Whether probes run in a suite's containers (docker, or dask with a suite)."""
        return self.kind == "docker" or self.suite is not None

    def for_tests(self, tests: list[str]) -> ExecutorOptions:
        """These options for a bisection of `tests`: without any, the test files run whole."""
        return dataclasses.replace(self, whole_files=bool(self.test_files) and not tests)


def _check_kind(options: ExecutorOptions) -> None:
    """The flags that belong to one executor, refused with another."""
    if options.kind not in KINDS:
        raise ConfigError(f"unknown executor {options.kind!r}", hint="use local, docker or dask")
    if options.suite and options.kind == "local":
        raise ConfigError("--suite runs probes in containers, not with --executor local",
                          hint="drop --executor local or --suite")
    if options.kind != "dask" and (options.scheduler or options.repo_url):
        raise ConfigError("--scheduler and --repo-url are for the Dask executor",
                          hint="add --executor dask")
    if options.setup and options.in_containers:
        raise ConfigError("--setup is for the local executor",
                          hint="put setup commands in the suite's setup key")
    if options.whole_files and options.in_containers:
        raise BisectError(WHOLE_FILES_REFUSED, hint=WHOLE_FILES_HINT)


def _check_numbers(options: ExecutorOptions) -> None:
    if options.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {options.jobs}")
    if options.timeout is not None and not options.timeout > 0:
        raise ConfigError(f"--timeout must be more than 0 seconds, not {options.timeout:g}",
                          hint="give the seconds a probe may take, or leave it out")


@dataclass(frozen=True)
class Layout:
    """Where in the checkout probes start pytest, and the files laid over every checkout."""

    subdir: str = ""
    extra_files: Mapping[str, bytes] = field(default_factory=dict)

    def test_paths(self) -> list[str]:
        """The laid-over files as pytest, started in `subdir`, is given them."""
        prefix = self.subdir.rstrip("/") + "/" if self.subdir else ""
        return [f.removeprefix(prefix) if prefix else f for f in sorted(self.extra_files)]


def layout(repo: Repository, cwd: Path, test_files: tuple[Path, ...]) -> Layout:
    """Probes start pytest where the user did (node ids mean the same), with each --test-file
    (read from the user's checkout) laid at the same place in every probe's checkout."""
    try:
        subdir = Path(cwd).resolve().relative_to(repo.root).as_posix()
    except ValueError:
        subdir = ""
    extra = {}
    for path in test_files:
        full = path.resolve()
        try:
            rel = full.relative_to(repo.root)
        except ValueError:
            raise BisectError(f"--test-file {path} is outside the repository",
                              hint="give a file inside the checkout") from None
        extra[rel.as_posix()] = full.read_bytes()
    return Layout("" if subdir == "." else subdir, extra)


def _suite(options: ExecutorOptions, root: Path, pytest_args: tuple[str, ...]) -> Suite | None:
    """The suite the probes run in, loaded and checked against the options; None locally."""
    from ..suites import available, load_suite

    if options.kind == "docker" and options.suite is None:
        names = ", ".join(available(root)) or "none defined"
        raise ConfigError("the Docker executor needs a suite",
                          hint=f"give --suite NAME (available: {names})")
    if options.suite is None:
        return None
    suite = load_suite(options.suite, root)
    if pytest_args and suite.dialect != "pytest":
        raise ConfigError(f"--pytest-arg is for pytest suites; suite {suite.name} is "
                          f"{suite.dialect}", hint="put the options in the suite's command")
    return suite


def build_executor(repo: Repository, options: ExecutorOptions, place: Layout,
                   settings: Settings, progress: Progress | None = None) -> Executor:
    """The executor for these options; [tool.bisector]'s setup and pytest-args fill in what
    the options leave out. The caller enters it (`with`), which closes what it made."""
    setup = options.setup or (None if options.in_containers else settings.setup)
    pytest_args = options.pytest_args or settings.pytest_args
    suite = _suite(options, repo.root, pytest_args)
    extra, subdir, timeout = dict(place.extra_files), place.subdir, options.timeout
    if options.kind == "dask":
        from .dask import DaskExecutor

        return DaskExecutor(repo, scheduler=options.scheduler, repo_url=options.repo_url,
                            suite=suite, timeout=timeout, setup=setup, extra_files=extra,
                            subdir=subdir, pytest_args=pytest_args, jobs=options.jobs,
                            progress=progress)

    def one() -> Executor:
        if suite is not None:
            from .docker import DockerExecutor

            return DockerExecutor(repo, suite, timeout=timeout, extra_files=extra,
                                  subdir=subdir, pytest_args=pytest_args)
        from .local import LocalExecutor

        return LocalExecutor(repo, timeout=timeout, setup=setup, extra_files=extra,
                             subdir=subdir, pytest_args=pytest_args)

    # a setup is a build worth keeping: two checkouts per slot (ADR 25)
    stations = options.jobs * (SETUPS_KEPT_PER_SLOT if setup and suite is None else 1)
    return one() if stations == 1 else _pool(one, stations, options.jobs)


def _pool(make: Callable[[], Executor], stations: int, jobs: int) -> Executor:
    """`stations` executors as one, `jobs` at once; those made are closed if making the next
    one fails."""
    import contextlib

    from .pool import Pool

    with contextlib.ExitStack() as stack:
        made = [stack.enter_context(make()) for _ in range(stations)]
        stack.pop_all()
    return Pool(made, jobs)
