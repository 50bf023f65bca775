"""Cutting a change into units and applying any subset of them, in real git repositories."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from bisector import hunks
from bisector.errors import GitError
from bisector.hunks import Unit

from .conftest import commit, git

LINES = "".join(f"line{i}\n" for i in range(1, 21))
ODD_NAMES = ("-dash name.txt", 'quote"d.txt', "spé cial.txt", 'ß "日本"\\.txt')


def edited(text: str) -> str:
    """Hunks one unchanged line apart, an insertion at the top and at the end, a deletion."""
    lines = text.splitlines(keepends=True)
    lines[0] = "LINE1\n"
    lines[2] = "LINE3\n"
    lines.insert(5, "new\n")
    del lines[8]
    lines[10] = "X\n"
    return "top\n" + "".join(lines) + "end\n"


@pytest.fixture
def change(repo: Path) -> tuple[Path, str, str]:
    """P -> C touching every kind of unit, and file names that look like options or quotes."""
    files = {"a.py": LINES, "gone.txt": "bye\n", "old.txt": "".join(f"o{i}\n" for i in range(30)),
             "run.sh": "echo 1\n", "tool.sh": "true\n", "nonl.txt": "a\nb",
             **{n: "x\ny\nz\n" for n in ODD_NAMES}}
    (repo / "bin.dat").write_bytes(bytes(range(256)))
    parent = commit(repo, files, "P")
    (repo / "bin.dat").write_bytes(bytes(range(255, -1, -1)))
    (repo / "gone.txt").unlink()
    (repo / "old.txt").rename(repo / "new.txt")
    mode = (repo / "run.sh").stat().st_mode
    (repo / "run.sh").chmod(mode | stat.S_IXUSR)
    (repo / "tool.sh").chmod(mode | stat.S_IXUSR)  # a mode change and nothing else
    changes = {"a.py": edited(LINES), "added file.txt": "hi\n", "run.sh": "echo 1\necho 2\n",
               "nonl.txt": "a\nB", **{n: "x\nY\nz\n" for n in ODD_NAMES}}
    culprit = commit(repo, changes, "C")
    return repo, parent, culprit


def worktree(repo: Path, sha: str) -> Path:
    path = repo.parent / "probe"
    if not path.exists():
        git(repo, "worktree", "add", "--detach", "--force", str(path), sha)
    git(path, "checkout", "--detach", "--force", "--quiet", sha)
    git(path, "clean", "-ffdxq")
    return path


def tree_of(path: Path) -> str:
    git(path, "add", "-A")
    tree = git(path, "write-tree")
    git(path, "reset", "-q")
    return tree


def by_kind(units: list[Unit]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u in units:
        out.setdefault(u.kind, []).append(u.file)
    return out


def test_every_hunk_and_whole_file_is_a_unit(change: tuple[Path, str, str]) -> None:
    repo, parent, culprit = change
    units = hunks.split(repo, parent, culprit)
    assert [u.id for u in units] == list(range(len(units)))
    kinds = by_kind(units)
    assert kinds["added"] == ["added file.txt"]
    assert kinds["deleted"] == ["gone.txt"]
    assert kinds["renamed"] == ["new.txt"]
    assert kinds["binary"] == ["bin.dat"]
    assert kinds["mode"] == ["run.sh", "tool.sh"]
    assert sorted(set(kinds["hunk"])) == sorted(["a.py", "nonl.txt", "run.sh", *ODD_NAMES])
    a = [(u.old_start, u.old_lines, u.new_start, u.new_lines) for u in units if u.file == "a.py"]
    # "top" and LINE1 touch, so they are one hunk; LINE3 is one unchanged line below it
    assert a == [(1, 1, 1, 2), (3, 1, 4, 1), (5, 0, 7, 1), (8, 1, 9, 0), (11, 1, 12, 1),
                 (20, 0, 22, 1)]
    assert next(u for u in units if u.file == "a.py").text.startswith("@@ -1 +1,2 @@\n-line1\n")


def test_each_unit_alone_and_all_but_each_apply_both_ways(
        change: tuple[Path, str, str]) -> None:
    """P + S and C - (everything else) are the same tree, for S one unit or all but one."""
    repo, parent, culprit = change
    units = hunks.split(repo, parent, culprit)
    everything = {u.id for u in units}
    subsets = [{u.id} for u in units] + [everything - {u.id} for u in units]
    for subset in subsets:
        forward = worktree(repo, parent)
        assert hunks.apply_units(forward, units, subset).ok, subset
        at_p = tree_of(forward)
        backward = worktree(repo, culprit)
        assert hunks.apply_units(backward, units, everything - subset, reverse=True).ok, subset
        assert tree_of(backward) == at_p, subset


def contents(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.glob("*.py"))}


def test_every_subset_of_adjacent_hunks_applies_forward_at_p_and_reverse_at_c(
        repo: Path) -> None:
    """Five hunks of one file, each one unchanged line from the next (an insertion at the
    top and a deletion at the end among them), and one in another file: all 64 subsets."""
    old = "".join(f"{i}\n" for i in range(1, 10))
    new = "top\n1\nTWO\n3\n4\nadded\n5\nSIX\n7\n"
    parent = commit(repo, {"a.py": old, "b.py": "1\n"}, "P")
    culprit = commit(repo, {"a.py": new, "b.py": "1\n2\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    assert [u.file for u in units] == ["a.py"] * 5 + ["b.py"]
    everything = {u.id for u in units}
    forward, backward = worktree(repo, parent), repo.parent / "probe-c"
    git(repo, "worktree", "add", "--detach", str(backward), culprit)
    for size in range(len(units) + 1):
        for subset in map(set, itertools.combinations(everything, size)):
            git(forward, "reset", "--hard", "-q")
            git(backward, "reset", "--hard", "-q")
            assert hunks.apply_units(forward, units, subset).ok, subset
            assert hunks.apply_units(backward, units, everything - subset, reverse=True).ok
            assert contents(forward) == contents(backward), subset
    assert contents(forward) == {"a.py": new, "b.py": "1\n2\n"}


def test_a_patch_that_does_not_apply_is_a_result(repo: Path) -> None:
    parent = commit(repo, {"a.py": LINES}, "P")
    culprit = commit(repo, {"a.py": edited(LINES)}, "C")
    units = hunks.split(repo, parent, culprit)
    probe = worktree(repo, culprit)  # forward at C: the lines are not P's any more
    applied = hunks.apply_units(probe, units, [1])
    assert not applied.ok
    assert "patch does not apply" in applied.detail
    assert git(probe, "status", "--porcelain") == ""  # all or nothing


def test_odd_file_names_are_data(change: tuple[Path, str, str]) -> None:
    repo, parent, culprit = change
    units = hunks.split(repo, parent, culprit)
    for name in ODD_NAMES:
        (unit,) = [u for u in units if u.file == name]
        probe = worktree(repo, parent)
        assert hunks.apply_units(probe, units, [unit.id]).ok
        assert (probe / name).read_text() == "x\nY\nz\n"


def test_a_revision_that_looks_like_an_option_is_refused(repo: Path) -> None:
    sha = commit(repo, {"a.py": LINES}, "P")
    with pytest.raises(GitError, match="not a commit id"):
        hunks.split(repo, "--output=/tmp/x", sha)


def test_the_users_diff_settings_do_not_change_the_units(repo: Path) -> None:
    parent = commit(repo, {"a.py": LINES}, "P")
    culprit = commit(repo, {"a.py": edited(LINES)}, "C")
    plain = hunks.split(repo, parent, culprit)
    for key, value in (("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true"),
                       ("color.diff", "always"), ("diff.context", "7")):
        git(repo, "config", key, value)
    assert hunks.split(repo, parent, culprit) == plain


def loose_objects(repo: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(repo / ".git" / "objects")
               if files)


def test_the_revert_patch_applies_at_a_later_commit(repo: Path) -> None:
    """The reversal of S, against C with context: at a later bad end where lines moved it
    applies (git anchors a hunk at line 1 to the top unless asked to search), reverts exactly
    S, and comes back as a patch that plain `git apply` takes at the bad end."""
    parent = commit(repo, {"a.py": LINES, "b.py": "1\n2\n3\n"}, "P")
    culprit = commit(repo, {"a.py": edited(LINES), "b.py": "1\n2\n3\n4\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    guilty = [u.id for u in units if u.file == "a.py"][1:3]
    before = loose_objects(repo)
    patch = hunks.revert_patch(repo, culprit, units, guilty)
    assert loose_objects(repo) == before  # built in a temporary object directory
    assert patch.startswith("diff --git a/a.py b/a.py\n") and "@@ -1,10 +1,9 @@" in patch
    later = commit(repo, {"a.py": "header\n" + edited(LINES), "c.py": "c\n"}, "later")
    probe = worktree(repo, later)
    assert not hunks.apply_patch(probe, patch).ok  # anchored at the top
    reverted = hunks.revert_at(probe, patch)
    assert reverted.ok
    text = (probe / "a.py").read_text().splitlines()
    assert text[:6] == ["header", "top", "LINE1", "line2", "line3", "line4"]
    assert "new" not in text and "X" in text
    probe = worktree(repo, later)
    assert hunks.apply_patch(probe, reverted.patch).ok
    assert (probe / "a.py").read_text().splitlines() == text


def test_a_revert_near_the_top_of_a_short_file_is_found_below_new_lines(repo: Path) -> None:
    """Two lines of context above, one below: git would anchor it to the top of the file."""
    parent = commit(repo, {"a.py": "v\n#\nf = 1\n#\n", "b.py": "1\n2\n3\n4\n5\n"}, "P")
    culprit = commit(repo, {"a.py": "v\n#\nf = 2\n#\n", "b.py": "ONE\n2\n3\n4\n5\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    patch = hunks.revert_patch(repo, culprit, units, [0, 1])
    later = commit(repo, {"a.py": "# moved\n# down\nv\n#\nf = 2\n#\n",
                          "b.py": "# moved\n\nONE\n2\n3\n4\n5\n"}, "later")
    probe = worktree(repo, later)
    assert hunks.revert_at(probe, patch).ok
    assert (probe / "a.py").read_text() == "# moved\n# down\nv\n#\nf = 1\n#\n"
    assert (probe / "b.py").read_text() == "# moved\n\n1\n2\n3\n4\n5\n"


def test_a_revert_next_to_a_later_change_merges_three_ways(repo: Path) -> None:
    """A line changed two above the reverted one: the context is gone, git's merge still works."""
    parent = commit(repo, {"a.py": "1\n2\n3\n4\n5\n6\n7\n8\n"}, "P")
    culprit = commit(repo, {"a.py": "1\n2\n3\n4\nFIVE\n6\n7\n8\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    patch = hunks.revert_patch(repo, culprit, units, [0])
    later = commit(repo, {"a.py": "1\n2\nthree\n4\nFIVE\n6\n7\n8\n"}, "later")
    probe = worktree(repo, later)
    reverted = hunks.revert_at(probe, patch)
    assert (reverted.ok, (probe / "a.py").read_text()) == (True, "1\n2\nthree\n4\n5\n6\n7\n8\n")


def test_a_revert_that_conflicts_is_said(repo: Path) -> None:
    parent = commit(repo, {"a.py": LINES}, "P")
    culprit = commit(repo, {"a.py": edited(LINES)}, "C")
    units = hunks.split(repo, parent, culprit)
    patch = hunks.revert_patch(repo, culprit, units, [1])  # LINE3
    later = commit(repo, {"a.py": edited(LINES).replace("LINE3", "line3 rewritten")}, "later")
    reverted = hunks.revert_at(worktree(repo, later), patch)
    assert not reverted.ok and reverted.detail and not reverted.patch


def test_the_revert_patch_is_written_under_the_culprits_short_sha(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    path = hunks.write_revert(tmp_path, sha, "diff --git a/x b/x\n")
    assert path == tmp_path / "revert-0123456789.patch"
    assert hunks.revert_patch(tmp_path, sha, [], []) == ""


def test_hunks_on_the_failures_lines_go_first(repo: Path) -> None:
    parent = commit(repo, {"a.py": LINES, "b.py": "1\n2\n3\n"}, "P")
    culprit = commit(repo, {"a.py": edited(LINES), "b.py": "1\n2\n3\n4\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    traceback = ('    def test_x():\n>       assert f()\n\nsrc/a.py:12: AssertionError\n'
                 '  File "/abs/b.py", line 1, in <module>\n')
    order = hunks.priority(units, traceback)
    a12 = next(u.id for u in units if u.file == "a.py" and u.new_start == 12)
    assert order[0] == a12
    assert set(order) == {u.id for u in units}  # b.py: in a file of the traceback
    assert order[-1] == next(u.id for u in units if u.file == "b.py")
    assert hunks.priority(units, None) == []


def test_a_traceback_relative_to_a_rootdir_below_the_repository_points_at_hunks(
        repo: Path) -> None:
    """pytest writes paths relative to its rootdir: a project in `sub/` says `pkg/a.py:12`
    for the repository's `sub/pkg/a.py`."""
    parent = commit(repo, {"sub/pkg/a.py": LINES, "sub/pkg/b.py": "1\n2\n3\n"}, "P")
    culprit = commit(repo, {"sub/pkg/a.py": edited(LINES), "sub/pkg/b.py": "1\n2\n3\n4\n"},
                     "C")
    units = hunks.split(repo, parent, culprit)
    order = hunks.priority(units, "pkg/a.py:12: AssertionError\n")
    assert order[0] == next(u.id for u in units
                            if u.file == "sub/pkg/a.py" and u.new_start == 12)
    by_id = {u.id: u for u in units}
    assert {by_id[i].file for i in order} == {"sub/pkg/a.py"}


def test_quoted_paths_are_unquoted() -> None:
    assert hunks.unquote('"a/quote\\"d.txt"') == 'a/quote"d.txt'
    assert hunks.unquote('"sp\\303\\251c.txt"') == "spéc.txt"
    assert hunks.unquote("plain name.txt") == "plain name.txt"
    # core.quotepath=off: a non-ASCII name is raw UTF-8 inside the quotes
    assert hunks.unquote('"a/日\\"x.py"') == 'a/日"x.py'
    assert hunks.unquote('"a/é\\tx\\\\y"') == "a/é\tx\\y"


def test_changes_that_cannot_be_isolated_say_why(repo: Path) -> None:
    parent = commit(repo, {"a.py": LINES}, "P")
    assert hunks.not_isolable(hunks.split(repo, parent, parent)) == "the change is empty"
    one = commit(repo, {"a.py": LINES.replace("line5", "five")}, "one")
    assert hunks.not_isolable(hunks.split(repo, parent, one)) == "the change is a single hunk"
    (repo / "x.bin").write_bytes(b"\0\1")
    (repo / "y.bin").write_bytes(b"\0\2")
    binary = commit(repo, {}, "binary")
    assert hunks.not_isolable(hunks.split(repo, one, binary)) == "the change is binary only"
    two = commit(repo, {"a.py": LINES.replace("line2", "two").replace("line9", "nine")}, "two")
    assert hunks.not_isolable(hunks.split(repo, parent, two)) is None


def test_a_subsets_key_does_not_depend_on_numbering(change: tuple[Path, str, str]) -> None:
    repo, parent, culprit = change
    units = hunks.split(repo, parent, culprit)
    a = [u for u in units if u.file == "a.py"]
    assert hunks.subset_key(units, [a[1].id]) == hunks.subset_key(a, [a[1].id])
    assert hunks.subset_key(units, [a[1].id]) != hunks.subset_key(units, [a[2].id])
    assert hunks.subset_key(units, []) == hunks.subset_key(a, [])


def test_carriage_returns_and_form_feeds_survive(repo: Path) -> None:
    """A CRLF file and a line holding a form feed: git's bytes, not Python's idea of lines."""
    (repo / "dos.txt").write_bytes(b"a\r\nb\r\nc\r\nd\r\n")
    parent = commit(repo, {"ff.txt": "x\fy\nz\nw\n"}, "P")
    (repo / "dos.txt").write_bytes(b"A\r\nb\r\nC\r\nd\r\n")
    culprit = commit(repo, {"ff.txt": "x\fy\nZ\nw\n"}, "C")
    units = hunks.split(repo, parent, culprit)
    assert [u.file for u in units] == ["dos.txt", "dos.txt", "ff.txt"]
    probe = worktree(repo, parent)
    assert hunks.apply_units(probe, units, [1, 2]).ok
    assert (probe / "dos.txt").read_bytes() == b"a\r\nb\r\nC\r\nd\r\n"
    assert (probe / "ff.txt").read_text() == "x\fy\nZ\nw\n"


def test_a_candidate_is_built_with_the_smaller_patch(change: tuple[Path, str, str]) -> None:
    repo, parent, culprit = change
    units = hunks.split(repo, parent, culprit)
    everything = frozenset(u.id for u in units)
    assert hunks.realize(units, {0}) == ("forward", frozenset({0}))
    assert hunks.realize(units, everything - {0}) == ("reverse", frozenset({0}))


def test_hunk_shaping_diff_settings_do_not_change_the_units(repo: Path) -> None:
    """diff.interHunkContext glued two hunks into one (a change then "cannot be isolated"),
    and diff.algorithm or diff.orderFile would cut and number them otherwise."""
    parent = commit(repo, {"a.py": LINES, "b.py": LINES}, "P")
    culprit = commit(repo, {"a.py": edited(LINES), "b.py": LINES.replace("line9", "LINE9")}, "C")
    plain = hunks.split(repo, parent, culprit)
    (repo / "order").write_text("b.py\na.py\n")
    for key, value in (("diff.interHunkContext", "10"), ("diff.algorithm", "patience"),
                       ("diff.indentHeuristic", "false"), ("diff.orderFile", "order")):
        git(repo, "config", key, value)
    assert hunks.split(repo, parent, culprit) == plain
    assert len([u for u in plain if u.file == "a.py"]) > 1
