"""A merge found on a first-parent line: look for the culprit inside its branch.

Recursive, so a branch merged into a branch is followed too: every line searched is a
first-parent line, on which "fails from the culprit on" holds, unlike a date-ordered list of
the whole graph. Each test found inside keeps the outermost merge, the one on the line first
searched: where the break entered that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GitError
from ..search import Verdict
from .context import Context
from .drive import bisect_range
from .prober import ProbeRequest

MAX_DEPTH = 20  # branches merged into branches followed at most this deep


@dataclass
class Merged:
    """The suspects after following merges, per test the merge that brought its culprit into
    the first line searched, and what to tell the user, in order."""

    suspects: dict[str, tuple[str, ...]]
    merged_by: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def into_merges(ctx: Context, tests: list[str], suspects: dict[str, tuple[str, ...]]) -> Merged:
    merged = Merged(dict(suspects))
    _follow(ctx, tests, merged, 0)
    return merged


def _follow(ctx: Context, tests: list[str], merged: Merged, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    isolated = {s[0] for t, s in merged.suspects.items() if t in tests and len(s) == 1}
    for sha, info in ctx.repo.commits(sorted(isolated)).items():
        if len(info.parents) < 2:
            continue
        group = [t for t in tests if merged.suspects[t] == (sha,)]
        inside = _bad_at_tip(ctx, sha, group, info.parents[1], merged)
        if not inside:
            continue
        try:
            base = ctx.repo.merge_base(info.parents[0], info.parents[1])
        except GitError:  # unrelated histories (a subtree merge): the merge is the answer
            merged.notes.append(f"merge {sha[:10]} joins unrelated histories: not searched "
                                "inside")
            continue
        _search_branch(ctx, sha, base, info.parents[1], inside, merged)
        _follow(ctx, inside, merged, depth + 1)


def _bad_at_tip(ctx: Context, sha: str, group: list[str], branch: str, merged: Merged
                ) -> list[str]:
    """The tests that fail at the merged branch's tip (a rerun reuses its stored result);
    for the others the merge itself is the culprit: the combination breaks."""
    ctx.prober.load_known([branch], group)
    [at_tip] = ctx.prober.known_or_run([ProbeRequest.of(branch, group, "merged branch tip")])
    inside = [t for t in group if ctx.evidence.verdict(t, at_tip[t], branch) is Verdict.BAD]
    alone = [t for t in group if t not in inside]
    if alone:
        merged.notes.append(f"merge {sha[:10]} is the culprit of {', '.join(alone)}: its "
                            "branch passes alone, the combination breaks")
    return inside


def _search_branch(ctx: Context, sha: str, base: str, branch: str, inside: list[str],
                   merged: Merged) -> None:
    merged.notes.append(f"merge {sha[:10]} is the first bad commit on the first-parent line; "
                        f"searched its branch {base[:10]}..{branch[:10]}")
    for t in inside:
        merged.merged_by.setdefault(t, sha)
        # the branch search's ends, for the replay: the tip as probed, and the merge base
        # good as an ancestor of the good first parent (the search takes it so)
        ctx.trails.mark(t, Verdict.GOOD, base)
        ctx.trails.mark(t, Verdict.BAD, branch)
    found = bisect_range(ctx, inside, base, branch, True)
    merged.suspects.update(found.suspects)
    merged.notes.extend(found.notes)

