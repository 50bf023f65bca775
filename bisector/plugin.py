"""pytest plugin: `pytest --track-history` records every test's outcome against the commit.

Kept thin and cheap. With tracking off, only the options below are registered: nothing from
git, SQLAlchemy or rich is imported. With tracking on, the controller (never an xdist worker,
whose reports reach the controller anyway) keeps one small tuple per test, and a recorder
process started at configure time does the git and database work beside the session
(see `bisector.recorder` and docs/adr/0002).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .signature import crash_line_from_text, short_message, signature, traceback_tail

RECORDER_TIMEOUT_S = 300.0
RECORDER_EXIT_S = 30.0  # after its answer the recorder only closes the store and exits
RECORDER_DB_ENV = "BISECTOR_RECORDER_DB"  # --history-db, handed to the recorder process


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bisector", "regression history (bisector)")
    group.addoption(
        "--track-history",
        action="store_true",
        default=None,
        dest="track_history",
        help="record every test's outcome against the current git commit (bisector).",
    )
    group.addoption(
        "--history-db",
        metavar="URL",
        default=None,
        dest="history_db",
        help="history store: a file path or SQLAlchemy URL "
        "(default: .bisector/history.db in the repository; env BISECTOR_DB).",
    )
    group.addoption(
        "--auto-bisect",
        action="store_true",
        default=None,
        dest="auto_bisect",
        help="with --track-history: after the session, find the commit that broke each test "
        "that fails now and passed within the lookback window.",
    )
    group.addoption(
        "--auto-bisect-isolate",
        action="store_true",
        default=None,
        dest="auto_bisect_isolate",
        help="with --auto-bisect: narrow each culprit to the hunks that break the tests and "
        "check their revert (bisector's --isolate; or [tool.bisector] isolate = true).",
    )
    group.addoption(
        "--container",
        metavar="SUITE",
        default=None,
        dest="container",
        help="run this invocation's tests inside the suite's container (Docker) for the "
        "working tree, with live output; with --track-history, record them.",
    )
    parser.addini("track_history", type="bool", default=False, help="always --track-history.")
    parser.addini("auto_bisect", type="bool", default=False, help="always --auto-bisect.")
    parser.addini("history_db", default="", help="history store path or SQLAlchemy URL.")


# Our options that take a value: pytest's first parse knows none of them, and reads a value
# written as a separate word as a test path.
VALUE_OPTIONS = ("--history-db", "--container")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser) -> None:
    """Refuse `--history-db PATH` (a space, not `=`) where PATH changed pytest's rootdir.

    pytest chooses its rootdir and config file from the command line's free words before it
    loads plugins, so it cannot know that PATH belongs to `--history-db`: an existing PATH
    counts as a test path there, and the rootdir (with every node id) and even the config file
    can change, forking the history. No plugin can take part in that first parse; the
    earliest hook is this one, so a changed setup is refused here, before anything runs.
    """
    words = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
             *map(str, early_config.invocation_params.args)]  # what the first parse read
    misread = _misread_values(words)
    if not misread:
        return
    changed = _setup_change(early_config, parser, words, [value for _, value in misread])
    if changed:
        option, value = misread[0]
        raise pytest.UsageError(
            f"pytest took the value of `{option} {value}` for a test path when it chose its "
            f"{changed}, which changes node ids; write {option}={value}")


def _misread_values(words: list[str]) -> list[tuple[str, str]]:
    """(option, value) for each of our options written as two words whose value pytest's
    first parse counts among its test paths (an existing path that is not an option)."""
    found = []
    for i, word in enumerate(words[:-1]):
        if word == "--":
            break
        value = words[i + 1]
        if word in VALUE_OPTIONS and not value.startswith("-") and _exists(value):
            found.append((word, value))
    return found


def _exists(value: str) -> bool:
    try:
        return Path(value.split("::")[0]).exists()
    except (OSError, ValueError):
        return False


def _setup_change(config: pytest.Config, parser: pytest.Parser, words: list[str],
                  misread: list[str]) -> str | None:
    """What the misread values change in pytest's setup ("rootdir /a (not /b)", "config
    file ..."), or None: pytest's own rootdir logic run with and without them. Where that
    logic cannot be called (a pytest that moved it), any misread value counts as a change."""
    try:
        import inspect

        from _pytest.config.findpaths import determine_setup

        known = parser.parse_known_args(words)  # bisector's options are known by now
        kwargs: dict[str, Any] = {
            "inifile": known.inifilename, "rootdir_cmd_arg": known.rootdir or None,
            "invocation_dir": config.invocation_params.dir}
        if "override_ini" in inspect.signature(determine_setup).parameters:
            kwargs["override_ini"] = known.override_ini
        right = determine_setup(args=list(known.file_or_dir), **kwargs)[:2]
        wrong = determine_setup(args=[*known.file_or_dir, *misread], **kwargs)[:2]
    except Exception:  # pytest internals moved: the safe answer
        return "rootdir"
    if wrong[0] != right[0]:
        return f"rootdir ({wrong[0]}, not {right[0]})"
    if wrong[1] != right[1]:
        return f"config file ({wrong[1] or 'none'}, not {right[1] or 'none'})"
    return None


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _flag(config: pytest.Config, name: str) -> bool:
    """A boolean from the command line, else from the ini file."""
    flag = config.getoption(name)
    return bool(flag) if flag is not None else bool(config.getini(name))


def _tracking(config: pytest.Config) -> bool:
    return _flag(config, "track_history")


TRIGGER = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--container: the whole invocation runs in the suite's container instead of here."""
    if os.environ.get("BISECTOR_TRIGGER"):  # config.TRIGGER_ENV, read without importing it
        from .config import take_trigger

        config.stash[TRIGGER] = take_trigger()
    name = config.getoption("container", None)
    if not name or _is_xdist_worker(config):
        return None
    from .container_session import run

    return run(name, config.invocation_params.args, config.invocation_params.dir,
               track=_tracking(config), history_db=_history_db(config),
               auto_bisect=_flag(config, "auto_bisect"),
               trigger=config.stash.get(TRIGGER, "pytest"))


def _history_db(config: pytest.Config) -> str | None:
    """--history-db, else the ini key: a relative path there is relative to the ini file, as
    pytest's own paths are."""
    history_db = config.getoption("history_db")
    if not history_db and config.getini("history_db"):
        value = str(config.getini("history_db"))
        base = config.inipath.parent if config.inipath else config.rootpath
        history_db = value if "://" in value else str(base / value)
    return history_db or None


AUTO_BISECT_ALONE = ("warning: --auto-bisect does nothing without --track-history "
                     "(or track_history = true in the ini file)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("container", None):
        return  # the tests run in the container; pytest_cmdline_main records them
    if _is_xdist_worker(config):
        return
    if not _tracking(config):
        if _flag(config, "auto_bisect"):  # asked for, and it would silently do nothing
            config.pluginmanager.register(_Notice(AUTO_BISECT_ALONE), "bisector-notice")
        return
    config.pluginmanager.register(HistoryRecorder(config), "bisector-recorder")


class _Notice:
    """One `bisector:` line in the terminal summary."""

    def __init__(self, text: str) -> None:
        self.text = text

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"bisector: {self.text}", yellow=True)


class _Test:
    """One test's accumulating result; `outcome` None until a phase decides it."""

    __slots__ = ("duration", "message", "outcome", "phase", "reruns", "signature", "subfailed",
                 "traceback")

    def __init__(self) -> None:
        self.outcome: str | None = None
        self.duration = 0.0
        self.signature: str | None = None
        self.message: str | None = None
        self.traceback: str | None = None  # pytest's long representation, its tail kept
        self.reruns = 0
        self.phase = "call"
        self.subfailed = False  # a subtest failed: the test failed, whatever its call says

    def subtest(self, report: Any) -> None:
        """A subtest's report (unittest `subTest`, pytest's `subtests` fixture).

        A failed subtest fails the test; the first one names the failure, as it does in
        pytest's JUnit XML, which probes read. Passed and skipped subtests change nothing:
        the test's own reports decide (and their time already includes the subtests').
        """
        if report.outcome == "failed" and not self.subfailed:
            self.subfailed = True
            self.fail("failed", "call", report)

    def rerun(self) -> None:
        """pytest-rerunfailures: this attempt failed, another follows; only the count stays."""
        self.reruns += 1
        self.outcome, self.duration, self.phase = None, 0.0, "call"
        self.signature = self.message = self.traceback = None
        self.subfailed = False

    def failed_in(self, when: str, report: Any) -> None:
        """A failed phase: the call fails the test, setup and teardown make it an error."""
        if when == "call":
            if not self.subfailed:  # else pytest's "contains 1 failed subtest", or later
                self.fail("failed", "call", report)
        elif when == "setup":
            self.fail("error", "setup", report)
        elif self.outcome not in ("failed", "error"):
            # The body passed (or skipped) but teardown broke: the test as a whole did not.
            self.fail("error", "teardown", report)

    def fail(self, outcome: str, phase: str, report: Any) -> None:
        self.outcome = outcome
        self.phase = phase
        crash = _crash_line(report)
        self.signature = signature(crash)
        self.message = short_message(crash)
        self.traceback = _long_repr(report)

    def row(self, nodeid: str) -> list[Any]:
        return [
            nodeid,
            self.outcome,
            round(self.duration, 6),
            self.signature,
            self.message,
            self.reruns,
            self.phase,
            self.traceback,
        ]


def _crash_line(report: Any) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    return crash_line_from_text(str(longrepr)) if longrepr is not None else ""


def _long_repr(report: Any) -> str | None:
    """What pytest prints for the failure (`longreprtext`: the traceback, the `E` lines, the
    captured output sections), capped by `traceback_tail`: what a person reads to act."""
    try:
        text = report.longreprtext
    except Exception:  # another plugin's odd longrepr: the result is kept, without it
        return None
    return traceback_tail(text)


def _skip_reason(report: Any) -> str | None:
    if hasattr(report, "wasxfail"):
        return short_message(str(report.wasxfail)) or None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return short_message(str(longrepr[2]).removeprefix("Skipped: "))
    return None


class HistoryRecorder:
    """Collects the session's outcomes (controller only) and hands them to the recorder."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.tests: dict[str, _Test] = {}
        self.notice: str | None = None
        self.answer: dict[str, Any] = {}
        self._answered = False
        self._writer: threading.Thread | None = None
        self._stderr: str | None = None  # set once the recorder is reaped
        history_db = _history_db(config)
        self.history_db = history_db
        self._proc = self._spawn(config.invocation_params.dir, history_db)

    @staticmethod
    def _spawn(invocation_dir: Path, history_db: str | None) -> subprocess.Popen[str]:
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "bisector.recorder", "--invocation-dir", str(invocation_dir)]
        env.pop(RECORDER_DB_ENV, None)
        if history_db:  # through the environment: a URL's password stays out of `ps`
            env[RECORDER_DB_ENV] = str(history_db)
        # Its own session: a terminal's Ctrl-C interrupts pytest, which still hands over what
        # finished, and the recorder (which ignores SIGINT too) records it. It ends when its
        # stdin closes, so it cannot outlive a killed pytest for long.
        return subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(invocation_dir),
            start_new_session=True,
        )

    # -- collecting ---------------------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            test = self.tests.setdefault(report.nodeid, _Test())
            test.fail("error", "collect", report)
        elif report.skipped:
            test = self.tests.setdefault(report.nodeid, _Test())
            test.outcome, test.phase, test.message = "skipped", "collect", _skip_reason(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self.tests.get(report.nodeid)
        if test is None:
            test = self.tests[report.nodeid] = _Test()
        if getattr(report, "context", None) is not None:  # a subtest (pytest 9, pytest-subtests)
            test.subtest(report)
            return
        outcome = report.outcome
        if outcome == "passed":  # the common case first: this runs three times per test
            test.duration += report.duration
            if report.when == "call" and not test.subfailed:
                test.outcome = "xpassed" if hasattr(report, "wasxfail") else "passed"
            return
        if outcome == "rerun":  # pytest-rerunfailures: this attempt failed, another follows
            test.rerun()
            return
        test.duration += report.duration
        if outcome == "failed":
            test.failed_in(report.when, report)
        elif outcome == "skipped" and not test.subfailed:
            test.outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            test.phase = report.when
            test.message = _skip_reason(report)

    # -- recording ----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(
        self, session: pytest.Session, exitstatus: int | pytest.ExitCode
    ) -> None:
        rows = [t.row(nodeid) for nodeid, t in self.tests.items() if t.outcome is not None]
        payload = {
            "protocol": 2,
            "trigger": self.config.stash.get(TRIGGER, "pytest"),
            "started_at": self.started_at,
            "finished_at": time.time(),
            "exit_status": int(exitstatus),
            "results": rows,
        }
        self.notice = self._finish(json.dumps(payload))

    def _finish(self, payload: str) -> str:
        """Hand the results over and read the recorder's one-line answer.

        The recorder answers as soon as its transaction commits and closes the store after
        that, so the session does not wait for SQLite's checkpoint or the interpreter's exit.
        """
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        self._writer = threading.Thread(target=_send, args=(proc.stdin, payload), daemon=True)
        self._writer.start()
        ready, _, _ = select.select([proc.stdout], [], [], RECORDER_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        self._answered = True
        answer = _last_json(line)
        self.answer = answer or {}
        if answer is None:
            if not ready:
                proc.kill()
                return (
                    f"warning: the history store did not answer in {RECORDER_TIMEOUT_S:.0f}s; "
                    "nothing recorded"
                )
            # stdout closed without an answer: the recorder died, its stderr says why
            err = self._reap(kill=False)
            last = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            return (f"warning: the recorder process failed ({self._redact(last)}); "
                    "nothing recorded")
        if not answer.get("ok"):
            return f"warning: {self._redact(str(answer.get('message', 'nothing recorded')))}"
        dirty = " (dirty: not evidence for bisection)" if answer.get("dirty") else ""
        return (
            f"recorded {answer['recorded']} results for {answer['sha'][:10]}{dirty} "
            f"in {answer['location']}"
        )

    def _redact(self, text: str) -> str:
        from .config import redact_text

        return redact_text(text, *filter(None, [self.history_db,
                                                 os.environ.get("BISECTOR_DB")]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.notice:
            warn = self.notice.startswith("warning")
            terminalreporter.write_line(f"bisector: {self.notice}", yellow=warn)
        if _flag(self.config, "auto_bisect"):
            self._auto_bisect(terminalreporter)

    def _auto_bisect(self, tr: Any) -> None:
        """Bisect this session's failures that passed within the lookback window.

        Runs after the results are stored, prints into the summary and never changes the
        session's exit status: every problem is one line.
        """
        failing = sorted(n for n, t in self.tests.items()
                         if t.outcome in ("failed", "error") and t.phase != "collect")
        if not failing or not self.answer.get("ok"):
            return
        if self.answer.get("dirty"):
            tr.write_line("bisector: auto-bisect skipped: the working tree is dirty", yellow=True)
            return
        from .bisection.isolate import IsolateOptions
        from .errors import BisectorError
        from .finder import find_break
        from .progress import Lines
        from .reports.bisect import summary_lines

        tr.section("bisector: auto-bisect", sep="-")
        try:
            result = find_break(
                self.config.invocation_params.dir, tests=failing, bad=self.answer["sha"],
                history_db=self.history_db, progress=Lines(lambda m: tr.write_line(f"  {m}")),
                # not given: [tool.bisector] isolate decides, as for find-break
                isolate=IsolateOptions(isolate=self.config.getoption("auto_bisect_isolate")),
            )
        except BisectorError as exc:
            tr.write_line(f"bisector: no bisection: {self._redact(exc.one_line())}")
            return
        except Exception as exc:  # never let auto-bisect change the session's outcome
            tr.write_line(f"bisector: auto-bisect failed: {type(exc).__name__}: "
                          f"{self._redact(str(exc))}", red=True)
            return
        for line in summary_lines(result):
            tr.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Before sessionfinish (the session ended early) nothing is recorded: kill it.
        self._reap(kill=not self._answered)

    def _reap(self, *, kill: bool) -> str:
        """Wait for the recorder and close its pipes, once; its stderr.

        The writer thread owns stdin and closes it: it is joined first and stdin is taken
        out of `communicate()`'s hands, which would otherwise flush a file the thread closed
        (the `ValueError: I/O operation on closed file` that an interrupted session showed).
        """
        if self._stderr is not None:
            return self._stderr
        proc = self._proc
        if kill and proc.poll() is None:
            proc.kill()
        if self._writer is not None:
            self._writer.join(RECORDER_EXIT_S)
            if self._writer.is_alive():  # blocked on a full pipe nobody reads: end the reader
                proc.kill()
                self._writer.join()
            proc.stdin = None
        try:
            err = proc.communicate(timeout=RECORDER_EXIT_S)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1]
        self._stderr = err or ""
        return self._stderr


def _send(stdin: Any, payload: str) -> None:
    """Write the payload and close stdin, whatever happens: the recorder may be gone (its
    exit status tells why), and the close is what tells a live one the session is over."""
    try:
        with contextlib.suppress(OSError, ValueError):
            stdin.write(payload)
    finally:
        with contextlib.suppress(OSError, ValueError):  # a failed flush still closes the file
            stdin.close()


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
