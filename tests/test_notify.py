"""`bisector nightly --notify`: against a local server that answers like GitHub's REST API
(issues listed with Link pagination, created, commented on, closed; its error answers) and
records what it was sent, and a webhook receiver."""

from __future__ import annotations

import copy
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bisector import nightly as nightly_module
from bisector.cli import main
from bisector.nightly import NightlyOutcome
from bisector.notify import (
    LABEL,
    GitHubTarget,
    Http,
    NotifyFailed,
    notify,
    read_marker,
    write_marker,
)
from bisector.reports.nightly_model import NightlyReport

TOKEN = "ghs_S3cretT0kenThatMustNeverBePrinted"
REPO = "acme/calc"
CULPRIT = "c" * 40
OTHER = "d" * 40
HEAD = "e" * 40
TEST = "tests/test_calc.py::test_add_negative"
TEST2 = "tests/test_calc.py::test_add_zero"


# -- the fake GitHub --------------------------------------------------------------------------


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    auth: str | None
    body: Any


@dataclass
class FakeGitHub:
    """Issues in memory, two to a page; `fail` answers every request with (status, headers)."""

    base: str = ""
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    fail: tuple[int, dict[str, str], dict[str, Any]] | None = None
    page_size: int = 2
    hang: threading.Event | None = None

    def add(self, body: str, *, labels: tuple[str, ...] = (LABEL,), state: str = "open",
            pull_request: bool = False) -> int:
        number = len(self.issues) + 1
        self.issues[number] = {"number": number, "title": f"#{number}", "body": body,
                               "state": state, "labels": [{"name": n} for n in labels],
                               **({"pull_request": {}} if pull_request else {})}
        return number

    def writes(self) -> list[Sent]:
        return [s for s in self.sent if s.method != "GET"]

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any
               ) -> tuple[int, dict[str, str], Any]:
        prefix = f"/repos/{REPO}/issues"
        if not path.startswith(prefix):
            return 404, {}, {"message": "Not Found"}
        rest = path[len(prefix):].strip("/").split("/")
        if method == "GET" and rest == [""]:
            return self.listing(query)
        if method == "POST" and rest == [""]:
            number = self.add(body["body"], labels=tuple(body.get("labels") or ()))
            self.issues[number]["title"] = body["title"]
            return 201, {}, self.issues[number]
        number = int(rest[0])
        if method == "POST" and rest[1:] == ["comments"]:
            self.comments.setdefault(number, []).append(body["body"])
            return 201, {}, {"id": 1}
        if method == "PATCH" and len(rest) == 1:
            self.issues[number].update(body)
            return 200, {}, self.issues[number]
        return 404, {}, {"message": "Not Found"}

    def listing(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        label = query.get("labels", [""])[0]
        state = query.get("state", ["open"])[0]
        found = [i for n, i in sorted(self.issues.items())
                 if i["state"] == state and label in {lab["name"] for lab in i["labels"]}]
        page = int(query.get("page", ["1"])[0])
        chunk = found[(page - 1) * self.page_size: page * self.page_size]
        headers = {}
        if page * self.page_size < len(found):
            nxt = urllib.parse.urlencode({**{k: v[0] for k, v in query.items()},
                                          "page": page + 1})
            headers["Link"] = (f'<{self.base}/repos/{REPO}/issues?{nxt}>; rel="next", '
                               f'<{self.base}/repos/{REPO}/issues?page=99>; rel="last"')
        return 200, headers, chunk


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.sent.append(Sent(self.command, parts.path, urllib.parse.parse_qs(parts.query),
                                  self.headers.get("Authorization"), body))
            if fake.hang is not None:
                fake.hang.wait(10)
                return
            if fake.fail is not None:
                status, headers, answer = fake.fail
            elif (parts.path.startswith("/repos/")
                  and self.headers.get("Authorization") != f"Bearer {TOKEN}"):
                status, headers, answer = 401, {}, {"message": "Bad credentials"}
            else:
                status, headers, answer = fake.answer(self.command, parts.path,
                                                      urllib.parse.parse_qs(parts.query), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.block_on_close = False  # a hanging handler must not hold the test up
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        if fake.hang is not None:
            fake.hang.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"GITHUB_API_URL": github.base, "GITHUB_REPOSITORY": REPO,
              "GITHUB_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.example",
              "GITHUB_RUN_ID": "4242"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


# -- nights as nightly.json has them ------------------------------------------------------------


def _commit(sha: str, subject: str) -> dict[str, Any]:
    return {"sha": sha, "short": sha[:10], "subject": subject, "author": "Alice",
            "author_email": "alice@example.invalid", "committed_at": "2026-11-30T10:00:00+00:00"}


def _test(test: str, message: str, traceback: str | None = None) -> dict[str, Any]:
    after = {"sha": CULPRIT, "outcome": "failed", "message": message}
    if traceback:
        after["traceback"] = traceback
    return {"test": test, "last_good": "a" * 40, "verdict": "culprit", "suspects": [],
            "confidence": 1.0, "confirmed": True, "note": None,
            "before": {"sha": "b" * 40, "outcome": "passed", "message": None}, "after": after}


def night(*, regressions: list[dict[str, Any]] = (), still: list[dict[str, Any]] = (),
          flaky: list[str] = (), branch: str = "main") -> dict[str, Any]:
    status = "regression" if regressions else "still-failing" if still else "clean"
    return {
        "schema": 1, "kind": "bisector-nightly", "generated_at": "2026-12-01T03:17:00+00:00",
        "repository": "calc", "branch": branch, "head": _commit(HEAD, "Notes 7"),
        "lookback": 20, "fail_on": "regression", "status": status,
        "exit_code": 1 if regressions else 0,
        "run": {"id": 3, "container": None, "exit_status": 1, "seconds": 1.0,
                "outcomes": {"passed": 3, "failed": 1}},
        "regressions": list(regressions), "still_failing": list(still),
        "flaky": [{"test": t, "message": "flake", "false_fail_rate": 0.2,
                   "false_fail_interval": None, "note": None} for t in flaky],
        "failing": [], "grid": {}, "stats": None, "notes": [],
    }


def regression(tests: list[dict[str, Any]], *, sha: str = CULPRIT,
               subject: str = "Clamp add() at zero", hunks: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    group = {"culprit": _commit(sha, subject), "merge": None, "files": ["calc.py"],
             "owners": ["@calc-team", "@alice", "Alice <alice@example.invalid>"],
             "tests": tests, "probes": [], "bisection": None}
    if hunks is not None:
        group["isolation"] = {"hunks": hunks, "total_hunks": 9, "probes": 6, "minimal": True,
                              "unresolved": []}
    return group


def carried(test: str, message: str = "assert 0 == -5", sha: str = CULPRIT) -> dict[str, Any]:
    return {"test": test, "culprit": _commit(sha, "Clamp add() at zero"),
            "owners": ["@calc-team", "Alice <alice@example.invalid>"],
            "since": "2026-11-30T03:17:00+00:00", "message": message}


NEW = night(regressions=[regression([_test(TEST, "assert 0 == -5",
                                           "def test_add_negative():\n>   assert add(-2, -3)"
                                           " == -5\nE   assert 0 == -5")])])


def run(data: dict[str, Any], capsys: pytest.CaptureFixture[str] | None = None,
        timeout: float = 10.0) -> tuple[bool, list[str], list[str]]:
    """notify() as the CLI calls it, from GITHUB_* in the environment: (ok, said, warned)."""
    import os

    from bisector.notify import github_target

    said: list[str] = []
    warned: list[str] = []
    ok = notify(copy.deepcopy(data), github_target(os.environ), say=said.append,
                warn=warned.append, timeout=timeout)
    for line in said + warned:
        assert TOKEN not in line
    return ok, said, warned


# -- the life of an issue -----------------------------------------------------------------------


def test_a_new_culprit_opens_one_issue(github: FakeGitHub, env: dict[str, str]) -> None:
    data = copy.deepcopy(NEW)
    data["regressions"][0]["isolation"] = {
        "hunks": [{"file": "calc.py", "old_start": 1, "old_lines": 2, "new_start": 1,
                   "new_lines": 2, "text": "@@ -1,2 +1,2 @@\n def add(a, b):\n"
                                           "-    return a + b\n+    return max(a + b, 0)\n"}],
        "total_hunks": 3, "probes": 4, "minimal": True, "unresolved": []}
    ok, said, warned = run(data)
    assert ok and warned == []
    [issue] = github.issues.values()
    assert issue["title"] == f"{CULPRIT[:10]} Clamp add() at zero broke tests on main"
    assert [lab["name"] for lab in issue["labels"]] == [LABEL]
    body = issue["body"]
    marker = read_marker(body)
    assert marker is not None and marker["sha"] == CULPRIT and marker["tests"] == [TEST]
    assert marker["branch"] == "main"
    assert "cc @calc-team @alice" in body  # owners mentioned; an e-mail is listed, not pinged
    assert "Alice <alice@example.invalid>" in body
    assert f"`{TEST}`: `assert 0 == -5`" in body
    assert "<details><summary>traceback</summary>" in body and "E   assert 0 == -5" in body
    assert "```diff" in body and "+    return max(a + b, 0)" in body
    assert f"https://github.example/{REPO}/commit/{CULPRIT}" in body
    assert f"https://github.example/{REPO}/actions/runs/4242" in body
    assert said == [f"notified: opened issue #1 for {CULPRIT[:10]}"]
    assert all(s.auth == f"Bearer {TOKEN}" for s in github.sent)


def test_a_rerun_opens_no_duplicate(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    run(NEW)
    assert len(github.issues) == 1
    assert [s.method for s in github.writes()] == ["POST"]  # the first night's issue only
    assert github.comments == {}


def test_the_issue_is_found_on_a_later_page(github: FakeGitHub, env: dict[str, str]) -> None:
    """Our issue among others with the label (other culprits, an unmarked issue, a pull
    request): found on page 3 by its marker, never opened again."""
    github.add("a person's issue, labelled by hand")
    github.add("a pull request " + write_marker({"sha": OTHER, "tests": [], "branch": "main"}),
               pull_request=True)
    for n in range(3):
        github.add(write_marker({"sha": f"{n}" * 40, "tests": [TEST2],
                                 "branch": "release", "state": "x"}))
    github.add("closed " + write_marker({"sha": CULPRIT, "tests": [TEST], "branch": "main"}),
               state="closed")
    run(NEW)
    [ours] = [n for n, i in github.issues.items() if i["state"] == "open"
              and (read_marker(i["body"]) or {}).get("sha") == CULPRIT]
    github.sent.clear()
    run(NEW)
    pages = [s.query.get("page", ["1"])[0] for s in github.sent if s.method == "GET"]
    assert pages == ["1", "2", "3"]  # 6 open issues with the label, ours the last
    assert github.writes() == []
    assert ours == 7


def test_unchanged_still_failing_says_nothing(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    ok, said, warned = run(night(still=[carried(TEST)]))
    assert ok and said == [] and warned == []
    assert github.comments == {} and len(github.writes()) == 1


def test_a_change_is_one_comment(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    changed = night(still=[carried(TEST), carried(TEST2, "assert 1 == 0")])
    ok, said, _ = run(changed)
    assert ok and said == ["notified: commented on issue #1 (cccccccccc changed)"]
    [comment] = github.comments[1]
    assert f"newly failing: `{TEST2}`" in comment and "`assert 1 == 0`" in comment
    assert "cc @calc-team" in comment
    assert "actions/runs/4242" in comment
    marker = read_marker(github.issues[1]["body"])
    assert marker is not None and marker["tests"] == [TEST, TEST2]
    assert "Clamp add() at zero" in github.issues[1]["body"]  # the card stays
    run(changed)  # the same the night after: nothing more
    assert len(github.comments[1]) == 1


def test_an_address_in_a_message_is_not_news(github: FakeGitHub, env: dict[str, str]) -> None:
    run(night(still=[carried(TEST, "<Obj at 0x7f00aa>")]), None)
    github.add(write_marker({"sha": CULPRIT, "tests": [TEST], "branch": "main", "state": ""}))
    run(night(still=[carried(TEST, "<Obj at 0x7f00aa>")]))
    github.comments.clear()
    run(night(still=[carried(TEST, "<Obj at 0x7fbbcc>")]))
    assert github.comments == {}


def test_passing_again_closes_the_issue(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    ok, said, _ = run(night())
    assert ok and said == ["notified: closed issue #1 (its tests pass again)"]
    assert github.issues[1]["state"] == "closed"
    assert github.issues[1]["state_reason"] == "completed"
    [comment] = github.comments[1]
    assert f"None of these tests fails any more at `{HEAD[:10]}`" in comment
    github.sent.clear()
    run(night())
    assert github.writes() == []


def test_a_flaky_failure_keeps_the_issue_open(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    run(night(flaky=[TEST]))
    assert github.issues[1]["state"] == "open"


def test_another_branchs_issue_is_left_alone(github: FakeGitHub, env: dict[str, str]) -> None:
    run(NEW)
    run(night(branch="release"))
    assert github.issues[1]["state"] == "open"
    run(night(regressions=NEW["regressions"], branch="release"))
    assert len(github.issues) == 2  # one per branch


def test_a_carried_culprit_without_an_issue_opens_none(github: FakeGitHub,
                                                      env: dict[str, str]) -> None:
    """Only the night that found a culprit opens its issue: one closed by hand stays closed."""
    run(night(still=[carried(TEST)]))
    assert github.issues == {}


# -- failures are one warning line -------------------------------------------------------------


FAILURES = {
    "401": ((401, {}, {"message": "Bad credentials"}), "401, the token was refused"),
    "403": ((403, {}, {"message": "Resource not accessible by integration"}),
            "403, forbidden: the token needs issues: write"),
    "404": ((404, {}, {"message": "Not Found"}), "404, not found: check GITHUB_REPOSITORY"),
    "422": ((422, {}, {"message": "Validation Failed",
                       "errors": [{"message": f"body is too long {TOKEN}"}]}),
            "422, the request was refused as invalid (Validation Failed: body is too long"),
    "rate-403": ((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1764561600"},
                  {"message": "API rate limit exceeded"}),
                 "rate limited (403); the limit resets at 2025-12-01T04:00:00+00:00"),
    "rate-429": ((429, {"Retry-After": "60"}, {"message": "secondary rate limit"}),
                 "rate limited (429); try again in 60 s"),
    "redirect": ((302, {"Location": "http://elsewhere.invalid/steal"}, {}),
                 "302, unexpected answer"),
}


def _outcome(data: dict[str, Any], code: int) -> Any:
    def fake_run(*_a: Any, **_k: Any) -> NightlyOutcome:
        return NightlyOutcome(exit_code=code, report=NightlyReport.from_json(copy.deepcopy(data)),
                              paths={})

    return fake_run


@pytest.mark.parametrize("code", [0, 1])
@pytest.mark.parametrize("name", list(FAILURES))
def test_a_failure_is_one_warning_and_the_exit_status_stands(
        github: FakeGitHub, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], name: str, code: int) -> None:
    answer, expected = FAILURES[name]
    github.fail = answer
    monkeypatch.setattr(nightly_module, "run_nightly", _outcome(NEW, code))
    assert main(["nightly", "--notify", "github"]) == code
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("bisector: warning: GitHub notification failed: "), err
    assert expected in warnings[0]
    assert TOKEN not in out + err
    assert len(github.sent) == 1  # the first failure ends the notification
    assert "culprit cccccccccc Clamp add() at zero" in out  # the night's summary stands


def test_no_network_is_one_warning(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(nightly_module, "run_nightly", _outcome(NEW, 1))
    assert main(["nightly", "--notify", "github"]) == 1
    _out, err = capsys.readouterr()
    [warning] = err.splitlines()
    assert "GET /repos/acme/calc/issues: cannot connect" in warning
    assert TOKEN not in err


def test_a_timeout_is_one_warning(github: FakeGitHub, env: dict[str, str]) -> None:
    github.hang = threading.Event()
    ok, said, [warning] = run(NEW, timeout=0.3)
    assert not ok and said == []
    assert warning.endswith("GET /repos/acme/calc/issues: no answer within 0.3 s")


def test_a_next_page_on_another_host_is_not_followed(github: FakeGitHub) -> None:
    client = Http(github.base, 5, token=TOKEN)
    with pytest.raises(NotifyFailed, match=r"another host \(elsewhere.invalid\)"):
        client.request("GET", "http://elsewhere.invalid/repos/acme/calc/issues?page=2")
    assert github.sent == []


def test_the_token_is_not_in_the_targets_repr() -> None:
    target = GitHubTarget(api="https://api.github.com", repository=REPO, token=TOKEN)
    assert TOKEN not in repr(target)


# -- settings refused before the night runs ----------------------------------------------------


def _never_run(*_a: Any, **_k: Any) -> NightlyOutcome:
    raise AssertionError("the night ran despite a bad --notify setting")


@pytest.mark.parametrize(("args", "unset", "setenv", "message"), [
    (["--notify", "github"], "GITHUB_TOKEN", {}, "--notify github needs GITHUB_TOKEN"),
    (["--notify", "github"], "GITHUB_REPOSITORY", {},
     "--notify github needs GITHUB_REPOSITORY as owner/name"),
    (["--notify", "github"], None, {"GITHUB_API_URL": "file:///etc/passwd"},
     "GITHUB_API_URL is not an http(s) URL"),
    (["--notify", "webhook"], None, {}, "--notify webhook needs a URL"),
    (["--notify", "webhook", "--webhook-url", "ftp://hooks.example/x"], None, {},
     "the webhook URL is not an http(s) URL"),
    (["--webhook-url", "https://hooks.example/x"], None, {},
     "--webhook-url without --notify webhook"),
    (["--notify", "email"], None, {}, "Invalid value for '--notify'"),
])
def test_bad_settings_are_refused_before_the_night(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], args: list[str], unset: str | None,
        setenv: dict[str, str], message: str) -> None:
    if unset:
        monkeypatch.delenv(unset)
    for key, value in setenv.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(nightly_module, "run_nightly", _never_run)
    assert main(["nightly", *args]) == 2
    _out, err = capsys.readouterr()
    assert message in err
    assert "Traceback" not in err
    assert TOKEN not in err


# -- webhook ------------------------------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[tuple[str, list[tuple[str, dict[str, str], Any]], list[int]]]:
    """A webhook receiver: (its URL with a secret path, what it was sent, its status)."""
    received: list[tuple[str, dict[str, str], Any]] = []
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), json.loads(raw)))
            self.send_response(status[0])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/SeCrEt", received, \
            status
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_gets_text_and_the_nightly(
        hook: tuple[str, list[Any], list[int]], env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url, received, _status = hook
    data = copy.deepcopy(NEW)
    data["regressions"][0]["culprit"]["subject"] = "Use <!channel> & friends"
    monkeypatch.setattr(nightly_module, "run_nightly", _outcome(data, 1))
    monkeypatch.setenv("BISECTOR_WEBHOOK_URL", url)
    assert main(["nightly", "--notify", "webhook"]) == 1
    out, err = capsys.readouterr()
    [(path, headers, payload)] = received
    assert path == "/services/T0/B0/SeCrEt"
    assert headers["Content-Type"] == "application/json"
    assert "Authorization" not in headers
    assert payload["nightly"] == NightlyReport.from_json(data).to_json()
    text = payload["text"]
    assert text.startswith("nightly main at eeeeeeeeee: new regressions (1 new regression")
    assert "culprit cccccccccc Use &lt;!channel&gt; &amp; friends (Alice)" in text
    assert text.endswith("\nhttps://github.example/acme/calc/actions/runs/4242")
    assert "notified: posted the night to the webhook at 127.0.0.1" in out
    assert "SeCrEt" not in out + err


@pytest.mark.parametrize("status", [404, 429, 500])
def test_a_refused_webhook_is_one_warning_without_its_secret(
        hook: tuple[str, list[Any], list[int]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], status: int) -> None:
    url, _received, answer = hook
    answer[0] = status
    monkeypatch.setattr(nightly_module, "run_nightly", _outcome(NEW, 0))
    assert main(["nightly", "--notify", "webhook", "--webhook-url", url]) == 0
    _out, err = capsys.readouterr()
    [warning] = err.splitlines()
    assert warning.startswith("bisector: warning: webhook notification failed: "
                              f"POST to 127.0.0.1: {'rate limited' if status == 429 else ''}")
    assert str(status) in warning
    assert "SeCrEt" not in err


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_night_opens_an_issue(repo: Path, tmp_path: Path, github: FakeGitHub,
                                     env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import commit

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    tests = ("from calc import add\n\n\ndef test_add_negative():\n"
             "    assert add(-2, -3) == -5\n")
    commit(repo, {"calc.py": "def add(a, b):\n    return a + b\n",
                  "tests/test_calc.py": tests, ".gitignore": "__pycache__/\n",
                  "CODEOWNERS": "calc.py @calc-team\n"}, "Calculator")
    args = ["nightly", "-C", str(repo), "--report-dir", str(tmp_path / "r"),
            "--notify", "github"]
    assert main(args) == 0  # no baseline: nothing to tell
    assert github.issues == {}
    culprit = commit(repo, {"calc.py": "def add(a, b):\n    return max(a + b, 0)\n"},
                     "Clamp add() at zero")
    assert main(args) == 1
    out = capsys.readouterr().out
    [issue] = github.issues.values()
    assert issue["title"] == f"{culprit[:10]} Clamp add() at zero broke tests on main"
    assert "cc @calc-team" in issue["body"] and "assert 0 == -5" in issue["body"]
    assert "notified: opened issue #1" in out


# -- the action's step: python -m bisector.notify ---------------------------------------------


def test_the_action_step_notifies_from_a_written_report(
        github: FakeGitHub, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bisector.notify import main as notify_main

    report = tmp_path / "nightly.json"
    report.write_text(json.dumps(NEW))
    assert notify_main([str(report), "--notify", "github"]) == 0
    assert len(github.issues) == 1
    out, err = capsys.readouterr()
    assert out == f"notified: opened issue #1 for {CULPRIT[:10]}\n" and err == ""
    github.fail = (401, {}, {"message": "Bad credentials"})
    assert notify_main([str(report), "--notify", "github"]) == 0  # a warning, not a failure
    assert "401, the token was refused" in capsys.readouterr().err


def test_the_action_step_without_a_report_or_a_token(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bisector.notify import main as notify_main

    assert notify_main([str(tmp_path / "nope.json"), "--notify", "github"]) == 0
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith("bisector: warning: no notification: ")
    assert "is not a nightly report" in warning
    monkeypatch.delenv("GITHUB_TOKEN")
    assert notify_main([str(tmp_path / "nope.json"), "--notify", "github"]) == 2
    assert "bisector: error: --notify github needs GITHUB_TOKEN" in capsys.readouterr().err
