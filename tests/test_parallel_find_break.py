"""find-break --jobs K: K probes per round, at once, each in its own worktree."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bisector.cli import Jobs
from bisector.executors.factory import auto_jobs
from bisector.search import rounds_needed

from .conftest import commit, git, planted, run_cli, run_pytest
from .test_flaky_find_break import TEST_ID as FLAKY_ID
from .test_flaky_find_break import build as build_flaky

TEST_ID = "test_m.py::test_value"


# every find-break here that writes JSON has its bisect_log replayed to its culprit
pytestmark = pytest.mark.usefixtures("every_log_replays")


def timed_test(log: Path) -> str:
    """A test that notes when it ran, so the test can see probes overlap."""
    return (
        "import time\nimport m\n\n"
        "def test_value():\n"
        "    start = time.time()\n"
        "    time.sleep(0.4)\n"
        f"    with open({str(log)!r}, 'a') as fh:\n"
        "        fh.write(f'{start} {time.time()}\\n')\n"
        "    assert m.value() == 1\n"
    )


def build(repo: Path, log: Path, n: int, culprit: int) -> list[str]:
    return planted(repo, timed_test(log), n, culprit)


def test_jobs_run_rounds_at_once(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "ran"
    shas = build(repo, log, n=40, culprit=23)
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--jobs", "3", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["culprits"][0]["commit"]["sha"] == shas[23]
    assert data["culprits"][0]["tests"][0]["confirmed"] is True
    assert data["jobs"] == 3
    # one round for both ends, ceil(log4 39) = 3 for the search, two to confirm (no history:
    # the culprit's three runs more and its parent's one are four runs, ADR 24)
    assert data["rounds"] <= 1 + rounds_needed(39, 3) + 2, data
    assert data["probes_run"] > data["rounds"]
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlapping >= 2, "probes of a round must run at the same time"
    assert not list((repo / ".bisector" / "worktrees").glob("*")), "every worktree removed"
    assert git(repo, "worktree", "list").count("\n") == 0


def test_jobs_agree_with_one_at_a_time(repo: Path, tmp_path: Path) -> None:
    shas = build(repo, tmp_path / "ran", n=17, culprit=6)
    one = json.loads(run_cli("find-break", "--json", TEST_ID, "--good", shas[0],
                             "--history-db", str(tmp_path / "a.db"), cwd=repo).stdout)
    four = json.loads(run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "-j", "4",
                              "--history-db", str(tmp_path / "b.db"), cwd=repo).stdout)
    assert one["culprits"][0]["commit"] == four["culprits"][0]["commit"]
    assert one["culprits"][0]["commit"]["sha"] == shas[6]
    assert four["rounds"] < one["rounds"]
    text = run_cli("find-break", TEST_ID, "--good", shas[0], "-j", "2", "--history-db",
                   str(tmp_path / "c.db"), cwd=repo).stdout
    assert "rounds of up to 2" in text


def locked_counter_test(counter: Path, every: int = 4) -> str:
    """The flaky test of test_flaky_find_break, its count taken under a lock: probes of one
    round run at once, and two runs must not read the same count."""
    return (
        "import fcntl\nimport pathlib\nimport m\n\n"
        f"COUNTER = pathlib.Path({str(counter)!r})\n\n"
        "def test_value():\n"
        "    with open(COUNTER.with_suffix('.lock'), 'w') as lock:\n"
        "        fcntl.flock(lock, fcntl.LOCK_EX)\n"
        "        n = int(COUNTER.read_text()) if COUNTER.exists() else 0\n"
        "        COUNTER.write_text(str(n + 1))\n"
        f"    assert n % {every} != {every - 1}, 'flaked'\n"
        "    assert m.value() == 1\n"
    )


def test_a_flaky_test_with_jobs(repo: Path, tmp_path: Path) -> None:
    shas = build_flaky(repo, tmp_path / "runs", test=locked_counter_test(tmp_path / "runs"))

    git(repo, "checkout", "-q", shas[0])
    for _ in range(4):
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")
    git(repo, "checkout", "-q", "main")
    proc = run_cli("find-break", "--json", FLAKY_ID, "--good", shas[0], "--jobs", "2",
                   cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"] is not None, (data["notes"], group["tests"])
    assert group["commit"]["sha"] == shas[15]
    assert group["tests"][0]["verdict"] == "culprit"
    assert group["tests"][0]["confidence"] >= 0.99


@pytest.mark.parametrize(("value", "env"), [("0", False), ("-1", False), ("banana", False),
                                            ("\u00b2", False), ("+3", False), ("2.5", True),
                                            ("none", True)])
def test_jobs_must_be_a_count_or_auto(repo: Path, value: str, env: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    commit(repo, {"a.txt": "1"})
    if env:
        monkeypatch.setenv("BISECTOR_JOBS", value)
        proc = run_cli("find-break", "x::y", cwd=repo)
    else:
        proc = run_cli("find-break", "x::y", "--jobs", value, cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "--jobs" in proc.stderr and "is neither a count of 1 or more nor auto" in proc.stderr
    assert not (repo / ".bisector").exists()


def test_jobs_default_to_auto(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                              ) -> None:
    """No --jobs and no BISECTOR_JOBS: as many probes at once as `auto` gives here."""
    monkeypatch.delenv("BISECTOR_JOBS")
    shas = build(repo, tmp_path / "ran", n=12, culprit=7)
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["jobs"] == auto_jobs()
    assert data["culprits"][0]["commit"]["sha"] == shas[7]
    monkeypatch.setenv("BISECTOR_JOBS", "auto")
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--jobs", "1", cwd=repo)
    assert json.loads(proc.stdout)["jobs"] == 1  # the option beats the environment
    assert "[default: auto]" in run_cli("find-break", "--help").stdout


@pytest.mark.parametrize(("cores", "jobs"), [(1, 1), (2, 2), (3, 3), (4, 4), (64, 4)])
def test_auto_jobs_is_the_cores_capped(cores: int, jobs: int, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    assert auto_jobs() == jobs == Jobs().convert("auto", None, None)


RUN_NOTED = ("import subprocess\nimport m\n\n"
             "def test_value():\n"
             "    sha = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True,\n"
             "                         text=True, check=True).stdout.strip()\n"
             "    with open({log!r}, 'a') as fh:\n"
             "        fh.write(sha + '\\n')\n"
             "    assert m.value() == 1\n")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_confirmation_reruns_reuse_the_culprits_setup(repo: Path, tmp_path: Path, jobs: str
                                                      ) -> None:
    """The culprit's re-runs find its setup still in a checkout (ADR 25): of its four runs
    (the search's, then three more: four agreeing, ADR 24) at most two set up."""
    runs, setups = tmp_path / "runs", tmp_path / "setups"
    shas = planted(repo, RUN_NOTED.format(log=str(runs)), n=24, culprit=13)
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--jobs", jobs,
                   "--setup", f"git rev-parse HEAD >> {setups}", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    culprit = json.loads(proc.stdout)["culprits"][0]
    assert culprit["commit"]["sha"] == shas[13] and culprit["tests"][0]["confirmed"] is True
    ran, set_up = runs.read_text().split(), setups.read_text().split()
    assert ran.count(shas[13]) == 4, ran
    assert set_up.count(shas[13]) <= 2, (set_up, ran)
    assert ran.count(shas[12]) == 2 and set_up.count(shas[12]) == 1, (set_up, ran)
    assert len(set_up) <= len(ran) - 2, "the culprit's runs beyond two set nothing up"
    assert not list((repo / ".bisector" / "worktrees").glob("*")), "every checkout removed"


def test_the_good_end_as_parent_keeps_its_setup_through_the_search(repo: Path, tmp_path: Path
                                                                   ) -> None:
    """The ends are the search's first bounds: probed in the first round, the good end's
    setup is kept through the rounds that replace others', so when it is the culprit's
    parent its confirming run builds nothing (before, the least lately used checkout was
    replaced and the good end set up twice)."""
    runs, setups = tmp_path / "runs", tmp_path / "setups"
    shas = planted(repo, RUN_NOTED.format(log=str(runs)), n=24, culprit=1)
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], "--jobs", "2",
                   "--setup", f"git rev-parse HEAD >> {setups}", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    culprit = json.loads(proc.stdout)["culprits"][0]
    assert culprit["commit"]["sha"] == shas[1] and culprit["tests"][0]["confirmed"] is True
    ran, set_up = runs.read_text().split(), setups.read_text().split()
    assert ran.count(shas[0]) == 2 and ran.count(shas[1]) == 4, ran
    assert set_up.count(shas[0]) == 1 and set_up.count(shas[1]) == 1, (set_up, ran)
