"""Probes with a patch (docs/adr/0021): applied in the probe's own worktree after its checkout,
stored under the patch's key apart from the commit's own results, reused by a rerun."""

from __future__ import annotations

from pathlib import Path

from bisector.bisection.evidence import Evidence
from bisector.bisection.prober import Prober, ProbeRequest
from bisector.executors import PATCH_REFUSED, Patch, Probe
from bisector.executors.local import LocalExecutor
from bisector.gitrepo import Repository
from bisector.history import HistoryStore
from bisector.hunks import patch_for, split, subset_key
from bisector.model import Outcome

from .conftest import commit, git

GOOD = "def value():\n    return 1\n\n\ndef other():\n    return 'a'\n"
BAD = "def value():\n    return 2\n\n\ndef other():\n    return 'b'\n"
TEST = "from m import value\n\n\ndef test_value():\n    assert value() == 1\n"
NODE = "test_m.py::test_value"


def _two_commits(repo: Path) -> tuple[str, str]:
    parent = commit(repo, {"m.py": GOOD, "test_m.py": TEST}, "start")
    return parent, commit(repo, {"m.py": BAD}, "culprit")


def test_a_probe_applies_its_patch_in_its_own_worktree(repo: Path) -> None:
    parent, culprit = _two_commits(repo)
    units = split(repo, parent, culprit)
    assert len(units) == 2
    guilty = next(u.id for u in units if "return 2" in u.text)
    with Repository(repo) as r, LocalExecutor(r) as executor:
        outcomes = {}
        for name, subset in (("guilty", {guilty}), ("other", set(range(2)) - {guilty})):
            patch = Patch(patch_for(units, subset), subset_key(units, subset))
            outcomes[name] = executor.run(Probe(parent, (NODE,), patch=patch))
        plain = executor.run(Probe(parent, (NODE,)))  # the next checkout drops the patch
    assert outcomes["guilty"].results[NODE].outcome is Outcome.FAILED
    assert outcomes["other"].results[NODE].outcome is Outcome.PASSED
    assert plain.results[NODE].outcome is Outcome.PASSED
    assert git(repo, "status", "--porcelain") == ""  # the user's checkout is never touched
    assert (repo / "m.py").read_text() == BAD


def test_a_patch_that_does_not_apply_is_untestable_with_its_reason(repo: Path) -> None:
    parent, _ = _two_commits(repo)
    bogus = ("diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
             "@@ -40,1 +40,1 @@\n-nothing here\n+at all\n")
    with Repository(repo) as r, LocalExecutor(r) as executor:
        outcome = executor.run(Probe(parent, (NODE,), patch=Patch(bogus, "x" * 20)))
    result = outcome.results[NODE]
    assert result.outcome is Outcome.UNTESTABLE  # unresolved, never a failure
    assert outcome.problem is not None and outcome.problem.startswith(PATCH_REFUSED)
    assert result.message == outcome.problem


def test_patched_probes_are_stored_apart_and_reused_by_a_rerun(repo: Path) -> None:
    parent, culprit = _two_commits(repo)
    units = split(repo, parent, culprit)
    guilty = next(u.id for u in units if "return 2" in u.text)
    patch = Patch(patch_for(units, {guilty}), subset_key(units, {guilty}))
    request = ProbeRequest(parent, (NODE,), "isolate", patch=patch)
    url = f"sqlite:///{repo.parent / 'h.db'}"
    with Repository(repo) as r, LocalExecutor(r) as executor, HistoryStore.open(url) as store:
        prober = Prober(r, store, executor, Evidence(), executor.env_key())
        [first] = prober.known_or_run([request])
        assert first[NODE].outcome is Outcome.FAILED
        assert prober.evidence.latest(NODE, parent) is None  # not evidence about P
        assert store.results_at([parent]) == []
        [row] = store.results_at([parent], patched=True)
        assert (row.patch_key, row.outcome) == (patch.key, "failed")
        assert store.runs(sha=parent)[0].trigger == "isolate"
        again = Prober(r, store, executor, Evidence(), executor.env_key())
        again.load_patched(parent, [NODE])
        [second] = again.known_or_run([request])
        assert second[NODE].outcome is Outcome.FAILED
        assert (again.tally.runs, again.tally.reused) == (0, 1)


def test_gc_prunes_patched_probes_with_their_commit(repo: Path) -> None:
    """`bisector gc --keep` removes runs by commit: an isolation probe stored at P goes with
    P's other runs, like any probe."""
    from dataclasses import replace

    from .store_helpers import make_run

    url = f"sqlite:///{repo.parent / 'h.db'}"
    with HistoryStore.open(url) as store:
        store.record_run(make_run("a" * 40))
        store.record_run(replace(make_run("a" * 40), patch_key="k" * 20))
        pruned = store.prune(["a" * 40])
        assert pruned.runs == 2 and store.runs() == []


def test_isolation_settings_fill_what_the_flags_did_not_say() -> None:
    from bisector.bisection.isolate import IsolateOptions
    from bisector.config import Settings

    plain = Settings()
    assert IsolateOptions().settle(plain).isolate is False  # find-break, the plugin
    nightly = IsolateOptions(default=True).settle(plain)
    assert (nightly.isolate, nightly.min_hunks, nightly.max_probes) == (True, 3, 100)
    assert nightly.verifying
    configured = Settings(isolate=True, isolate_min_hunks=5, isolate_max_probes=40)
    auto = IsolateOptions().settle(configured)  # pytest --auto-bisect with isolate = true
    assert (auto.isolate, auto.min_hunks, auto.max_probes) == (True, 5, 40)
    flagged = IsolateOptions(isolate=True, max_probes=7).settle(configured)
    assert (flagged.min_hunks, flagged.max_probes) == (1, 7)  # --isolate: any change of 2+
    off = IsolateOptions(isolate=False, default=True).settle(configured)
    assert not off.active
    assert IsolateOptions(verify_revert=True).settle(plain).active  # the whole culprit
