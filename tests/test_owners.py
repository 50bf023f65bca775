"""CODEOWNERS: GitHub's patterns, last match wins, unreadable lines named by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector.owners import culprit_owners, owners_for, owners_of, parse

from .conftest import commit, run_cli

# The example file of GitHub's documentation, abridged.
EXAMPLE = """\
# a comment
*       @global-owner1 @global-owner2
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/github
"""


@pytest.mark.parametrize(("path", "owners"), [
    ("README.md", ("@global-owner1", "@global-owner2")),
    ("src/app.js", ("@js-owner",)),
    ("cmd/main.go", ("docs@example.com",)),
    ("build/logs/today.txt", ("@octocat",)),  # **/logs comes later: it wins
    ("docs/getting-started.md", ("@doctocat",)),  # /docs/ comes after docs/*: it wins
    ("docs/build-app/troubleshooting.md", ("@doctocat",)),
    ("web/apps/x.txt", ("@octocat",)),  # apps/ anywhere
    ("apps/github/main.py", ()),  # a rule without owners: nobody
    ("scripts/run.sh", ("@doctocat", "@octocat")),
    ("deep/a/logs/x.log", ("@octocat",)),
])
def test_github_example(path: str, owners: tuple[str, ...]) -> None:
    rules, problems = parse(EXAMPLE)
    assert problems == []
    assert owners_of(path, rules) == owners


def test_star_in_the_last_segment_matches_only_direct_files() -> None:
    rules, _ = parse("* @all\ndocs/* @docs\n")
    assert owners_of("docs/a.md", rules) == ("@docs",)
    assert owners_of("docs/sub/b.md", rules) == ("@all",)


def test_unreadable_lines_are_named_and_the_rest_still_used() -> None:
    rules, problems = parse("* @all\n!vendor/ @x\nsrc/ not-an-owner\nsrc/ @src\n")
    assert [p.split(":")[0] for p in problems] == ["CODEOWNERS line 2", "CODEOWNERS line 3"]
    assert owners_for(["src/a.py", "README"], rules) == ("@src", "@all")


_segment = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,6}\Z")


@given(st.lists(_segment, min_size=1, max_size=4), st.lists(_segment, max_size=3))
def test_an_anchored_directory_owns_everything_below_it(dirs: list[str],
                                                        rest: list[str]) -> None:
    rules, _ = parse(f"* @all\n/{'/'.join(dirs)}/ @team\n")
    below = "/".join([*dirs, *rest, "file.txt"])
    assert owners_of(below, rules) == ("@team",)
    assert owners_of("elsewhere-" + below, rules) == ("@all",)


def test_find_break_names_the_owners(repo: Path) -> None:
    good = commit(repo, {".github/CODEOWNERS": "* @everyone\n/lib/ @lib-team\n",
                         "lib/m.py": "A = 1\n",
                         "test_m.py": "import sys\nsys.path.insert(0, 'lib')\nimport m\n\n"
                                      "def test_a():\n    assert m.A == 1\n"})
    commit(repo, {"notes.txt": "1\n"})
    culprit = commit(repo, {"lib/m.py": "A = 2\n"}, "Break lib")
    commit(repo, {"notes.txt": "2\n"})
    proc = run_cli("find-break", "--json", "test_m.py::test_a", "--good", good, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    [group] = json.loads(proc.stdout)["culprits"]
    assert group["commit"]["sha"] == culprit
    # the nightly's rule too (one function): CODEOWNERS' owners, then the author
    assert group["owners"] == ["@lib-team", "Test Author <author@example.invalid>"]
    text = run_cli("find-break", "test_m.py::test_a", "--good", good, cwd=repo).stdout
    assert "owners  @lib-team, Test Author <author@example.invalid>" in text


def test_the_culprits_owners_rule() -> None:
    rules, _ = parse("* @all\nlib/ @lib-team author@example.com\n")
    assert culprit_owners(["README"], rules, "Ann", "ann@example.com") == (
        "@all", "Ann <ann@example.com>")
    # no rule names anyone, or no CODEOWNERS at all: the author still owns the change
    assert culprit_owners(["x"], [], "Ann", "ann@example.com") == ("Ann <ann@example.com>",)
    # an author CODEOWNERS already names by e-mail is not named twice
    assert culprit_owners(["lib/m.py"], rules, "Au", "Author@example.com") == (
        "@lib-team", "author@example.com")

