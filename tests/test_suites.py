from __future__ import annotations

import contextlib
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisector.errors import ConfigError
from bisector.suites import SHIPPED, Service, Suite, available, load_suite, parse_suite

TEMPLATES = ("node-jest", "python-pytest", "python-pytest-postgres")
TOP_KEYS = ("image", "dockerfile", "context", "command", "junit", "dialect", "setup", "env",
            "services", "scratch", "timeout", "memory", "cpus", "pids", "network", "description")
SERVICE_KEYS = ("image", "env", "command", "ready", "ready-timeout")
MINIMAL = {"image": '"img:1"', "command": '"run {tests}"', "junit": '"/results/junit.xml"'}


def suite_text(**keys: str | None) -> str:
    """TOML for a minimal valid suite, with keys replaced (a TOML literal) or removed (None)."""
    merged = {**MINIMAL, **keys}
    return "".join(f"{k} = {v}\n" for k, v in merged.items() if v is not None)


def write_suite(root: Path, name: str, text: str) -> Path:
    path = root / ".bisector" / "suites" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped templates -------------------------------------------------------------------


def test_every_template_is_listed_and_loads() -> None:
    assert sorted(p.stem for p in SHIPPED.glob("*.toml")) == sorted(TEMPLATES)
    assert sorted(available(None)) == sorted(TEMPLATES)
    for name in TEMPLATES:
        suite = load_suite(name, None)
        assert suite.name == name
        assert suite.source == str(SHIPPED / f"{name}.toml")
        assert suite.command.count("{tests}") == 1
        assert suite.junit == "/results/junit.xml" and suite.junit in suite.command
        assert suite.description


def test_templates_are_package_data() -> None:
    """Found inside the package, as in an installed copy (tests/test_packaging.py installs
    one); in this checkout bisector/_suites is the top-level suites/ through a symlink."""
    import bisector

    package = Path(bisector.__file__).parent
    assert package / "_suites" == SHIPPED
    root = package.parent
    assert (root / "bisector" / "_suites").resolve() == (root / "suites").resolve()
    tracked = subprocess.run(["git", "ls-files", "suites/*.toml"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.split()
    assert sorted(p.name for p in SHIPPED.glob("*.toml")) == sorted(
        Path(t).name for t in tracked) != []


def test_python_pytest_template() -> None:
    suite = load_suite("python-pytest", None)
    assert suite.image == "bisector/base:bookworm"
    assert suite.dockerfile is None
    assert (suite.dialect, suite.scratch, suite.workdir) == ("pytest", False, "/src")
    assert "-p no:cacheprovider" in suite.command  # /src is read-only
    assert suite.env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert (suite.services, suite.network) == ((), "none")


def test_postgres_template_reaches_its_service_by_name() -> None:
    suite = load_suite("python-pytest-postgres", None)
    (db,) = suite.services
    assert (db.name, db.image) == ("db", "postgres:15")
    assert db.ready is not None and db.ready.startswith("pg_isready")
    assert "@db/" in suite.env["DATABASE_URL"]
    assert db.env["POSTGRES_PASSWORD"] in suite.env["DATABASE_URL"]
    assert suite.network == "private"


def test_jest_template() -> None:
    suite = load_suite("node-jest", None)
    assert suite.image == "node:20-bookworm"
    assert (suite.dialect, suite.scratch, suite.workdir) == ("generic", True, "/work")
    assert suite.setup == ("npm ci --offline || npm ci",)
    assert "jest-junit" in suite.command
    assert suite.env["JEST_JUNIT_CLASSNAME"] == "{filepath}"


# --- where suites are found ------------------------------------------------------------------


def test_repository_file_overrides_the_shipped_template(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "python-pytest", suite_text(image='"mine:2"'))
    suite = load_suite("python-pytest", tmp_path)
    assert (suite.image, suite.source) == ("mine:2", str(path))
    assert load_suite("node-jest", tmp_path).image == "node:20-bookworm"
    assert available(tmp_path).count("python-pytest") == 1


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.bisector.suites.x]\n" + suite_text(timeout="5")
        + '[tool.bisector.suites.x.services.cache]\nimage = "redis:7"\n'
    )
    suite = load_suite("x", tmp_path)
    assert (suite.image, suite.timeout) == ("img:1", 5.0)
    assert suite.services == (Service(name="cache", image="redis:7"),)
    assert suite.source == f"{tmp_path / 'pyproject.toml'} [tool.bisector.suites.x]"
    assert available(tmp_path)[0] == "x"


def test_file_beats_pyproject_beats_shipped(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.bisector.suites.python-pytest]\n" + suite_text(image='"from-pyproject"')
    )
    assert load_suite("python-pytest", tmp_path).image == "from-pyproject"
    write_suite(tmp_path, "python-pytest", suite_text(image='"from-file"'))
    assert load_suite("python-pytest", tmp_path).image == "from-file"


def test_unknown_name_lists_the_available_ones(tmp_path: Path) -> None:
    write_suite(tmp_path, "mine", suite_text())
    with pytest.raises(ConfigError, match="no suite named 'nope'") as info:
        load_suite("nope", tmp_path)
    for name in ("mine", *TEMPLATES):
        assert name in str(info.value)


def test_suites_section_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.bisector]\nsuites = 1\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml.*suites"):
        available(tmp_path)


# --- validation: every error names the file and the key --------------------------------------

BAD = [
    ({"command": None}, "command", "missing"),
    ({"junit": None}, "junit", "missing"),
    ({"junit": '"results/junit.xml"'}, "junit", "absolute"),
    ({"dockerfile": '"Dockerfile"'}, "dockerfile", "exactly one"),
    ({"image": None}, "dockerfile", "exactly one"),
    ({"imagee": '"x"'}, "imagee", "unknown key"),
    ({"timeout": "true"}, "timeout", "not True"),
    ({"cpus": "false"}, "cpus", "not False"),
    ({"pids": "true"}, "pids", "not True"),
    ({"timeout": '"600"'}, "timeout", "must be seconds"),
    ({"timeout": "0"}, "timeout", "must be seconds"),
    ({"cpus": "-1"}, "cpus", "> 0"),
    ({"pids": "64.0"}, "pids", "whole number"),
    ({"scratch": "1"}, "scratch", "true or false"),
    ({"command": '["pytest"]'}, "command", "shell command"),
    ({"image": "3"}, "image", "string"),
    ({"env": '"A=1"'}, "env", "table of strings"),
    ({"env": "{ A = [1] }"}, "env.A", "must be a string"),
    ({"env": "{ A = true }"}, "env.A", "must be a string"),
    ({"setup": "[1]"}, "setup", "shell commands"),
    ({"description": "1"}, "description", "string"),
    ({"memory": '"lots"'}, "memory", "512m"),
    ({"memory": "2048"}, "memory", "512m"),
    ({"memory": '"2 g"'}, "memory", "512m"),
    ({"pids": "15"}, "pids", "at least 16"),
    ({"network": '"host"'}, "network", "never the host"),
    ({"network": '"bridge"'}, "network", "'none' or 'private'"),
    ({"network": '"none"', "services": '{ db = { image = "pg" } }'}, "network", "unreachable"),
    ({"services": "1"}, "services", "table of service tables"),
    ({"services": '{ db = "postgres" }'}, "services.db", "must be a table"),
    ({"services": "{ db = { env = {} } }"}, "services.db", "image is missing"),
    ({"services": '{ db = { image = "pg", port = 5432 } }'}, "services.db", "'port'"),
    ({"services": '{ db = { image = "pg", command = [1] } }'}, "services.db", "command"),
    ({"services": '{ db = { image = "pg", ready = 1 } }'}, "services.db", "ready"),
    ({"services": '{ db = { image = "pg", ready-timeout = true } }'}, "services.db",
     "ready-timeout"),
    ({"services": '{ "-db" = { image = "pg" } }'}, "services.-db", "service name"),
    ({"image": None, "dockerfile": '"../Dockerfile"'}, "dockerfile", "inside the repository"),
    ({"image": None, "dockerfile": '"/etc/Dockerfile"'}, "dockerfile", "inside the repository"),
    ({"image": None, "dockerfile": '"D"', "context": '"ci/../.."'}, "context",
     "inside the repository"),
    ({"dialect": '"surefire"'}, "dialect", "one of pytest, generic"),
]


@pytest.mark.parametrize(("keys", "key", "match"), BAD, ids=[f"{b[1]}-{b[2]}" for b in BAD])
def test_invalid_suite_names_file_and_key(tmp_path: Path, keys: dict[str, str | None],
                                          key: str, match: str) -> None:
    path = write_suite(tmp_path, "bad", suite_text(**keys))
    with pytest.raises(ConfigError) as info:
        load_suite("bad", tmp_path)
    text = str(info.value)
    assert str(path) in text
    assert key in text
    assert match in text
    assert "\n" not in info.value.one_line()


def test_unknown_key_hint_lists_the_expected_keys(tmp_path: Path) -> None:
    write_suite(tmp_path, "bad", suite_text(timout="5"))
    with pytest.raises(ConfigError, match="unknown key 'timout'") as info:
        load_suite("bad", tmp_path)
    assert info.value.hint is not None
    for key in TOP_KEYS:
        assert key in info.value.hint


def test_unknown_service_key_hint_lists_the_service_keys(tmp_path: Path) -> None:
    write_suite(tmp_path, "bad", suite_text() + '[services.db]\nimage = "pg"\nreadyy = "x"\n')
    with pytest.raises(ConfigError, match=r"\[services\.db\]: unknown key 'readyy'") as info:
        load_suite("bad", tmp_path)
    assert info.value.hint is not None
    for key in SERVICE_KEYS:
        assert key in info.value.hint


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "bad", 'image = "x\ncommand = 1\n')
    with pytest.raises(ConfigError, match="cannot be read") as info:
        load_suite("bad", tmp_path)
    assert str(path) in str(info.value)
    assert info.value.hint == "fix the TOML syntax"


def test_invalid_pyproject_table_names_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.bisector.suites.x]\n" + suite_text(pids="8")
    )
    with pytest.raises(ConfigError, match=r"\[tool\.bisector\.suites\.x\]: pids"):
        load_suite("x", tmp_path)


def test_defaults() -> None:
    suite = parse_suite("s", {"image": "i", "command": "c", "junit": "/r.xml"}, "w")
    assert suite == Suite(name="s", source="w", command="c", junit="/r.xml", image="i")
    assert (suite.timeout, suite.memory, suite.cpus, suite.pids) == (600.0, "2g", 1.0, 1024)
    assert (suite.dialect, suite.scratch, suite.context, suite.network) == (
        "pytest", False, ".", "none")


def test_setup_string_is_one_command_and_service_command_string_is_a_shell() -> None:
    suite = parse_suite("s", {
        "image": "i", "command": "c", "junit": "/r.xml", "setup": "make deps",
        "services": {"q": {"image": "q", "command": "serve --port 1"},
                     "r": {"image": "r", "command": ["serve", "-x"]}},
    }, "w")
    assert suite.setup == ("make deps",)
    assert [s.command for s in suite.services] == [("sh", "-c", "serve --port 1"),
                                                   ("serve", "-x")]


# --- defects found in review of bisector/suites.py, each failing before its fix ---

def _accepts(**keys: Any) -> bool:
    data = {"image": "i", "command": "c", "junit": "/results/junit.xml", **keys}
    try:
        parse_suite("s", {k: v for k, v in data.items() if v is not None}, "w")
    except ConfigError:
        return False
    return True


def test_memory_zero_is_refused() -> None:
    assert not any(_accepts(memory=m) for m in ("0", "0g", "0.0m"))


@pytest.mark.parametrize("key", ["timeout", "cpus"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_numbers_are_refused(key: str, value: float) -> None:
    assert not _accepts(**{key: value})


def test_trailing_newline_is_refused() -> None:
    assert not _accepts(memory="2g\n")
    assert not _accepts(services={"db\n": {"image": "pg"}})


@pytest.mark.parametrize("keys", [{"image": ""}, {"command": " "},
                                  {"image": None, "dockerfile": ""}])
def test_empty_strings_are_refused(keys: dict[str, Any]) -> None:
    assert not _accepts(**keys)


def test_typo_in_a_required_key_is_named() -> None:
    with pytest.raises(ConfigError, match="comand"):
        parse_suite("s", {"image": "i", "comand": "c", "junit": "/r.xml"}, "w")


# --- properties ------------------------------------------------------------------------------

_segment = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}\Z").filter(lambda s: s != "..")
_relpath = st.lists(_segment, min_size=1, max_size=3).map("/".join)
_text = st.text(max_size=20)
_variable = st.text(min_size=1, max_size=8).filter(lambda k: "=" not in k and "\0" not in k)
_env = st.dictionaries(_variable,
                       st.one_of(_text, st.integers(), st.floats(allow_nan=False)), max_size=4)
_said = st.text(min_size=1, max_size=20).filter(str.strip)  # an image or command says something
_seconds = st.one_of(st.integers(1, 10**6),
                     st.floats(min_value=0.001, max_value=1e6, allow_nan=False))
_services = st.dictionaries(
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z"),
    st.fixed_dictionaries(
        {"image": _said},
        optional={"env": _env, "ready": _text, "ready-timeout": _seconds,
                  "command": st.one_of(_text, st.lists(_text, min_size=1, max_size=3))},
    ),
    max_size=3,
)
_optional = {
    "context": _relpath,
    "setup": st.one_of(_text, st.lists(_text, max_size=3)),
    "env": _env,
    "dialect": st.sampled_from(["pytest", "generic"]),
    "scratch": st.booleans(),
    "timeout": _seconds,
    "memory": st.one_of(st.from_regex(r"\A[6-9][0-9]{0,3}(\.[0-9]{1,2})?[mgMG]\Z"),
                        st.integers(6 * 1024**2, 10**12).map(str)),
    "cpus": _seconds,
    "pids": st.integers(16, 10**6),
    "services": _services,
    "description": _text,
}


@st.composite
def valid_tables(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = draw(st.fixed_dictionaries(
        {"command": _said, "junit": _relpath.map(lambda p: "/" + p)}, optional=_optional))
    if draw(st.booleans()):
        data["image"] = draw(_said)
    else:
        data["dockerfile"] = draw(_relpath)
    network = draw(st.sampled_from([None, "private"] if data.get("services")
                                   else [None, "none", "private"]))
    if network is not None:
        data["network"] = network
    return data


@given(valid_tables())
def test_parse_suite_round_trips_the_values(data: dict[str, Any]) -> None:
    suite = parse_suite("s", data, "w")
    setup = data.get("setup", [])
    assert suite.setup == ((setup,) if isinstance(setup, str) else tuple(setup))
    assert suite.env == {k: str(v) for k, v in data.get("env", {}).items()}
    for key in ("command", "junit", "image", "dockerfile"):
        assert getattr(suite, key) == data.get(key)
    for key, default in (("context", "."), ("dialect", "pytest"), ("scratch", False),
                         ("memory", "2g"), ("pids", 1024), ("description", "")):
        assert getattr(suite, key) == data.get(key, default)
    for key, default in (("timeout", 600.0), ("cpus", 1.0)):
        assert getattr(suite, key) == float(data.get(key, default))
    assert suite.network == ("private" if data.get("services") else "none")
    assert [s.name for s in suite.services] == list(data.get("services", {}))
    for service in suite.services:
        table = data["services"][service.name]
        assert service.image == table["image"]
        assert service.env == {k: str(v) for k, v in table.get("env", {}).items()}
        assert service.ready == table.get("ready")
        assert service.ready_timeout == float(table.get("ready-timeout", 30.0))
        command = table.get("command")
        assert service.command == (("sh", "-c", command) if isinstance(command, str)
                                   else tuple(command) if command else None)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _text,
                     st.datetimes(), st.dates(), st.times())
_junk = st.recursive(
    _scalars.filter(lambda v: v is not None),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)


@given(st.sampled_from(TOP_KEYS), _junk)
def test_junk_in_any_key_is_a_config_error_or_accepted(key: str, value: Any) -> None:
    data = {"image": "i", "command": "c", "junit": "/r.xml", key: value}
    try:
        parse_suite("s", data, "w")
    except ConfigError as exc:
        assert str(exc).startswith("w")


@given(st.sampled_from(SERVICE_KEYS), _junk)
def test_junk_in_any_service_key_is_a_config_error_or_accepted(key: str, value: Any) -> None:
    data = {"image": "i", "command": "c", "junit": "/r.xml",
            "services": {"db": {"image": "pg", key: value}}}
    try:
        parse_suite("s", data, "w")
    except ConfigError as exc:
        assert "[services.db]" in str(exc)


@given(st.one_of(_junk, st.dictionaries(st.sampled_from(TOP_KEYS), _junk, max_size=6)))
def test_junk_tables_are_a_config_error_or_accepted(data: Any) -> None:
    with contextlib.suppress(ConfigError):
        parse_suite("s", data, "w")


@settings(max_examples=50)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_junk_files_are_a_config_error_or_accepted(text: str) -> None:
    with tempfile.TemporaryDirectory() as root:
        path = write_suite(Path(root), "junk", text)
        try:
            load_suite("junk", Path(root))
        except ConfigError as exc:
            assert str(path) in str(exc)
