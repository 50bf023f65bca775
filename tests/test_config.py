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
