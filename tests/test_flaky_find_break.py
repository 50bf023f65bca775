"""Flake-aware find-break and `bisector flaky`, end to end with a deterministically flaky test.

The test under bisection counts its own runs in a file outside the repository and fails every
fourth run on a good commit, so a flaky history is reproducible and these tests are not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import commit, git, run_cli, run_pytest

TEST_ID = "test_m.py::test_value"


# every find-break here that writes JSON has its bisect_log replayed to its culprit
pytestmark = pytest.mark.usefixtures("every_log_replays")


def counted_test(counter: Path, body: str) -> str:
    """`test_value`, whose runs are numbered in `counter` (n, from 0), then `body`."""
    return (
        "import pathlib\nimport m\n\n"
        f"COUNTER = pathlib.Path({str(counter)!r})\n\n"
        "def test_value():\n"
        "    n = int(COUNTER.read_text()) if COUNTER.exists() else 0\n"
        "    COUNTER.write_text(str(n + 1))\n"
        + body
    )


def flaky_test(counter: Path, every: int = 4) -> str:
    return counted_test(counter, f"    assert n % {every} != {every - 1}, 'flaked'\n"
                                 "    assert m.value() == 1\n")


def build(repo: Path, counter: Path, *, n: int = 24, culprit: int | None = 15,
          keyerror: range = range(0), every: int = 4, test: str | None = None) -> list[str]:
    shas = [commit(repo, {"m.py": "def value():\n    return 1\n",
                          "test_m.py": test or flaky_test(counter, every)}, "start")]
    for i in range(1, n):
        files = {"notes.txt": f"{i}\n"}
        if culprit is not None and i == culprit:
            files["m.py"] = "def value():\n    return 2\n"
        if i == keyerror.start:
            files["m.py"] = "def value():\n    return {}['missing']\n"
        if keyerror and i == keyerror.stop:
            files["m.py"] = "def value():\n    return 1\n"
        shas.append(commit(repo, files, f"c{i}"))
    return shas


def track(repo: Path, times: int = 1) -> None:
    for _ in range(times):
        run_pytest(repo, "--track-history", "-p", "no:cacheprovider")


def test_a_flaky_test_still_gets_the_right_culprit(repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    shas = build(repo, counter)
    git(repo, "checkout", "-q", shas[0])
    track(repo, 4)  # history: three passes and a false failure on the good end
    git(repo, "checkout", "-q", "main")
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], cwd=repo)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[15]
    [t] = group["tests"]
    assert t["verdict"] == "culprit" and t["confidence"] >= 0.99
    assert t["false_fail_rate"] > 0 and t["false_fail_interval"][0] <= t["false_fail_rate"]
    assert t["confirmed"] is True
    assert "flake-aware" in proc.stderr
    # its runs disagree, so they are comments of the bisect_log (replayed by the autouse
    # fixture to the culprit): its conclusion is what replays
    assert any(line.startswith("# flake-aware probe: ") for line in data["bisect_log"])

    md = tmp_path / "r.md"
    run_cli("find-break", TEST_ID, "--good", shas[0], "--report", "md", str(md), cwd=repo)
    assert "flaky: false-failure rate" in md.read_text()

    listed = json.loads(run_cli("flaky", "--json", cwd=repo).stdout)["flaky"]
    [entry] = listed
    assert entry["test"] == TEST_ID and entry["runs"] >= 4 and 0 < entry["false_fail_rate"] < 1
    assert shas[0] in entry["flipped"]
    text = run_cli("flaky", cwd=repo).stdout
    assert "1 flaky test" in text and TEST_ID in text


def test_a_failure_that_was_a_flake_gets_a_flake_verdict(repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    shas = build(repo, counter, n=12, culprit=None)
    for sha, times in ((shas[4], 2), (shas[8], 1)):  # three passing runs
        git(repo, "checkout", "-q", sha)
        track(repo, times)
    git(repo, "checkout", "-q", "main")
    # the fourth run flakes at HEAD: a plain bisection would blame HEAD
    proc = run_pytest(repo, "--track-history", "--auto-bisect", "-p", "no:cacheprovider")
    assert proc.returncode == 1  # the session's own status: its test failed
    assert "no culprit: test is flaky at both ends (false-failure rate" in proc.stdout
    assert "culprit " + shas[-1][:10] not in proc.stdout


def test_another_failure_is_reported_and_not_blamed(repo: Path, tmp_path: Path) -> None:
    # a test that never flakes, so only the KeyError commits (5..10) disagree with it
    shas = build(repo, tmp_path / "runs", n=20, culprit=14, keyerror=range(5, 11),
                 every=10**9)
    proc = run_cli("find-break", "--json", TEST_ID, "--good", shas[0], cwd=repo)
    data = json.loads(proc.stdout)
    assert any(n.startswith("another failure seen at") and "KeyError" in n
               for n in data["notes"]), data["notes"]
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[14]  # the AssertionError's culprit, not c5


def scripted_test(counter: Path, flakes: set[int]) -> str:
    """A test whose runs are numbered in a file: run n flakes (fails on a good commit, passes
    on a bad one) when n is in `flakes`, and is deterministic otherwise."""
    return counted_test(
        counter, f"    flaked = n in {sorted(flakes)!r}\n"
                 "    assert (m.value() == 1) != flaked, 'flaked' if flaked else 'wrong value'\n")


def find(repo: Path, good: str) -> tuple[int, dict, str]:
    proc = run_cli("find-break", "--json", TEST_ID, "--good", good, cwd=repo)
    return proc.returncode, json.loads(proc.stdout) if proc.returncode == 0 else {}, \
        proc.stderr


def test_a_false_failure_at_the_good_end_is_run_again_not_final(repo: Path,
                                                                 tmp_path: Path) -> None:
    """No history at all: the bad end runs first (run 0), the good end's first run (run 1)
    flakes. It is run again, passes, and that disagreement starts the flaky search."""
    counter = tmp_path / "runs"
    shas = build(repo, counter, n=12, culprit=7, test=scripted_test(counter, {1}))
    code, data, err = find(repo, shas[0])
    assert code == 0, err  # before: "already fails at good ...: give an older --good"
    assert "recheck good end" in err and "flake-aware" in err
    [group] = data["culprits"]
    assert group["commit"]["sha"] == shas[7]
    [t] = group["tests"]
    assert t["verdict"] == "culprit" and t["confidence"] >= 0.99


def test_three_false_failures_at_the_good_end_are_not_a_refusal(repo: Path,
                                                                  tmp_path: Path) -> None:
    """No history: the good end's first three runs (runs 1-3) flake, as 0.8 % of bisections
    of a test failing falsely 20 % of the time do. Before, that was a refusal ("already
    fails at good"); the fourth run passes and starts the flaky search."""
    counter = tmp_path / "runs"
    shas = build(repo, counter, n=12, culprit=7, test=scripted_test(counter, {1, 2, 3}))
    code, data, err = find(repo, shas[0])
    assert code == 0, err
    assert err.count("recheck good end") == 3 and "flake-aware" in err
    assert data["culprits"][0]["commit"]["sha"] == shas[7]


def test_a_false_pass_at_the_bad_end_is_run_again_not_final(repo: Path,
                                                             tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    shas = build(repo, counter, n=12, culprit=7, test=scripted_test(counter, {0}))
    code, data, err = find(repo, shas[0])
    assert code == 0, err  # before: "does not fail at bad ...: nothing to find"
    assert "recheck bad end" in err and "flake-aware" in err
    assert data["culprits"][0]["commit"]["sha"] == shas[7]


def test_a_good_end_that_fails_every_time_is_still_refused(repo: Path,
                                                           tmp_path: Path) -> None:
    shas = build(repo, tmp_path / "runs", n=8, culprit=None,
                 test="def test_value():\n    assert False, 'broken all along'\n")
    proc = run_cli("find-break", TEST_ID, "--good", shas[0], cwd=repo)
    assert proc.returncode == 2
    assert "already fails at good" in proc.stderr and "give an older --good" in proc.stderr
    # the bad end once, the good end five times (no history: ADR 24): the first run, 4 re-runs
    assert proc.stderr.count("check good end") == 5 and proc.stderr.count("(check bad end") == 1


def test_ends_that_agree_cost_no_extra_run(repo: Path, tmp_path: Path) -> None:
    shas = build(repo, tmp_path / "runs", n=17, culprit=11, every=10**9)
    code, data, err = find(repo, shas[0])
    assert code == 0, err
    assert data["culprits"][0]["commit"]["sha"] == shas[11]
    # 2 end checks, ceil(log2 16) = 4 bisection probes, culprit (three times: no history,
    # ADR 0024) and parent confirmed
    assert data["probes_run"] == 2 + 4 + 4 and "recheck" not in err
