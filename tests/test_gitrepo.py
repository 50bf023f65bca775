from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector.errors import GitError
from bisector.gitrepo import Repository, parse_status

from .conftest import commit, git


def test_parse_status_headers_and_entries() -> None:
    head = "# branch.oid abc\0# branch.head main\0"
    assert parse_status(head) == ("abc", "main", False)
    assert parse_status("# branch.oid (initial)\0# branch.head (detached)\0") == (None, None, False)
    assert parse_status(head + "? pkg/__pycache__/\0? x.pyc\0")[2] is False
    assert parse_status(head + "? new_test.py\0")[2] is True
    assert parse_status(head + "1 .M N... 100644 100644 100644 a b f.py\0")[2] is True
    assert parse_status(head + "2 R. N... 100644 100644 100644 a b R100 new\0old\0")[2] is True


@given(st.lists(st.sampled_from(["__pycache__", "a", "b.pyc", "c.py", "d"]), min_size=1,
                max_size=4))
def test_untracked_path_is_dirty_unless_it_is_bytecode(parts: list[str]) -> None:
    path = "/".join(parts)
    _, _, dirty = parse_status(f"# branch.oid x\0? {path}\0")
    assert dirty == ("__pycache__" not in parts and not path.endswith(".pyc"))


def test_state_of_a_real_checkout(repo: Path) -> None:
    sha = commit(repo, {"a.py": "x = 1\n"})
    with Repository(repo) as r:
        assert (r.state().sha, r.state().branch, r.state().dirty) == (sha, "main", False)
        (repo / "a.py").write_text("x = 2\n")
        assert r.state().dirty
        git(repo, "checkout", "a.py")
        git(repo, "checkout", "-q", "--detach")
        assert r.state().branch is None


def test_subdirectory_and_worktree_share_the_main_root(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"sub/a.py": "x = 1\n"})
    with Repository(repo / "sub") as r:
        assert r.root == repo.resolve() and r.main_root == repo.resolve()
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    try:
        with Repository(tmp_path / "wt") as r:
            assert r.root == (tmp_path / "wt").resolve()
            assert r.main_root == repo.resolve()
    finally:
        git(repo, "worktree", "remove", "--force", str(tmp_path / "wt"))


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        Repository(tmp_path)


@pytest.mark.parametrize("rev", ["-x", "--output=/tmp/pwned", ""])
def test_option_like_revisions_are_refused(repo: Path, rev: str, tmp_path: Path) -> None:
    commit(repo, {"a": "1"})
    with Repository(repo) as r, pytest.raises(GitError):
        r.resolve(rev)
    assert not Path("/tmp/pwned").exists()


def test_a_branch_named_like_an_option_cannot_be_smuggled(repo: Path) -> None:
    commit(repo, {"a": "1"})
    git(repo, "update-ref", "refs/heads/-x", "HEAD")
    with Repository(repo) as r, pytest.raises(GitError, match="cannot start with '-'"):
        r.resolve("-x")


def test_unknown_revision(repo: Path) -> None:
    commit(repo, {"a": "1"})
    with Repository(repo) as r, pytest.raises(GitError, match="unknown revision 'nope'"):
        r.resolve("nope")


def test_first_parent_skips_merged_branches_and_pages(repo: Path) -> None:
    base = commit(repo, {"a": "1"}, "base")
    git(repo, "checkout", "-q", "-b", "side")
    side = commit(repo, {"b": "1"}, "side work")
    git(repo, "checkout", "-q", "main")
    main2 = commit(repo, {"c": "1"}, "main work")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "side")
    merge = git(repo, "rev-parse", "HEAD")
    with Repository(repo) as r:
        assert r.first_parent() == [merge, main2, base]
        assert r.first_parent(limit=1, skip=1) == [main2]
        infos = r.commits([merge, side])
        assert infos[merge].parents == (main2, side)
        assert infos[side].subject == "side work"
        assert infos[side].author_name == "Test Author"


def test_first_parent_of_a_full_sha_and_of_an_unknown_one(repo: Path) -> None:
    base = commit(repo, {"a": "1"}, "base")
    head = commit(repo, {"a": "2"}, "next")
    with Repository(repo) as r:
        assert r.first_parent(head) == [head, base]
        with pytest.raises(GitError, match=r"unknown revision 'a{40}'"):
            r.first_parent("a" * 40)


def test_a_range_of_two_shas_is_listed_once_and_a_named_one_each_time(repo: Path) -> None:
    base = commit(repo, {"a": "1"}, "base")
    one = commit(repo, {"a": "2"}, "one")
    with Repository(repo) as r:
        listed = r.range(base, one)
        listed.append("mine")  # the caller's copy
        two = commit(repo, {"a": "3"}, "two")
        assert r.range(base, one) == [one]
        assert r.range(base, "main") == [one, two]  # a branch name moves: listed again


def test_codeowners_from_the_first_place_github_looks(repo: Path) -> None:
    none = commit(repo, {"a": "1", "docs/x.md": "x"})
    docs = commit(repo, {"docs/CODEOWNERS": "* @docs\n"})
    root = commit(repo, {"CODEOWNERS": "* @root\n"})
    both = commit(repo, {".github/CODEOWNERS": "* @github\n"})
    with Repository(repo) as r:
        assert [r.codeowners(sha) for sha in (none, docs, root, both)] == [
            None, "* @docs", "* @root", "* @github"]


def test_ensure_excluded_is_idempotent(repo: Path) -> None:
    commit(repo, {"a": "1"})
    with Repository(repo) as r:
        r.ensure_excluded()
        r.ensure_excluded()
    text = (repo / ".git" / "info" / "exclude").read_text()
    assert text.count("/.bisector/") == 1
    (repo / ".bisector").mkdir()
    (repo / ".bisector" / "history.db").write_text("x")
    assert git(repo, "status", "--porcelain") == ""


def test_removing_our_worktree_keeps_the_users_away_worktree(repo: Path, tmp_path: Path) -> None:
    """`git worktree prune` would forget a user's worktree whose directory is away."""
    import shutil

    from bisector.gitrepo import Repository

    (repo / "f").write_text("x")
    git(repo, "add", "f")
    git(repo, "commit", "-qm", "c")
    users = tmp_path / "users-wt"
    git(repo, "worktree", "add", "-q", "--detach", str(users))
    shutil.move(str(users), str(tmp_path / "elsewhere"))  # e.g. on a disk not mounted now
    ours = tmp_path / "ours"
    with Repository(repo) as r:
        r.add_worktree(ours, git(repo, "rev-parse", "HEAD"))
        shutil.rmtree(ours / "sub", ignore_errors=True)
        (ours / ".git").unlink()  # broken: `git worktree remove` refuses it
        r.remove_worktree(ours)
    listed = git(repo, "worktree", "list", "--porcelain")
    assert str(users) in listed and str(ours) not in listed
