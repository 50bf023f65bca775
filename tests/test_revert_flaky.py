"""The revert check of a flaky test (issue 17: "a flaky test's revert check is repeated as
its rate requires"; "a revert that still fails is said plainly"), in-process: a real
repository and store, the tests' outcomes faked (tests/test_finder.py's FakeExecutor)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bisector.bisection.isolate import IsolateOptions
from bisector.executors import Probe, ProbeOutcome
from bisector.finder import Finder
from bisector.gitrepo import Repository
from bisector.history import HistoryStore
from bisector.isolation import repeats_for
from bisector.model import Finding, Outcome
from bisector.reports.bisect import summary_lines

from .test_finder import ENV, FAIL, T1, FakeExecutor, built, fails_from, imported, seed


@pytest.fixture(autouse=True)
def _fixed_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same shas on every run (as in test_finder), so `six` builds once per session."""
    for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(name, "2026-01-01T00:00:00 +0000")


@pytest.fixture
def labels(tmp_path: Path) -> dict[str, str]:
    return six(tmp_path / "repo")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}") as opened:
        yield opened


def six(repo: Path) -> dict[str, str]:
    """c0..c5 on main; c3 changes m.txt (the culprit), the others n.txt, so that c3's revert
    applies at c5."""
    steps = [(f"c{i}", {"m.txt" if i == 3 else "n.txt": f"{i}\n"}, (f"c{i - 1}",) if i else (),
              f"c{i}") for i in range(6)]
    return built(repo, "revert-six", lambda where: imported(where, steps, {"c5": "main"}))


@dataclass
class RevertFake(FakeExecutor):
    """A FakeExecutor whose probes with a patch (the revert checks at c5) get `reverted`'s
    outcomes in turn, then a pass."""

    reverted: list[Outcome] = field(default_factory=list)
    revert_runs: int = 0

    def run(self, probe: Probe) -> ProbeOutcome:
        if probe.patch is None:
            return super().run(probe)
        self.revert_runs += 1
        self.schedule[("revert", T1)] = self.reverted[self.revert_runs - 1:][:1]
        results = {t: self._result("revert", t) for t in probe.nodeids}
        now = time.time()
        return ProbeOutcome(probe, results, ENV, now, now, 0, host="fake-host")


def _revert(labels: dict[str, str], store: HistoryStore, tmp_path: Path,
            reverted: list[Outcome]) -> tuple[Finding, RevertFake, list[str]]:
    repo = tmp_path / "repo"
    fake = RevertFake({sha: label for label, sha in labels.items()}, fails_from(3),
                      reverted=reverted)
    options = IsolateOptions(isolate=False, verify_revert=True, revert_dir=tmp_path / "out")
    with Repository(repo) as git_repo:
        finder = Finder(git_repo, store, fake, isolate=options)
        result = finder.run([T1], labels["c2"], labels["c5"])
    [finding] = result.findings
    assert finding.culprit is not None and finding.culprit.sha == labels["c3"]
    return finding, fake, summary_lines(result)


FLAKY_PAST = {"c0": "pfp", "c1": "ppf"}  # T1 failed falsely before: flake evidence


def test_a_flaky_tests_revert_that_still_fails_is_run_as_often_as_its_rate_asks(
        labels: dict[str, str], store: HistoryStore, tmp_path: Path) -> None:
    seed(store, tmp_path / "repo", labels, FLAKY_PAST)
    finding, fake, lines = _revert(labels, store, tmp_path, [Outcome.FAILED] * 10)
    rate = finding.false_fail_rate
    assert rate is not None and rate > 0
    runs = repeats_for(rate)
    assert runs > 1 and fake.revert_runs == runs
    revert = finding.revert
    assert revert is not None and not revert.verified and revert.patch is None
    bad = labels["c5"][:10]
    said = (f"with 1 hunk reverted at {bad}, {T1} still failed in each of {runs} runs "
            f"({FAIL})")
    assert revert.detail == said
    assert f"  revert  NOT verified: {said}" in lines
    assert not (tmp_path / "out").exists()  # no patch for a revert that does not pass


def test_a_flaky_tests_revert_that_passes_on_a_later_run_is_verified(
        labels: dict[str, str], store: HistoryStore, tmp_path: Path) -> None:
    seed(store, tmp_path / "repo", labels, FLAKY_PAST)
    finding, fake, _ = _revert(labels, store, tmp_path, [Outcome.FAILED, Outcome.FAILED])
    assert fake.revert_runs == 3  # two false failures, then the pass
    revert = finding.revert
    assert revert is not None and revert.verified
    assert revert.patch is not None and Path(revert.patch).parent == tmp_path / "out"


def test_a_deterministic_tests_failing_revert_runs_once_and_is_said(
        labels: dict[str, str], store: HistoryStore, tmp_path: Path) -> None:
    finding, fake, _ = _revert(labels, store, tmp_path, [Outcome.FAILED] * 10)
    assert not finding.false_fail_rate and fake.revert_runs == 1
    assert finding.revert is not None
    assert finding.revert.detail == (f"with 1 hunk reverted at {labels['c5'][:10]}, "
                                     f"{T1} still failed ({FAIL})")
