"""One settings object, from `[tool.bisector]` in pyproject.toml, then `BISECTOR_*`, then flags.

Later sources win. Relative store paths are taken relative to where they were written: the
repository root for pyproject.toml, the current directory for the environment and flags.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_LOOKBACK = 20
STORE_DIRNAME = ".bisector"
STORE_FILENAME = "history.db"


@dataclass(frozen=True, slots=True)
class Settings:
    history_db: str | None = None
    lookback: int = DEFAULT_LOOKBACK
    setup: str | None = None  # shell command run in each probe before its tests

    def store_url(self, root: Path) -> str:
        """The SQLAlchemy URL of the history store; the default is a SQLite file in the repo."""
        if self.history_db is None:
            return sqlite_url(root / STORE_DIRNAME / STORE_FILENAME)
        return self.history_db


# scheme://user:PASSWORD@ in free text (a message, a traceback line, a command line)
_PASSWORD_IN_TEXT = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)[^\s@/]*(?=@)")


def redact(url: str) -> str:
    """A store URL as it may be shown anywhere (output, logs, reports, errors): no password.

    The one place that decides how a URL is shown; `redact_text` cleans free text that may
    hold one.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return _PASSWORD_IN_TEXT.sub(r"\g<head>***", url)


def redact_text(text: str, *urls: str) -> str:
    """`text` with every `scheme://user:password@` password hidden, and the passwords of
    `urls` (as written and %-decoded, as a driver's message may quote either) wherever they
    occur on their own."""
    from urllib.parse import unquote

    for url in urls:
        match = _PASSWORD_IN_TEXT.search(url or "")
        if match is None:
            continue
        text = text.replace(url, redact(url))
        secret = url[match.end("head"):].split("@", 1)[0]
        for value in sorted({secret, unquote(secret)}, key=len, reverse=True):
            if len(value) >= 3:  # a one- or two-letter password would blank out the text
                text = text.replace(value, "***")
    return _PASSWORD_IN_TEXT.sub(r"\g<head>***", text)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(url[len("sqlite:///") :])


def as_store_url(value: str, base: Path | None = None) -> str:
    """A store given as a path (relative to `base`, default the current directory) or a URL."""
    return _as_url(value, base or Path.cwd())


def _as_url(value: str, base: Path) -> str:
    value = value.strip()
    if not value:
        raise ConfigError("the history store setting is empty", hint="give a path or a URL")
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return sqlite_url(path if path.is_absolute() else (base / path).resolve())


def _lookback(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ConfigError(f"{where}: lookback must be a whole number >= 1, not {value!r}")
    return number


def read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})", hint="fix the TOML syntax") from None
    section = data.get("tool", {}).get("bisector", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.bisector] must be a table")
    return section


def load_settings(
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    history_db: str | None = None,
    lookback: int | None = None,
    cwd: Path | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    here = cwd or Path.cwd()
    settings = Settings()
    section = read_pyproject(root)
    where = f"{root / 'pyproject.toml'} [tool.bisector]"
    if "history-db" in section:
        value = section["history-db"]
        if not isinstance(value, str):
            raise ConfigError(f"{where}: history-db must be a string (a path or a URL)")
        settings = replace(settings, history_db=_as_url(value, root))
    if "lookback" in section:
        settings = replace(settings, lookback=_lookback(section["lookback"], where))
    if "setup" in section:
        if not isinstance(section["setup"], str):
            raise ConfigError(f"{where}: setup must be a string (a shell command)")
        settings = replace(settings, setup=section["setup"])
    if env.get("BISECTOR_DB"):
        settings = replace(settings, history_db=_as_url(env["BISECTOR_DB"], here))
    if env.get("BISECTOR_LOOKBACK"):
        settings = replace(
            settings, lookback=_lookback(env["BISECTOR_LOOKBACK"], "BISECTOR_LOOKBACK")
        )
    if history_db:
        settings = replace(settings, history_db=_as_url(history_db, here))
    if lookback is not None:
        settings = replace(settings, lookback=_lookback(lookback, "--lookback"))
    return settings
