"""find-break end to end: real repositories, real worktrees, real pytest probes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from bisector.demo import CALC_BAD, CALC_GOOD, TESTS, build_repo

from .conftest import commit, git, planted, query, run_cli, run_pytest
from .test_bisect_log import merged_branch, nested_merges

# every find-break here that writes JSON has its bisect_log replayed to its culprit
pytestmark = pytest.mark.usefixtures("every_log_replays")


def find_break(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("find-break", "--json", *args, cwd=repo)


@pytest.fixture
def calc(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "calc"
    return path, build_repo(path, commits=20, culprit=13)


def test_finds_the_culprit_without_touching_the_users_checkout(calc) -> None:
    repo, shas = calc
    (repo / "NOTES.md").write_text("uncommitted edit\n")
    (repo / "scratch.txt").write_text("untracked\n")
    (repo / "calc.py").write_text(CALC_GOOD + "\n# staged\n")
    git(repo, "add", "calc.py")
    git(repo, "stash", "list")
    before = [git(repo, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"],
                                       ["symbolic-ref", "HEAD"], ["diff", "--cached"],
                                       ["stash", "list"], ["branch", "-a"])]
    proc = find_break(repo, "tests/test_calc.py::test_add_negative", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[13]
    assert group["commit"]["subject"] == "Clamp add() results at zero"
    assert group["files"] == ["calc.py"]
    [t] = group["tests"]
    assert t["confirmed"] is True and "assert 0 == -5" in t["message"]
    # 19 candidates: ceil(log2 19) = 5 search probes at most, plus 2 ends and 4 confirmations
    # (no history: the culprit's three times, its parent's once; ADR 0024)
    assert data["probes_run"] <= 5 + 2 + 4
    after = [git(repo, *a) for a in (["status", "--porcelain"], ["rev-parse", "HEAD"],
                                      ["symbolic-ref", "HEAD"], ["diff", "--cached"],
                                      ["stash", "list"], ["branch", "-a"])]
    assert after == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    runs = query(repo / ".bisector" / "history.db",
                 "select trigger, dirty, count(*) from runs group by trigger, dirty")
    assert runs == [("probe", 0, data["probes_run"])]
    log = data["bisect_log"]
    assert log[0] == f"git bisect start '--first-parent' '{shas[19]}' '{shas[0]}'"


def test_second_bisection_reuses_history(calc) -> None:
    repo, shas = calc
    first = json.loads(find_break(repo, "tests/test_calc.py::test_add_negative",
                                  "--good", shas[0]).stdout)
    second = json.loads(find_break(repo, "tests/test_calc.py::test_add_negative",
                                   "--good", shas[0]).stdout)
    assert second["culprits"][0]["commit"]["sha"] == shas[13]
    # every result is stored, the confirmation too: the culprit's four agreeing runs (no
    # steady history: ADR 0024) and its parent's two need no more (#15)
    assert second["probes_run"] == 0
    # a reuse per commit looked up: the culprit's four runs are one (ADR 0024)
    assert second["probes_reused"] >= first["probes_run"] - 3
    # what history settled is in the log, so `git bisect replay` reaches the same culprit
    log = repo.parent / "replay.log"
    log.write_text("\n".join(second["bisect_log"]) + "\n")
    git(repo, "bisect", "replay", str(log))
    assert git(repo, "rev-parse", "refs/bisect/bad") == shas[13]
    git(repo, "bisect", "reset")


def test_defaults_come_from_the_regressions_in_history(calc) -> None:
    repo, shas = calc
    for i in (2, 19):
        git(repo, "checkout", "-q", shas[i])
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    data = json.loads(find_break(repo).stdout)
    assert data["good"] == shas[2] and data["bad"] == shas[19]
    assert data["culprits"][0]["commit"]["sha"] == shas[13]
    assert data["culprits"][0]["tests"][0]["test"] == "tests/test_calc.py::test_add_negative"


def test_untestable_commits_are_stepped_over(repo: Path) -> None:
    shas = [commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS}, "start")]
    for i in range(1, 16):
        files = {"NOTES.md": f"{i}\n"}
        if i == 5:
            files["calc.py"] = "def add(a, b:\n"  # does not even import: untestable
        if i == 8:
            files["calc.py"] = CALC_GOOD
        if i == 11:
            files["calc.py"] = CALC_BAD
        shas.append(commit(repo, files, f"c{i}"))
    proc = find_break(repo, "tests/test_calc.py::test_add_negative", "--good", shas[0])
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[11]
    assert any(line.startswith("git bisect") for line in data["bisect_log"])


def test_several_tests_get_their_own_culprits(repo: Path) -> None:
    base = {"m.py": "A = 1\nB = 1\n",
            "test_m.py": "import m\n\ndef test_a():\n    assert m.A == 1\n\n"
                         "def test_b():\n    assert m.B == 1\n\n"
                         "def test_c():\n    assert m.B == 1\n"}
    shas = [commit(repo, base, "start")]
    for i in range(1, 13):
        files = {"n.txt": str(i)}
        if i == 4:
            files["m.py"] = "A = 2\nB = 1\n"
        if i == 9:
            files["m.py"] = "A = 2\nB = 2\n"
        shas.append(commit(repo, files, f"c{i}"))
    data = json.loads(find_break(repo, "test_m.py::test_a", "test_m.py::test_b",
                                 "test_m.py::test_c", "--good", shas[0]).stdout)
    groups = {g["commit"]["sha"]: sorted(t["test"] for t in g["tests"]) for g in data["culprits"]}
    assert groups == {shas[4]: ["test_m.py::test_a"],
                      shas[9]: ["test_m.py::test_b", "test_m.py::test_c"]}


@pytest.mark.parametrize("layout", ["flat", "src"])
def test_probes_run_the_commits_code_not_an_editable_install(tmp_path: Path, layout: str) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    pkg = "src/mylib" if layout == "src" else "mylib"
    pyproject = ('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                 '"setuptools.build_meta"\n[project]\nname = "mylib"\nversion = "0"\n')
    if layout == "flat":
        pyproject += '[tool.setuptools]\npackages = ["mylib"]\n'
    test = "from mylib import value\n\ndef test_value():\n    assert value() == 1\n"
    shas = [commit(repo, {"pyproject.toml": pyproject, f"{pkg}/__init__.py":
                          "def value():\n    return 1\n", "tests/test_v.py": test}, "start")]
    for i in range(1, 9):
        files = {"notes": str(i)}
        if i == 6:
            files[f"{pkg}/__init__.py"] = "def value():\n    return 2\n"
        shas.append(commit(repo, files, f"c{i}"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The probe environment sees everything bisector's own environment has installed.
    parent = sysconfig.get_paths()["purelib"]
    [site] = (venv / "lib").glob("python3*/site-packages")
    (site / "zz_parent_env.pth").write_text(parent + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "-e", str(repo)], check=True)
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import mylib; print(mylib.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert str(repo) in check.stdout  # the editable install points at the user's checkout
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "bisector", "find-break", "--json",
         "tests/test_v.py::test_value", "--good", shas[0]],
        cwd=repo, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[6]


def test_reports_are_written(calc, tmp_path: Path) -> None:
    repo, shas = calc
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", "--good", shas[0],
                   "--report", "md", str(md), "--report", "json", str(js), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "culprit" in proc.stdout and shas[13][:10] in proc.stdout
    assert f"## Culprit `{shas[13][:10]}` Clamp add() results at zero" in md.read_text()
    assert "git bisect start" in md.read_text()
    assert json.loads(js.read_text())["culprits"][0]["commit"]["sha"] == shas[13]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bad=--output=/tmp/bisector-pwned", "--good", "HEAD~3"], "cannot start with '-'"),
        (["--good", "-x"], "cannot start with '-'"),
        (["--good", "nosuchrev"], "unknown revision 'nosuchrev'"),
        (["--good", "HEAD"], "same commit"),
        (["--good", "side"], "not an ancestor"),
        ([], "does not fail at bad"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(calc, args: list[str], message: str) -> None:
    repo, shas = calc
    git(repo, "checkout", "-q", "-b", "side", shas[3])
    commit(repo, {"side.txt": "x"}, "side")
    git(repo, "checkout", "-q", "main")
    extra = ["--good", shas[2], "--bad", shas[10]] if not args else []
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", *args, *extra, cwd=repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("bisector: error")]
    assert len(err_lines) == 1 and message in err_lines[0]
    assert "Traceback" not in proc.stderr
    assert not Path("/tmp/bisector-pwned").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    if "unknown revision" in message:  # refused before any store was created
        assert not (repo / ".bisector").exists()


def test_good_already_failing(calc) -> None:
    repo, shas = calc
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", "--good", shas[15],
                   cwd=repo)
    assert proc.returncode == 2 and "already fails at good" in proc.stderr


def test_nothing_to_bisect_without_history(calc) -> None:
    repo, _ = calc
    proc = run_cli("find-break", cwd=repo)
    assert proc.returncode == 2 and "nothing to bisect" in proc.stderr


def test_sigint_mid_probe_leaves_nothing_behind(repo: Path) -> None:
    slow = "import time\n\ndef test_slow():\n    time.sleep(30)\n"
    shas = [commit(repo, {"test_s.py": slow}, "start")]
    for i in range(6):
        shas.append(commit(repo, {"n": str(i)}, f"c{i}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", "test_s.py::test_slow", "--good",
         shas[0]], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wt = repo / ".bisector" / "worktrees"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (wt.is_dir() and any(wt.iterdir())):
        time.sleep(0.2)
    time.sleep(2)  # the probe's pytest is running its 30 s test now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not any(wt.iterdir())
    leftover = subprocess.run(["pgrep", "-f", "test_s.py::test_slow"], capture_output=True,
                              text=True)
    assert leftover.stdout.strip() == ""


def test_a_killed_bisection_resumes_without_rerunning_its_probes(calc) -> None:
    repo, shas = calc
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", "--json",
         "tests/test_calc.py::test_add_negative", "--good", shas[0]],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    db = repo / ".bisector" / "history.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if db.exists() and query(db, "select count(*) from runs")[0][0] >= 3:
                break
        except sqlite3.OperationalError:  # the schema is still being created
            pass
        time.sleep(0.1)
    proc.kill()  # kill -9
    proc.communicate()
    done = query(db, "select count(*) from runs")[0][0]
    data = json.loads(find_break(repo, "tests/test_calc.py::test_add_negative",
                                 "--good", shas[0]).stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[13]
    assert data["probes_reused"] >= done
    assert any(n.startswith("resumed an interrupted bisection") for n in data["notes"])
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    journal = query(db, "select status from bisections order by id")
    assert journal == [("abandoned",), ("done",)]
    [(probes,)] = query(db, "select count(*) from probes where bisection_id = 2")
    assert probes == data["probes_run"]


def test_auto_bisect_names_the_culprit_in_the_summary(calc) -> None:
    repo, shas = calc
    git(repo, "checkout", "-q", shas[3])
    run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    proc = run_pytest(repo, "--track-history", "--auto-bisect", "-p", "no:cacheprovider")
    assert proc.returncode == 1  # the tests' own status
    out = proc.stdout
    assert "bisector: auto-bisect" in out
    assert f"culprit {shas[13][:10]} Clamp add() results at zero" in out
    assert "tests/test_calc.py::test_add_negative: assert 0 == -5 (confirmed)" in out
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_auto_bisect_without_a_past_pass_says_so(repo: Path) -> None:
    commit(repo, {"test_a.py": "def test_a():\n    assert 0\n",
                  "pytest.ini": "[pytest]\ntrack_history = true\nauto_bisect = true\n"})
    proc = run_pytest(repo)
    assert proc.returncode == 1
    assert "bisector: no bisection: no tracked pass" in proc.stdout


def test_setup_runs_in_the_probes_own_environment(tmp_path: Path, repo: Path) -> None:
    gen = ("import pathlib, sys\n"
           "v = pathlib.Path('VERSION').read_text().strip()\n"
           "out = f'VERSION = {v!r}\\nPREFIX = {sys.prefix!r}\\n'\n"
           "pathlib.Path('_version.py').write_text(out)\n")
    test = ("import sys\nfrom _version import VERSION, PREFIX\n\n"
            "def test_version():\n    assert PREFIX == sys.prefix != sys.base_prefix\n"
            "    assert VERSION.startswith('1.')\n")
    shas = [commit(repo, {"gen.py": gen, "VERSION": "1.0\n", "test_v.py": test}, "start")]
    for i in range(1, 9):
        files = {"VERSION": f"{'2' if i >= 5 else '1'}.{i}\n"}
        if i == 3:
            files["gen.py"] = "raise SystemExit('broken generator')\n"
        if i == 4:
            files["gen.py"] = gen
        shas.append(commit(repo, files, f"c{i}"))
    proc = find_break(repo, "test_v.py::test_version", "--good", shas[0],
                      "--setup", "python gen.py")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[5]
    assert not (repo / "_version.py").exists()
    assert not any((repo / ".bisector" / "worktrees").iterdir())


@pytest.mark.parametrize("mode", ["--first-parent", "--full-dag"])
def test_a_merge_culprit_is_searched_inside_its_branch(repo: Path, mode: str) -> None:
    base = commit(repo, {"calc.py": CALC_GOOD, "tests/test_calc.py": TESTS}, "start")
    for i in range(3):
        commit(repo, {"main.txt": str(i)}, f"main {i}")
    git(repo, "checkout", "-q", "-b", "feature", base)
    branch = [commit(repo, {"f.txt": "1"}, "feature 1"),
              commit(repo, {"calc.py": CALC_BAD}, "feature breaks add"),
              commit(repo, {"f.txt": "3"}, "feature 3")]
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "feature")
    merge = git(repo, "rev-parse", "HEAD")
    commit(repo, {"main.txt": "after"}, "after merge")
    data = json.loads(find_break(repo, "tests/test_calc.py::test_add_negative",
                                 "--good", base, mode).stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == branch[1]
    assert group["tests"][0]["confirmed"] is True
    if mode == "--first-parent":
        assert any("searched its branch" in n for n in data["notes"])
        # the result names both: the branch commit, and the merge that brought it in
        assert group["merge"]["sha"] == merge
        assert group["merge"]["subject"] == "Merge branch 'feature'"
    else:  # the whole graph is searched: no merge was followed
        assert group["merge"] is None


def test_a_culprit_in_a_branch_merged_into_a_branch_carries_the_main_lines_merge(
        repo: Path) -> None:
    good, culprit, merge = nested_merges(repo)
    data = json.loads(find_break(repo, "tests/test_calc.py::test_add_negative",
                                 "--good", good).stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == culprit
    assert group["merge"]["sha"] == merge  # not the merge of `sub` into `feature`


def test_a_merged_culprit_is_shown_with_its_merge_in_every_report(repo: Path,
                                                                   tmp_path: Path) -> None:
    good, culprit, merge = merged_branch(repo)
    md = tmp_path / "r.md"
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", "--good", good,
                   "--report", "md", str(md), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert f"culprit {culprit[:10]} feature breaks add" in proc.stdout
    assert f"merged  {merge[:10]} Merge branch 'feature' (the first-parent merge" in proc.stdout
    assert (f"- merged by: `{merge[:10]}` Merge branch 'feature' (the first-parent merge "
            f"that brought it in: `{merge}`)") in md.read_text()
    pytest_run = run_pytest(repo, "--track-history", "--auto-bisect", "-p", "no:cacheprovider")
    assert f"merged by {merge[:10]} Merge branch 'feature'" in pytest_run.stdout


def test_a_rerun_reuses_the_merged_branch_tip(repo: Path) -> None:
    """Its stored result was looked up before it was loaded: the tip was probed again."""
    good, culprit, _ = merged_branch(repo)
    args = ("tests/test_calc.py::test_add_negative", "--good", good)
    first = json.loads(find_break(repo, *args).stdout)
    second = json.loads(find_break(repo, *args).stdout)
    assert first["culprits"][0]["commit"]["sha"] == second["culprits"][0]["commit"]["sha"]
    assert second["culprits"][0]["commit"]["sha"] == culprit
    # the tip is stored, and so are the culprit's four agreeing runs and its parent's two
    # (the merge base, taken as good by ancestry, ran in the first two confirmation rounds)
    assert second["probes_run"] == 0
    purposes = query(repo / ".bisector" / "history.db",
                     "select purpose from probes where bisection_id = 1 and purpose like"
                     " 'confirm%' order by run_id")
    assert purposes == [("confirm culprit",), ("confirm parent",)] * 2 + [("confirm culprit",)]
    third = json.loads(find_break(repo, *args).stdout)
    assert third["culprits"][0]["commit"]["sha"] == culprit and third["probes_run"] == 0


@pytest.mark.parametrize("mode", ["--first-parent", "--full-dag"])
def test_a_merge_that_breaks_only_in_combination_is_the_culprit(repo: Path, mode: str) -> None:
    test = "import a, b\n\ndef test_one_is_one():\n    assert a.A == 1 or b.B == 1\n"
    base = commit(repo, {"a.py": "A = 1\n", "b.py": "B = 1\n", "test_ab.py": test}, "start")
    commit(repo, {"a.py": "A = 2\n"}, "main changes A")
    git(repo, "checkout", "-q", "-b", "feature", base)
    commit(repo, {"b.py": "B = 2\n"}, "feature changes B")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "feature")
    merge = git(repo, "rev-parse", "HEAD")
    data = json.loads(find_break(repo, "test_ab.py::test_one_is_one", "--good", base,
                                 mode).stdout)
    assert data["culprits"][0]["commit"]["sha"] == merge
    if mode == "--first-parent":
        assert any("branch passes alone" in n for n in data["notes"])


def test_a_test_file_that_did_not_exist_back_then(calc, tmp_path: Path) -> None:
    repo, shas = calc
    new = repo / "tests" / "test_new.py"
    new.write_text("from calc import add\n\n\ndef test_new_negative():\n"
                   "    assert add(-1, -1) == -2\n\n\ndef test_new_positive():\n"
                   "    assert add(1, 1) == 2\n")
    proc = find_break(repo, "--test-file", str(new), "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[13]
    assert [t["test"] for t in group["tests"]] == ["tests/test_new.py::test_new_negative"]
    assert any("test_new_positive: does not fail at bad" in n for n in data["notes"])
    assert git(repo, "status", "--porcelain") == "?? tests/test_new.py"


def test_a_test_unknown_at_both_ends(calc) -> None:
    repo, shas = calc
    proc = run_cli("find-break", "tests/test_calc.py::test_nope", "--good", shas[0], cwd=repo)
    assert proc.returncode == 2
    assert "cannot be run at either end" in proc.stderr and "Traceback" not in proc.stderr


def test_a_shallow_clone_missing_the_range_suggests_unshallow(calc, tmp_path: Path) -> None:
    repo, shas = calc
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "3", f"file://{repo}", str(shallow)],
                   check=True)
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", "--good", shas[0],
                   cwd=shallow)
    assert proc.returncode == 2
    assert "git fetch --unshallow" in proc.stderr and "Traceback" not in proc.stderr


def test_names_with_brackets_are_printed_not_read_as_markup(repo: Path) -> None:
    test = ('import pytest\nimport m\n\n@pytest.mark.parametrize("path", ["/users", "[b]"])\n'
            'def test_api(path):\n    assert m.OK\n')
    shas = [commit(repo, {"m.py": "OK = True\n", "test_api.py": test}, "start [wip]")]
    for i in range(1, 6):
        files = {"m.py": "OK = False\n"} if i == 3 else {"n": str(i)}
        shas.append(commit(repo, files, f"[bold]c{i}[/bold]"))
    proc = run_cli("find-break", "test_api.py::test_api[/users]", "test_api.py::test_api[[b]]",
                   "--good", shas[0], cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "test_api.py::test_api[/users]" in proc.stdout
    assert "test_api.py::test_api[[b]]" in proc.stdout
    assert "[bold]c3[/bold]" in proc.stdout
    run_pytest(repo, "--track-history")
    hist = run_cli("history", cwd=repo)
    assert hist.returncode == 0, hist.stderr
    assert "T1 = test_api.py::test_api[/users]" in hist.stdout


def test_a_project_in_a_subdirectory(repo: Path) -> None:
    shas = [commit(repo, {"py/pyproject.toml": "[tool.pytest.ini_options]\n",
                          "py/calc.py": CALC_GOOD, "py/tests/test_calc.py": TESTS}, "start")]
    for i in range(1, 8):
        files = {"py/calc.py": CALC_BAD} if i == 5 else {"notes": str(i)}
        shas.append(commit(repo, files, f"c{i}"))
    proc = run_cli("find-break", "--json", "tests/test_calc.py::test_add_negative",
                   "--good", shas[0], cwd=repo / "py")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["culprits"][0]["commit"]["sha"] == shas[5]


def test_sigterm_cleans_up_like_ctrl_c(repo: Path) -> None:
    slow = "import time\n\ndef test_slow():\n    time.sleep(30)\n"
    shas = [commit(repo, {"test_t.py": slow}, "start")]
    for i in range(4):
        shas.append(commit(repo, {"n": str(i)}, f"c{i}"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", "test_t.py::test_slow", "--good",
         shas[0]], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wt = repo / ".bisector" / "worktrees"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (wt.is_dir() and any(wt.iterdir())):
        time.sleep(0.2)
    time.sleep(2)
    proc.terminate()
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert not any(wt.iterdir())
    assert subprocess.run(["pgrep", "-f", "test_t.py::test_slow"], capture_output=True,
                          text=True).stdout.strip() == ""


def test_a_new_failing_test_does_not_spoil_the_probes_of_a_regression(repo: Path) -> None:
    """pytest refuses a whole run when one node id is missing; probes must not inherit that."""
    base = {"m.py": "A = 1\n", "test_m.py": "import m\n\ndef test_a():\n    assert m.A == 1\n"}
    shas = [commit(repo, base, "start")]
    for i in range(1, 10):
        files = {"n.txt": str(i)}
        if i == 6:
            files["m.py"] = "A = 2\n"
            files["test_new.py"] = "def test_new():\n    assert False\n"
        shas.append(commit(repo, files, f"c{i}"))
    for sha in (shas[0], shas[-1]):
        git(repo, "checkout", "-q", sha)
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    # auto-bisect: test_new never passed, so only test_a is bisected
    proc = run_pytest(repo, "--track-history", "--auto-bisect", "-p", "no:cacheprovider")
    assert f"culprit {shas[6][:10]} c6" in proc.stdout
    assert "test_new.py::test_new: not bisected, no tracked pass" in proc.stdout
    # named together with an explicit range, each gets its own answer
    data = json.loads(find_break(repo, "test_m.py::test_a", "test_new.py::test_new",
                                 "--good", shas[0]).stdout)
    named = {t["test"]: g["commit"]["sha"] if g["commit"] else None
             for g in data["culprits"] for t in g["tests"]}
    # test_new cannot run before it existed: bracketed, never blamed on an older commit
    assert named == {"test_m.py::test_a": shas[6], "test_new.py::test_new": None}


@pytest.mark.parametrize("kind", ["timeout", "setup"])
def test_a_timeout_or_a_failed_setup_is_untestable_never_bad(repo: Path, kind: str) -> None:
    slow = "import time\nimport m\n\ndef test_a():\n    time.sleep(120)\n    assert m.A == 1\n"
    fast = "import m\n\ndef test_a():\n    assert m.A == 1\n"
    shas = [commit(repo, {"m.py": "A = 1\n", "test_m.py": fast}, "start")]
    for i in range(1, 13):
        files = {"n.txt": str(i)}
        if i == 5:  # commits 5..7 hang (timeout) or carry a marker their build refuses
            files.update({"test_m.py": slow} if kind == "timeout" else {"broken": "1"})
        if i == 8:
            files["test_m.py"] = fast
            if kind == "setup":
                git(repo, "rm", "-q", "broken")
        if i == 10:
            files["m.py"] = "A = 2\n"
        shas.append(commit(repo, files, f"c{i}"))
    extra = ["--timeout", "10"] if kind == "timeout" else ["--setup", "test ! -f broken"]
    data = json.loads(find_break(repo, "test_m.py::test_a", "--good", shas[0], *extra).stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[10]
    skipped = [line.split()[-1] for line in data["bisect_log"] if "bisect skip" in line]
    assert skipped and set(skipped) <= set(shas[5:8])
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_untestable_below_one_is_refused(calc, value: str) -> None:
    """0 or -1 used to stop the search after the end checks, with exit 0 and no culprit."""
    repo, shas = calc
    proc = run_cli("find-break", "tests/test_calc.py::test_add_negative", "--good", shas[0],
                   "--max-untestable", value, cwd=repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--max-untestable" in proc.stderr and "Traceback" not in proc.stderr
    assert not (repo / ".bisector" / "worktrees").exists()


def test_max_untestable_below_one_is_refused_for_api_callers(calc) -> None:
    from bisector.errors import ConfigError
    from bisector.finder import find_break as api_find_break

    repo, shas = calc
    with pytest.raises(ConfigError, match="max-untestable"):
        api_find_break(repo, tests=["tests/test_calc.py::test_add_negative"], good=shas[0],
                       max_untestable=0)
    assert not (repo / ".bisector" / "worktrees").exists()


PAUSING_TEST = (
    "import os, time\nimport m\n\n"
    "def test_v():\n"
    "    marks = os.environ.get('BISECTOR_TEST_MARKS')\n"
    "    if marks:\n"
    "        with open(marks, 'a') as fh:\n"
    "            fh.write('x')\n"
    "        if len(open(marks).read()) >= 3:  # the third probe waits to be interrupted\n"
    "            time.sleep(60)\n"
    "    assert m.value() == 1\n"
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_bisection_says_so_at_once_and_resumes(
        repo: Path, tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C (or SIGTERM) marks the journal row `interrupted` before the process exits,
    not `running` until some later run; the next run still resumes it."""
    shas = planted(repo, PAUSING_TEST, 8, 5)
    marks = tmp_path / "marks"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find-break", "test_m.py::test_v", "--good", shas[0]],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "BISECTOR_TEST_MARKS": str(marks)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (marks.exists() and len(marks.read_text()) >= 3):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    db = repo / ".bisector" / "history.db"
    assert query(db, "select status, owner_pid from bisections") == [("interrupted", proc.pid)]
    data = json.loads(find_break(repo, "test_m.py::test_v", "--good", shas[0]).stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[5]
    assert any(n.startswith("resumed an interrupted bisection: 2") for n in data["notes"])
    assert query(db, "select status from bisections order by id") == [("abandoned",), ("done",)]


def _superproject(tmp_path: Path, *, init_in_checkout: bool = True) -> tuple[Path, list[str]]:
    """A repository whose code is in a submodule `lib` (its `lib/m.py` breaks at commit 5 of
    the superproject), and whose test imports it. The shas of the superproject, oldest first."""
    lib = tmp_path / "libsrc"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit(lib, {"m.py": "def value():\n    return 1\n"})
    sup = tmp_path / "sup"
    sup.mkdir()
    git(sup, "init", "-q", "-b", "main")
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    test = "from lib.m import value\n\ndef test_value():\n    assert value() == 1\n"
    shas = [commit(sup, {"test_lib.py": test}, "start")]
    for i in range(1, 8):
        if i == 5:
            commit(lib, {"m.py": "def value():\n    return 2\n"}, "break")
            git(sup / "lib", "-c", "protocol.file.allow=always", "pull", "-q", "origin", "main")
            git(sup, "add", "lib")
        shas.append(commit(sup, {"notes.txt": f"{i}\n"}, f"c{i}"))
    if not init_in_checkout:  # a clone that never ran `git submodule update --init`
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(sup), str(clone))
        return clone, shas
    return sup, shas


def test_probes_check_out_submodules_from_the_checkouts_own_store(tmp_path: Path) -> None:
    """Without the submodule, every probe was untestable ('found no collectors')."""
    sup, shas = _superproject(tmp_path)
    config = (sup / ".git" / "config").read_text()
    src = tmp_path / "libsrc"
    src.rename(tmp_path / "gone")  # the submodule's URL leads nowhere: no network, no source
    data = json.loads(find_break(sup, "test_lib.py::test_value", "--good", shas[0]).stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[5], data
    assert (sup / ".git" / "config").read_text() == config
    assert git(sup, "status", "--porcelain") == ""
    assert git(sup, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_submodule_missing_from_the_checkout_is_named(tmp_path: Path) -> None:
    clone, shas = _superproject(tmp_path, init_in_checkout=False)
    proc = find_break(clone, "test_lib.py::test_value", "--good", shas[0])
    assert "submodule lib" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


SUBTEST_TEST = '''import unittest

import m

class TestValue(unittest.TestCase):
    def test_values(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(m.value() * i, i, f"value() is {m.value()}")
'''


def test_a_regression_seen_only_in_a_failed_subtest_is_found(repo: Path) -> None:
    """pytest 9 ends a test whose subTest failed `PASSED`: it was stored as a pass, and the
    regression was invisible to `regressions` and find-break ("nothing to find")."""
    shas = planted(repo, SUBTEST_TEST, 12, culprit=7)
    git(repo, "checkout", "-q", shas[1])
    run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    proc = run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    assert "SUBFAILED(i=1)" in proc.stdout
    data = json.loads(find_break(repo).stdout)
    assert data["good"] == shas[1] and data["bad"] == shas[11]
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[7]
    [t] = group["tests"]
    assert t["test"] == "test_m.py::TestValue::test_values"
    assert t["confirmed"] is True and "value() is 2" in t["message"]


def test_each_probe_says_how_many_candidates_are_left(calc) -> None:
    """Not the starting range on every probe: the progress line and the journal's purpose
    (the nightly's `detail`) count what was still in range when the probe was chosen."""
    repo, shas = calc
    proc = find_break(repo, "tests/test_calc.py::test_add_negative", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "candidates left" in line]
    left = [int(line.split("(bisect, ")[1].split(" of ")[0]) for line in lines]
    assert left[0] == 19 and all(" of 19 candidates left)" in line for line in lines)
    assert left == sorted(left, reverse=True) and len(set(left)) == len(left), left
    purposes = [p for (p,) in query(repo / ".bisector" / "history.db",
                                    "select purpose from probes order by run_id")]
    assert [p for p in purposes if p.startswith("bisect")] == [
        f"bisect, {n} of 19 candidates left" for n in left]


def test_a_mistyped_test_id_is_refused_and_never_stored(repo: Path) -> None:
    """pytest finds it at neither end: one line naming it, exit 2, and no test, result or
    column of `bisector history` made of it. Next to a real test it is a note, not a test."""
    shas = planted(repo, "from m import value\n\n\ndef test_v():\n    assert value() == 1\n",
                   6, 3)
    db = repo / ".bisector" / "history.db"
    typo = "test_m.py::test_vv"
    proc = run_cli("find-break", typo, "--good", shas[0], cwd=repo)
    assert proc.returncode == 2
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("bisector: error")]
    assert typo in line and "cannot be run at either end" in line
    assert query(db, "select nodeid from tests") == []
    assert query(db, "select count(*) from results") == [(0,)]

    proc = find_break(repo, "test_m.py::test_v", typo, "--good", shas[0])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[3]
    assert any(typo in note for note in data["notes"])
    assert query(db, "select nodeid from tests") == [("test_m.py::test_v",)]
    history = run_cli("history", cwd=repo).stdout
    assert "T1 = test_m.py::test_v" in history and "T2" not in history


def test_a_new_test_untestable_at_good_is_stored_once_it_ran(repo: Path) -> None:
    """Held back only until the id exists: a test added after the good end fails at bad and is
    stored there, so its untestable results at older commits are stored as well."""
    shas = planted(repo, "def test_old():\n    pass\n", 6, 3)
    commit(repo, {"test_new.py": "from m import value\n\n\ndef test_new():\n"
                                 "    assert value() == 1\n"}, "a new test")
    proc = find_break(repo, "test_new.py::test_new", "--good", shas[0])
    assert proc.returncode == 0, proc.stderr  # bracketed: it exists at no older commit
    outcomes = {o for (o,) in query(repo / ".bisector" / "history.db",
                                    "select outcome from results")}
    assert {"failed", "untestable"} <= outcomes


def test_reports_link_the_culprit_and_the_ci_run(repo: Path, tmp_path: Path) -> None:
    """As the nightly's: in Actions the culprit links to its commit and diff, the report to its
    run, in --json and both --report files; elsewhere [tool.bisector] commit-url does."""
    commit(repo, {"pyproject.toml": '[tool.bisector]\n'
                                    'commit-url = "https://git.example/m/-/commit/{sha}"\n'})
    shas = planted(repo, "from m import value\n\ndef test_value():\n    assert value() == 1\n",
                   6, 3)
    args = ("find-break", "--json", "-q", "test_m.py::test_value", "--good", shas[0])
    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "org/m",
               "GITHUB_RUN_ID": "77"}
    proc = run_cli(*args, "--report", "md", str(tmp_path / "r.md"),
                   "--report", "json", str(tmp_path / "r.json"), cwd=repo, env=actions)
    assert proc.returncode == 0, proc.stderr
    url = f"https://github.com/org/m/commit/{shas[3]}"  # Actions' own, before commit-url
    for data in (json.loads(proc.stdout), json.loads((tmp_path / "r.json").read_text())):
        [group] = data["culprits"]
        assert group["commit"]["sha"] == shas[3]
        assert group["links"] == {"commit": url, "diff": url + ".diff"}
        assert data["links"] == {"run": "https://github.com/org/m/actions/runs/77"}
    md = (tmp_path / "r.md").read_text()
    assert f"## Culprit [`{shas[3][:10]}`]({url})" in md
    assert f"- diff: [{url}.diff]({url}.diff)" in md
    assert "CI run: [https://github.com/org/m/actions/runs/77]" in md
    # outside Actions (even when this suite runs in Actions): the configured commit-url
    proc = run_cli(*args, cwd=repo, env={"GITHUB_SERVER_URL": "", "GITHUB_REPOSITORY": "",
                                         "GITHUB_RUN_ID": ""})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["links"]["commit"] == f"https://git.example/m/-/commit/{shas[3]}"
    assert data["links"] == {"run": None}
