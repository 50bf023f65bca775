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
from .model import Trigger
from .nodeids import shown as quoted

DEFAULT_LOOKBACK = 20
STORE_DIRNAME = ".bisector"
STORE_FILENAME = "history.db"


@dataclass(frozen=True, slots=True)
class Settings:
    history_db: str | None = None
    lookback: int = DEFAULT_LOOKBACK
    setup: str | None = None  # shell command run in each probe before its tests
    pytest_args: tuple[str, ...] = ()  # options for the probes' pytest (`pytest-args`)
    commit_url: str | None = None  # `commit-url`: a commit's web page, with one {sha}
    # `isolate`: find a culprit's guilty hunks (None: the command's default, on for the
    # nightly); `isolate-min-hunks`: a change of no more hunks is not isolated by default;
    # `isolate-max-probes`: the search's budget (docs/adr/0021)
    isolate: bool | None = None
    isolate_min_hunks: int = 3
    isolate_max_probes: int = 100

    def store_url(self, root: Path) -> str:
        """The SQLAlchemy URL of the history store; the default is a SQLite file in the repo."""
        if self.history_db is None:
            return sqlite_url(root / STORE_DIRNAME / STORE_FILENAME)
        return self.history_db


# scheme://USERINFO@ : the userinfo runs to the LAST '@' (a password may hold an unencoded '@',
# '/', ':', '?' or '#'; hiding too much beats showing a piece of it), the user to its first ':'.
# `scheme:///` has no userinfo: what follows is a path (sqlite:////tmp/a:b@c.db).
_SCHEME = r"\b[A-Za-z][A-Za-z0-9+.-]*://(?!/)"
_USERINFO_IN_URL = re.compile(rf"(?P<scheme>{_SCHEME})(?P<userinfo>.*)@", re.S)
_USERINFO_IN_TEXT = re.compile(rf"(?P<scheme>{_SCHEME})(?P<userinfo>\S*)@")  # one word
# ?password=... (libpq takes the password, or the file that holds it, as a query key too)
_PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&][^=&\s#]*pass[^=&\s#]*=)[^&\s#]*", re.I)
_TOKEN_SCHEMES = ("http://", "https://")  # https://TOKEN@host: a user alone is a token there


def _hide_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if ":" in userinfo:
        return f"{scheme}{userinfo.split(':', 1)[0]}:***@"
    if scheme.lower().endswith(_TOKEN_SCHEMES) and userinfo:
        return f"{scheme}***@"
    return match.group(0)


def _password(url: str) -> str | None:
    """What `redact` hides of `url`'s userinfo, as written."""
    match = _USERINFO_IN_URL.match(url.strip())
    if match is None:
        return None
    userinfo = match["userinfo"]
    if ":" in userinfo:
        return userinfo.split(":", 1)[1]
    return userinfo if match["scheme"].lower().endswith(_TOKEN_SCHEMES) and userinfo else None


def as_read(url: str) -> str:
    """`url` as bisector reads it, for a library that ends the userinfo at the FIRST '@'
    (SQLAlchemy, and the driver after it): the password's own '@'s %-encoded. Otherwise the
    tail of such a password is taken for the host, tried as one, and quoted in the error."""
    match = _USERINFO_IN_URL.match(url)
    if match is None or ":" not in match["userinfo"]:
        return url
    user, password = match["userinfo"].split(":", 1)
    if "@" not in password:
        return url
    return f"{match['scheme']}{user}:{password.replace('@', '%40')}@{url[match.end():]}"


def _redact_free(text: str) -> str:
    text = _USERINFO_IN_TEXT.sub(_hide_userinfo, text)
    return _PASSWORD_IN_QUERY.sub(r"\g<head>***", text)


def redact(url: str) -> str:
    """A URL as it may be shown anywhere (output, logs, reports, errors), whatever its scheme
    (a store's postgresql+psycopg://, DOCKER_HOST's tcp:// or ssh://, a repository's https://):
    no password (everything between the user's ':' and the last '@'), no token standing as an
    http(s) user, no `?password=`, `passfile` or `sslpassword` value. The rest is shown as
    written.

    The one place that decides how a URL is shown; `redact_text` cleans free text that may
    hold one.
    """
    url = _USERINFO_IN_URL.sub(_hide_userinfo, url, count=1)
    return _PASSWORD_IN_QUERY.sub(r"\g<head>***", url)


def _secrets(url: str) -> set[str]:
    """What of `url` must never be shown: its password as written, and secret query values,
    each also %-decoded and %-encoded, as a driver's message may quote any of them."""
    from urllib.parse import quote, quote_plus, unquote

    found = {m.group(0).split("=", 1)[1] for m in _PASSWORD_IN_QUERY.finditer(url)}
    password = _password(url)
    if password:
        found.add(password)
    return {v for s in found for v in (s, unquote(s), quote(s, safe=""), quote_plus(s))}


def redact_text(text: str, *urls: str) -> str:
    """`text` with every `scheme://user:password@` password (and `?password=` value) hidden,
    and the secrets of `urls` (as written, %-decoded and %-encoded, as a driver's message may
    quote any of them) wherever they occur on their own."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, redact(url))
        for value in sorted(_secrets(url), key=len, reverse=True):
            if len(value) >= 3:  # a one- or two-letter password would blank out the text
                text = text.replace(value, "***")
    return _redact_free(text)


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


def check_commit_url(value: Any, where: str) -> str:
    """`commit-url` as given, or a one-line ConfigError: an http(s) URL with exactly one
    `{sha}` and no other braces (the reports put a commit's sha there and link to it)."""
    hint = 'e.g. commit-url = "https://git.example.com/org/repo/commit/{sha}"'
    if not isinstance(value, str):
        raise ConfigError(f"{where}: commit-url must be a string", hint=hint)
    shown = quoted(value, 80)
    if not re.fullmatch(r"https?://[^\s/{}]+/[^\s]*", value):
        raise ConfigError(f"{where}: commit-url {shown} is not an http(s) URL", hint=hint)
    if value.count("{sha}") != 1 or value.replace("{sha}", "").count("{") + value.replace(
            "{sha}", "").count("}"):
        raise ConfigError(f"{where}: commit-url {shown} must hold {{sha}} exactly once "
                          "(and no other braces)", hint=hint)
    return value


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
    """[tool.bisector] of root's pyproject.toml, then BISECTOR_* from `environ`, then the
    flags: each later source overrides an earlier one; relative paths of the environment
    and flags are taken from `cwd`, those of the file from `root`."""
    env = os.environ if environ is None else environ
    here = cwd or Path.cwd()
    settings = _from_pyproject(Settings(), read_pyproject(root), root)
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


def _from_pyproject(settings: Settings, section: dict[str, Any], root: Path) -> Settings:
    """`settings` with the keys of [tool.bisector] that are given, each checked."""
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
    if "pytest-args" in section:
        value = section["pytest-args"]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: pytest-args must be a list of strings",
                              hint='e.g. pytest-args = ["-p", "no:randomly"]')
        settings = replace(settings,
                           pytest_args=check_pytest_args(value, f"{where} pytest-args"))
    if "commit-url" in section:
        settings = replace(settings, commit_url=check_commit_url(section["commit-url"], where))
    settings = _isolation(settings, section, where)
    return settings


def _isolation(settings: Settings, section: dict[str, Any], where: str) -> Settings:
    """`isolate` (true or false), `isolate-min-hunks` (>= 1), `isolate-max-probes` (>= 1)."""
    if "isolate" in section:
        if not isinstance(section["isolate"], bool):
            raise ConfigError(f"{where}: isolate must be true or false, "
                              f"not {section['isolate']!r}")
        settings = replace(settings, isolate=section["isolate"])
    for key, field in (("isolate-min-hunks", "isolate_min_hunks"),
                       ("isolate-max-probes", "isolate_max_probes")):
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {key} must be a whole number >= 1, not {value!r}")
            settings = replace(settings, **{field: value})
    return settings


# Options a probe's pytest must not be given (--pytest-arg, `pytest-args`): they change what
# bisector reads from every probe (the JUnit XML it writes and its dialect, the node ids and
# the rootdir they are relative to), make pytest run no test at all, or turn bisector's own
# plugin on inside a probe. Anything else is the user's: a wrong option makes each probe
# untestable, with pytest's reason. Long options are matched whole and with `=VALUE`
# (pytest does not take abbreviations); `-o`/`--override-ini` by the ini key it sets.
DENIED_OPTIONS = frozenset({
    "--junitxml", "--junit-xml", "--junit-prefix", "--collect-only", "--co",
    "--track-history", "--history-db", "--auto-bisect", "--help", "--version",
})
DENIED_SHORT = frozenset({"-h", "-V"})
# Which config file, rootdir and conftest.py files a probe's pytest reads is the commit's own,
# named by the local executor (ADR 0023): another one would be another project's experiment.
CONFIG_OPTIONS = frozenset({"-c", "--config-file", "--rootdir", "--confcutdir"})
DENIED_INI = frozenset({"junit_family", "junit_suite_name", "track_history"})
DENIED_PLUGINS = frozenset({"no:junitxml", "junitxml"})
PYTEST_ARG_HINT = ("--pytest-arg options go to every probe's pytest; bisector sets the JUnit "
                   "XML, node ids, config file and rootdir itself")


def _check_form(arg: str, what: str) -> None:
    """ConfigError for an argument that cannot be one (empty, NUL, a line break), would hide
    more (`@FILE`) or names the config file, rootdir or confcutdir, which are the commit's."""
    if not arg.strip() or any(c in arg for c in "\0\n\r"):
        raise ConfigError(f"{what} is empty or holds a NUL or a line break",
                          hint="give one option (or its value) per --pytest-arg")
    if arg.startswith("@"):
        raise ConfigError(f"{what} would read more options from a file",
                          hint="give the options themselves")
    if _names_config(arg):
        raise ConfigError(f"{what}: bisector gives each probe its commit's own config file, "
                          "rootdir and confcutdir", hint=PYTEST_ARG_HINT)


def _names_config(arg: str) -> bool:
    """`-c FILE`, `-cFILE`, `--config-file[=FILE]`, `--rootdir[=DIR]`, `--confcutdir[=DIR]`."""
    return (arg.split("=", 1)[0] in CONFIG_OPTIONS
            or (arg.startswith("-c") and not arg.startswith("--")))


def _ini_key(value: str) -> str:
    return value.split("=", 1)[0].strip()


def check_pytest_args(args: tuple[str, ...] | list[str], where: str = "--pytest-arg"
                      ) -> tuple[str, ...]:
    """The probes' pytest options as given, or ConfigError (one line, exit 2) for one that
    cannot be an argument (empty, NUL, newline, an `@FILE` of more arguments, which would hide
    what it holds) or that would change what bisector relies on (`DENIED_OPTIONS`)."""
    out = tuple(args)
    for i, arg in enumerate(out):
        _check_argument(arg, where)
        previous = out[i - 1] if i else ""
        ini, plugin = _ini_and_plugin(arg, previous)
        denied = (arg.split("=", 1)[0] in DENIED_OPTIONS or arg in DENIED_SHORT
                  or (ini is not None and _ini_key(ini) in DENIED_INI)
                  or (plugin is not None and plugin.strip() in DENIED_PLUGINS))
        if denied:
            shown = quoted(arg, 60)
            if arg in (ini, plugin):  # the value of the option before it
                shown = f"{previous} {shown}"
            raise ConfigError(f"{where} {shown} would change what bisector reads from a probe",
                              hint=PYTEST_ARG_HINT)
    return out


def _check_argument(arg: object, where: str) -> None:
    """One string that is one argument: not empty, no NUL or line break, not `@FILE`, not
    naming the config file, rootdir or confcutdir (`_check_form`)."""
    if not isinstance(arg, str):
        raise ConfigError(f"{where}: {arg!r} is not a string", hint=PYTEST_ARG_HINT)
    _check_form(arg, f"{where} {quoted(arg, 60)}")


def _ini_and_plugin(arg: str, previous: str) -> tuple[str | None, str | None]:
    """The `KEY=VALUE` that arg sets through -o/--override-ini, and the plugin it names
    through -p, whether joined to the option (`-okey=v`, `-pname`) or after it."""
    ini = plugin = None
    if arg.split("=", 1)[0] == "--override-ini" and "=" in arg:
        ini = arg.split("=", 1)[1]
    elif arg.startswith("-o") and len(arg) > 2:
        ini = arg[2:]
    elif previous in ("-o", "--override-ini"):
        ini = arg
    if arg.startswith("-p") and len(arg) > 2:
        plugin = arg[2:]
    elif previous == "-p":
        plugin = arg
    return ini, plugin


TRIGGER_ENV = "BISECTOR_TRIGGER"


def take_trigger() -> str:
    """What started this pytest session: `bisector nightly` sets BISECTOR_TRIGGER=nightly for
    the session it runs, so its runs are told apart in the history; anything else is pytest.

    Taken out of the environment as it is read, so that pytest sessions the suite itself starts
    (a plugin's own tests, say) are not labelled as the nightly's."""
    value = os.environ.pop(TRIGGER_ENV, "")
    return value if value in {t.value for t in Trigger} else Trigger.PYTEST.value
