from __future__ import annotations

import multiprocessing
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from bisector.errors import BisectError, StoreError
from bisector.history import HistoryStore, Pruned, display_url, journal, migrations, schema
from bisector.history.engine import me
from bisector.history.transfer import copy_history
from bisector.model import (
    TRACEBACK_MAX,
    CommitInfo,
    Environment,
    Outcome,
    Run,
    TestResult,
    Trigger,
)

from .conftest import commit, run_cli
from .store_helpers import TRACEBACK, dump, make_run, varied_history


@pytest.fixture
def store(tmp_path: Path):
    with HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        yield s


def test_fresh_store_is_stamped_and_in_wal_mode(store: HistoryStore, tmp_path: Path) -> None:
    assert store.schema_version() == schema.SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_round_trip(store: HistoryStore) -> None:
    commit = CommitInfo("a" * 40, ("b" * 40,), "Ann", "ann@x", 1700000000, "subject")
    run_id = store.record_run(make_run(), commits=[commit])
    store.record_run(make_run(dirty=True, started=5.0))
    assert store.outcome_counts(run_id) == {"passed": 3}
    assert store.latest_clean_run("a" * 40).id == run_id
    assert store.tracked_shas() == {"a" * 40}
    rows = store.results_at(["a" * 40])
    assert {r.run_id for r in rows} == {run_id}  # the dirty run is never evidence
    assert store.commit_infos(["a" * 40])["a" * 40] == commit
    assert set(store.tests()) == {"t.py::test_0", "t.py::test_1", "t.py::test_2"}


def test_results_can_be_filtered_by_environment_and_tests(store: HistoryStore) -> None:
    other = Environment("cpython-3.12.0", "linux-x86_64", "none", "k2", "f2")
    store.record_run(make_run(env=other))
    store.record_run(make_run())
    ids = store.tests()
    rows = store.results_at(["a" * 40], env_key="k1", test_ids=[ids["t.py::test_1"]])
    assert [(r.nodeid, r.outcome) for r in rows] == [("t.py::test_1", "passed")]


def test_a_repeated_nodeid_is_stored_once(store: HistoryStore) -> None:
    run = make_run(n=1)
    run = Run(**{**{f: getattr(run, f) for f in run.__slots__}, "results": (
        TestResult("t.py::x", Outcome.FAILED), TestResult("t.py::x", Outcome.PASSED))})
    run_id = store.record_run(run)
    assert store.outcome_counts(run_id) == {"passed": 1}


def test_corrupt_file_raises_store_error_and_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError) as info:
        HistoryStore.open(f"sqlite:///{db}")
    assert str(db) in info.value.one_line() and "move it aside" in info.value.one_line()
    assert db.read_bytes() == b"garbage" * 1000


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table runs (x)")
    with pytest.raises(StoreError, match="no bisector schema version"):
        HistoryStore.open(f"sqlite:///{db}")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore.open(url).close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("update bisector_meta set value='7'")
    with pytest.raises(StoreError, match=r"newer bisector \(schema v7; this one reads up to v6\)"):
        HistoryStore.open(url)


@pytest.mark.parametrize("version", ["0", "-1", "abc", ""])
def test_a_damaged_schema_version_is_refused_untouched(tmp_path: Path, version: str) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore.open(url).close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("update bisector_meta set value=?", (version,))
    with pytest.raises(StoreError, match="restore it from a backup"):
        HistoryStore.open(url)
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("select value from bisector_meta").fetchall() == [(version,)]


@pytest.mark.parametrize("version", ["0", "-1", "x"])
@pytest.mark.parametrize("command", [["history"], ["export", "--to", "copy.db"]])
def test_a_damaged_schema_version_is_one_line_from_the_cli(
    repo: Path, version: str, command: list[str]
) -> None:
    commit(repo, {"a.txt": "a\n"})
    db = repo.parent / "h.db"
    HistoryStore.open(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("update bisector_meta set value=?", (version,))
    proc = run_cli(*command, "--history-db", str(db), cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "schema version" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_migration_steps_run_once_and_keep_history(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        s.record_run(make_run())
    calls = []

    def step(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN note TEXT"))

    nxt = schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(migrations.STEPS, nxt, step)
    for _ in range(2):
        with HistoryStore.open(url) as s:
            assert s.schema_version() == nxt
            assert s.outcome_counts(1) == {"passed": 3}
    assert calls == [1]


def test_store_location_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        HistoryStore.open(f"sqlite:///{tmp_path}")


def test_invalid_url_and_missing_driver_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid history store URL"):
        HistoryStore.open("::::")
    with pytest.raises(StoreError, match="install the driver"):
        HistoryStore.open("nosuchdb://u:secret@host/db")


def test_password_is_never_shown() -> None:
    assert display_url("postgresql+psycopg://bob:s3cret@db/hist") == (
        "postgresql+psycopg://bob:***@db/hist"
    )
    try:
        HistoryStore.open("postgresql+nosuchdriver://bob:s3cret@db/hist")
    except StoreError as exc:
        assert "s3cret" not in exc.one_line()
    else:  # pragma: no cover
        raise AssertionError("expected a StoreError")


def _writer(url: str, worker: int, runs: int) -> None:
    with HistoryStore.open(url) as store:
        for i in range(runs):
            store.record_run(make_run(sha=f"{worker:02d}{i:038d}", n=50, started=float(i)))


def test_concurrent_writers_never_see_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with HistoryStore.open(url) as store:
        assert len(store.runs()) == 60
        assert sum(store.outcome_counts(r.id)["passed"] for r in store.runs()) == 3000


def test_a_v1_store_is_upgraded_to_the_journal_and_keeps_its_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        s.record_run(make_run())
    with sqlite3.connect(tmp_path / "h.db") as conn:  # make it what a v1 bisector wrote
        conn.execute("drop table probes")
        conn.execute("drop table bisections")
        conn.execute("update bisector_meta set value = '1'")
    with HistoryStore.open(url) as s:
        assert s.schema_version() == schema.SCHEMA_VERSION
        assert s.outcome_counts(1) == {"passed": 3}
        bid, resumed = s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
        s.add_probe(bid, 1, "a" * 40, "check bad end")
        assert resumed == 0
        assert s.start_bisection("k", "g", "b", ["t"], "first-parent", 2.0)[1] == 1
        assert [b["status"] for b in s.bisections()] == ["abandoned", "running"]


def test_a_v3_store_gets_the_nightly_ledger_and_keeps_its_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        s.record_run(make_run())
    with sqlite3.connect(tmp_path / "h.db") as conn:  # make it what a v3 bisector wrote
        conn.execute("drop table nightlies")
        conn.execute("update bisector_meta set value = '3'")
    with HistoryStore.open(url) as s:
        assert s.schema_version() == schema.SCHEMA_VERSION == 6
        assert s.outcome_counts(1) == {"passed": 3}
        s.record_nightly(branch="main", sha="a" * 40, run_id=1, started_at=1.0, finished_at=2.0,
                         status="clean", exit_code=0, ledger={"reported": []})
        s.record_nightly(branch="dev", sha="b" * 40, run_id=None, started_at=3.0,
                         finished_at=4.0, status="regression", exit_code=1,
                         ledger={"reported": [{"test": "t", "culprit": None}]})
        [latest] = s.nightlies("dev", limit=1)
        assert latest["ledger"] == {"reported": [{"test": "t", "culprit": None}]}
        assert [n["sha"][0] for n in s.nightlies("main")] == ["a"]


def test_a_v2_store_migrates_in_place_to_claims(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        s.record_run(make_run())
        s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
    with sqlite3.connect(tmp_path / "h.db") as conn:  # make it what a v2 bisector wrote
        conn.execute("drop index ux_bisections_running_key")
        for column in ("owner_host", "owner_pid", "heartbeat"):
            conn.execute(f"alter table bisections drop column {column}")
        # before claims, a race could leave two running attempts of one key
        conn.execute("insert into bisections (key, good, bad, tests, mode, status, started_at)"
                     " values ('k', 'g', 'b', '[\"t\"]', 'first-parent', 'running', 2.0)")
        conn.execute("update bisector_meta set value = '2'")
    with HistoryStore.open(url) as s:
        assert s.schema_version() == schema.SCHEMA_VERSION
        assert s.outcome_counts(1) == {"passed": 3}
        assert [(b["id"], b["status"], b["owner_pid"]) for b in s.bisections()] == [
            (1, "abandoned", None), (2, "running", None)]
        bid, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 3.0)
        assert bid == 3 and [b["status"] for b in s.bisections()] == [
            "abandoned", "abandoned", "running"]
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("select count(*) from sqlite_master "
                            "where name = 'ux_bisections_running_key'").fetchone() == (1,)


def _claimed_by(db: Path, host: str, pid: int, heartbeat: float | None) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("update bisections set owner_host = ?, owner_pid = ?, heartbeat = ? "
                     "where status = 'running'", (host, pid, heartbeat))


def test_a_live_claim_is_refused_and_a_dead_ones_is_taken_over(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys
    import time

    url = f"sqlite:///{tmp_path / 'h.db'}"
    here = socket.gethostname()
    with HistoryStore.open(url) as s:
        first, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _claimed_by(tmp_path / "h.db", here, sleeper.pid, time.time())
        with HistoryStore.open(url) as s, pytest.raises(BisectError) as info:
            s.start_bisection("k", "g", "b", ["t"], "first-parent", 2.0)
        assert info.value.one_line().startswith(
            f"bisection {first} is being resumed by another process (pid {sleeper.pid} on "
            f"{here})")
    finally:
        sleeper.kill()
        sleeper.wait()
    with HistoryStore.open(url) as s:  # its process is gone: taken over
        second, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 3.0)
    # another host: a fresh heartbeat is a live claim, an old one the leftover of a crash
    _claimed_by(tmp_path / "h.db", "elsewhere", 1, time.time())
    with HistoryStore.open(url) as s, pytest.raises(BisectError, match="pid 1 on elsewhere"):
        s.start_bisection("k", "g", "b", ["t"], "first-parent", 4.0)
    _claimed_by(tmp_path / "h.db", "elsewhere", 1, time.time() - journal.CLAIM_STALE_S - 1)
    with HistoryStore.open(url) as s:
        third, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 5.0)
        assert third > second > first
        statuses = [b["status"] for b in s.bisections()]
    assert statuses == ["abandoned", "abandoned", "running"]


def test_closing_lets_go_of_a_claim_and_keeps_the_bisection_resumable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        run_id = s.record_run(make_run())
        bid, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
        s.add_probe(bid, run_id, "a" * 40, "check bad end")
        [row] = s.bisections()
        assert row["heartbeat"] is not None and row["owner_pid"] == os.getpid()
    with HistoryStore.open(url) as s:
        [row] = s.bisections()
        assert row["status"] == "running" and row["heartbeat"] is None
        assert s.start_bisection("k", "g", "b", ["t"], "first-parent", 2.0)[1] == 1


def test_prune_spares_what_an_open_bisection_uses(store: HistoryStore) -> None:
    a, b, c, d = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
    ids = {sha: store.record_run(make_run(sha, n=4)) for sha in (a, b, c, d)}
    bid, _ = store.start_bisection("k", a, b, ["t"], "first-parent", 1.0)
    store.add_probe(bid, ids[a], a, "check good end")
    done, _ = store.start_bisection("other", c, d, ["t"], "first-parent", 1.0)
    store.add_probe(done, ids[c], c, "check good end")
    store.finish_bisection(done, "done", {}, 2.0)
    pruned = store.prune([a, b, c], protected={bid: {b}})
    assert pruned == Pruned(runs=1, results=4, probes=1, kept={bid: 2})
    assert {r.sha for r in store.runs()} == {a, b, d}
    assert store.outcome_counts(ids[c]) == {}


def test_history_copies_between_stores_without_loss_and_only_once(tmp_path: Path) -> None:
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a:
        varied_history(a)
        a.record_run(make_run("e" * 40, n=2))
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        b.record_run(make_run("e" * 40, n=2))  # already there: matched, not copied again
        first = copy_history(a, b)
        assert (first.runs, first.present_runs, first.bisections, first.probes) == (4, 1, 2, 3)
        assert first.nightlies == 1 and "1 nightly reports" in first.summary()
        again = copy_history(a, b)
        assert (again.runs, again.results, again.bisections, again.probes) == (0, 0, 0, 0)
        assert again.nightlies == 0
        assert dump(a) == dump(b)
        with pytest.raises(StoreError, match="both the source and the target"):
            copy_history(a, a)


# -- review fixes: copying a moving store, alike runs, errors, claims -------------------------


def test_a_copy_of_a_store_written_to_meanwhile_takes_what_was_there(tmp_path: Path) -> None:
    """Rows added while the copy runs (a new test, a run, a bisection, probes) are left for
    the next copy, not a KeyError; a probe that cannot be carried yet is counted."""
    a_url, b_url = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with HistoryStore.open(a_url) as a:
        varied_history(a)
    with HistoryStore.open(a_url) as a, HistoryStore.open(b_url) as b:
        writer = HistoryStore.open(a_url)
        [open_row] = [x for x in a.bisections() if x["status"] == "running"]

        def meanwhile(message: str) -> None:
            if "copying runs" in message:  # the tests are copied, the runs not yet
                run_id = writer.record_run(make_run("9" * 40, n=2, prefix="new.py::test_"))
                writer.journal._claims[open_row["id"]] = None
                with writer.db.write() as conn:  # this process now holds the open one
                    conn.execute(schema.bisections.update().values(
                        owner_pid=os.getpid(), owner_host=me()[0]))
                writer.add_probe(open_row["id"], run_id, "9" * 40, "midpoint")
                late, _ = writer.start_bisection("late", "g", "b", ["t"], "first-parent", 9.0)
                writer.add_probe(late, 1, "0" * 40, "check good end")

        try:
            first = copy_history(a, b, progress=meanwhile)
        finally:
            writer.close()
        assert (first.runs, first.bisections, first.skipped_probes) == (4, 2, 2)
        assert "2 probe(s) of runs or bisections added during the copy" in first.summary()
        second = copy_history(a, b)
        assert (second.runs, second.bisections, second.probes, second.skipped_probes) == (
            1, 1, 2, 0)
        assert dump(a) == dump(b)


def test_an_unexpected_error_in_a_copy_is_one_store_error(tmp_path: Path, monkeypatch) -> None:
    from bisector.history import transfer

    def broken(*_args, **_kwargs):
        raise KeyError(12345)

    monkeypatch.setattr(transfer, "_copy_bisections", broken)
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        varied_history(a)
        with pytest.raises(StoreError) as info:
            copy_history(a, b)
    line = info.value.one_line()
    assert "KeyError: 12345" in line and "run the command again" in line and "\n" not in line


def test_runs_alike_in_every_column_are_each_copied_once(tmp_path: Path) -> None:
    """Two imports of different JUnit files on one commit in the same second: two runs, with
    identical columns and different results. Both are copied, and only once."""
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        a.record_run(make_run(n=2, prefix="one.py::test_"))
        a.record_run(make_run(n=3, prefix="two.py::test_"))
        a.record_run(make_run(n=1, prefix="three.py::test_"))
        b.record_run(make_run(n=2, prefix="one.py::test_"))  # one of them is there already
        first = copy_history(a, b, batch=2)
        assert (first.runs, first.present_runs) == (2, 1)
        again = copy_history(a, b, batch=2)
        assert (again.runs, again.results, again.present_runs) == (0, 0, 3)
        assert len(b.runs()) == 3
        assert dump(a) == dump(b)  # b's own run stands for a's first


def test_a_copy_stays_under_the_old_sqlite_limit_of_999_variables(tmp_path: Path) -> None:
    """SQLite before 3.32 binds at most 999 variables per statement."""
    from sqlalchemy import event

    commits = [CommitInfo(f"{i:040x}", (), "a", "a@x", i, "s") for i in range(1200)]
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        a.record_commits(commits)
        for store in (a, b):
            store.db.engine.dispose()

            @event.listens_for(store.db.engine, "connect")
            def _old_sqlite(dbapi_conn, _record):
                dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

        assert copy_history(a, b).commits == 1200


def test_a_deadlock_reported_by_psycopg2_is_retried(store: HistoryStore) -> None:
    """psycopg2 names the SQLSTATE `pgcode` (psycopg: `sqlstate`)."""

    class Psycopg2Error(Exception):
        pgcode = "40P01"

    calls = []

    def work() -> str:
        calls.append(1)
        if len(calls) == 1:
            with store.db.guard():
                raise sa.exc.DBAPIError.instance(
                    "INSERT", None, Psycopg2Error("deadlock detected"), Exception)
        return "done"

    assert store.db.retrying(work) == "done" and len(calls) == 2


def _taken_over(db: Path) -> None:
    """What a takeover by another process leaves: our row abandoned, its own running."""
    with sqlite3.connect(db) as conn:
        conn.execute("update bisections set status = 'abandoned'")
        conn.execute("insert into bisections (key, good, bad, tests, mode, status, started_at,"
                     " owner_host, owner_pid, heartbeat) select key, good, bad, tests, mode,"
                     " 'running', 2.0, 'elsewhere', 1, 2.0 from bisections")


def test_a_lost_claim_stops_probes_and_the_finish(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        run_id = s.record_run(make_run())
        bid, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
        s.add_probe(bid, run_id, "a" * 40, "check bad end")
        _taken_over(tmp_path / "h.db")
        other = s.record_run(make_run("b" * 40))
        for call in (lambda: s.add_probe(bid, other, "b" * 40, "midpoint"),
                     lambda: s.finish_bisection(bid, "done", {}, 3.0)):
            with pytest.raises(BisectError) as info:
                call()
            assert info.value.one_line().startswith(
                f"lost the claim on bisection {bid} (resumed by another process)")
        rows = s.bisections()
    assert [(r["status"], r["owner_host"], r["result"]) for r in rows] == [
        ("abandoned", me()[0], None), ("running", "elsewhere", None)]


def test_a_probe_is_its_run_and_its_journal_line_in_one_transaction(tmp_path: Path) -> None:
    """record_probe writes what record_run then add_probe wrote, and a lost claim still
    keeps the run (a result is a result) while journaling nothing for the loser."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    commits = [CommitInfo("a" * 40, (), "A", "a@x", 1, "one"),
               CommitInfo("b" * 40, (), "B", "b@x", 2, "two")]
    with HistoryStore.open(url) as s:
        bid, _ = s.start_bisection("k", "g", "b", ["t"], "first-parent", 1.0)
        known: dict[str, int] = {}
        first = s.record_probe(make_run(), commits[:1], bid, "check bad end", known_tests=known)
        assert known == s.tests() and len(known) == 3  # the ids, for the next probe
        assert s.probes_of(bid) == [{"sha": "a" * 40, "purpose": "check bad end",
                                     "run_id": first, "started_at": 1.0, "finished_at": 2.0,
                                     "patch_key": None}]
        assert s.outcome_counts(first) == {"passed": 3}
        _taken_over(tmp_path / "h.db")
        with pytest.raises(BisectError, match=f"lost the claim on bisection {bid}"):
            s.record_probe(make_run("b" * 40), commits[1:], bid, "midpoint")
        assert sorted(r.sha for r in s.runs()) == ["a" * 40, "b" * 40]
        assert [p["sha"] for p in s.probes_of(bid)] == ["a" * 40]


# -- tracebacks (schema v5) -------------------------------------------------------------------


def _failing(nodeid: str, traceback: str | None) -> TestResult:
    return TestResult(nodeid, Outcome.FAILED, 0.5, "0123456789abcdef", "AssertionError: no",
                      traceback=traceback)


def test_a_failures_traceback_is_stored_and_read_back(store: HistoryStore) -> None:
    failed = _failing("t.py::test_bad", TRACEBACK)
    run_id = store.record_run(make_run(results=(failed, TestResult("t.py::ok", Outcome.PASSED))))
    by_test = {r.nodeid: r for r in store.results_at(["a" * 40])}
    assert by_test["t.py::test_bad"].traceback == TRACEBACK
    assert by_test["t.py::ok"].traceback is None
    assert store.results_of(run_id)["t.py::test_bad"] == failed  # the whole TestResult
    assert store.run_results(run_id)["t.py::test_bad"] == ("failed", "AssertionError: no")
    unread = store.results_at(["a" * 40], tracebacks=False)
    assert {r.traceback for r in unread} == {None} and len(unread) == 2


def test_a_long_traceback_keeps_its_tail(store: HistoryStore) -> None:
    """The end of a traceback (the failing line, the exception) is what a person reads."""
    text = "frame\n" * (TRACEBACK_MAX // 6) + "E   ValueError: the end\x00"
    assert len(text) > TRACEBACK_MAX
    run_id = store.record_run(make_run(results=(_failing("t.py::x", text),)))
    stored = store.results_of(run_id)["t.py::x"].traceback
    assert stored is not None and len(stored) == TRACEBACK_MAX
    assert stored == text[-TRACEBACK_MAX:].replace("\x00", "\ufffd")
    assert stored.endswith("E   ValueError: the end\ufffd")


def test_a_v4_store_gets_tracebacks_and_keeps_its_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        old = s.record_run(make_run())
    with sqlite3.connect(tmp_path / "h.db") as conn:  # make it what a v4 bisector wrote
        conn.execute("alter table results drop column traceback")
        conn.execute("update bisector_meta set value = '4'")
    with HistoryStore.open(url) as s:
        assert s.schema_version() == schema.SCHEMA_VERSION == 6
        assert s.outcome_counts(old) == {"passed": 3}
        assert {r.traceback for r in s.results_at(["a" * 40])} == {None}
        new = s.record_run(make_run("b" * 40, results=(_failing("t.py::bad", TRACEBACK),)))
        assert s.results_of(new)["t.py::bad"].traceback == TRACEBACK
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("select count(*) from results").fetchone() == (4,)


def test_a_copy_carries_the_tracebacks(tmp_path: Path) -> None:
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        varied_history(a)
        copy_history(a, b)
        carried = [r.traceback for r in b.results_at([f"{i:040x}" for i in range(4)])
                   if r.nodeid == "t.py::test_flaky" and r.outcome == "failed"]
    assert carried == [TRACEBACK, TRACEBACK]  # the failures on commits 1 and 3


# -- patched runs (schema v6): isolation probes are never the commit's own results ----------


def test_a_patched_run_is_kept_apart_from_its_commits_results(store: HistoryStore) -> None:
    """An isolation probe is stored at the parent P with its patch's key: reads of the
    commit (history, regressions, find-break's planning) never see it; only `patched=True`."""
    sha = "a" * 40
    failed = _failing("t.py::test_bad", TRACEBACK)
    own = store.record_run(make_run(sha, results=(TestResult("t.py::test_bad", Outcome.PASSED),)))
    patched = store.record_run(replace(make_run(sha, results=(failed,)), patch_key="k" * 20,
                                       trigger=Trigger.ISOLATE))
    assert {r.run_id for r in store.results_at([sha])} == {own}
    rows = store.results_at([sha], patched=True)
    assert {(r.run_id, r.patch_key, r.outcome) for r in rows} == {(patched, "k" * 20, "failed")}
    assert store.tracked_shas() == {sha}
    assert store.latest_clean_run(sha).id == own
    assert sorted(r.patch_key or "" for r in store.runs(sha=sha)) == ["", "k" * 20]
    assert [d[0] for d in store.durations([sha])] == ["t.py::test_bad"]
    assert store.durations([sha])[0][3] == 1  # the patched run's duration is not counted


def test_only_patched_runs_make_a_commit_tracked_never(store: HistoryStore) -> None:
    sha = "b" * 40
    store.record_run(replace(make_run(sha), patch_key="k" * 20, trigger=Trigger.ISOLATE))
    assert store.tracked_shas() == set() and store.results_at([sha]) == []
    assert store.latest_clean_run(sha) is None


def test_a_v5_store_gets_patch_keys_and_keeps_its_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with HistoryStore.open(url) as s:
        old = s.record_run(make_run())
    with sqlite3.connect(tmp_path / "h.db") as conn:  # make it what a v5 bisector wrote
        conn.execute("alter table runs drop column patch_key")
        conn.execute("update bisector_meta set value = '5'")
    with HistoryStore.open(url) as s:
        assert s.schema_version() == schema.SCHEMA_VERSION == 6
        assert s.outcome_counts(old) == {"passed": 3}
        assert {r.run_id for r in s.results_at(["a" * 40])} == {old}  # old runs are the commit's
        s.record_run(replace(make_run(), patch_key="p" * 20, trigger=Trigger.ISOLATE))
        assert {r.run_id for r in s.results_at(["a" * 40])} == {old}


def test_a_copy_carries_the_patch_keys(tmp_path: Path) -> None:
    with HistoryStore.open(f"sqlite:///{tmp_path / 'a.db'}") as a, \
            HistoryStore.open(f"sqlite:///{tmp_path / 'b.db'}") as b:
        a.record_run(replace(make_run(), patch_key="p" * 20, trigger=Trigger.ISOLATE))
        copy_history(a, b)
        assert {r.patch_key for r in b.results_at(["a" * 40], patched=True)} == {"p" * 20}
        assert b.results_at(["a" * 40]) == []
