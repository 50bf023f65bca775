from __future__ import annotations

from pathlib import Path

import pytest

from bisector.config import load_settings
from bisector.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert s.lookback == 20
    assert s.store_url(tmp_path) == f"sqlite:///{tmp_path / '.bisector' / 'history.db'}"


def test_precedence_pyproject_then_env_then_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.bisector]\nhistory-db = "h/p.db"\nlookback = 5\n'
    )
    cwd = tmp_path / "elsewhere"
    s = load_settings(tmp_path, environ={}, cwd=cwd)
    assert (s.history_db, s.lookback) == (f"sqlite:///{tmp_path / 'h' / 'p.db'}", 5)
    env = {"BISECTOR_DB": "e.db", "BISECTOR_LOOKBACK": "7"}
    s = load_settings(tmp_path, environ=env, cwd=cwd)
    assert (s.history_db, s.lookback) == (f"sqlite:///{cwd / 'e.db'}", 7)
    s = load_settings(tmp_path, environ=env, cwd=cwd, history_db="postgresql://x/y", lookback=9)
    assert (s.history_db, s.lookback) == ("postgresql://x/y", 9)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[tool.bisector\n", "cannot be read"),
        ("[tool.bisector]\nlookback = 0\n", "lookback must be a whole number"),
        ("[tool.bisector]\nhistory-db = 3\n", "must be a string"),
        ("[tool]\nbisector = 1\n", "must be a table"),
    ],
)
def test_bad_pyproject_names_the_file(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_settings(tmp_path, environ={})
    assert "\n" not in info.value.one_line()


def test_bad_env_lookback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BISECTOR_LOOKBACK"):
        load_settings(tmp_path, environ={"BISECTOR_LOOKBACK": "many"})


# a password in every form a URL may carry it: never shown by redact or redact_text
SECRET_URLS = [
    ("postgresql://h/db?password=s3cret", "s3cret"),
    ("postgresql://h/db?sslpassword=s3cret&sslmode=require", "s3cret"),
    ("postgresql://h/db?passfile=/home/u/.s3cret", "/home/u/.s3cret"),
    ("postgresql+psycopg://u:s3/cr3t@h:5432/db", "s3/cr3t"),
    ("postgresql+psycopg://u:s3 cr3t@h:5432/db", "s3 cr3t"),
    ("postgresql+psycopg://u:p@ss@h:5432/db", "p@ss"),
    ("postgresql+psycopg://u:s3cret@h:5432/db", "s3cret"),
]


@pytest.mark.parametrize(("url", "secret"), SECRET_URLS)
def test_redact_hides_every_form_of_password(url: str, secret: str) -> None:
    from bisector.config import redact, redact_text
    from bisector.history import display_url

    for shown in (redact(url), display_url(url),
                  redact_text(f"connecting to {url} failed: bad password {secret}", url)):
        assert secret not in shown and "***" in shown, shown
    if "@h" in url:
        assert redact(url).endswith("***@h:5432/db")  # the host is what follows the last '@'


def test_commit_url_is_read_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.bisector]\ncommit-url = "https://git.example.com/org/repo/-/commit/{sha}"\n')
    settings = load_settings(tmp_path, environ={})
    assert settings.commit_url == "https://git.example.com/org/repo/-/commit/{sha}"
    assert load_settings(tmp_path.parent, environ={}).commit_url is None


@pytest.mark.parametrize(("value", "says"), [
    ('"ftp://host/org/repo/commit/{sha}"', "is not an http(s) URL"),
    ('"javascript:alert(1)//{sha}"', "is not an http(s) URL"),
    ('"https://host/org/repo/commit/"', "must hold {sha} exactly once"),
    ('"https://host/{sha}/commit/{sha}"', "must hold {sha} exactly once"),
    ('"https://host/commit/{sha}?x={other}"', "must hold {sha} exactly once"),
    ('"https://host with space/{sha}"', "is not an http(s) URL"),
    ("3", "commit-url must be a string"),
])
def test_a_bad_commit_url_is_one_line_naming_the_fix(tmp_path: Path, value: str,
                                                     says: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.bisector]\ncommit-url = {value}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert says in err.value.one_line() and "\n" not in err.value.one_line()
    assert "commit-url =" in (err.value.hint or "")
