"""The `bisect_log`: the `git bisect` lines that make `git bisect replay` end on the culprit.

Each test keeps its own trail of verdicts (`Trails`), in the order that replays them; the log
of a bisection follows one test's trail, since one `git bisect` names one commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..gitrepo import Repository
from ..model import Finding
from ..search import Verdict


def start_line(bad: str, good: str, first_parent: bool) -> str:
    """`git bisect start` as `git bisect log` writes it: replay reads the arguments only when
    single-quoted, and `--first-parent` (git 2.29+) walks the line that bisector searched."""
    args = ["--first-parent"] if first_parent else []
    return "git bisect start " + " ".join(f"'{arg}'" for arg in [*args, bad, good])


def bisect_line(verdict: Verdict, sha: str) -> str:
    word = "skip" if verdict is Verdict.UNTESTABLE else verdict.value
    return f"git bisect {word} {sha}"


class Trails:
    """Per test, its verdicts as `git bisect` lines, in the order that replays them."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def mark(self, test: str, verdict: Verdict, sha: str) -> None:
        self._lines.setdefault(test, []).append(bisect_line(verdict, sha))

    def mark_settled(self, test: str, settled: dict[str, Verdict], order: dict[str, int]
                     ) -> None:
        """What history settled: good and skip oldest first, bad newest first, since
        `git bisect bad X` moves refs/bisect/bad to X even when an older commit is bad."""
        known = sorted(settled, key=order.__getitem__)
        bads = [sha for sha in known if settled[sha] is Verdict.BAD]
        for sha in [s for s in known if s not in bads] + bads[::-1]:
            self.mark(test, settled[sha], sha)

    def of(self, test: str) -> list[str]:
        return list(self._lines.get(test, []))


def replayable(repo: Repository, start: str, probed: Sequence[str], trails: Trails,
               findings: Sequence[Finding]) -> tuple[str, ...]:
    """The log: the start line, then the trail of the first test with a culprit (else the
    first test).

    A culprit the search confirmed ends that test's trail. One the flake-aware search named
    replays from its conclusion (the culprit bad, its parent good), its runs (`probed`, the
    flake-aware search's `git bisect` lines) kept as comments above it: a flaky test's runs
    disagree, and `git bisect` would take each as final. Verdicts carry the comments
    `git bisect log` writes, and the log ends on the first bad commit, as git's does.
    """
    lead = next((f for f in findings if f.culprit), findings[0] if findings else None)
    if lead is None:
        return (start,)
    trail = trails.of(lead.nodeid)
    culprit = lead.culprit
    comments = [f"# the verdicts of {lead.nodeid}"]
    searched = (trail[-1:] == [bisect_line(Verdict.BAD, culprit.sha)] if culprit
                else lead.verdict == "bracketed")  # not the flake-aware search's answer
    live = trail
    if not searched:
        comments += [f"# searched before: {line.removeprefix('git bisect ')}"
                     for line in trail]
        comments += [f"# flake-aware probe: {line.removeprefix('git bisect ')}"
                     for line in probed]
        live = []
        if culprit is not None:
            comments.append("# the flake-aware search's verdict: the culprit and its parent")
            live = [bisect_line(Verdict.GOOD, culprit.parents[0]),
                    bisect_line(Verdict.BAD, culprit.sha)]
    infos = repo.commits(sorted({line.split()[-1] for line in live}))
    out = [start, *comments]
    for line in live:
        word, sha = line.split()[-2:]
        info = infos.get(sha)
        out += [f"# {word}: [{sha}] {info.subject if info else ''}".rstrip(), line]
    if culprit is not None:
        out.append(f"# first bad commit: [{culprit.sha}] {culprit.subject}".rstrip())
    return tuple(out)
