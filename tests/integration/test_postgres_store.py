"""The history store on a real PostgreSQL server, with the key behaviours also run on SQLite.

The server is `BISECTOR_TEST_PG` (an admin URL; by default the `root` role over the unix socket,
which scripts/ensure-postgres creates). Each test run creates a database of its own and drops it
after; each test gets an empty schema in it. Outside CI the `postgres` tests skip, with the
reason, when no server answers; in CI (`CI=true`) they fail instead, as the Docker tests do.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from bisector.config import redact
from bisector.errors import StoreError
from bisector.history import HistoryStore, migrations, schema
from bisector.history.runs import bulk_insert
from bisector.model import (
    TRACEBACK_MAX,
    CommitInfo,
    Environment,
    Outcome,
    Run,
    TestResult,
    Trigger,
)

from ..conftest import commit, git, run_cli, run_pytest
from ..store_helpers import TRACEBACK, dump, make_run, varied_history
from .conftest import unavailable

PG_ADMIN = os.environ.get(
    "BISECTOR_TEST_PG", "postgresql+psycopg://root@/postgres?host=/var/run/postgresql")
SECRET = "s3cr3t"
ROOT = Path(__file__).resolve().parents[2]



def _skip_or_fail(reason: str) -> None:
    unavailable(reason, "PostgreSQL", ".ci/run starts one with scripts/ensure-postgres")

@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip_or_fail("psycopg is not installed (pip install -e '.[test]')")
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        first = (str(exc.orig).strip().splitlines() or ["no answer"])[0].strip()
        _skip_or_fail(f"no PostgreSQL server answers at {redact(PG_ADMIN)} ({first}; "
                     "set BISECTOR_TEST_PG)")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_admin: sa.Engine) -> Iterator[sa.URL]:
    """A database for this test run (this xdist worker), dropped afterwards."""
    name = f"bisector_test_{os.getpid()}_{secrets.token_hex(4)}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name)
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _schema_url(database: sa.URL, owner: str | None = None) -> sa.URL:
    """An empty schema in the run's database, and a URL whose search_path points at it."""
    name = f"t_{secrets.token_hex(6)}"
    engine = sa.create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            who = f' AUTHORIZATION "{owner}"' if owner else ""
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"{who}'))
    finally:
        engine.dispose()
    return database.update_query_dict({"options": f"-csearch_path={name}"})


@pytest.fixture
def pg_url(pg_database: sa.URL) -> str:
    """A fresh, empty PostgreSQL store."""
    return _schema_url(pg_database).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'h.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def password_role(pg_admin: sa.Engine, pg_database: sa.URL) -> Iterator[sa.URL]:
    """A role with the password s3cr3t over TCP (scram), owning an empty schema: its URL."""
    role = f"bisector_pw_{secrets.token_hex(4)}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{SECRET}'"))
    try:
        url = _schema_url(pg_database, owner=role)
        tcp_host = url.host or "127.0.0.1"  # the admin URL may name a socket directory only
        query = {k: v for k, v in url.query.items() if k != "host"}
        yield url.set(username=role, password=SECRET, host=tcp_host, port=url.port or 5432,
                      query=query)
    finally:
        engine = sa.create_engine(pg_database, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE usename = :role"), {"role": role})
            conn.execute(sa.text(f'DROP OWNED BY "{role}" CASCADE'))
        engine.dispose()
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


def _in_subprocess(code: str, *args: str, timeout: float = 120
                   ) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


# -- the store's key behaviours, on both ------------------------------------------------------


def test_round_trip_and_evidence_rules(store_url: str) -> None:
    other = Environment("cpython-3.12.0", "linux-x86_64", "none", "k2", "f2")
    with HistoryStore.open(store_url) as store:
        assert store.schema_version() == schema.SCHEMA_VERSION
        info = CommitInfo("a" * 40, ("b" * 40,), "Ann", "ann@x", 1700000000, "subject")
        run_id = store.record_run(make_run(), commits=[info])
        store.record_run(make_run(dirty=True, started=5.0), commits=[info])  # commit: no dup
        store.record_run(make_run(env=other, started=6.0))
        repeated = make_run(started=7.0, results=(
            TestResult("t.py::x", Outcome.FAILED), TestResult("t.py::x", Outcome.PASSED)))
        rep_id = store.record_run(repeated)
        assert store.outcome_counts(run_id) == {"passed": 3}
        assert store.outcome_counts(rep_id) == {"passed": 1}
        assert store.latest_clean_run("a" * 40).id == rep_id
        assert store.tracked_shas(env_key="k1") == {"a" * 40}
        assert store.commit_infos(["a" * 40])["a" * 40] == info
        ids = store.tests()
        rows = store.results_at(["a" * 40], env_key="k1", test_ids=[ids["t.py::test_1"]])
        assert [(r.run_id, r.nodeid, r.outcome) for r in rows] == [
            (run_id, "t.py::test_1", "passed")]  # the dirty run is never evidence


def test_a_long_image_reference_is_stored(store_url: str) -> None:
    image = "registry.example.invalid/team/suite@sha256:" + "0" * 64
    env = Environment("container:integration", image, "none", "k3", "f3")
    with HistoryStore.open(store_url) as store:
        run_id = store.record_run(make_run(env=env))
        assert store.outcome_counts(run_id) == {"passed": 3}


def test_durations_group_clean_runs_in_sql(store_url: str) -> None:
    def run(sha: str, started: float, seconds: float, *, dirty: bool = False) -> Run:
        return make_run(sha, started=started, dirty=dirty, results=(
            TestResult("t.py::slow", Outcome.FAILED, seconds),
            TestResult("t.py::fast", Outcome.PASSED, 0.5),
            TestResult("t.py::skip", Outcome.SKIPPED, 9.0)))

    with HistoryStore.open(store_url) as store:
        store.record_run(run("a" * 40, 1.0, 2.0))
        store.record_run(run("a" * 40, 2.0, 4.0))
        store.record_run(run("b" * 40, 3.0, 3.0))
        store.record_run(run("b" * 40, 4.0, 100.0, dirty=True))  # never evidence
        store.record_run(run("c" * 40, 5.0, 50.0))  # not asked for
        assert store.durations(["a" * 40, "b" * 40]) == [
            ("t.py::slow", 3.0, 4.0, 3), ("t.py::fast", 0.5, 0.5, 3)]
        assert store.durations(["a" * 40], limit=1) == [("t.py::slow", 3.0, 4.0, 2)]
        assert store.durations([]) == []


def _set_version(url: str, version: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(schema.meta.update().values(value=str(version)))
    engine.dispose()


def test_migrations_run_once_and_newer_stores_are_refused(store_url: str, monkeypatch) -> None:
    with HistoryStore.open(store_url) as store:
        store.record_run(make_run())
    calls = []

    def step(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN note TEXT"))

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(migrations.STEPS, schema.SCHEMA_VERSION, step)
    for _ in range(2):
        with HistoryStore.open(store_url) as store:
            assert store.schema_version() == schema.SCHEMA_VERSION
            assert store.outcome_counts(1) == {"passed": 3}
    assert calls == [1]
    _set_version(store_url, 99)
    with pytest.raises(StoreError, match=r"newer bisector \(schema v99"):
        HistoryStore.open(store_url)


@pytest.mark.postgres
def test_a_v2_postgres_store_migrates_in_place(pg_url: str) -> None:
    with HistoryStore.open(pg_url) as store:
        store.record_run(make_run())
        store.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # what a v2 bisector created on PostgreSQL
        conn.execute(sa.text("DROP INDEX ux_bisections_running_key"))
        for column in ("owner_host", "owner_pid", "heartbeat"):
            conn.execute(sa.text(f"ALTER TABLE bisections DROP COLUMN {column}"))
        for column in ("python", "platform"):
            conn.execute(sa.text(f"ALTER TABLE runs ALTER COLUMN {column} TYPE VARCHAR(64)"))
        conn.execute(sa.text(
            "INSERT INTO bisections (key, good, bad, tests, mode, status, started_at) "
            "VALUES ('k', 'g', 'b', '[]', 'first-parent', 'running', 2.0)"))
        conn.execute(schema.meta.update().values(value="2"))
    with HistoryStore.open(pg_url) as store:
        assert store.schema_version() == schema.SCHEMA_VERSION
        assert store.outcome_counts(1) == {"passed": 3}
        assert [b["status"] for b in store.bisections()] == ["abandoned", "running"]
        image = "registry.example.invalid/suite@sha256:" + "0" * 64
        store.record_run(make_run(env=Environment("c", image, "none", "k", "f")))
    with engine.connect() as conn:
        kinds = {c["name"]: str(c["type"]) for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()
    assert kinds["platform"] == kinds["python"] == "TEXT"


def test_tracebacks_are_stored_whole_or_by_their_tail(store_url: str) -> None:
    """On PostgreSQL the results go in by COPY: tabs, newlines, backslashes, unicode and a
    NUL (which PostgreSQL's text refuses) must come back as SQLite gives them back."""
    long = "frame\t\\\n" * TRACEBACK_MAX + "E   ValueError: end\x00"
    results = (
        TestResult("t.py::bad", Outcome.FAILED, 0.5, "sig", "AssertionError", traceback=TRACEBACK),
        TestResult("t.py::long", Outcome.ERROR, 0.1, "sig", "ValueError", traceback=long),
        TestResult("t.py::ok", Outcome.PASSED, 0.1),
    )
    with HistoryStore.open(store_url) as store:
        run_id = store.record_run(make_run(results=results))
        got = store.results_of(run_id)
        assert got["t.py::bad"] == results[0] and got["t.py::ok"].traceback is None
        assert got["t.py::long"].traceback == long[-TRACEBACK_MAX:].replace("\x00", "\ufffd")
        by_test = {r.nodeid: r.traceback for r in store.results_at(["a" * 40])}
        assert by_test == {"t.py::bad": TRACEBACK, "t.py::long": got["t.py::long"].traceback,
                           "t.py::ok": None}


@pytest.mark.postgres
def test_a_v4_postgres_store_gets_tracebacks_in_place(pg_url: str) -> None:
    with HistoryStore.open(pg_url) as store:
        old = store.record_run(make_run())
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # what a v4 bisector created on PostgreSQL
        conn.execute(sa.text("ALTER TABLE results DROP COLUMN traceback"))
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN patch_key"))
        conn.execute(schema.meta.update().values(value="4"))
    engine.dispose()
    with HistoryStore.open(pg_url) as store:
        assert store.schema_version() == schema.SCHEMA_VERSION == 6
        assert store.outcome_counts(old) == {"passed": 3}
        new = store.record_run(make_run("b" * 40, results=(
            TestResult("t.py::bad", Outcome.FAILED, traceback=TRACEBACK),)))
        assert store.results_of(new)["t.py::bad"].traceback == TRACEBACK
        assert {r.traceback for r in store.results_at(["a" * 40])} == {None}



@pytest.mark.postgres
def test_a_v5_postgres_store_gets_patch_keys_in_place(pg_url: str) -> None:
    """Runs stored before isolation probes existed stay their commit's own results."""
    with HistoryStore.open(pg_url) as store:
        old = store.record_run(make_run())
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # what a v5 bisector created on PostgreSQL
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN patch_key"))
        conn.execute(schema.meta.update().values(value="5"))
    engine.dispose()
    with HistoryStore.open(pg_url) as store:
        assert store.schema_version() == schema.SCHEMA_VERSION == 6
        assert {r.run_id for r in store.results_at(["a" * 40])} == {old}
        store.record_run(replace(make_run(), patch_key="p" * 20, trigger=Trigger.ISOLATE))
        assert {r.run_id for r in store.results_at(["a" * 40])} == {old}
        assert {r.patch_key for r in store.results_at(["a" * 40], patched=True)} == {"p" * 20}

# -- many writers -----------------------------------------------------------------------------

WRITER = """
    import sys
    from bisector.history import HistoryStore
    from tests.store_helpers import make_run
    url, worker, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with HistoryStore.open(url) as store:
        for i in range(runs):
            # half the tests are shared by every writer (new to the store at the same moment),
            # half are this writer's own
            store.record_run(make_run(f"{worker:02d}{i:038d}", n=40, started=float(i),
                                      prefix="t.py::shared_"))
            store.record_run(make_run(f"{worker:02d}{i:038d}", n=40, started=float(i) + 0.5,
                                      prefix=f"t.py::w{worker}_"))
"""


def test_eight_processes_recording_at_once_lose_nothing(store_url: str) -> None:
    # on an empty database: they race to create the schema, then to add the shared tests
    procs = [_in_subprocess(WRITER, store_url, str(w), "10") for w in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err[-2000:] for _, err in outs]
    with HistoryStore.open(store_url) as store:
        runs = store.runs()
        assert len(runs) == 160
        assert sum(store.outcome_counts(r.id).get("passed", 0) for r in runs) == 160 * 40
        assert len(store.tests()) == 40 + 8 * 40


@pytest.mark.postgres
def test_eight_pytest_sessions_record_into_postgres_at_once(pg_url: str, repo: Path) -> None:
    tests = "\n".join(f"def test_{i}():\n    assert True\n" for i in range(30))
    commit(repo, {"test_it.py": tests, "pytest.ini": "[pytest]\n"}, "tests")
    env = {"BISECTOR_DB": pg_url}
    with ThreadPoolExecutor(8) as pool:
        procs = list(pool.map(lambda _: run_pytest(repo, "--track-history", "-q",
                                                   "-p", "no:cacheprovider", env=env), range(8)))
    for proc in procs:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "bisector: recorded 30 results for" in proc.stdout
    with HistoryStore.open(pg_url) as store:
        runs = store.runs()
        assert len(runs) == 8 and len(store.tests()) == 30
        assert all(store.outcome_counts(r.id) == {"passed": 30} for r in runs)


# -- the bisection journal: two clients resume one bisection ----------------------------------

CRASHER = """
    import os, signal, sys
    from bisector.history import HistoryStore
    from tests.store_helpers import make_run
    with HistoryStore.open(sys.argv[1]) as store:
        run_id = store.record_run(make_run())
        bid, _ = store.start_bisection("key", "g", "b", ["t"], "first-parent", 1.0)
        store.add_probe(bid, run_id, "a" * 40, "check bad end")
        os.kill(os.getpid(), signal.SIGKILL)  # a crash: nothing lets go of the claim
"""

RESUMER = """
    import json, os, sys, time
    from bisector.errors import BisectorError
    from bisector.history import HistoryStore
    url, go, release = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with HistoryStore.open(url) as store:
        time.sleep(max(0.0, go - time.time()))
        try:
            bid, done = store.start_bisection("key", "g", "b", ["t"], "first-parent", 2.0)
        except BisectorError as exc:
            print(json.dumps({"pid": os.getpid(), "error": exc.one_line()}), flush=True)
            sys.exit(0)
        print(json.dumps({"pid": os.getpid(), "id": bid, "done": done}), flush=True)
        deadline = time.time() + 60  # still at it until the other one has tried
        while not os.path.exists(release) and time.time() < deadline:
            time.sleep(0.05)
        store.finish_bisection(bid, "done", {}, time.time())
"""


def test_two_clients_resuming_one_bisection_one_wins_the_other_says_so(
        store_url: str, tmp_path: Path) -> None:
    crash = _in_subprocess(CRASHER, store_url)
    _, err = crash.communicate(timeout=60)
    assert crash.returncode == -signal.SIGKILL, err
    for attempt in range(3):  # the same race, more than once
        go, release = time.time() + 3.0, tmp_path / f"release-{attempt}"
        procs = [_in_subprocess(RESUMER, store_url, str(go), str(release)) for _ in range(2)]
        lines = [p.stdout.readline() for p in procs]  # each has tried; the winner holds on
        release.touch()
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
        said = [json.loads(line) for line in lines]
        winners = [s for s in said if "id" in s]
        losers = [s for s in said if "error" in s]
        assert len(winners) == 1 and len(losers) == 1, said
        [win], [lose] = winners, losers
        if attempt == 0:
            assert win["done"] == 1  # the crashed attempt's probe is picked up
        assert lose["error"].startswith(
            f"bisection {win['id']} is being resumed by another process "
            f"(pid {win['pid']} on {socket.gethostname()})"), lose
        # the winner finished; leave an open attempt for the next round
        with HistoryStore.open(store_url) as store:
            store.start_bisection("key", "g", "b", ["t"], "first-parent", 3.0 + attempt)
    with HistoryStore.open(store_url) as store:
        statuses = [b["status"] for b in store.bisections()]
    assert statuses.count("running") == 1 and statuses.count("done") == 3


# -- moving history ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_to_postgres_to_sqlite_keeps_every_row(pg_url: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with HistoryStore.open(f"sqlite:///{a}") as store:
        varied_history(store)
    for _ in range(2):  # the second time adds nothing
        out = run_cli("export", "--history-db", str(a), "--to", pg_url, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        back = run_cli("import-history", "--from", pg_url, "--history-db", str(b), cwd=tmp_path)
        assert back.returncode == 0, back.stderr
    assert "0 runs (0 results)" in out.stdout and "already there: 4 runs, 2 bisections" in (
        out.stdout)
    assert "0 runs (0 results)" in back.stdout
    with HistoryStore.open(f"sqlite:///{a}") as sa_, HistoryStore.open(pg_url) as pg, \
            HistoryStore.open(f"sqlite:///{b}") as sb:
        original = dump(sa_)
        assert sum(len(rows) for rows in original.values()) > 30
        assert dump(pg) == original
        assert dump(sb) == original


# -- gc --keep --------------------------------------------------------------------------------


def test_gc_keep_prunes_old_runs_but_not_an_open_bisections(store_url: str, repo: Path) -> None:
    shas = [commit(repo, {"f.txt": str(i)}, f"c{i}") for i in range(6)]
    with HistoryStore.open(store_url) as store:
        ids = {sha: store.record_run(make_run(sha, n=3, started=float(i)))
               for i, sha in enumerate(shas)}
        store.record_run(make_run("f" * 40, n=3))  # a commit HEAD does not reach: kept
        done, _ = store.start_bisection("old", shas[2], shas[3], ["t"], "first-parent", 1.0)
        store.add_probe(done, ids[shas[3]], shas[3], "check bad end")
        store.finish_bisection(done, "done", {}, 2.0)
        open_id, _ = store.start_bisection("open", shas[0], shas[2], ["t"], "first-parent", 3.0)
        store.add_probe(open_id, ids[shas[1]], shas[1], "midpoint")
    untouched = run_cli("gc", "--no-docker", "--history-db", store_url, "-C", str(repo))
    assert untouched.returncode == 0, untouched.stderr
    assert "history" not in untouched.stdout
    proc = run_cli("gc", "--no-docker", "--keep", "2", "--history-db", store_url,
                   "-C", str(repo))
    assert proc.returncode == 0, proc.stderr
    # kept: c5 and c4 (the newest 2); c0..c2 (the open bisection's range and probe); f...
    assert ("history: removed 1 runs, 3 results, 1 probe rows; kept 3 runs used by open "
            f"bisection #{open_id}") in proc.stdout
    with HistoryStore.open(store_url) as store:
        assert {r.sha for r in store.runs()} == {*shas[:3], *shas[4:], "f" * 40}
        assert store.outcome_counts(ids[shas[3]]) == {}
    assert git(repo, "status", "--porcelain") == ""  # the checkout is left as it was


# -- credentials ------------------------------------------------------------------------------

WRONG_PORT = f"postgresql+psycopg://bisector:{SECRET}@127.0.0.1:1/history"


def _no_secret(proc: subprocess.CompletedProcess[str]) -> None:
    assert SECRET not in proc.stdout and SECRET not in proc.stderr, (proc.stdout, proc.stderr)


LOOK_AT_THE_RECORDER = """\
import os
from dataclasses import replace
from pathlib import Path


def test_the_recorder_command_line_holds_no_password():
    seen = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"bisector.recorder" in argv:
            seen.append(b" ".join(argv).decode())
    assert len(seen) == 1
    assert "s3cr3t" not in seen[0]
"""


def test_a_password_never_shows_when_the_server_cannot_be_reached(repo: Path) -> None:
    commit(repo, {"test_it.py": LOOK_AT_THE_RECORDER, "pytest.ini": "[pytest]\n"})
    # the local store `export` copies from: a read command opens only a store that exists
    assert run_pytest(repo, "--track-history", "-p", "no:cacheprovider").returncode == 0
    for args, env in (
        (["history", "--history-db", WRONG_PORT], {}),
        (["history", "--history-db", WRONG_PORT.replace(":1/", ":port/")], {}),  # malformed
        (["regressions"], {"BISECTOR_DB": WRONG_PORT}),
        (["gc", "--no-docker", "--keep", "1", "--history-db", WRONG_PORT], {}),
        (["export", "--to", WRONG_PORT], {}),
        (["import-history", "--from", WRONG_PORT], {}),
    ):
        proc = run_cli(*args, cwd=repo, env=env)
        assert proc.returncode == 2, proc.stderr
        _no_secret(proc)
        assert "bisector: error:" in proc.stderr and "***" in proc.stderr, proc.stderr
    for args, env in ((["--history-db", WRONG_PORT], {}), ([], {"BISECTOR_DB": WRONG_PORT})):
        proc = run_pytest(repo, "--track-history", "-p", "no:cacheprovider", *args, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # and the recorder's argv is clean
        _no_secret(proc)
        assert "bisector: warning:" in proc.stdout and "nothing recorded" in proc.stdout


@pytest.mark.postgres
def test_a_password_never_shows_on_success_or_auth_failure(password_role: sa.URL,
                                                           repo: Path) -> None:
    commit(repo, {"test_it.py": "def test_ok():\n    pass\n", "pytest.ini": "[pytest]\n"})
    good = password_role.render_as_string(hide_password=False)
    bad = password_role.set(password=SECRET + "-wrong").render_as_string(hide_password=False)
    proc = run_pytest(repo, "--track-history", "-p", "no:cacheprovider", env={"BISECTOR_DB": good})
    assert "bisector: recorded 1 results for" in proc.stdout, proc.stdout + proc.stderr
    assert ":***@" in proc.stdout
    _no_secret(proc)
    proc = run_cli("history", "--history-db", good, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    _no_secret(proc)
    for url in (bad, password_role.set(database="no_such_db").render_as_string(
            hide_password=False)):
        proc = run_pytest(repo, "--track-history", "-p", "no:cacheprovider",
                          env={"BISECTOR_DB": url})
        _no_secret(proc)
        assert "bisector: warning:" in proc.stdout
        proc = run_cli("history", "--history-db", url, cwd=repo)
        assert proc.returncode == 2
        _no_secret(proc)
    assert "password authentication failed" in run_cli(
        "history", "--history-db", bad, cwd=repo).stderr


# -- review fixes: COPY errors, keepalives, lost claims ---------------------------------------


@pytest.mark.postgres
def test_a_failing_copy_is_a_store_error(pg_url: str) -> None:
    """The results' COPY goes round SQLAlchemy: its driver error is still a StoreError."""
    with HistoryStore.open(pg_url) as store:
        with pytest.raises(StoreError) as info, store.db.write() as conn:
            bulk_insert(conn, schema.results, ("run_id", "test_id", "outcome",
                                               "duration", "reruns", "phase"),
                        [(999, 999, "passed", 0.0, 0, "call")])  # no such run
        assert "foreign key" in info.value.one_line()


@pytest.mark.postgres
def test_a_deadlock_during_the_copy_is_retried(pg_url: str) -> None:
    """PostgreSQL picks the results' COPY as a deadlock's victim once: the run is written
    again, whole (the sequence is outside the rolled-back transaction)."""
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with HistoryStore.open(pg_url) as store:
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE SEQUENCE copy_attempts"))
            conn.execute(sa.text(
                "CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF nextval('copy_attempts') = 1 THEN RAISE EXCEPTION 'deadlock detected' "
                "USING ERRCODE = '40P01'; END IF; RETURN NULL; END $$"))
            conn.execute(sa.text("CREATE TRIGGER deadlock_once AFTER INSERT ON results "
                                 "FOR EACH STATEMENT EXECUTE FUNCTION deadlock_once()"))
        engine.dispose()
        run_id = store.record_run(make_run(n=4))
        assert store.outcome_counts(run_id) == {"passed": 4}
        assert len(store.runs()) == 1
        with engine.connect() as conn:  # the first COPY was the victim, the second stood
            assert conn.execute(sa.text("SELECT last_value FROM copy_attempts")).scalar() == 2
        engine.dispose()


@pytest.mark.postgres
def test_postgres_connections_keep_alive(pg_url: str) -> None:
    with HistoryStore.open(pg_url) as store, store.db.read() as conn:
        params = conn.connection.driver_connection.info.get_parameters()
    assert {k: params.get(k) for k in ("keepalives", "keepalives_idle", "keepalives_interval",
                                       "keepalives_count")} == {
        "keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10",
        "keepalives_count": "3"}


def test_a_process_that_lost_its_claim_stops(store_url: str) -> None:
    """Another process took the bisection over (its advisory lock seemed gone): no more
    probes, no finish from this one, and one line that says so."""
    from bisector.errors import BisectError

    with HistoryStore.open(store_url) as store:
        first = store.record_run(make_run())
        second = store.record_run(make_run("b" * 40))
        bid, _ = store.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
        store.add_probe(bid, first, "a" * 40, "check good end")
        store.record_probe(make_run("d" * 40, started=2.0), [], bid, "check bad end")
        b = schema.bisections
        with store.db.write() as conn:  # the takeover, as another process's claim does it
            conn.execute(b.update().where(b.c.id == bid).values(status="abandoned"))
            conn.execute(b.insert().values(
                key="k", good="g", bad="b", tests="[]", mode="first-parent", status="running",
                started_at=2.0, owner_host="elsewhere", owner_pid=1, heartbeat=time.time()))
        for call in (lambda: store.add_probe(bid, second, "b" * 40, "midpoint"),
                     lambda: store.record_probe(make_run("c" * 40), [], bid, "midpoint"),
                     lambda: store.finish_bisection(bid, "done", {}, 3.0)):
            with pytest.raises(BisectError) as info:
                call()
            assert info.value.one_line().startswith(
                f"lost the claim on bisection {bid} (resumed by another process)")
        assert [(x["status"], x["result"]) for x in store.bisections()] == [
            ("abandoned", None), ("running", None)]
        # the run is kept (as record_run then add_probe kept it); the journal has no line
        assert sorted(r.sha[0] for r in store.runs()) == ["a", "b", "c", "d"]
        assert [p["sha"] for p in store.probes_of(bid)] == ["a" * 40, "d" * 40]
