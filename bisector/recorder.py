"""The recorder process that writes a pytest session's results beside the session.

Started by the plugin when the session is configured, it reads the git state, fingerprints the
environment and opens the store (importing git and SQLAlchemy) on another core while the tests
run; at session end it receives the results on stdin, writes them in one transaction and answers
with one JSON line. This keeps the plugin's cost in the session to a spawn and a JSON dump.

If stdin closes with nothing on it (the session was killed), nothing is recorded. Ctrl-C is
pytest's to handle: the recorder ignores SIGINT and records what the interrupted session
hands over, or nothing when stdin closes empty.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from . import environment
from .config import load_settings, sqlite_path
from .errors import BisectorError, GitError
from .model import Outcome, Run, TestResult, Trigger
from .signature import traceback_tail

PROTOCOL = 2  # 2: each result row ends with its traceback
NOT_A_CHECKOUT_HINT = "run pytest from a directory inside the git checkout to record its results"


class Prepared:
    def __init__(self, invocation_dir: Path, history_db: str | None) -> None:
        from .gitrepo import Repository
        from .history import HistoryStore

        try:
            self.repo = Repository(invocation_dir)
        except GitError as exc:  # its hint names bisector's own --repo, which pytest lacks
            raise GitError(exc.message, hint=NOT_A_CHECKOUT_HINT) from None
        try:
            root = self.repo.main_root
            settings = load_settings(root, history_db=history_db, cwd=invocation_dir)
            self.repo.exclude_store(sqlite_path(settings.store_url(root)))
            self.state = self.repo.state()
            self.environment = environment.current(self.repo.root)
            self.commit = self.repo.commits([self.state.sha]).get(self.state.sha)
            self.store = HistoryStore.open(settings.store_url(root), dirs_under=root,
                                           checkpoint_on_commit=False)
            # Read while the tests run, so that the end of the session only inserts.
            self.known_tests = self.store.tests()
        except BaseException:
            self.repo.close()
            raise

    def close(self) -> None:
        self.store.close()
        self.repo.close()

    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        results = tuple(_result(row) for row in payload["results"])
        run = Run(
            sha=self.state.sha,
            dirty=self.state.dirty,
            branch=self.state.branch,
            environment=self.environment,
            trigger=Trigger(payload.get("trigger", "pytest")),
            host=socket.gethostname(),
            started_at=float(payload["started_at"]),
            finished_at=float(payload["finished_at"]),
            exit_status=payload.get("exit_status"),
            results=results,
        )
        run_id = self.store.record_run(
            run, commits=[self.commit] if self.commit else [], known_tests=self.known_tests
        )
        return {
            "ok": True,
            "run_id": run_id,
            "recorded": len({r.nodeid for r in results}),
            "sha": self.state.sha,
            "dirty": self.state.dirty,
            "location": self.store.location,
        }


def _result(row: list[Any]) -> TestResult:
    """One row as the plugin (or a container session) sends it: seven fields, then the
    traceback (a row without it, from a caller that has none, records none)."""
    nodeid, outcome, duration, sig, message, reruns, phase, *rest = row
    return TestResult(nodeid=nodeid, outcome=Outcome(outcome), duration=float(duration),
                      signature=sig, message=message, reruns=int(reruns), phase=phase,
                      traceback=traceback_tail(rest[0]) if rest else None)


def serve(invocation_dir: Path, history_db: str | None, stdin: Any, stdout: Any) -> int:
    prepared: Prepared | None = None
    answer: dict[str, Any] | None = None  # set early only when preparing failed
    try:
        prepared = Prepared(invocation_dir, history_db)
    except GitError as exc:
        answer = {"ok": False, "skip": True, "message": f"{exc.one_line()}; nothing recorded"}
    except BisectorError as exc:
        answer = {"ok": False, "message": f"{exc.one_line()}; nothing recorded"}
    try:
        raw = stdin.read()
        if not raw.strip():
            return 0
        if prepared is not None:
            payload = json.loads(raw)
            if payload.get("protocol") != PROTOCOL:
                answer = {"ok": False, "message": "plugin and recorder versions differ"}
            else:
                try:
                    answer = prepared.record(payload)
                except BisectorError as exc:
                    answer = {"ok": False, "message": f"{exc.one_line()}; nothing recorded"}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()
        # The session reads one line and goes on; closing and exiting happen after that.
        stdout.close()
        return 0
    finally:
        if prepared is not None:
            prepared.close()


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session decides; stdin ends this process
    parser = argparse.ArgumentParser(prog="python -m bisector.recorder")
    parser.add_argument("--invocation-dir", type=Path, required=True)
    parser.add_argument("--history-db", default=None)
    args = parser.parse_args(argv)
    # the plugin passes --history-db through the environment, out of the process list
    history_db = args.history_db or os.environ.pop("BISECTOR_RECORDER_DB", None) or None
    # Start-up (imports, git, schema) overlaps the tests: let the session have the CPU first.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(5)
    return serve(args.invocation_dir, history_db, sys.stdin, sys.stdout)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before main() ignored SIGINT: nothing to say, nothing recorded
        sys.exit(130)
