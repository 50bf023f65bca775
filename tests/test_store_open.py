"""No store where none was meant: readers open an existing store or say there is none, writers
create the file but no directory they were not asked for, and a store the user cannot write is
read without anything appearing beside it."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from bisector.errors import StoreError
from bisector.history import HistoryStore

from .conftest import commit, run_cli, run_pytest
from .store_helpers import make_run

READERS = [["history"], ["regressions"], ["flaky"], ["stats"], ["find-break"],
           ["gc", "--no-docker", "--keep", "5"]]


@pytest.fixture
def one_commit(repo: Path) -> Path:
    commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    return repo


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("args", READERS, ids=lambda a: a[0])
def test_a_reader_creates_no_store_nor_its_directories(one_commit: Path, tmp_path: Path,
                                                      args: list[str]) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    proc = run_cli(*args, "--history-db", str(missing), cwd=one_commit)
    line = _one_error_line(proc)
    assert f"no history store at {missing}" in line and "pytest --track-history" in line
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("args", READERS, ids=lambda a: a[0])
def test_a_reader_without_history_says_how_to_make_one(one_commit: Path, args: list[str]
                                                      ) -> None:
    proc = run_cli(*args, cwd=one_commit)
    line = _one_error_line(proc)
    default = one_commit / ".bisector" / "history.db"
    if args[0] == "find-break":  # without --good: planned from the history
        assert line == (f"bisector: error: nothing to bisect: no history store at {default}: "
                        "record history with pytest --track-history, or name the tests and "
                        "give --good REV")
    else:
        assert line == (f"bisector: error: no history store at {default}: record one with "
                        "pytest --track-history, or name one with --history-db")
    assert not (one_commit / ".bisector").exists()


def test_a_reader_refuses_an_empty_file_and_leaves_it_as_it_was(one_commit: Path,
                                                               tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    before = empty.stat()
    line = _one_error_line(run_cli("history", "--history-db", str(empty), cwd=one_commit))
    assert f"{empty} holds no bisector history" in line
    after = empty.stat()
    assert (after.st_size, after.st_mtime_ns) == (0, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "repo"]


def test_find_break_with_good_creates_the_default_store(one_commit: Path) -> None:
    sha = commit(one_commit, {"notes": "x"})
    proc = run_cli("find-break", "test_a.py::test_a", "--good", f"{sha}~1", cwd=one_commit)
    assert (one_commit / ".bisector" / "history.db").is_file(), proc.stdout + proc.stderr


WRITERS = [
    ["find-break", "test_a.py::test_a", "--good", "HEAD"],
    ["import", "--commit", "HEAD", "report.xml"],
    ["import-history", "--from", "{source}"],
]


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: a[0])
def test_a_writer_makes_no_directory_it_was_not_asked_for(one_commit: Path, tmp_path: Path,
                                                         args: list[str]) -> None:
    (one_commit / "report.xml").write_text(
        '<testsuite name="s" tests="1"><testcase classname="test_a" name="test_a"/>'
        '</testsuite>')
    source = tmp_path / "source.db"
    with HistoryStore.open(f"sqlite:///{source}") as store:
        store.record_run(make_run())
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    args = [a.format(source=source) for a in args]
    line = _one_error_line(run_cli(*args, "--history-db", str(missing), cwd=one_commit))
    assert str(missing) in line and "no directory" in line
    assert not (tmp_path / "nonexistent").exists()


def test_export_makes_no_directory_for_its_target(one_commit: Path, tmp_path: Path) -> None:
    here = tmp_path / "here.db"
    with HistoryStore.open(f"sqlite:///{here}") as store:
        store.record_run(make_run())
    missing = tmp_path / "nonexistent" / "x.db"
    line = _one_error_line(run_cli("export", "--to", str(missing), "--history-db", str(here),
                                   cwd=one_commit))
    assert str(missing) in line and "no directory" in line
    assert not missing.parent.exists()


def test_the_recorder_makes_no_directory_for_an_explicit_store(one_commit: Path,
                                                              tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "x.db"
    proc = run_pytest(one_commit, "--track-history", f"--history-db={missing}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no directory" in proc.stdout and str(missing) in proc.stdout
    assert not missing.parent.exists()


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no history store at"):
        HistoryStore.open(f"sqlite:///{tmp_path / 'x.db'}", create=False)
    with pytest.raises(StoreError, match="no directory"):
        HistoryStore.open(f"sqlite:///{tmp_path / 'd' / 'x.db'}")
    with HistoryStore.open(f"sqlite:///{tmp_path / 'd' / 'x.db'}", dirs_under=tmp_path):
        pass  # inside the checkout the store belongs to, its directory is made
    assert list(tmp_path.iterdir()) == [tmp_path / "d"]


# -- a store the user cannot write --------------------------------------------------------

def _readonly_store(tmp_path: Path, *, dir_too: bool) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "history.db"
    with HistoryStore.open(f"sqlite:///{db}") as store:  # a WAL store, as writers leave it
        store.record_run(make_run())
    assert {p.name for p in folder.iterdir()} == {"history.db"}
    db.chmod(0o444)
    if dir_too:
        folder.chmod(0o555)
    return db


@pytest.fixture
def restore_modes(tmp_path: Path):
    yield
    for path in tmp_path.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("dir_too", [True, False], ids=["dir-0555", "file-only"])
def test_reading_a_read_only_store_leaves_its_directory_untouched(
        tmp_path: Path, dir_too: bool, restore_modes: None) -> None:
    db = _readonly_store(tmp_path, dir_too=dir_too)
    before = db.stat().st_mtime_ns
    with HistoryStore.open(f"sqlite:///{db}", create=False) as store:
        assert store.tracked_shas() == {"a" * 40}
        assert {p.name for p in db.parent.iterdir()} == {"history.db"}
    assert {p.name for p in db.parent.iterdir()} == {"history.db"}
    assert db.stat().st_mtime_ns == before
    assert db.read_bytes()[18:20] == b"\x02\x02"  # still a WAL store: nothing switched it


def test_the_cli_reads_a_read_only_store_and_leaves_it_untouched(
        one_commit: Path, tmp_path: Path, restore_modes: None) -> None:
    db = _readonly_store(tmp_path, dir_too=True)
    for args in (["history"], ["regressions"], ["flaky"], ["stats"]):
        proc = run_cli(*args, "--history-db", str(db), cwd=one_commit)
        assert proc.returncode == 0, proc.stderr
    assert {p.name for p in db.parent.iterdir()} == {"history.db"}


def test_a_read_only_store_is_opened_read_only(tmp_path: Path, restore_modes: None) -> None:
    """The choice is made by the mode bits as well as by access(2), so that it holds for root
    too (whom permissions do not stop): the engine is given SQLite's mode=ro."""
    db = _readonly_store(tmp_path, dir_too=False)
    with HistoryStore.open(f"sqlite:///{db}", create=False) as store:
        assert store.read_only
        with pytest.raises(StoreError, match="read-only"):
            store.record_run(make_run(sha="b" * 40))
    db.chmod(0o644)
    with HistoryStore.open(f"sqlite:///{db}", create=False) as store:
        assert not store.read_only


def test_an_older_read_only_store_is_not_migrated(tmp_path: Path, restore_modes: None) -> None:
    db = _readonly_store(tmp_path, dir_too=True)
    db.parent.chmod(0o755)
    db.chmod(0o644)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update bisector_meta set value = '2'")
    conn.close()  # the last connection: SQLite folds the WAL back and removes -wal, -shm
    db.chmod(0o444)
    db.parent.chmod(0o555)
    with pytest.raises(StoreError, match="older schema") as info:
        HistoryStore.open(f"sqlite:///{db}", create=False)
    assert "\n" not in info.value.one_line()
    assert {p.name for p in db.parent.iterdir()} == {"history.db"}


# -- import-history --from a file that is no store -------------------------------------------

@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 50],
                         ids=["empty", "text"])
def test_import_history_leaves_a_source_that_is_no_store_untouched(
        one_commit: Path, tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(content)
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))
    proc = run_cli("import-history", "--from", str(source), "--history-db",
                   str(tmp_path / "h.db"), cwd=one_commit)
    line = _one_error_line(proc)
    assert str(source) in line
    assert source.read_bytes() == content and source.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "repo"]
