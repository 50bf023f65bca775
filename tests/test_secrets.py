"""Secrets never shown: one redaction (`config.redact`, `config.redact_text`) for every URL-like
value bisector prints, checked as a property and over every command's output."""

from __future__ import annotations

from hypothesis import assume, example, given
from hypothesis import strategies as st

from bisector.config import redact, redact_text

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
