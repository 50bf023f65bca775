"""Everything bisector asks of git, in one place.

This is the only module that imports GitPython, and it does so lazily: `import git` runs git at
import time, and the pytest plugin must cost nothing when tracking is off. Ranges are listed
with one `git rev-list`/`git log` call and parsed here, never walked object by object, and every
`Repo` is closed (GitPython keeps `git cat-file` processes alive per instance).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GitError
from .model import CommitInfo

if TYPE_CHECKING:
    import git

EXCLUDE_PATTERN = ".bisector/"
_FIELD = "\x1f"
_RECORD = "\x1e"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_LOG_FORMAT = _FIELD.join(["%H", "%P", "%an", "%ae", "%ct", "%s"]) + _RECORD


@dataclass(frozen=True, slots=True)
class WorkingState:
    """What the checkout is at: the commit, the branch (None when detached) and dirtiness."""

    sha: str
    branch: str | None
    dirty: bool


def _import_git() -> Any:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    try:
        import git
    except ImportError as exc:  # pragma: no cover - git is a hard dependency
        raise GitError("GitPython cannot be imported", hint="pip install GitPython") from exc
    return git


def _ignored_untracked(path: str) -> bool:
    """Bytecode caches appear as soon as a suite imports a module; they say nothing of the code."""
    parts = path.rstrip("/").split("/")
    return "__pycache__" in parts or path.endswith((".pyc", ".pyo"))


def parse_status(output: str) -> tuple[str | None, str | None, bool]:
    """Parse `git status --porcelain=v2 --branch -z` into (sha, branch, dirty).

    Dirty means any staged or unstaged change to a tracked file, or an untracked file git does
    not ignore: an untracked test or module changes what a suite does just as much.
    """
    sha: str | None = None
    branch: str | None = None
    dirty = False
    tokens = output.split("\0")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token:
            continue
        if token.startswith("# branch.oid "):
            value = token[len("# branch.oid ") :]
            sha = None if value == "(initial)" else value
        elif token.startswith("# branch.head "):
            value = token[len("# branch.head ") :]
            branch = None if value == "(detached)" else value
        elif token.startswith("#"):
            continue
        elif token.startswith("? "):
            if not _ignored_untracked(token[2:]):
                dirty = True
        elif token.startswith("2 "):
            dirty = True
            i += 1  # a rename or copy is followed by its original path
        elif token[0] in "1u":
            dirty = True
    return sha, branch, dirty


def parse_log(output: str) -> list[CommitInfo]:
    commits = []
    for record in output.split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, parents, name, email, when, subject = record.split(_FIELD, 5)
        commits.append(
            CommitInfo(
                sha=sha,
                parents=tuple(parents.split()),
                author_name=name,
                author_email=email,
                committed_at=int(when),
                subject=subject,
            )
        )
    return commits


# Variables git sets for hooks (and pre-commit sets for its stash) that would point our git
# calls, and the probes' worktrees, at the user's index or repository instead of our own.
LOCAL_GIT_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_IMPLICIT_WORK_TREE",
    "GIT_SHALLOW_FILE", "GIT_GRAFT_FILE",
)


class Repository:
    """A git checkout, opened once per use and closed with `with`.

    Opening one drops the repository-locating git variables from this process's environment:
    bisector works on the checkout it is pointed at, never on a hook's GIT_DIR or index.
    """

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        for var in LOCAL_GIT_ENV:
            os.environ.pop(var, None)
        git = _import_git()
        self._path = Path(path)
        # CommitInfo by full sha: a commit's metadata never changes, and a bisection asks for
        # the same commits again (each probe's run is stored with its commit)
        self._infos: dict[str, CommitInfo] = {}
        # good..bad between two full shas never changes: the finder lists a range twice (the
        # flakiness window, then the search)
        self._ranges: dict[tuple[str, str, bool], list[str]] = {}
        try:
            self._repo: git.Repo = git.Repo(self._path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"not a git repository: {self._path.resolve()}",
                hint="run inside a git checkout or pass --repo PATH",
            ) from None
        if self._repo.bare:
            self._repo.close()
            raise GitError(f"{self._path.resolve()} is a bare repository", hint="use a checkout")

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._repo.close()

    def _git(self, *args: str, **kwargs: Any) -> str:
        git = _import_git()
        try:
            return self._repo.git.execute(["git", *args], **kwargs)
        except git.GitCommandError as exc:
            stderr = (exc.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
            first = stderr.splitlines()[0] if stderr else f"git {args[0]} failed"
            raise GitError(first, stderr=stderr) from None

    @property
    def root(self) -> Path:
        """The working tree this checkout is (a linked worktree's own root, if it is one)."""
        return Path(self._repo.working_tree_dir or self._path).resolve()

    @property
    def common_dir(self) -> Path:
        return Path(self._repo.common_dir).resolve()

    @property
    def main_root(self) -> Path:
        """The main checkout, shared by all linked worktrees: where `.bisector/` lives."""
        common = self.common_dir
        return common.parent if common.name == ".git" else self.root

    def state(self) -> WorkingState:
        out = self._git(
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=normal",
            strip_newline_in_stdout=False,
        )
        sha, branch, dirty = parse_status(out)
        if sha is None:
            raise GitError(f"{self.root} has no commit yet", hint="commit something first")
        return WorkingState(sha=sha, branch=branch, dirty=dirty)

    def dirty_paths(self, limit: int = 5) -> list[str]:
        """The first paths that make the checkout dirty (as `state` judges), to name them."""
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=normal",
                        strip_newline_in_stdout=False)
        paths: list[str] = []
        tokens = iter(out.split("\0"))
        for token in tokens:
            if len(token) < 4:
                continue
            code, path = token[:2], token[3:]
            if code.startswith("R") or code.startswith("C"):
                next(tokens, None)  # the original path of a rename or copy
            if code == "??" and _ignored_untracked(path):
                continue
            paths.append(path)
            if len(paths) >= limit:
                break
        return paths

    def ensure_excluded(self, pattern: str = EXCLUDE_PATTERN) -> None:
        """Keep bisector's own files out of `git status` without touching tracked files."""
        exclude = self.common_dir / "info" / "exclude"
        try:
            existing = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        except OSError:
            return
        lines = {line.strip() for line in existing.splitlines()}
        if pattern in lines or f"/{pattern}" in lines:
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        sep = "" if not existing or existing.endswith("\n") else "\n"
        with exclude.open("a", encoding="utf-8") as fh:
            fh.write(f"{sep}/{pattern}\n")

    def exclude_store(self, path: Path | None) -> None:
        """A SQLite store inside the checkout (and its -wal/-shm files) is not dirt."""
        if path is not None:
            self.exclude_own(path, "*")

    def exclude_own(self, path: Path, suffix: str) -> None:
        """bisector's own file or directory (`suffix` "/") inside the checkout is not dirt:
        anything under `.bisector/` by excluding that directory, elsewhere by its path."""
        try:
            rel = path.resolve().relative_to(self.main_root)
        except ValueError:
            return
        if rel.parts and f"{rel.parts[0]}/" == EXCLUDE_PATTERN:
            self.ensure_excluded()  # the default place: the whole directory is excluded
            return
        self.ensure_excluded(f"{rel.as_posix()}{suffix}")

    def resolve(self, rev: str) -> str:
        """A commit sha for a user-supplied revision, never letting it be read as an option."""
        if not rev or rev.startswith("-"):
            raise GitError(f"refusing revision {rev!r}", hint="a revision cannot start with '-'")
        try:
            return self._git(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
            )
        except GitError:
            hint = "check the name with `git log --oneline`"
            if self.is_shallow():
                hint = "this is a shallow clone: run `git fetch --unshallow` and try again"
            raise GitError(f"unknown revision {rev!r}", hint=hint) from None

    def first_parent(
        self, rev: str = "HEAD", *, limit: int | None = None, skip: int = 0
    ) -> list[str]:
        """Shas along the first-parent line from `rev`, newest first, with one rev-list call
        (a full sha is its own name: rev-list refuses one that is not a commit here)."""
        sha = rev if _FULL_SHA.fullmatch(rev) else self.resolve(rev)
        args = ["rev-list", "--first-parent"]
        if limit is not None:
            args.append(f"--max-count={int(limit)}")
        if skip:
            args.append(f"--skip={int(skip)}")
        try:
            out = self._git(*args, sha)
        except GitError:
            self.resolve(rev)  # an unknown sha is said as any unknown revision is
            raise
        return out.split()

    def commits(self, shas: list[str]) -> dict[str, CommitInfo]:
        """Metadata for many commits in the order asked, a thousand per `git log --no-walk`
        call; commits this repository object has read before are not read again."""
        missing = [s for s in shas if s not in self._infos and not s.startswith("-")]
        fetched: dict[str, CommitInfo] = {}
        for i in range(0, len(missing), 1000):
            log = self._git("log", "--no-walk=unsorted", f"--format={_LOG_FORMAT}",
                            *missing[i : i + 1000], "--")
            fetched.update((c.sha, c) for c in parse_log(log))
        self._infos.update(fetched)
        out = {s: self._infos[s] for s in shas if s in self._infos}
        out.update(fetched)  # revisions asked by another name than their full sha
        return out

    def is_ancestor(self, older: str, newer: str) -> bool:
        git = _import_git()
        try:
            self._repo.git.execute(["git", "merge-base", "--is-ancestor", older, newer])
        except git.GitCommandError:
            return False
        return True

    def ancestors(self, rev: str) -> set[str]:
        """`rev` and every commit reachable from it, with one rev-list call."""
        return set(self._git("rev-list", self.resolve(rev), "--").split())

    def merge_base(self, a: str, b: str) -> str:
        return self._git("merge-base", a, b)

    def range(self, good: str, bad: str, *, first_parent: bool = True) -> list[str]:
        """Commits after `good` up to and including `bad`, oldest first (resolved shas only)."""
        key = (good, bad, first_parent)
        if key not in self._ranges:
            args = ["rev-list", "--reverse"]
            if first_parent:
                args.append("--first-parent")
            shas = self._git(*args, bad, f"^{good}", "--").split()
            if not (_FULL_SHA.fullmatch(good) and _FULL_SHA.fullmatch(bad)):
                return shas  # a name may move: only a range of two shas is kept
            self._ranges[key] = shas
        return list(self._ranges[key])

    def graph(self, good: str, bad: str) -> tuple[list[str], dict[str, tuple[str, ...]]]:
        """Commits in good..bad in topological order (parents first), with their parents."""
        out = self._git("rev-list", "--topo-order", "--reverse", "--parents", bad, f"^{good}",
                        "--")
        commits, parents = [], {}
        for line in out.splitlines():
            sha, *ps = line.split()
            commits.append(sha)
            parents[sha] = tuple(ps)
        return commits, parents

    def changed_files(self, sha: str) -> list[str]:
        out = self._git("diff-tree", "--no-commit-id", "--name-only", "-z", "-r", "--root",
                        "-m", "--first-parent", sha, strip_newline_in_stdout=False)
        return sorted({p for p in out.split("\0") if p.strip()})

    def show(self, sha: str, path: str) -> str | None:
        """A file's text at a commit (None when it is not there)."""
        try:
            return self._git("show", f"{sha}:{path}")
        except GitError:
            return None

    def files(self, sha: str) -> set[str]:
        """Every file path in a commit's tree."""
        out = self._git("ls-tree", "-r", "--full-tree", "-z", "--name-only", sha,
                        strip_newline_in_stdout=False)
        return {p for p in out.split("\0") if p}

    def tree_id(self, sha: str, path: str = ".") -> str:
        """Git's hash of a directory at a commit: equal ids, equal contents (a build cache key)."""
        spec = f"{sha}^{{tree}}" if path in (".", "") else f"{sha}:{path.strip('/')}"
        return self._git("rev-parse", "--verify", "--quiet", spec)

    def working_tree_ids(self, *paths: str) -> list[str]:
        """`tree_id` of each path of the working tree as it is now, tracked and untracked
        files alike; the tree is written once for all of them.

        Written through a temporary index and a temporary object directory (the repository's
        objects are read through it), so neither the user's index nor their object store gets
        anything.
        """
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bisector-index-") as tmp:
            index = Path(tmp) / "index"
            objects = Path(tmp) / "objects"
            objects.mkdir()
            real = self.common_dir / "index" if self.root == self.main_root else None
            own = Path(self._git("rev-parse", "--git-path", "index"))
            own = own if own.is_absolute() else self.root / own
            for candidate in (own, real):
                if candidate is not None and candidate.is_file():
                    shutil.copyfile(candidate, index)
                    break
            env = {**os.environ, "GIT_INDEX_FILE": str(index), "GIT_OBJECT_DIRECTORY": str(objects),
                   "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.common_dir / "objects")}
            self._git("-C", str(self.root), "add", "-A", "--", ".", env=env)
            tree = self._git("-C", str(self.root), "write-tree", env=env)
            return [tree if path in (".", "") else
                    self._git("rev-parse", f"{tree}:{path.strip('/')}", env=env)
                    for path in paths]

    def add_worktree(self, path: Path, sha: str) -> None:
        self._git("worktree", "add", "--detach", "--force", str(path), sha)

    def checkout_worktree(self, path: Path, sha: str) -> None:
        """Move a worktree of ours to another commit, dropping whatever the last probe left."""
        self._git("-C", str(path), "checkout", "--detach", "--force", "--quiet", sha)
        self._git("-C", str(path), "clean", "-ffdxq")

    def update_submodules(self, path: Path) -> str | None:
        """Check out the submodules of a worktree of ours at its commit, from this checkout's
        own module store (`.git/modules/NAME`), never from their URLs (no network, and no
        write to the shared config). Nested submodules come from the stores nested in those.
        Returns why it could not (naming the submodule), None when all are there."""
        return self._update_submodules(path, self.common_dir / "modules", depth=0)

    def _update_submodules(self, path: Path, store: Path, depth: int) -> str | None:
        if depth > 8 or not (path / ".gitmodules").is_file():
            return None
        try:
            listed = self._git("-C", str(path), "config", "-f", ".gitmodules", "-z",
                               "--get-regexp", r"^submodule\..*\.path$",
                               strip_newline_in_stdout=False)
        except GitError:  # no submodule entries
            return None
        modules: dict[str, str] = {}
        for entry in filter(None, listed.split("\0")):
            key, _, sub = entry.partition("\n")
            modules[key.removeprefix("submodule.").removesuffix(".path")] = sub
        overrides: list[str] = []
        for name, sub in modules.items():
            if not (store / name).is_dir():
                return (f"submodule {sub} is not checked out in your checkout (no "
                        f"{store / name}): run `git submodule update --init --recursive` there")
            overrides += ["-c", f"submodule.{name}.url={store / name}"]
        try:
            self._git("-C", str(path), "-c", "protocol.file.allow=always", *overrides,
                      "submodule", "update", "--force", "--", *modules.values())
        except GitError as exc:
            return f"submodule {', '.join(modules.values())}: {exc.one_line()}"
        for name, sub in modules.items():
            problem = self._update_submodules(path / sub, store / name / "modules", depth + 1)
            if problem is not None:
                return problem
        return None

    def worktree_state(self, path: Path) -> str:
        """What `git status` says of a worktree of ours, each untracked file named: two equal
        states mean no file git does not ignore appeared, went or newly differs from the
        commit in between (what a reused setup checks its test run did not do)."""
        return self._git("--no-optional-locks", "-C", str(path), "status", "--porcelain=v1",
                         "-z", "--untracked-files=all", strip_newline_in_stdout=False)

    def remove_worktree(self, path: Path) -> None:
        import shutil

        try:
            self._git("worktree", "remove", "--force", "--force", str(path))
            return
        except GitError:
            shutil.rmtree(path, ignore_errors=True)
        # Drop git's record of this worktree only: `git worktree prune` would also drop the
        # records of the user's own worktrees whose directories are away (an unmounted disk).
        ours = (Path(path).resolve() / ".git").as_posix()
        for admin in (self.common_dir / "worktrees").glob("*"):
            try:
                target = Path((admin / "gitdir").read_text().strip()).as_posix()
            except OSError:
                continue
            if target == ours:
                shutil.rmtree(admin, ignore_errors=True)

    def codeowners(self, sha: str) -> str | None:
        """The commit's CODEOWNERS file, from the first place GitHub looks that has one."""
        from .owners import LOCATIONS

        # one ls-tree says which of the places exist (most repositories have none), instead
        # of a `git show` per place: a bisection asks at every finding
        out = self._git("ls-tree", "-z", "--name-only", sha, "--", *LOCATIONS,
                        strip_newline_in_stdout=False)
        present = set(out.split("\0"))
        return next((text for path in LOCATIONS
                     if path in present and (text := self.show(sha, path))), None)

    def is_shallow(self) -> bool:
        return self._git("rev-parse", "--is-shallow-repository") == "true"
