"""`Finder` in-process, with a fake executor: the probes, rounds, bisect log, notes and findings
of each kind of bisection, pinned.

A real git repository and a real HistoryStore (SQLite in tmp_path); only the running of tests
is faked: each (commit, test) has an outcome, and a schedule can hand out other outcomes first
(a flake). Commits are named by label in what is pinned (`c3`, `b2`, `M`), so the pins read
as the scenario and stay stable across runs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from bisector.errors import BisectError
from bisector.executors import Probe, ProbeOutcome
from bisector.finder import Finder
from bisector.gitrepo import Repository
from bisector.history import HistoryStore
from bisector.model import BisectResult, Environment, Outcome, Run, TestResult, Trigger
from bisector.search import Verdict

from .conftest import IDENTITY, git

ENV = Environment(python="fake", platform="fake", deps_hash="none", key="fake",
                  fingerprint="fake")
T1, T2 = "test_m.py::test_one", "test_m.py::test_two"
FAIL = "AssertionError: assert 2 == 1"

Rule = Callable[[str, str], Outcome | tuple[Outcome, str] | TestResult]


@dataclass
class FakeExecutor:
    """An `Executor` whose tests' outcomes are a function of (label, test).

    `schedule[(label, test)]` hands out outcomes before the rule is asked (a flake);
    `interrupt_at` raises KeyboardInterrupt on that probe (1-based), as Ctrl-C would.
    """

    labels: dict[str, str]  # sha -> label
    rule: Rule
    schedule: dict[tuple[str, str], list[Outcome]] = field(default_factory=dict)
    interrupt_at: int | None = None
    probes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    kept: list[set[str]] = field(default_factory=list)  # what the search said to keep, each
    aborted: bool = False

    def _result(self, label: str, test: str) -> TestResult:
        queued = self.schedule.get((label, test))
        got = queued.pop(0) if queued else self.rule(label, test)
        if isinstance(got, TestResult):
            return got
        outcome, message = got if isinstance(got, tuple) else (got, FAIL)
        if outcome is Outcome.PASSED:
            return TestResult(test, outcome, 0.01)
        if outcome is Outcome.UNTESTABLE:
            return TestResult(test, outcome, 0.0, None, "cannot build", phase="collect")
        return TestResult(test, outcome, 0.01, "sig-" + message.split(":")[0], message)

    def run(self, probe: Probe) -> ProbeOutcome:
        label = self.labels[probe.sha]
        self.probes.append((label, probe.nodeids))
        if self.interrupt_at is not None and len(self.probes) >= self.interrupt_at:
            raise KeyboardInterrupt
        tests = (T1,) if probe.whole_files else probe.nodeids  # test_m.py holds test_one
        results = {t: self._result(label, t) for t in tests}
        now = time.time()
        status = 0 if all(r.outcome is Outcome.PASSED for r in results.values()) else 1
        return ProbeOutcome(probe, results, ENV, now, now, status, host="fake-host")

    def run_round(self, probes: list[Probe]) -> list[ProbeOutcome]:
        self.rounds.append(len(probes))
        return [self.run(p) for p in probes]

    def keep(self, shas: Collection[str]) -> None:
        self.kept.append(set(shas))

    def abort(self) -> None:
        self.aborted = True

    def env_key(self) -> str:
        return ENV.key

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def make_finder(repo: Repository, store: HistoryStore, fake: FakeExecutor, *, jobs: int = 1,
                max_untestable: int | None = 20) -> Finder:
    finder = Finder(repo, store, fake, jobs=jobs)
    finder.max_untestable = max_untestable
    return finder


def fails_from(first: int) -> Rule:
    """A rule: commit `cN` fails from N >= first on (any label not `c<int>` passes)."""
    def rule(label: str, test: str) -> Outcome:
        if not label[1:].isdigit():
            return Outcome.PASSED
        return Outcome.FAILED if int(label[1:]) >= first else Outcome.PASSED
    return rule


# Repositories built once per session and copied: the dates are fixed, so are the shas.
_BUILT: dict[str, tuple[Path, dict[str, str]]] = {}


def built(repo: Path, key: str, build: Callable[[Path], dict[str, str]]) -> dict[str, str]:
    """`build(repo)`, or a copy of the repository it built before; label -> sha."""
    if key not in _BUILT:
        template = repo.parent / f"template-{key}"
        template.mkdir()
        _BUILT[key] = (template, build(template))
    template, labels = _BUILT[key]
    # git needs none of init's sample hooks and description: half of what a copy would copy
    shutil.copytree(template, repo, ignore=shutil.ignore_patterns("hooks", "description"))
    return dict(labels)


# A commit for `imported`: label, files it changes, parent labels, message.
Step = tuple[str, dict[str, str], tuple[str, ...], str]
WHEN = "1767225600 +0000"  # 2026-01-01T00:00:00 +0000, the date _fixed_dates gives git


def imported(repo: Path, steps: list[Step], branches: dict[str, str]) -> dict[str, str]:
    """The commits `git commit` would make (the same trees, identity, dates and messages, so
    the same shas), written by one `git fast-import`: label -> sha. `branches` names the
    branch each tip is on (label -> branch); HEAD is main, checked out."""
    git(repo, "init", "-q", "-b", "main")
    who = f"{IDENTITY['GIT_AUTHOR_NAME']} <{IDENTITY['GIT_AUTHOR_EMAIL']}> {WHEN}"
    marks = {label: k for k, (label, *_rest) in enumerate(steps, 1)}
    stream = []
    for label, files, parents, message in steps:
        text = message + "\n"
        # every commit says its parents (a root starts from a reset branch): the branch heads
        # are set by the resets at the end
        stream += [] if parents else ["reset refs/heads/main"]
        stream += ["commit refs/heads/main", f"mark :{marks[label]}", f"author {who}",
                   f"committer {who}", f"data {len(text.encode())}", text.rstrip("\n")]
        stream += [f"from :{marks[parents[0]]}"] if parents else []
        stream += [f"merge :{marks[p]}" for p in parents[1:]]
        for name, content in files.items():
            stream += [f"M 100644 inline {name}", f"data {len(content.encode())}",
                       content.rstrip("\n")]
        stream.append("")
    stream += [f"reset refs/heads/{branch}\nfrom :{marks[label]}\n"
               for label, branch in branches.items()]
    # one pack, not a directory per loose object: each test copies the repository and pytest
    # deletes it later, so its file count is most of that time; the marks file names the shas
    marks_file = repo / ".git" / "marks"
    subprocess.run(["git", "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet",
                    f"--export-marks={marks_file}"], cwd=repo, check=True,
                   input="\n".join(stream) + "\n", text=True)
    by_mark = dict(line.split() for line in marks_file.read_text().splitlines())
    marks_file.unlink()
    git(repo, "reset", "-q", "--hard", "main")
    return {label: by_mark[f":{mark}"] for label, mark in marks.items()}


def line(repo: Path, n: int) -> dict[str, str]:
    """n commits on main, c0..c{n-1}; label -> sha."""
    steps = [(f"c{i}", {"n.txt": f"{i}\n"}, (f"c{i - 1}",) if i else (), f"c{i}")
             for i in range(n)]
    return built(repo, f"line-{n}", lambda where: imported(where, steps, {f"c{n - 1}": "main"}))


def merged(repo: Path) -> dict[str, str]:
    """c0, c1 on main; a branch b1, b2, b3 from c1; c2 on main, then the merge M and c3."""
    steps: list[Step] = [
        ("c0", {"n.txt": "0\n"}, (), "c0"), ("c1", {"n.txt": "1\n"}, ("c0",), "c1"),
        ("b1", {"b.txt": "1\n"}, ("c1",), "b1"), ("b2", {"b.txt": "2\n"}, ("b1",), "b2"),
        ("b3", {"b.txt": "3\n"}, ("b2",), "b3"), ("c2", {"n.txt": "2\n"}, ("c1",), "c2"),
        ("M", {"b.txt": "3\n"}, ("c2", "b3"), "Merge branch 'feature'"),
        ("c3", {"n.txt": "3\n"}, ("M",), "c3"),
    ]
    return built(repo, "merged", lambda where: imported(where, steps,
                                                        {"b3": "feature", "c3": "main"}))


@pytest.fixture(autouse=True)
def _fixed_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same shas on every run: the finder orders some work by sha (confirmations)."""
    for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(name, "2026-01-01T00:00:00 +0000")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Where a test's repository goes: `built` copies it there (git init would be wasted)."""
    return tmp_path / "repo"


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the schema made, once: copied, it opens without migrating."""
    path = tmp_path_factory.mktemp("store") / "history.db"
    with HistoryStore.open(f"sqlite:///{path}"):
        pass
    return path


@pytest.fixture
def store(tmp_path: Path, empty_store: Path) -> Iterator[HistoryStore]:
    shutil.copyfile(empty_store, tmp_path / "history.db")
    with HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}") as opened:
        yield opened


def transcript(result: BisectResult, fake: FakeExecutor, labels: dict[str, str]
               ) -> dict[str, Any]:
    """What is pinned: every sha (and 10-character short sha) replaced by its label."""
    def named(text: str) -> str:
        for sha, label in labels.items():
            text = text.replace(sha, label).replace(sha[:10], label)
        return text

    return {
        "probes": [f"{label} {','.join(t.split('::')[-1] for t in tests)}"
                   for label, tests in fake.probes],
        "rounds": fake.rounds,
        "counts": [result.probes_run, result.probes_reused, result.rounds, result.candidates],
        "log": [named(line) for line in result.bisect_log],
        "notes": [named(note) for note in result.notes],
        "findings": [
            [f.nodeid.split("::")[-1], f.verdict, labels[f.culprit.sha] if f.culprit else None,
             [labels[s] for s in f.suspects], f.confirmed, named(f.note or ""),
             None if f.confidence is None else round(f.confidence, 3),
             labels[f.merge.sha] if f.merge else None]
            for f in result.findings
        ],
    }


def bisect(repo: Path, store: HistoryStore, labels: dict[str, str], rule: Rule, *,
           tests: tuple[str, ...] = (T1,), good: str = "c0", bad: str | None = None,
           first_parent: bool = True, jobs: int = 1, max_untestable: int | None = 20,
           max_probes: int | None = None, confidence: float = 0.99,
           schedule: dict[tuple[str, str], list[Outcome]] | None = None
           ) -> tuple[dict[str, Any], FakeExecutor]:
    by_sha = {sha: label for label, sha in labels.items()}
    fake = FakeExecutor(by_sha, rule, dict(schedule or {}))
    bad = bad or list(labels)[-1]
    with Repository(repo) as git_repo:
        finder = make_finder(git_repo, store, fake, jobs=jobs, max_untestable=max_untestable)
        finder.max_probes = max_probes
        finder.confidence = confidence
        result = finder.run(list(tests), labels[good], labels[bad], first_parent=first_parent)
    return transcript(result, fake, by_sha), fake


def test_plain(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(5))
    assert got == PINNED["plain"]


def test_jobs_3(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 17)
    got, _ = bisect(repo, store, labels, fails_from(11), jobs=3)
    assert got == PINNED["jobs_3"]


def test_each_round_keeps_the_bounds_of_the_search(repo: Path, store: HistoryStore) -> None:
    """Before each search round the executor hears which commits to keep set up (ADR 25): the
    last known to pass and the first known to fail, of both tests alike here. The head start
    (c9, beside the bad end c16) passed; then c10 passed and c13 failed; the last round's
    bounds (c10, c13) hold the culprit's parent, and its probe of c11 is the culprit."""
    labels = line(repo, 17)
    got, fake = bisect(repo, store, labels, fails_from(11), tests=(T1, T2), jobs=2)
    by_sha = {sha: label for label, sha in labels.items()}
    kept = [sorted((by_sha[sha] for sha in shas), key=lambda label: int(label[1:]))
            for shas in fake.kept]
    assert kept == [["c9", "c16"], ["c10", "c13"]]
    assert [p.split()[0] for p in got["probes"][:6]] == ["c16", "c9", "c10", "c13", "c11",
                                                         "c12"]


def test_untestable_stretch(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 12)
    base = fails_from(6)

    def rule(label: str, test: str) -> Outcome:
        return Outcome.UNTESTABLE if label in ("c4", "c5", "c6", "c7") else base(label, test)

    got, _ = bisect(repo, store, labels, rule)
    assert got == PINNED["untestable_stretch"]


def test_untestable_budget(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 12)
    base = fails_from(6)

    def rule(label: str, test: str) -> Outcome:
        return Outcome.UNTESTABLE if label in ("c4", "c5", "c6", "c7") else base(label, test)

    got, _ = bisect(repo, store, labels, rule, max_untestable=1)
    assert got == PINNED["untestable_budget"]


def culprit_on_branch(label: str, test: str) -> Outcome:
    return Outcome.FAILED if label in ("b2", "b3", "M", "c3") else Outcome.PASSED


def test_culprit_merge_followed_into_its_branch(repo: Path, store: HistoryStore) -> None:
    labels = merged(repo)
    got, _ = bisect(repo, store, labels, culprit_on_branch)
    assert got == PINNED["merge"]


def test_merge_whose_branch_passes_alone(repo: Path, store: HistoryStore) -> None:
    labels = merged(repo)

    def rule(label: str, test: str) -> Outcome:
        return Outcome.FAILED if label in ("M", "c3") else Outcome.PASSED

    got, _ = bisect(repo, store, labels, rule)
    assert got == PINNED["merge_alone"]


def test_merge_of_unrelated_histories_is_the_answer(repo: Path, store: HistoryStore) -> None:
    steps: list[Step] = [
        ("c0", {"n.txt": "0\n"}, (), "c0"), ("c1", {"n.txt": "1\n"}, ("c0",), "c1"),
        ("o0", {"o.txt": "0\n"}, (), "o0"), ("o1", {"o.txt": "1\n"}, ("o0",), "o1"),
        ("M", {"o.txt": "1\n"}, ("c1", "o1"), "Merge branch 'other'"),
        ("c2", {"n.txt": "2\n"}, ("M",), "c2"),
    ]
    labels = built(repo, "unrelated",
                   lambda where: imported(where, steps, {"o1": "other", "c2": "main"}))

    def rule(label: str, test: str) -> Outcome:
        return Outcome.FAILED if label in ("o1", "M", "c2") else Outcome.PASSED

    got, _ = bisect(repo, store, labels, rule)
    assert got == PINNED["unrelated"]


def test_full_dag(repo: Path, store: HistoryStore) -> None:
    labels = merged(repo)
    got, _ = bisect(repo, store, labels, culprit_on_branch, first_parent=False)
    assert got == PINNED["full_dag"]


def test_another_exception_type_is_not_this_failure(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    base = fails_from(6)

    def rule(label: str, test: str) -> Outcome | tuple[Outcome, str]:
        if label == "c4":
            return Outcome.FAILED, "ImportError: cannot import name 'x'"
        return base(label, test)

    got, _ = bisect(repo, store, labels, rule)
    assert got == PINNED["other_exception"]


def test_flaky_test_demoted_after_a_failed_confirmation(repo: Path,
                                                        store: HistoryStore) -> None:
    labels = line(repo, 9)
    # c5 is the culprit; its second run (the confirmation) passes: a flake
    got, _ = bisect(repo, store, labels, fails_from(5),
                    schedule={("c5", T1): [Outcome.FAILED, Outcome.PASSED]})
    assert got == PINNED["demoted"]


def test_two_false_failures_with_no_history_are_caught_by_a_later_run(
        repo: Path, store: HistoryStore) -> None:
    """The culprit is c6; the test fails falsely twice at good c4, where the search looks
    first. Two agreeing runs would confirm c4 (the benchmark's wrong answers, issue 14); with
    no steady history the culprit needs more, and the third passes: the flaky search finds
    c6."""
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(6),
                    schedule={("c4", T1): [Outcome.FAILED, Outcome.FAILED]})
    assert got["probes"][:8] == ["c8 test_one", "c0 test_one", "c4 test_one", "c2 test_one",
                                 "c3 test_one", "c4 test_one", "c3 test_one", "c4 test_one"]
    assert "c4 was not confirmed" in got["notes"][0]
    [finding] = got["findings"]
    assert finding[:3] == ["test_one", "culprit", "c6"]


def test_three_false_failures_with_no_history_are_caught_by_a_fourth_run(
        repo: Path, store: HistoryStore) -> None:
    """As above, the test failing falsely three times at c4: three agreeing runs confirmed c4
    (the wrong answer of 1 in 20 cold bisections at f = 0.2, issue 14); the fourth passes."""
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(6),
                    schedule={("c4", T1): [Outcome.FAILED] * 3})
    assert got["probes"][:9] == ["c8 test_one", "c0 test_one", "c4 test_one", "c2 test_one",
                                 "c3 test_one", "c4 test_one", "c3 test_one", "c4 test_one",
                                 "c4 test_one"]
    assert "c4 was not confirmed" in got["notes"][0]
    [finding] = got["findings"]
    assert finding[:3] == ["test_one", "culprit", "c6"]


def test_a_steady_history_confirms_with_two_runs(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    seed(store, repo, labels, {"c0": "p" * 20})
    got, _ = bisect(repo, store, labels, fails_from(5))
    assert [p for p in got["probes"] if p.startswith("c5 ")] == ["c5 test_one"] * 2
    assert got["findings"] == [["test_one", "culprit", "c5", ["c5"], True, "", 1.0, None]]


def test_contradicting_good_end_is_run_again(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(5),
                    schedule={("c0", T1): [Outcome.FAILED]})
    assert got == PINNED["recheck_good"]


def test_three_false_failures_at_a_cold_good_end_are_not_a_refusal(
        repo: Path, store: HistoryStore) -> None:
    """No history: the good end fails its first three runs (f = 0.2 does that in 0.8 % of
    bisections). Before, the third failure was a refusal ("already fails at good"); now the
    fourth run passes, and that disagreement sends the test to the flake-aware search."""
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(5),
                    schedule={("c0", T1): [Outcome.FAILED] * 3})
    assert got["probes"][:5] == ["c8 test_one", "c0 test_one", "c0 test_one", "c0 test_one",
                                 "c0 test_one"]
    assert not got["notes"]
    assert got["findings"][0][:3] == ["test_one", "culprit", "c5"]


def refused(repo: Path, store: HistoryStore, labels: dict[str, str], rule: Rule, match: str,
            *, good: str = "c0", jobs: int = 1) -> FakeExecutor:
    """A bisection that must end in BisectError; the fake, for what it ran."""
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, rule)
    with Repository(repo) as git_repo:
        finder = make_finder(git_repo, store, fake, jobs=jobs, max_untestable=20)
        with pytest.raises(BisectError, match=match):
            finder.run([T1], labels[good], labels[list(labels)[-1]])
    return fake


def test_a_good_end_failing_five_cold_runs_is_refused(repo: Path, store: HistoryStore
                                                      ) -> None:
    fake = refused(repo, store, line(repo, 9), fails_from(0), "already fails at good")
    assert [label for label, _ in fake.probes] == ["c8"] + ["c0"] * 5


def test_a_steady_history_refuses_a_failing_good_end_after_three_runs(
        repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    seed(store, repo, labels, {"c1": "p" * 20})
    fake = refused(repo, store, labels, fails_from(0), "already fails at good", good="c2")
    assert [label for label, _ in fake.probes] == ["c8"] + ["c2"] * 3


def test_cold_good_end_reruns_share_a_round_with_jobs(repo: Path, store: HistoryStore
                                                      ) -> None:
    fake = refused(repo, store, line(repo, 9), fails_from(0), "already fails at good",
                   jobs=3)
    # the bad end and the head start (c1 and c5 cut 1, 4 and 3 suspects: every probe fails,
    # the search ends on c1), then the deferred good end (ADR 26)
    assert [label for label, _ in fake.probes] == ["c8", "c1", "c5"] + ["c0"] * 5
    # its first run alone, three of the four re-runs at once, then the last alone
    assert fake.rounds == [3, 3]


# -- the good end deferred at --jobs 2 or more (ADR 26) --------------------------------------

def test_at_two_jobs_the_first_round_is_the_bad_end_and_a_head_start(
        repo: Path, store: HistoryStore) -> None:
    """16 candidates in rounds of 2: c9 ends a part of 9 suspects (two rounds), and the
    good end, which the search never ends on here, never runs."""
    labels = line(repo, 17)
    got, fake = bisect(repo, store, labels, fails_from(11), jobs=2)
    assert got["probes"][:2] == ["c16 test_one", "c9 test_one"]
    assert fake.rounds[0] == 2
    assert "c0" not in {p.split()[0] for p in got["probes"]}
    assert got["findings"] == [["test_one", "culprit", "c11", ["c11"], True, "", 1.0, None]]
    assert got["counts"][1] == 0, "the head start ran: it is no reuse"
    assert got["log"][2:4] == ["# good: [c9] c9", "git bisect good c9"]


def test_at_two_jobs_the_head_start_saves_the_ends_round(repo: Path, store: HistoryStore
                                                         ) -> None:
    """A culprit inside the head start's part of 9: three rounds that build, where the ends'
    round and three ternary rounds of 16 suspects took four."""
    labels = line(repo, 17)
    got, fake = bisect(repo, store, labels, fails_from(4), jobs=2)
    assert got["findings"][0][:3] == ["test_one", "culprit", "c4"]
    # bad end + c9, then c3 + c6 (c3 passes, c6 fails), then c4 + c5: the culprit is c4
    assert got["probes"][:6] == ["c16 test_one", "c9 test_one", "c3 test_one",
                                 "c6 test_one", "c4 test_one", "c5 test_one"]
    assert fake.rounds[:3] == [2, 2, 2]
    assert all(p.split()[0] in ("c3", "c4") for p in got["probes"][6:]), "confirmation only"


def test_at_two_jobs_a_culprit_at_the_first_candidate_checks_the_good_end(
        repo: Path, store: HistoryStore) -> None:
    """The search ends on c1: the good end, its parent, runs then, and is confirmed."""
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(1), jobs=2)
    assert got["findings"] == [["test_one", "culprit", "c1", ["c1"], True, "", 1.0, None]]
    ran = [p.split()[0] for p in got["probes"]]
    assert ran.index("c0") > ran.index("c1"), "the good end ran after the search"
    assert ran.count("c0") == 2  # its check, then the parent's second confirming run


def test_at_two_jobs_a_good_end_failing_five_cold_runs_is_refused_after_the_search(
        repo: Path, store: HistoryStore) -> None:
    fake = refused(repo, store, line(repo, 9), fails_from(0), "already fails at good",
                   jobs=2)
    ran = [label for label, _ in fake.probes]
    assert ran[:2] == ["c8", "c3"] and ran.count("c0") == 5
    assert ran[-5:] == ["c0"] * 5


def test_at_two_jobs_a_good_end_whose_runs_disagree_is_searched_as_flaky(
        repo: Path, store: HistoryStore) -> None:
    """c0 fails once, then passes: flakiness, found where the search ended, and the
    flake-aware search takes the test (as the ends' check would have before the search)."""
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(1), jobs=2,
                    schedule={("c0", T1): [Outcome.FAILED]})
    ran = [p.split()[0] for p in got["probes"]]
    assert ran.count("c0") >= 2
    assert ran.index("c0") > ran.index("c1"), "the good end ran after the search"
    # named by the flake-aware search, with its posterior, not the confirmation's 1.0
    [finding] = got["findings"]
    assert finding[:3] == ["test_one", "culprit", "c1"] and finding[6] < 1.0


def test_at_two_jobs_a_range_of_one_checks_both_ends_in_one_round(
        repo: Path, store: HistoryStore) -> None:
    """No head start to run (one candidate, the bad end): the good end takes the spare slot,
    as before, not a round of its own after the search."""
    labels = line(repo, 2)
    got, fake = bisect(repo, store, labels, fails_from(1), jobs=2)
    assert got["probes"][:2] == ["c1 test_one", "c0 test_one"] and fake.rounds[0] == 2
    assert got["counts"][2] == 3  # the ends, then the confirmation's two rounds
    assert got["findings"][0][:3] == ["test_one", "culprit", "c1"]


def test_a_warm_rerun_counts_each_stored_commit_once_at_any_jobs(
        repo: Path, store: HistoryStore) -> None:
    """The head start found stored is reused once, not again when the search reads it."""
    labels = line(repo, 17)
    cold, _ = bisect(repo, store, labels, fails_from(11), jobs=2)
    warm, fake = bisect(repo, store, labels, fails_from(11), jobs=2)
    assert fake.probes == []
    # each commit the cold run probed once (the head start c9 was counted twice before),
    # and the confirmation's culprit and parent once more, as at --jobs 1
    assert warm["counts"][1] == len({p.split()[0] for p in cold["probes"]}) + 2


def test_at_two_jobs_a_known_good_end_is_checked_first(repo: Path, store: HistoryStore
                                                       ) -> None:
    """A run stored at the good end: nothing to defer, the ends' round is as before."""
    labels = line(repo, 9)
    seed(store, repo, labels, {"c0": "p"})
    got, _ = bisect(repo, store, labels, fails_from(5), jobs=2)
    # the bad end alone (the good end is known), then a round cutting 8 suspects 3, 3, 2
    assert got["probes"][:3] == ["c8 test_one", "c3 test_one", "c6 test_one"]


def test_good_end_reruns_at_once_hold_only_the_tests_still_short(
        repo: Path, store: HistoryStore) -> None:
    """A steady test (3 runs at --good) beside a cold one (5): at --jobs 3 the re-runs share
    rounds, and the steady test is not carried into the cold one's extra runs."""
    labels = line(repo, 9)
    seed(store, repo, labels, {"c0": "p" * 20}, test=T2)
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, fails_from(0))
    with Repository(repo) as git_repo:
        finder = make_finder(git_repo, store, fake, jobs=3, max_untestable=20)
        with pytest.raises(BisectError, match="already fails at good"):
            finder.run([T1, T2], labels["c1"], labels["c8"])
    at_good = [tests for label, tests in fake.probes if label == "c1"]
    assert sum(T1 in tests for tests in at_good) == 5
    assert sum(T2 in tests for tests in at_good) == 3


def test_culprit_reruns_at_once_hold_only_the_tests_still_short(
        repo: Path, store: HistoryStore) -> None:
    """The same at the culprit: a steady test (2 runs) and a cold one (4) sharing culprit c5;
    at --jobs 3 the cold one's further runs do not carry the steady one."""
    labels = line(repo, 9)
    seed(store, repo, labels, {"c0": "p" * 20}, test=T2)
    got, _ = bisect(repo, store, labels, fails_from(5), tests=(T1, T2), good="c1", jobs=3)
    at_culprit = [p.split()[1].split(",") for p in got["probes"] if p.startswith("c5 ")]
    assert sum("test_one" in tests for tests in at_culprit) == 4
    assert sum("test_two" in tests for tests in at_culprit) == 2
    assert [f[:3] for f in got["findings"]] == [["test_one", "culprit", "c5"],
                                                ["test_two", "culprit", "c5"]]


def test_contradicting_bad_end_is_run_again(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    got, _ = bisect(repo, store, labels, fails_from(5),
                    schedule={("c8", T1): [Outcome.PASSED]})
    assert got == PINNED["recheck_bad"]


def test_several_tests_and_ends_that_tell_nothing(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 9)
    t3, t4 = "test_m.py::test_three", "test_m.py::test_four"

    def rule(label: str, test: str) -> Outcome:
        i = int(label[1:])
        if test == T2:
            return Outcome.FAILED if i >= 2 else Outcome.PASSED
        if test == t3:
            return Outcome.PASSED  # does not fail at bad
        if test == t4:
            return Outcome.UNTESTABLE  # cannot run anywhere
        return Outcome.FAILED if i >= 6 else Outcome.PASSED

    got, _ = bisect(repo, store, labels, rule, tests=(T1, T2, t3, t4))
    assert got == PINNED["several"]


def test_a_test_failing_at_good_too_is_left_out(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 6)

    def rule(label: str, test: str) -> Outcome:
        return Outcome.FAILED if test == T1 else fails_from(3)(label, test)

    got, _ = bisect(repo, store, labels, rule, tests=(T1, T2))
    assert got == PINNED["fails_at_good"]


def test_nothing_to_bisect_is_an_error(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 5)
    with pytest.raises(BisectError, match="nothing to bisect"):
        bisect(repo, store, labels, lambda label, test: Outcome.PASSED)
    assert store.bisections()[-1]["status"] == "failed"


def seed(store: HistoryStore, repo: Path, labels: dict[str, str], outcomes: dict[str, str],
         test: str = T1) -> None:
    """Stored pytest runs of a test: label -> a string of p (passed) and f (failed)."""
    with Repository(repo) as git_repo:
        for label, runs in outcomes.items():
            for k, char in enumerate(runs):
                outcome = Outcome.PASSED if char == "p" else Outcome.FAILED
                result = TestResult(test, outcome, 0.01, None if char == "p" else "sig-Assertion",
                                    None if char == "p" else FAIL)
                run = Run(sha=labels[label], dirty=False, branch="main", environment=ENV,
                          trigger=Trigger.PYTEST, host="h", started_at=1000.0 + k,
                          finished_at=1000.5 + k, exit_status=0, results=(result,))
                store.record_run(run, commits=git_repo.commits([labels[label]]).values())


def test_flaky_in_history_goes_to_the_flaky_search(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 12)
    seed(store, repo, labels, {"c0": "pfp", "c1": "pp", "c2": "fpp"})
    schedule = {("c9", T1): [Outcome.PASSED], ("c4", T1): [Outcome.FAILED]}
    got, _ = bisect(repo, store, labels, fails_from(8), good="c3", schedule=schedule)
    assert got == PINNED["flaky_history"]


def every_third_run_fails() -> Rule:
    """A flaky test without a culprit: runs 1, 4, 7, ... fail, wherever they run."""
    runs = [0]

    def rule(label: str, test: str) -> Outcome:
        runs[0] += 1
        return Outcome.FAILED if runs[0] % 3 == 1 else Outcome.PASSED
    return rule


def test_flaky_without_a_culprit(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 10)
    seed(store, repo, labels, {"c0": "pfp", "c1": "ppf"})
    seed(store, repo, labels, {"c0": "pfp", "c1": "ppf", "c9": "p"}, test=T2)
    got, _ = bisect(repo, store, labels, every_third_run_fails(), good="c2",
                    tests=(T1, T2), schedule={("c9", T2): [Outcome.PASSED]})
    assert got == PINNED["flaky_no_culprit"]


def test_flaky_search_out_of_budget(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 14)
    seed(store, repo, labels, {"c0": "pfp", "c1": "ppf"})
    got, _ = bisect(repo, store, labels, fails_from(9), good="c2", max_probes=3)
    assert got == PINNED["flaky_budget"]


def test_flaky_culprit_next_to_good_and_reruns(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 6)
    seed(store, repo, labels, {"c0": "pfpp", "c1": "ppfp"})

    def rule(label: str, test: str) -> Outcome | TestResult:
        if label == "c3":
            return TestResult(test, Outcome.PASSED, 0.01, reruns=1)
        return fails_from(3)(label, test)

    got, _ = bisect(repo, store, labels, rule, good="c2")
    assert got == PINNED["flaky_first"]


@pytest.mark.parametrize("culprit", [3, 6])
def test_flaky_search_confirms_what_it_did_not_run_twice(repo: Path, store: HistoryStore,
                                                          culprit: int) -> None:
    labels = line(repo, 10)
    seed(store, repo, labels, {"c0": "pfpp", "c1": "ppfp"})
    got, _ = bisect(repo, store, labels, fails_from(culprit), good="c2", confidence=0.9)
    assert got == PINNED[f"flaky_confirm_{culprit}"]


def test_a_resumed_journal_reuses_the_interrupted_probes(repo: Path,
                                                         store: HistoryStore) -> None:
    labels = line(repo, 17)
    by_sha = {sha: label for label, sha in labels.items()}
    fake = FakeExecutor(by_sha, fails_from(11), interrupt_at=4)
    with pytest.raises(KeyboardInterrupt), Repository(repo) as git_repo:
        make_finder(git_repo, store, fake).run([T1], labels["c0"], labels["c16"])
    assert store.bisections()[-1]["status"] == "interrupted"
    got, _ = bisect(repo, store, labels, fails_from(11), bad="c16")
    assert [p[0] for p in fake.probes] == ["c16", "c0", "c8", "c12"]
    assert got == PINNED["resumed"]
    # a third run: everything is stored, the confirmation too (two agreeing runs at the
    # culprit and at its parent): nothing runs (#15)
    third, _ = bisect(repo, store, labels, fails_from(11), bad="c16")
    assert third == PINNED["rerun"]


def test_an_interrupt_the_store_cannot_record_still_resumes(
        repo: Path, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the store cannot be written: the KeyboardInterrupt goes through (not the
    store's error), the row stays running, and the next run resumes its probes."""
    labels = line(repo, 17)
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, fails_from(11),
                        interrupt_at=4)

    def unwritable(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(store, "finish_bisection", unwritable)
        with pytest.raises(KeyboardInterrupt), Repository(repo) as git_repo:
            make_finder(git_repo, store, fake).run([T1], labels["c0"], labels["c16"])
    assert store.bisections()[-1]["status"] == "running"
    got, _ = bisect(repo, store, labels, fails_from(11), bad="c16")
    assert got == PINNED["resumed"]


def test_a_contradiction_in_history_is_a_note(repo: Path, store: HistoryStore) -> None:
    """A stored failure at the culprit b2, then a stored pass at b3, its descendant (off the
    first-parent line, so the test does not look flaky there): the graph search says that
    b3's verdict contradicts what it knew, instead of dropping it silently."""
    labels = merged(repo)
    seed(store, repo, labels, {"b2": "f", "b3": "p"})
    got, _ = bisect(repo, store, labels, culprit_on_branch, first_parent=False)
    assert [n for n in got["notes"] if "against the commits around it" in n] == [
        "test_m.py::test_one: b3 was good against the commits around it; the test may be flaky"]


@dataclass
class HunkSearch:
    """A toy `Search[frozenset[str]]`: which of three hunks breaks the test, one at a time."""

    hunks: tuple[str, ...] = ("h1", "h2", "h3")
    left: list[str] = field(default_factory=lambda: ["h1", "h2", "h3"])
    seen: list[tuple[frozenset[str], dict[str, Verdict]]] = field(default_factory=list)

    def open_tests(self) -> list[str]:
        return [T1] if len(self.left) > 1 else []

    def next_probes(self, k: int = 1) -> list[frozenset[str]]:
        return [frozenset([h]) for h in self.left[:k]] if self.open_tests() else []

    def observe_probe(self, candidate: frozenset[str], verdicts: Mapping[str, Verdict]) -> None:
        self.seen.append((candidate, dict(verdicts)))
        if verdicts[T1] is Verdict.GOOD:
            self.left = [h for h in self.left if h not in candidate]
        elif verdicts[T1] is Verdict.BAD:
            self.left = [h for h in self.left if h in candidate]

    @property
    def budget_spent(self) -> bool:
        return False

    def suspects(self, test: str) -> list[frozenset[str]]:
        return [frozenset([h]) for h in self.left]


def test_one_loop_drives_a_search_over_another_candidate_type(repo: Path,
                                                              store: HistoryStore) -> None:
    from bisector.bisection.drive import drive
    from bisector.bisection.evidence import Evidence
    from bisector.bisection.prober import Prober, ProbeRequest

    labels = line(repo, 4)  # each hunk set stands for a commit here
    at = {frozenset(["h1"]): "c1", frozenset(["h2"]): "c2", frozenset(["h3"]): "c3"}
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, fails_from(2))
    search = HunkSearch()
    with Repository(repo) as git_repo:
        prober = Prober(git_repo, store, fake, Evidence(), fake.env_key(), jobs=2)
        rounds = drive(search, prober, jobs=2,
                       ask=lambda c, tests: ProbeRequest.of(labels[at[c]], tests, "hunks"),
                       read=lambda c, tests, results: {
                           t: prober.evidence.verdict(t, results[t], labels[at[c]])
                           for t in tests})
    assert rounds == 1 and search.suspects(T1) == [frozenset(["h2"])]
    assert search.seen == [(frozenset(["h1"]), {T1: Verdict.GOOD}),
                           (frozenset(["h2"]), {T1: Verdict.BAD})]
    assert fake.rounds == [2] and prober.tally.runs == 2
    assert sorted(row.sha for row in store.runs()) == sorted([labels["c1"], labels["c2"]])


def test_a_plan_from_history_and_its_journal_key(repo: Path, store: HistoryStore) -> None:
    """No tests and no --good: the history names the test failing at bad and its last pass;
    the journal key is the one earlier versions wrote, so their bisections still resume."""
    from bisector.bisection.plan import Plan

    labels = line(repo, 6)
    seed(store, repo, labels, {"c1": "p", "c2": "p", "c5": "f"})
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, fails_from(4))
    with Repository(repo) as git_repo:
        finder = make_finder(git_repo, store, fake)
        assert finder.plan([], None, "HEAD", 10) == ([T1], labels["c2"], labels["c5"])
        with pytest.raises(BisectError, match="not an ancestor"):
            finder.plan([T1], labels["c5"], labels["c2"], 10)
    key = Plan((T1,), "a" * 40, "b" * 40).journal_key("fake")
    assert key == "239e79ebb7e0a7b5c03bc76afb89bc1b"


def test_test_files_are_probed_at_bad_and_that_probe_is_the_bad_end(
        repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 5)
    fake = FakeExecutor({sha: label for label, sha in labels.items()}, fails_from(3))
    with Repository(repo) as git_repo:
        finder = make_finder(git_repo, store, fake)
        tests = finder.probe_files(labels["c4"], ["test_m.py"])
        result = finder.run(tests, labels["c0"], labels["c4"])
    assert tests == [T1] and result.findings[0].culprit.sha == labels["c3"]
    assert [label for label, _ in fake.probes][:2] == ["c4", "c0"]  # bad end not run again
    journal = store.probes_of(result.journal_id)
    assert [(p["sha"], p["purpose"]) for p in journal][:2] == [
        (labels["c4"], "check bad end"), (labels["c0"], "check good end")]


def test_test_files_that_hold_no_test_are_an_error(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 4)
    fake = FakeExecutor({sha: label for label, sha in labels.items()},
                        lambda label, test: Outcome.UNTESTABLE)
    with Repository(repo) as git_repo, pytest.raises(BisectError, match="cannot collect"):
        make_finder(git_repo, store, fake).probe_files(labels["c3"], ["test_m.py"])


def test_an_executor_failure_fails_the_journal(repo: Path, store: HistoryStore) -> None:
    labels = line(repo, 5)

    def broken(label: str, test: str) -> Outcome:
        if label == "c2":
            raise RuntimeError("the executor broke")
        return fails_from(3)(label, test)

    with pytest.raises(RuntimeError, match="the executor broke"):
        bisect(repo, store, labels, broken)
    assert store.bisections()[-1]["status"] == "failed"


# What today's Finder does in each scenario (regenerate only for an intended change).
PINNED: dict[str, Any] = {
    'plain':
        {'probes': ['c8 test_one', 'c0 test_one', 'c4 test_one', 'c6 test_one', 'c5 test_one',
                    'c5 test_one', 'c4 test_one', 'c5 test_one', 'c5 test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c4] c4', 'git bisect good c4',
                 '# bad: [c6] c6', 'git bisect bad c6', '# bad: [c5] c5', 'git bisect bad c5',
                 '# good: [c4] c4', 'git bisect good c4', '# bad: [c5] c5', 'git bisect bad c5',
                 '# first bad commit: [c5] c5'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c5', ['c5'], True, '', 1.0, None]]},
    'jobs_3':
        {'probes': ['c16 test_one', 'c4 test_one', 'c8 test_one', 'c9 test_one', 'c10 test_one',
                    'c14 test_one', 'c11 test_one', 'c12 test_one', 'c13 test_one',
                    'c11 test_one', 'c10 test_one', 'c11 test_one', 'c11 test_one'],
         'rounds': [3, 3, 3, 3],
         'counts': [13, 0, 5, 16],
         'log': ["git bisect start '--first-parent' 'c16' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c4] c4', 'git bisect good c4',
                 '# good: [c8] c8', 'git bisect good c8', '# good: [c9] c9', 'git bisect good c9',
                 '# good: [c10] c10', 'git bisect good c10', '# bad: [c14] c14',
                 'git bisect bad c14', '# bad: [c11] c11', 'git bisect bad c11',
                 '# bad: [c12] c12', 'git bisect bad c12', '# bad: [c13] c13',
                 'git bisect bad c13', '# good: [c10] c10', 'git bisect good c10',
                 '# bad: [c11] c11', 'git bisect bad c11', '# first bad commit: [c11] c11'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c11', ['c11'], True, '', 1.0, None]]},
    'untestable_stretch':
        {'probes': ['c11 test_one', 'c0 test_one', 'c5 test_one', 'c6 test_one', 'c4 test_one',
                    'c7 test_one', 'c3 test_one', 'c8 test_one'],
         'rounds': [],
         'counts': [8, 0, 8, 11],
         'log': ["git bisect start '--first-parent' 'c11' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# skip: [c5] c5', 'git bisect skip c5',
                 '# skip: [c6] c6', 'git bisect skip c6', '# skip: [c4] c4', 'git bisect skip c4',
                 '# skip: [c7] c7', 'git bisect skip c7', '# good: [c3] c3', 'git bisect good c3',
                 '# bad: [c8] c8', 'git bisect bad c8'],
         'notes': [],
         'findings': [['test_one', 'bracketed', None, ['c4', 'c5', 'c6', 'c7', 'c8'], None,
                       'culprit is one of 5 commits c4..c8; 4 of them are untestable', None,
                       None]]},
    'untestable_budget':
        {'probes': ['c11 test_one', 'c0 test_one', 'c5 test_one'],
         'rounds': [],
         'counts': [3, 0, 3, 11],
         'log': ["git bisect start '--first-parent' 'c11' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# skip: [c5] c5',
                 'git bisect skip c5'],
         'notes': ['stopped after 1 untestable probes: culprits are bracketed, not isolated'],
         'findings': [['test_one', 'bracketed', None,
                       ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10', 'c11'], None,
                       'culprit is one of 11 commits c1..c11; 1 of them are untestable', None,
                       None]]},
    'merge':
        {'probes': ['c3 test_one', 'c0 test_one', 'c2 test_one', 'M test_one', 'b3 test_one',
                    'b1 test_one', 'b2 test_one', 'b2 test_one', 'b1 test_one', 'b2 test_one',
                    'b2 test_one'],
         'rounds': [],
         'counts': [11, 0, 11, 4],
         'log': ["git bisect start '--first-parent' 'c3' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c2] c2', 'git bisect good c2',
                 "# bad: [M] Merge branch 'feature'", 'git bisect bad M', '# good: [c1] c1',
                 'git bisect good c1', '# bad: [b3] b3', 'git bisect bad b3', '# good: [b1] b1',
                 'git bisect good b1', '# bad: [b2] b2', 'git bisect bad b2', '# good: [b1] b1',
                 'git bisect good b1', '# bad: [b2] b2', 'git bisect bad b2',
                 '# first bad commit: [b2] b2'],
         'notes': ['merge M is the first bad commit on the first-parent line; searched its '
                   'branch c1..b3'],
         'findings': [['test_one', 'culprit', 'b2', ['b2'], True, '', 1.0, 'M']]},
    'merge_alone':
        {'probes': ['c3 test_one', 'c0 test_one', 'c2 test_one', 'M test_one', 'b3 test_one',
                    'M test_one', 'c2 test_one', 'M test_one', 'M test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 4],
         'log': ["git bisect start '--first-parent' 'c3' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c2] c2', 'git bisect good c2',
                 "# bad: [M] Merge branch 'feature'", 'git bisect bad M', '# good: [c2] c2',
                 'git bisect good c2', "# bad: [M] Merge branch 'feature'", 'git bisect bad M',
                 "# first bad commit: [M] Merge branch 'feature'"],
         'notes': ['merge M is the culprit of test_m.py::test_one: its branch passes alone, the '
                   'combination breaks'],
         'findings': [['test_one', 'culprit', 'M', ['M'], True, '', 1.0, None]]},
    'full_dag':
        {'probes': ['c3 test_one', 'c0 test_one', 'b2 test_one', 'c1 test_one', 'b1 test_one',
                    'b2 test_one', 'b1 test_one', 'b2 test_one', 'b2 test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 7],
         'log': ["git bisect start 'c3' 'c0'", '# the verdicts of test_m.py::test_one',
                 '# bad: [b2] b2', 'git bisect bad b2', '# good: [c1] c1', 'git bisect good c1',
                 '# good: [b1] b1', 'git bisect good b1', '# good: [b1] b1', 'git bisect good b1',
                 '# bad: [b2] b2', 'git bisect bad b2', '# first bad commit: [b2] b2'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'b2', ['b2'], True, '', 1.0, None]]},
    'other_exception':
        {'probes': ['c8 test_one', 'c0 test_one', 'c4 test_one', 'c5 test_one', 'c6 test_one',
                    'c6 test_one', 'c5 test_one', 'c6 test_one', 'c6 test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# skip: [c4] c4', 'git bisect skip c4',
                 '# good: [c5] c5', 'git bisect good c5', '# bad: [c6] c6', 'git bisect bad c6',
                 '# good: [c5] c5', 'git bisect good c5', '# bad: [c6] c6', 'git bisect bad c6',
                 '# first bad commit: [c6] c6'],
         'notes': ["another failure seen at c4: ImportError: cannot import name 'x' "
                   '(test_m.py::test_one); counted as untestable for this test'],
         'findings': [['test_one', 'culprit', 'c6', ['c6'], True, '', 1.0, None]]},
    'demoted':
        {'probes': ['c8 test_one', 'c0 test_one', 'c4 test_one', 'c6 test_one', 'c5 test_one',
                    'c5 test_one', 'c4 test_one', 'c6 test_one', 'c5 test_one', 'c5 test_one',
                    'c5 test_one', 'c5 test_one', 'c4 test_one', 'c5 test_one', 'c4 test_one',
                    'c5 test_one'],
         'rounds': [],
         'counts': [16, 0, 16, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c4] c4', 'git bisect good c4',
                 '# bad: [c6] c6', 'git bisect bad c6', '# bad: [c5] c5', 'git bisect bad c5',
                 '# first bad commit: [c5] c5'],
         'notes': ['test_m.py::test_one: c5 was not confirmed (not confirmed: run again, the '
                   'culprit gave passed and its parent passed; the test may be flaky); searched '
                   'again as a flaky test'],
         'findings': [['test_one', 'culprit', 'c5', ['c5'], True,
                       'culprit c5 with confidence 0.994', 0.994, None]]},
    'recheck_good':
        {'probes': ['c8 test_one', 'c0 test_one', 'c0 test_one', 'c5 test_one', 'c3 test_one',
                    'c5 test_one', 'c4 test_one', 'c5 test_one', 'c5 test_one', 'c5 test_one',
                    'c4 test_one', 'c5 test_one', 'c5 test_one', 'c5 test_one'],
         'rounds': [],
         'counts': [14, 0, 14, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c5',
                 '# flake-aware probe: good c3', '# flake-aware probe: bad c5',
                 '# flake-aware probe: good c4', '# flake-aware probe: bad c5',
                 '# flake-aware probe: bad c5', '# flake-aware probe: bad c5',
                 '# flake-aware probe: good c4', '# flake-aware probe: bad c5',
                 '# flake-aware probe: bad c5', '# flake-aware probe: bad c5',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c4] c4', 'git bisect good c4', '# bad: [c5] c5', 'git bisect bad c5',
                 '# first bad commit: [c5] c5'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c5', ['c5'], True,
                       'culprit c5 with confidence 0.993', 0.993, None]]},
    'recheck_bad':
        {'probes': ['c8 test_one', 'c0 test_one', 'c8 test_one', 'c8 test_one', 'c6 test_one',
                    'c4 test_one', 'c5 test_one', 'c5 test_one', 'c4 test_one', 'c5 test_one',
                    'c4 test_one', 'c5 test_one', 'c5 test_one', 'c4 test_one'],
         'rounds': [],
         'counts': [14, 0, 14, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c8',
                 '# flake-aware probe: bad c6', '# flake-aware probe: good c4',
                 '# flake-aware probe: bad c5', '# flake-aware probe: bad c5',
                 '# flake-aware probe: good c4', '# flake-aware probe: bad c5',
                 '# flake-aware probe: good c4', '# flake-aware probe: bad c5',
                 '# flake-aware probe: bad c5', '# flake-aware probe: good c4',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c4] c4', 'git bisect good c4', '# bad: [c5] c5', 'git bisect bad c5',
                 '# first bad commit: [c5] c5'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c5', ['c5'], True,
                       'culprit c5 with confidence 0.991', 0.991, None]]},
    'several':
        {'probes': ['c8 test_one,test_two,test_three,test_four',
                    'c0 test_one,test_two,test_three,test_four', 'c4 test_one,test_two',
                    'c6 test_one,test_two', 'c2 test_one,test_two', 'c5 test_one,test_two',
                    'c1 test_two', 'c2 test_two', 'c1 test_two', 'c2 test_two', 'c2 test_two',
                    'c6 test_one', 'c5 test_one', 'c6 test_one', 'c6 test_one'],
         'rounds': [],
         'counts': [15, 0, 15, 8],
         'log': ["git bisect start '--first-parent' 'c8' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c4] c4', 'git bisect good c4',
                 '# bad: [c6] c6', 'git bisect bad c6', '# good: [c2] c2', 'git bisect good c2',
                 '# good: [c5] c5', 'git bisect good c5', '# good: [c5] c5', 'git bisect good c5',
                 '# bad: [c6] c6', 'git bisect bad c6', '# first bad commit: [c6] c6'],
         'notes': ['test_m.py::test_three: does not fail at bad c8 (passed): nothing to find',
                   'test_m.py::test_four: cannot be run at either end (cannot build)'],
         'findings': [['test_one', 'culprit', 'c6', ['c6'], True, '', 1.0, None],
                      ['test_two', 'culprit', 'c2', ['c2'], True, '', 1.0, None]]},
    'fails_at_good':
        {'probes': ['c5 test_one,test_two', 'c0 test_one,test_two', 'c0 test_one', 'c0 test_one',
                    'c0 test_one', 'c0 test_one', 'c2 test_two', 'c3 test_two', 'c3 test_two',
                    'c2 test_two', 'c3 test_two', 'c3 test_two'],
         'rounds': [],
         'counts': [12, 0, 12, 5],
         'log': ["git bisect start '--first-parent' 'c5' 'c0'",
                 '# the verdicts of test_m.py::test_two', '# good: [c2] c2', 'git bisect good c2',
                 '# bad: [c3] c3', 'git bisect bad c3', '# good: [c2] c2', 'git bisect good c2',
                 '# bad: [c3] c3', 'git bisect bad c3', '# first bad commit: [c3] c3'],
         'notes': ['test_m.py::test_one: already fails at good c0: give an older --good'],
         'findings': [['test_two', 'culprit', 'c3', ['c3'], True, '', 1.0, None]]},
    'flaky_history':
        {'probes': ['c11 test_one', 'c3 test_one', 'c8 test_one', 'c6 test_one', 'c7 test_one',
                    'c8 test_one', 'c8 test_one', 'c8 test_one', 'c7 test_one', 'c8 test_one'],
         'rounds': [],
         'counts': [10, 0, 10, 8],
         'log': ["git bisect start '--first-parent' 'c11' 'c3'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c8',
                 '# flake-aware probe: good c6', '# flake-aware probe: good c7',
                 '# flake-aware probe: bad c8', '# flake-aware probe: bad c8',
                 '# flake-aware probe: bad c8', '# flake-aware probe: good c7',
                 '# flake-aware probe: bad c8',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c7] c7', 'git bisect good c7', '# bad: [c8] c8', 'git bisect bad c8',
                 '# first bad commit: [c8] c8'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c8', ['c8'], True,
                       'culprit c8 with confidence 0.991', 0.991, None]]},
    'resumed':
        {'probes': ['c12 test_one', 'c10 test_one', 'c11 test_one', 'c11 test_one', 'c10 test_one',
                    'c11 test_one', 'c11 test_one'],
         'rounds': [],
         'counts': [7, 3, 7, 16],
         'log': ["git bisect start '--first-parent' 'c16' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c8] c8', 'git bisect good c8',
                 '# bad: [c12] c12', 'git bisect bad c12', '# good: [c10] c10',
                 'git bisect good c10', '# bad: [c11] c11', 'git bisect bad c11',
                 '# good: [c10] c10', 'git bisect good c10', '# bad: [c11] c11',
                 'git bisect bad c11', '# first bad commit: [c11] c11'],
         'notes': ['resumed an interrupted bisection: 3 of its probes are reused'],
         'findings': [['test_one', 'culprit', 'c11', ['c11'], True, '', 1.0, None]]},
    'rerun':
        {'probes': [],
         'rounds': [],
         'counts': [0, 8, 0, 16],
         'log': ["git bisect start '--first-parent' 'c16' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c8] c8', 'git bisect good c8',
                 '# good: [c10] c10', 'git bisect good c10', '# bad: [c12] c12',
                 'git bisect bad c12', '# bad: [c11] c11', 'git bisect bad c11',
                 '# good: [c10] c10', 'git bisect good c10', '# bad: [c11] c11',
                 'git bisect bad c11', '# first bad commit: [c11] c11'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c11', ['c11'], True, '', 1.0, None]]},
    'unrelated':
        {'probes': ['c2 test_one', 'c0 test_one', 'c1 test_one', 'M test_one', 'o1 test_one',
                    'M test_one', 'c1 test_one', 'M test_one', 'M test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 3],
         'log': ["git bisect start '--first-parent' 'c2' 'c0'",
                 '# the verdicts of test_m.py::test_one', '# good: [c1] c1', 'git bisect good c1',
                 "# bad: [M] Merge branch 'other'", 'git bisect bad M', '# good: [c1] c1',
                 'git bisect good c1', "# bad: [M] Merge branch 'other'", 'git bisect bad M',
                 "# first bad commit: [M] Merge branch 'other'"],
         'notes': ['merge M joins unrelated histories: not searched inside'],
         'findings': [['test_one', 'culprit', 'M', ['M'], True, '', 1.0, None]]},
    'flaky_no_culprit':
        {'probes': ['c9 test_one', 'c2 test_one,test_two', 'c7 test_one', 'c5 test_one',
                    'c6 test_one', 'c7 test_one', 'c7 test_one', 'c9 test_one', 'c9 test_one',
                    'c9 test_one', 'c9 test_one'],
         'rounds': [],
         'counts': [11, 0, 11, 7],
         'log': ["git bisect start '--first-parent' 'c9' 'c2'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c7',
                 '# flake-aware probe: good c5', '# flake-aware probe: good c6',
                 '# flake-aware probe: bad c7', '# flake-aware probe: good c7',
                 '# flake-aware probe: good c9', '# flake-aware probe: bad c9',
                 '# flake-aware probe: good c9', '# flake-aware probe: good c9'],
         'notes': ['test_m.py::test_two: does not fail at bad c9: nothing to find'],
         'findings': [['test_one', 'flaky', None, [], None,
                       'no culprit: test is flaky at both ends (false-failure rate 0.35, 95% CI '
                       '0.17-0.59; confidence 0.996)',
                       0.996, None]]},
    'flaky_budget':
        {'probes': ['c13 test_one', 'c2 test_one', 'c9 test_one', 'c7 test_one', 'c9 test_one'],
         'rounds': [],
         'counts': [5, 0, 5, 11],
         'log': ["git bisect start '--first-parent' 'c13' 'c2'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c9',
                 '# flake-aware probe: good c7', '# flake-aware probe: bad c9'],
         'notes': ['the flake-aware search spent its budget of 3 probes'],
         'findings': [['test_one', 'inconclusive', None,
                       ['c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10', 'c11', 'c12', 'c13'],
                       None,
                       'inconclusive after 3 probes: the range is c3..c13 (or no culprit at '
                       'all); the most likely answer has probability 0.37',
                       0.372, None]]},
    'flaky_first':
        {'probes': ['c5 test_one', 'c2 test_one', 'c4 test_one', 'c3 test_one', 'c4 test_one',
                    'c4 test_one', 'c3 test_one', 'c4 test_one', 'c4 test_one', 'c3 test_one',
                    'c4 test_one', 'c4 test_one', 'c3 test_one'],
         'rounds': [],
         'counts': [13, 0, 13, 3],
         'log': ["git bisect start '--first-parent' 'c5' 'c2'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c4',
                 '# flake-aware probe: good c3', '# flake-aware probe: bad c4',
                 '# flake-aware probe: bad c4', '# flake-aware probe: good c3',
                 '# flake-aware probe: bad c4', '# flake-aware probe: bad c4',
                 '# flake-aware probe: good c3', '# flake-aware probe: bad c4',
                 '# flake-aware probe: bad c4', '# flake-aware probe: good c3',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c3] c3', 'git bisect good c3', '# bad: [c4] c4', 'git bisect bad c4',
                 '# first bad commit: [c4] c4'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c4', ['c4'], True,
                       'culprit c4 with confidence 0.990', 0.99, None]]},
    'flaky_confirm_3':
        {'probes': ['c9 test_one', 'c2 test_one', 'c7 test_one', 'c5 test_one', 'c4 test_one',
                    'c3 test_one', 'c3 test_one', 'c3 test_one', 'c2 test_one'],
         'rounds': [],
         'counts': [9, 0, 9, 7],
         'log': ["git bisect start '--first-parent' 'c9' 'c2'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c7',
                 '# flake-aware probe: bad c5', '# flake-aware probe: bad c4',
                 '# flake-aware probe: bad c3', '# flake-aware probe: bad c3',
                 '# flake-aware probe: bad c3',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c2] c2', 'git bisect good c2', '# bad: [c3] c3', 'git bisect bad c3',
                 '# first bad commit: [c3] c3'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c3', ['c3'], True,
                       'culprit c3 with confidence 0.962', 0.962, None]]},
    'flaky_confirm_6':
        {'probes': ['c9 test_one', 'c2 test_one', 'c7 test_one', 'c5 test_one', 'c6 test_one',
                    'c6 test_one', 'c6 test_one', 'c5 test_one'],
         'rounds': [],
         'counts': [8, 0, 8, 7],
         'log': ["git bisect start '--first-parent' 'c9' 'c2'",
                 '# the verdicts of test_m.py::test_one', '# flake-aware probe: bad c7',
                 '# flake-aware probe: good c5', '# flake-aware probe: bad c6',
                 '# flake-aware probe: bad c6', '# flake-aware probe: bad c6',
                 '# flake-aware probe: good c5',
                 "# the flake-aware search's verdict: the culprit and its parent",
                 '# good: [c5] c5', 'git bisect good c5', '# bad: [c6] c6', 'git bisect bad c6',
                 '# first bad commit: [c6] c6'],
         'notes': [],
         'findings': [['test_one', 'culprit', 'c6', ['c6'], True,
                       'culprit c6 with confidence 0.965', 0.965, None]]},
}


def test_a_stored_collection_error_stays_untestable_on_a_rerun(repo: Path,
                                                              store: HistoryStore) -> None:
    """A collection error read back from the store is untestable, as it was when it ran: the
    store kept its phase, and reading it as "call" made a rerun call it bad (the same
    exception type as the failure) and name another culprit."""
    labels = line(repo, 12)
    base = fails_from(8)

    def rule(label: str, test: str) -> Outcome | TestResult:
        if label in ("c5", "c6"):
            return TestResult(test, Outcome.ERROR, 0.0, "sig-AssertionError",
                              "AssertionError: conftest", phase="collect")
        return base(label, test)

    first, _ = bisect(repo, store, labels, rule)
    again, fake = bisect(repo, store, labels, rule)
    assert first["findings"][0][2] == "c8"
    assert again["findings"] == first["findings"]
    assert again["counts"][0] == 0 and fake.probes == []  # all of it from the store
