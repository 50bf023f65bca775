"""Secrets never shown: one redaction (`config.redact`, `config.redact_text`) for every URL-like
value bisector prints, checked as a property and over every command's output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bisector.config import redact, redact_text
from bisector.history import HistoryStore

from .conftest import commit, git, run_cli, run_pytest
from .store_helpers import make_run

SCHEMES = ["postgresql+psycopg", "postgresql", "tcp", "ssh", "http", "https", "mysql+pymysql"]
# printable, no whitespace: what a URL written on one line (a flag, an environment variable)
# can carry unencoded, '@', '/', ':', '?' and '#' included
URL_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16)


@given(scheme=st.sampled_from(SCHEMES), user=URL_TEXT, password=URL_TEXT)
@example(scheme="tcp", user="u", password="hunter2@pass")
@example(scheme="postgresql", user="bob@corp", password="pw")
@example(scheme="tcp", user="us/er", password="pw")
@example(scheme="ssh", user="a:b", password="c/d@e")
def test_no_password_survives_redaction(scheme: str, user: str, password: str) -> None:
    assume(not user.startswith("/"))  # scheme:/// is a URL without an authority (a path)
    url = f"{scheme}://{user}:{password}@db.example:5432/h"
    # what may be shown: the URL with everything after the user's first ':' hidden, in the
    # text around it
    shown_part = f"{scheme}://{user.split(':', 1)[0]}:***@db.example:5432/h"
    texts = [lambda u: u, lambda u: f"{u} failed: x", lambda u: f"connecting to {u} failed",
             lambda u: f"({u})", lambda u: f"'{u}',"]
    assume(not any(password in text(shown_part) for text in texts))
    for shown in (redact(url), redact_text(texts[1](url), url), redact_text(texts[2](url), ""),
                  redact_text(texts[3](url)), redact_text(texts[4](url))):
        assert password not in shown, shown
        assert "***" in shown, shown


@given(token=URL_TEXT)
def test_a_token_as_the_user_of_an_http_url_is_hidden(token: str) -> None:
    assume("@" not in token and ":" not in token and not token.startswith("/"))
    url = f"https://{token}@git.example/r.git"
    assume(token not in "clone of https://***@git.example/r.git failed")
    assert token not in redact(url) and token not in redact_text(f"clone of {url} failed")


def test_what_holds_no_secret_is_shown_as_written() -> None:
    for text in ["sqlite:////tmp/a:b@c/history.db", "tcp://127.0.0.1:2375",
                 "postgresql+psycopg://bob@db:5432/h", "ssh://git@github.com/o/r.git",
                 "/home/u/.bisector/history.db", "unix:///var/run/docker.sock"]:
        assert redact(text) == text and redact_text(f"at {text} now") == f"at {text} now"


def test_redact_keeps_user_and_host() -> None:
    assert redact("tcp://u:hunter2@pass@db:2375") == "tcp://u:***@db:2375"
    assert redact("postgresql://bob@corp:pw@db/h?sslmode=require&password=x") == (
        "postgresql://bob@corp:***@db/h?sslmode=require&password=***")


# -- every command, and pytest's output --------------------------------------------------------

# a password with an unencoded '@': neither it nor the tail after that '@' may show
PASSWORD, TAIL = "hunter2", "tail9x"
STORE = f"postgresql+psycopg://bob:{PASSWORD}@{TAIL}@127.0.0.1:9/h?connect_timeout=3"
ENGINE = f"tcp://bob:{PASSWORD}@{TAIL}@127.0.0.1:9"
TEST = "tests/test_t.py::test_t"
JUNIT = ('<testsuite name="s" tests="1"><testcase classname="tests.test_t" name="test_t"/>'
         '</testsuite>')


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("secrets") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"tests/test_t.py": "def test_t():\n    pass\n", "report.xml": JUNIT})
    commit(repo, {"notes.txt": "1\n"})
    local = repo.parent / "local.db"
    with HistoryStore.open(f"sqlite:///{local}") as store:
        store.record_run(make_run())
    return repo


# (arguments, extra environment): the store's URL given by flag or by BISECTOR_DB
STORE_COMMANDS = [
    (["history"], {}),
    (["regressions"], {}),
    (["flaky"], {}),
    (["stats"], {}),
    (["find-break"], {}),
    (["find-break", TEST, "--good", "HEAD~1"], {}),
    (["nightly"], {}),
    (["import", "--commit", "HEAD", "report.xml"], {}),
    (["export", "--to", "{local}"], {}),
    (["export", "--history-db", "{local}", "--to", STORE], {}),
    (["import-history", "--from", "{local}"], {}),
    (["import-history", "--history-db", "{local}", "--from", STORE], {}),
    (["gc", "--no-docker", "--keep", "1"], {}),
    (["history", "--history-db", ""], {"BISECTOR_DB": STORE}),
]


def _no_secret(proc: subprocess.CompletedProcess[str]) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    for piece in (PASSWORD, TAIL):
        assert piece not in out, out


def _argv(args: list[str], local: Path) -> list[str]:
    args = [a.format(local=local) for a in args]
    if "--history-db" in args:
        at = args.index("--history-db")
        if not args[at + 1]:
            del args[at:at + 2]  # the URL comes from the environment
        return args
    return [*args, "--history-db", STORE]


@pytest.mark.parametrize(("args", "env"), STORE_COMMANDS,
                         ids=lambda v: "-".join(v)[:40] if isinstance(v, list) else "")
def test_no_command_shows_the_store_password(checkout: Path, args: list[str],
                                             env: dict[str, str]) -> None:
    proc = run_cli(*_argv(args, checkout.parent / "local.db"), cwd=checkout, env=env)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    _no_secret(proc)
    assert "***" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_pytest_does_not_show_the_store_password(checkout: Path, how: str) -> None:
    args, env = (["--track-history", f"--history-db={STORE}"], {}) if how == "flag" else (
        ["--track-history"], {"BISECTOR_DB": STORE})
    proc = run_pytest(checkout, *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a storage problem only warns
    _no_secret(proc)
    assert "***" in proc.stdout, proc.stdout


DOCKER_COMMANDS = [
    ["gc"],
    ["find-break", TEST, "--good", "HEAD~1", "--suite", "python-pytest"],
    ["nightly", "--container", "python-pytest"],
]


@pytest.mark.parametrize("args", DOCKER_COMMANDS, ids=lambda a: a[0])
def test_no_command_shows_the_docker_host_password(checkout: Path, tmp_path: Path,
                                                   args: list[str]) -> None:
    proc = run_cli(*args, "--history-db", str(tmp_path / "h.db"), cwd=checkout,
                   env={"DOCKER_HOST": ENGINE})
    _no_secret(proc)
    assert "no Docker engine is reachable" in proc.stdout + proc.stderr
    assert "tcp://bob:***@127.0.0.1:9" in proc.stdout + proc.stderr


def test_pytest_container_does_not_show_the_docker_host_password(checkout: Path) -> None:
    proc = run_pytest(checkout, "--container", "python-pytest", env={"DOCKER_HOST": ENGINE})
    assert proc.returncode == 2
    _no_secret(proc)
    assert "no Docker engine is reachable" in proc.stdout
