"""`pytest --container SUITE`: this pytest invocation, run inside the suite's container.

The working tree as it is (dirty or not) is mounted read-only; the container's pytest prints
live to this terminal, its exit status becomes this session's, and with --track-history its
JUnit XML is recorded like a local run, with the container's environment (suite and image
digest) as the fingerprint. The plugin calls `run` from `pytest_cmdline_main` and does nothing
else, so nothing of this is imported unless `--container` is given.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BisectorError
from .model import Environment, TestResult
from .nodeids import check_nodeid
from .suites import SOURCE_DIR, load_suite

if TYPE_CHECKING:
    from .executors.docker import ContainerRun
    from .suites import Suite

# Our own options (the container's pytest does not have the plugin), and pytest-xdist's (the
# image may not have it; the container's CPUs are the suite's to set).
_WITH_VALUE = ("--container", "--history-db", "-n", "--numprocesses", "--dist",
               "--maxprocesses")
_FLAGS = ("--track-history", "--auto-bisect")


def container_args(args: Sequence[str], root: Path) -> list[str]:
    """The invocation's arguments for the container: ours dropped, host paths mapped to /src.

    What follows `--` is test ids (ConfigError for one that is not): the container's pytest
    would read one that starts with `-` as an option all the same.
    """
    out: list[str] = []
    skip = False
    ids = False
    for arg in args:
        if ids:
            out.append(_in_container(check_nodeid(arg, "the pytest arguments after --"), root))
            continue
        if skip:
            skip = False
            continue
        if arg == "--":
            ids = True
            out.append(arg)
            continue
        if arg in _FLAGS or any(arg.startswith(f"{o}=") for o in _WITH_VALUE):
            continue
        if arg in _WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-n") and arg[2:].isdigit():  # -n2
            continue
        option, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        out.append(option + eq + _in_container(value, root))
    return out


def _in_container(value: str, root: Path) -> str:
    """A host path inside the repository, as the container sees it (/src/...)."""
    if not os.path.isabs(value):
        return value
    path, sep, rest = value.partition("::")
    try:
        rel = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return value
    return (SOURCE_DIR if rel == "." else f"{SOURCE_DIR}/{rel}") + sep + rest


def run(name: str, args: Sequence[str], invocation_dir: Path, *, track: bool,
        history_db: str | None, auto_bisect: bool = False,
        write: Callable[[str], None] | None = None, trigger: str = "pytest") -> int:
    """Run the suite over the working tree; the container's exit status.

    2 is bisector's own error (one line) or an interrupted run, as for pytest; 3 a run that
    told nothing about the tests (a timeout, a failed setup).
    """
    import signal
    import threading

    out = write or _write
    previous = None
    if threading.current_thread() is threading.main_thread():
        # a cancelled CI job: clean up as for Ctrl-C
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(name, args, invocation_dir, track=track, history_db=history_db,
                    auto_bisect=auto_bisect, out=out, trigger=trigger)
    except BisectorError as exc:
        out(f"bisector: error: {exc.one_line()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        out("bisector: interrupted; the container was removed\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(name: str, args: Sequence[str], invocation_dir: Path, *, track: bool,
         history_db: str | None, auto_bisect: bool, out: Callable[[str], None],
         trigger: str = "pytest") -> int:
    from .executors.docker import container_environment, parse_results

    suite, root, sha, dirty, outcome, (started, finished) = _run_container(
        name, args, invocation_dir, out, auto_bisect)
    if outcome.problem is not None:
        out(f"bisector: the container run told nothing about the tests: {outcome.problem}\n")
        return 3
    if outcome.junit is None:
        out(f"bisector: no JUnit XML at {suite.junit} in the container; nothing recorded\n")
    elif track:
        results = parse_results(suite, outcome, None)
        env = container_environment(suite, outcome.image_ref, outcome.image_id, root)
        try:
            said = _record(invocation_dir, history_db, env, results, started, finished,
                           outcome.status, sha, dirty, trigger)
        except BisectorError as exc:  # as locally: the tests' status stands, with a warning
            said = f"warning: {exc.one_line()}; nothing recorded"
        out(f"bisector: {said}\n")
    return outcome.status if outcome.status is not None else 3


def _run_container(name: str, args: Sequence[str], invocation_dir: Path,
                   out: Callable[[str], None], auto_bisect: bool
                   ) -> tuple[Suite, Path, str | None, bool, ContainerRun, tuple[float, float]]:
    """Run the suite over the working tree in a container, gone when this returns: (suite,
    checkout root, sha and dirtiness it ran on, what the container did, when it ran)."""
    from .executors.docker import SuiteRunner, connect, context_key, sweep
    from .executors.worktree import new_session
    from .gitrepo import Repository

    with Repository(invocation_dir) as repo:
        root = repo.root
        suite = load_suite(name, root)
        client = connect()
        sweep(client)
        try:
            subdir = invocation_dir.resolve().relative_to(root).as_posix()
        except ValueError:
            subdir = ""
        context_id = None
        if suite.dockerfile:
            context_id = context_key(*repo.working_tree_ids(suite.context, suite.dockerfile))
        state = repo.state()  # the commit the tests run on: read before, not after
        session = new_session()
        runner = SuiteRunner(client, suite, session, output=out)
        runner.check_images()
        if auto_bisect:
            out("bisector: --auto-bisect is not run with --container; use "
                f"bisector find-break --suite {name}\n")
        started = time.time()
        try:
            outcome = runner.run(root, container_args(args, root),
                                 subdir="" if subdir == "." else subdir, context_id=context_id)
        finally:
            sweep(client, session=session)
    return suite, root, state.sha, state.dirty, outcome, (started, time.time())


def _record(invocation_dir: Path, history_db: str | None, env: Environment,
            results: dict[str, TestResult], started: float, finished: float,
            status: int | None, sha: str | None, dirty: bool, trigger: str) -> str:
    from dataclasses import replace

    from .recorder import Prepared

    prepared = Prepared(invocation_dir, history_db)
    try:
        prepared.environment = env
        if prepared.state.sha != sha:  # HEAD moved while the tests ran: not evidence
            prepared.state = replace(prepared.state, sha=sha or prepared.state.sha, dirty=True)
        elif dirty:
            prepared.state = replace(prepared.state, dirty=True)
        rows = [[r.nodeid, r.outcome.value, r.duration, r.signature, r.message, r.reruns,
                 r.phase, r.traceback] for r in results.values()]
        answer = prepared.record({"protocol": 2, "trigger": trigger, "started_at": started,
                                  "finished_at": finished, "exit_status": status,
                                  "results": rows})
    finally:
        prepared.close()
    dirty = " (dirty: not evidence for bisection)" if answer["dirty"] else ""
    return (f"recorded {answer['recorded']} results for {answer['sha'][:10]}{dirty} "
            f"in {answer['location']} (container {env.platform})")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
