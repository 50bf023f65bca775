from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisector.demo import build_repo
from bisector.history.schema import SCHEMA_VERSION

from .conftest import git, query, run_cli, run_pytest
from .store_helpers import make_run


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The demo repository (culprit at index 7 of 12), tracked at commits 0, 4, 10 and 11."""
    path = tmp_path_factory.mktemp("cli") / "calc"
    shas = build_repo(path, commits=12, culprit=7)
    for i in (0, 4, 10, 11):
        git(path, "checkout", "-q", shas[i])
        run_pytest(path, "--track-history", "-p", "no:cacheprovider")
    git(path, "checkout", "-q", "main")
    return path, shas


def test_regressions_name_last_good_and_first_bad(tracked) -> None:
    repo, shas = tracked
    proc = run_cli("regressions", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [reg] = data["regressions"]
    assert reg["test"] == "tests/test_calc.py::test_add_negative"
    assert reg["last_good"]["sha"] == shas[4] and reg["first_bad"]["sha"] == shas[10]
    assert reg["candidates"] == 6 and reg["outcome"] == "failed"
    assert reg["first_bad"]["subject"] == "Update notes (10)"
    assert "assert 0 == -5" in reg["message"]
    text = run_cli("regressions", cwd=repo).stdout
    assert "1 regression at" in text and shas[4][:10] in text and shas[10][:10] in text


def test_lookback_counts_tracked_commits(tracked) -> None:
    repo, shas = tracked
    # HEAD and one tracked commit before it (both failing): no pass in reach
    assert json.loads(run_cli("regressions", "--json", "--lookback", "1", cwd=repo).stdout)[
        "regressions"] == []
    data = json.loads(run_cli("regressions", "--json", "--lookback", "2", cwd=repo).stdout)
    assert data["regressions"][0]["last_good"]["sha"] == shas[4]
    env = {"BISECTOR_LOOKBACK": "1"}
    assert json.loads(run_cli("regressions", "--json", cwd=repo, env=env).stdout)[
        "regressions"] == []


def test_history_grid_and_json(tracked) -> None:
    repo, shas = tracked
    proc = run_cli("history", "--limit", "12", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(s[:10])) for s in shas]
    assert order == sorted(order, reverse=True)  # newest first
    assert "T1 = tests/test_calc.py::test_add_negative" in proc.stdout
    head_line = lines[order[11]]
    assert "2✓ 1✗" in head_line and head_line.rstrip().endswith("✗")
    assert "not tracked" in lines[order[7]]
    data = json.loads(run_cli("history", "--json", "-n", "3", "tests/test_calc.py::test_add",
                              cwd=repo).stdout)
    assert data["tests"] == ["tests/test_calc.py::test_add"]
    assert [c["sha"] for c in data["commits"]] == [shas[11], shas[10], shas[9]]
    assert data["commits"][0]["results"] == {"tests/test_calc.py::test_add": ["passed"]}
    assert data["commits"][2]["results"] == {} and data["commits"][2]["runs"] == 0
    by_file = json.loads(run_cli("history", "--json", "tests/test_calc.py", cwd=repo).stdout)
    assert len(by_file["tests"]) == 3


def test_dirty_failures_are_not_regressions(repo: Path) -> None:
    from .conftest import commit

    commit(repo, {"test_a.py": "def test_a():\n    pass\n"})
    run_pytest(repo, "--track-history")
    commit(repo, {"README": "x"})
    run_pytest(repo, "--track-history")
    (repo / "test_a.py").write_text("def test_a():\n    assert 0\n")
    run_pytest(repo, "--track-history")
    data = json.loads(run_cli("regressions", "--json", cwd=repo).stdout)
    assert data["regressions"] == []


def test_no_clean_run_at_head(repo: Path) -> None:
    from bisector.history import HistoryStore

    from .conftest import commit

    commit(repo, {"a": "1"})
    HistoryStore.open(f"sqlite:///{repo / '.bisector' / 'history.db'}", dirs_under=repo).close()
    proc = run_cli("regressions", cwd=repo)
    assert proc.returncode == 0 and "no clean tracked run at HEAD" in proc.stdout


def test_not_a_repository_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run_cli("history", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not a git repository" in proc.stderr


def test_corrupt_store_is_one_line_naming_the_file(tracked, tmp_path: Path) -> None:
    repo, _ = tracked
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope" * 100)
    proc = run_cli("regressions", "--history-db", str(bad), cwd=repo)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(bad) in proc.stderr
    assert "move it aside" in proc.stderr
    assert bad.read_bytes() == b"nope" * 100


def test_newer_schema_is_refused_by_the_cli(tracked, tmp_path: Path) -> None:
    repo, _ = tracked
    from bisector.history import HistoryStore

    db = tmp_path / "new.db"
    HistoryStore.open(f"sqlite:///{db}").close()
    query(db, f"update bisector_meta set value='{SCHEMA_VERSION + 1}'")
    proc = run_cli("history", "--history-db", str(db), cwd=repo)
    assert proc.returncode == 2 and "upgrade bisector" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [["regressions", "--lookback", "0"], ["history", "--limit", "x"], ["nope"]],
)
def test_bad_arguments_exit_2_without_traceback(tracked, args: list[str]) -> None:
    repo, _ = tracked
    proc = run_cli(*args, cwd=repo)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_password_never_appears(tracked) -> None:
    repo, _ = tracked
    proc = run_cli("history", "--history-db", "postgresql+nodriver://bob:hunter2@db/h", cwd=repo)
    assert proc.returncode == 2 and "hunter2" not in proc.stderr + proc.stdout
    assert "bob:***@db/h" in proc.stderr


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://127.0.0.1:1/h?password=s3cret",
    "postgresql+psycopg://bob:s3/cr3t@127.0.0.1:1/h",
    "postgresql+psycopg://bob:s3 cr3t@127.0.0.1:1/h",
    "postgresql+psycopg://bob:s3cr@t@127.0.0.1:1/h",
])
def test_no_form_of_password_appears_when_the_store_is_unreachable(tracked, url: str) -> None:
    repo, _ = tracked
    secret = url.split("bob:")[1].rsplit("@", 1)[0] if "bob:" in url else "s3cret"
    proc = run_cli("history", "--history-db", url, cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert secret not in proc.stdout + proc.stderr, proc.stderr
    assert "***" in proc.stderr and "Traceback" not in proc.stderr
    if "bob:" in url:  # the host is what follows the last '@', no piece of the password
        assert "bob:***@127.0.0.1:1/h" in proc.stderr, proc.stderr


def test_import_history_refuses_a_missing_source_file(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "histroy.db"
    proc = run_cli("import-history", "--from", str(missing), "--history-db",
                   str(tmp_path / "h.db"), cwd=repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (f"bisector: error: history store {missing} does not exist: "
                                   "check the path given with --from")
    assert not missing.parent.exists()


def test_import_history_does_not_migrate_its_source(repo: Path, tmp_path: Path) -> None:
    import sqlite3

    from bisector.history import HistoryStore

    old = tmp_path / "old.db"
    with HistoryStore.open(f"sqlite:///{old}") as store:
        store.record_run(make_run())
    with sqlite3.connect(old) as conn:
        conn.execute("update bisector_meta set value = '2'")
    proc = run_cli("import-history", "--from", str(old), "--history-db",
                   str(tmp_path / "h.db"), cwd=repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "older schema (version 2" in proc.stderr and "open it with bisector once" in (
        proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1
    with sqlite3.connect(old) as conn:
        assert conn.execute("select value from bisector_meta").fetchone() == ("2",)


@pytest.mark.parametrize("nodeid", [
    "tests/test_calc.py::test_add_negative",
    "tests/integration/test_billing_reconciliation.py::TestInvoices::test_totals",
    "tests/integration/test_billing_reconciliation.py::TestInvoices::"
    "test_totals_in_every_currency[EUR-rounding-half-even]",
])
def test_regressions_never_break_a_node_id_at_80_columns(nodeid: str) -> None:
    """The id is what the next command (find-break, history) is given: each appears whole on
    one line, the table kept when it fits."""
    import io

    from rich.console import Console

    from bisector.model import Outcome, Regression, RegressionReport
    from bisector.reports.history import render_regressions

    other = "tests/test_io.py::test_read"
    report = RegressionReport("b" * 40, "env", ["b" * 40, "a" * 40], [
        Regression(nodeid, "a" * 40, "b" * 40, 6, Outcome.FAILED, "s",
                   "AssertionError: assert 0 == -5 where 0 = add(-2, -3) " * 2),
        Regression(other, "a" * 40, "b" * 40, 6, Outcome.ERROR, "s", "OSError"),
    ])
    out = io.StringIO()
    render_regressions(report, Console(file=out, width=80, color_system=None), 5)
    lines = out.getvalue().splitlines()
    for name in (nodeid, other):
        assert any(name in line for line in lines), (name, lines)
    assert all(len(line) <= 80 for line in lines if nodeid not in line)
    assert "a" * 10 in out.getvalue() and "6" in out.getvalue()
    assert "assert 0 == -5" in out.getvalue()


def _grid_of(outcomes: dict[str, list[str]]):
    """A grid of two commits where each test has these outcomes (newest first)."""
    from bisector.model import CommitInfo, Grid

    commits = [CommitInfo(c * 40, (), "A", "a@x", 1_700_000_000, c) for c in "ba"]
    cells = {(t, c.sha): [o] for t, per in outcomes.items()
             for c, o in zip(commits, per, strict=True)}
    return Grid(commits, sorted(outcomes), cells, {c.sha: 1 for c in commits})


def test_tests_skipped_in_every_run_are_a_footer_not_columns() -> None:
    import io

    from rich.console import Console

    from bisector.reports.history import grid_json, render_grid

    grid = _grid_of({"t.py::broke": ["failed", "passed"], "t.py::fine": ["passed", "passed"],
                     **{f"t.py::win_only_{i}": ["skipped", "skipped"] for i in range(10)},
                     "t.py::sometimes": ["skipped", "passed"]})
    for named in (False, True):
        out = io.StringIO()
        render_grid(grid, Console(file=out, width=200, color_system=None), named=named)
        text = out.getvalue()
        assert "win_only" not in text, text
        assert "10 tests skipped in every run (no column)" in text
        assert "T1 = t.py::broke" in text and "= t.py::sometimes" in text
    data = grid_json(grid)
    assert data["tests"] == ["t.py::broke", "t.py::fine", "t.py::sometimes"]
    assert data["skipped_everywhere"] == [f"t.py::win_only_{i}" for i in range(10)]
    assert all("win_only" not in n for c in data["commits"] for n in c["results"])


def test_history_shows_no_column_for_a_test_that_was_only_ever_untestable(
        repo: Path) -> None:
    """An older store holds a mistyped id's untestable probe results: no column, unless the
    exact id is asked for."""
    from bisector.history import HistoryStore
    from bisector.model import Outcome, TestResult

    from .conftest import commit

    sha = commit(repo, {"test_a.py": "def test_a():\n    assert False\n"}, "a")
    db = f"sqlite:///{repo / '.bisector' / 'history.db'}"
    (repo / ".bisector").mkdir()
    with HistoryStore.open(db) as store:
        store.record_run(make_run(sha, results=(
            TestResult("test_a.py::test_a", Outcome.FAILED, 0.1),
            TestResult("test_a.py::test_typo", Outcome.UNTESTABLE, 0.0, None, "not found"))))
    proc = run_cli("history", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "T1 = test_a.py::test_a" in proc.stdout and "test_typo" not in proc.stdout
    data = json.loads(run_cli("history", "--json", cwd=repo).stdout)
    assert data["tests"] == ["test_a.py::test_a"]
    named = json.loads(run_cli("history", "--json", "test_a.py::test_typo", cwd=repo).stdout)
    assert named["tests"] == ["test_a.py::test_typo"]


def test_shell_completion_as_the_readme_says() -> None:
    """`_BISECTOR_COMPLETE=bash_source bisector` (README, "Shell completion") prints a bash
    completion script, which completes the nightly's --notify choices."""
    script = run_cli(env={"_BISECTOR_COMPLETE": "bash_source"})
    assert script.returncode == 0, script.stderr
    assert "complete -o nosort -F _bisector_completion bisector" in script.stdout
    choices = run_cli(env={"_BISECTOR_COMPLETE": "bash_complete",
                           "COMP_WORDS": "bisector nightly --notify ", "COMP_CWORD": "3"})
    assert choices.stdout.split() == ["plain,github", "plain,webhook"]
    for shell in ("zsh", "fish"):
        assert run_cli(env={"_BISECTOR_COMPLETE": f"{shell}_source"}).stdout.strip()
