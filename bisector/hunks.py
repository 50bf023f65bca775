"""The change from a culprit's parent P to the culprit C, cut into units that apply in any subset.

Units come from git's own diff with no context (`-U0`): each hunk is a maximal run of changed
lines, so two units never share a line, and a patch built for any subset applies with
`git apply --unidiff-zero` once its hunk headers are recounted for the units left out (a unit
left out before another in the same file shifts where the other lands). A new, deleted,
renamed, copied, binary, symlink or submodule file is one unit, and so is a mode change.

Paths are data: git is run with list arguments (never a shell), revisions are checked to be
object names before they reach git, file names only ever travel inside a patch on stdin, and the
diff is asked for with explicit prefixes and options so the user's diff settings (noprefix,
external diff, colour, textconv) cannot change what is parsed.

"P + S" is a worktree at P with the units S applied forward; "C - S" one at C with S applied
in reverse. Both happen in a probe's own worktree (`apply_units`), never the user's checkout. A
patch that does not apply is an `Applied(ok=False)` result, not an exception: for the search it
is an unresolved probe. `revert_patch` writes the reversal of S as an ordinary patch with
context, taken from C, that `git apply` accepts at a later commit (the bad end) where those
lines have not changed since; it is built in a temporary index and object directory, so the
repository gets no objects and no checkout is touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from .errors import GitError
from .gitrepo import LOCAL_GIT_ENV

HUNK = "hunk"
WHOLE_KINDS = ("added", "deleted", "renamed", "copied", "binary", "symlink", "submodule", "mode")

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_OBJECT_NAME = re.compile(r"^[0-9a-fA-F]{4,64}$")
_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--binary", "--full-index",
                 "-U0", "-M", "--src-prefix=a/", "--dst-prefix=b/", "--no-relative",
                 "--ignore-submodules=none",
                 # the units are git's hunks whatever the user's diff.* settings say: another
                 # interHunkContext glues hunks, another algorithm cuts them (and the subsets'
                 # store keys) differently from one machine or run to the next
                 "--inter-hunk-context=0", "--diff-algorithm=myers", "--indent-heuristic",
                 "-O/dev/null")
_APPLY_OPTIONS = ("--whitespace=nowarn", "--unidiff-zero")


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of a change: a hunk (`kind == "hunk"`) or a whole file (see WHOLE_KINDS).

    Line numbers are git's, in P (`old_*`) and C (`new_*`), for the whole change applied; `text`
    is the hunk as git printed it (header line included), or the file's whole section of the
    diff for a whole-file unit. `file` is the path at C (at P for a deleted file).
    """

    id: int
    file: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    text: str
    kind: str = HUNK
    header: str = ""  # the file's diff header a hunk is applied under (no mode lines)


@dataclass(frozen=True, slots=True)
class Applied:
    """What `git apply` said: applied, or not (with its last line of complaint)."""

    ok: bool
    detail: str = ""


def git_env() -> dict[str, str]:
    """The environment for our git calls: none of a hook's variables that would point them at
    the user's index or repository, and never a prompt."""
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_GIT_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


def _run(cwd: Path, *args: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """git, with bytes in and out: text mode would turn a CRLF file's "\r\n" into "\n"."""
    data = stdin.encode("utf-8", "surrogateescape") if stdin is not None else None
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=cwd, input=data,
                              capture_output=True, check=False, env=env or git_env())
    except FileNotFoundError:
        raise GitError("git is not installed", hint="install git and put it on PATH") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode("utf-8", "surrogateescape"),
                                       proc.stderr.decode("utf-8", "replace"))


def _git(cwd: Path, *args: str, stdin: str | None = None,
         env: dict[str, str] | None = None) -> str:
    proc = _run(cwd, *args, stdin=stdin, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise GitError(lines[0] if lines else f"git {args[0]} failed", stderr=proc.stderr)
    return proc.stdout


def _object(name: str) -> str:
    """A revision that can only be read as an object name (the finder passes full shas)."""
    if not _OBJECT_NAME.match(name):
        raise GitError(f"not a commit id: {name!r}", hint="pass the full sha of a commit")
    return name


def unquote(path: str) -> str:
    """A path as git printed it in a patch header: C-quoted ("a/sp\\303\\251c") or bare."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    from git.diff import decode_path  # GitPython's C-unquoting (3.2+), on bytes

    # git quotes the path's bytes; with core.quotepath=off the UTF-8 of a non-ASCII name is
    # left as it is, so the escapes are undone on bytes, never on decoded text
    raw = decode_path(path.encode("utf-8", "surrogateescape"), has_ab_prefix=False)
    return raw.decode("utf-8", "surrogateescape") if raw is not None else path


def _strip_prefix(path: str) -> str:
    path = unquote(path.split("\t")[0])
    return path[2:] if path[:2] in ("a/", "b/") else path


# -- splitting -------------------------------------------------------------------------------


def diff_text(repo: Path, parent: str, culprit: str) -> str:
    """git's diff from P to C, in the one form the parser reads, whatever the user's config."""
    return _git(repo, "diff", *_DIFF_OPTIONS, _object(parent), _object(culprit), "--")


def split(repo: Path, parent: str, culprit: str) -> list[Unit]:
    """The units of the change P -> C (a merge's first parent to the merge: the merged diff)."""
    return parse(diff_text(repo, parent, culprit))


def _sections(text: str) -> list[list[str]]:
    sections: list[list[str]] = []
    lines = [line + "\n" for line in text.split("\n")]  # not splitlines: "\f", "\x1c"...
    lines[-1] = lines[-1][:-1]
    for line in filter(None, lines):
        if line.startswith("diff --git ") or not sections:
            sections.append([])
        sections[-1].append(line)
    return [s for s in sections if s and s[0].startswith("diff --git ")]


def _kind(head: list[str]) -> str | None:
    """A whole-file unit's kind, or None when the file's hunks are units of their own. Only
    git's extended header lines are read (a path inside them never starts a line)."""
    extended = head[1:]
    checks = (("new file mode ", "added"), ("deleted file mode ", "deleted"),
              ("rename from ", "renamed"), ("copy from ", "copied"),
              ("GIT binary patch", "binary"), ("Binary files ", "binary"))
    for prefix, kind in checks:
        if any(ln.startswith(prefix) for ln in extended):
            return kind
    index = next((ln.rstrip("\n") for ln in extended if ln.startswith("index ")), "")
    if index.endswith(" 120000"):
        return "symlink"
    return "submodule" if index.endswith(" 160000") else None


def _paths(head: list[str]) -> tuple[str, str]:
    """(path at P, path at C) from the header's ---/+++ or rename lines, else `diff --git`."""
    old = new = ""
    for line in head:
        body = line.rstrip("\n")
        if body.startswith(("--- ", "rename from ", "copy from ")):
            value = body.split(" ", 1)[1] if body.startswith("--- ") else body.split(" ", 2)[2]
            if value != "/dev/null":
                old = _strip_prefix(value) if body.startswith("--- ") else unquote(value)
        elif body.startswith(("+++ ", "rename to ", "copy to ")):
            value = body.split(" ", 1)[1] if body.startswith("+++ ") else body.split(" ", 2)[2]
            if value != "/dev/null":
                new = _strip_prefix(value) if body.startswith("+++ ") else unquote(value)
    if not (old or new):  # mode-only or binary: only the `diff --git a/X b/X` line names it
        first = head[0].rstrip("\n")[len("diff --git "):]
        old = new = _strip_prefix(first[: len(first) // 2])  # `a/X b/X`: the same X twice
    return old or new, new or old


def _hunks(lines: list[str]) -> list[tuple[tuple[int, int, int, int], str]]:
    out: list[tuple[tuple[int, int, int, int], str]] = []
    for line in lines:
        match = _HEADER.match(line)
        if match:
            a, b, c, d = match.groups()
            numbers = (int(a), int(b) if b is not None else 1,
                       int(c), int(d) if d is not None else 1)
            out.append((numbers, line))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line)
    return out


def _section_units(section: list[str], first_id: int) -> list[Unit]:
    cut = next((i for i, ln in enumerate(section) if ln.startswith("@@ ")), len(section))
    head, body = section[:cut], section[cut:]
    old, new = _paths(head)
    kind = _kind(head)
    hunks = _hunks(body)
    if kind is not None:
        numbers = hunks[0][0] if len(hunks) == 1 else (0, 0, 0, 0)
        return [Unit(first_id, new if kind != "deleted" else old, *numbers,
                     text="".join(section), kind=kind)]
    bare = [ln for ln in head if not ln.startswith(("old mode ", "new mode ", "index "))]
    units = []
    if any(ln.startswith("old mode ") for ln in head):
        mode = [ln for ln in head if not ln.startswith(("---", "+++", "index "))]
        units.append(Unit(first_id, new, 0, 0, 0, 0, text="".join(mode), kind="mode"))
    for numbers, text in hunks:
        units.append(Unit(first_id + len(units), new, *numbers, text=text, kind=HUNK,
                          header="".join(bare)))
    return units


def parse(text: str) -> list[Unit]:
    """Units of a `diff_text`, numbered 0..n-1 in the diff's order."""
    units: list[Unit] = []
    for section in _sections(text):
        units.extend(_section_units(section, len(units)))
    return units


# -- patches for a subset --------------------------------------------------------------------


def _shifted(unit: Unit, old_shift: int, new_shift: int) -> str:
    first, _, rest = unit.text.partition("\n")
    match = _HEADER.match(first)
    assert match is not None
    tail = first[match.end():]
    return (f"@@ -{unit.old_start + old_shift},{unit.old_lines} "
            f"+{unit.new_start + new_shift},{unit.new_lines} @@{tail}\n{rest}")


def patch_for(units: Sequence[Unit], subset: Iterable[int], *, reverse: bool = False) -> str:
    """A patch of the units in `subset`, to apply forward at P (P + S) or, with reverse=True,
    with `git apply -R` at C (C - S).

    Hunk headers are recounted for the hunks left out before them in the same file: forward, a
    hunk lands in P + S earlier by what those would have added; in reverse, its place in C - S
    (P's side of the hunk) is later by what they added, since they stay applied.
    """
    chosen = set(subset)
    out: list[str] = []
    for (is_hunk, _, _), group in groupby(units, key=_file_key):
        if not is_hunk:
            out.extend(u.text for u in group if u.id in chosen)
            continue
        shift, header = 0, False
        for unit in group:
            if unit.id not in chosen:
                shift += unit.new_lines - unit.old_lines
                continue
            if not header:
                out.append(unit.header)
                header = True
            out.append(_shifted(unit, shift, 0) if reverse else _shifted(unit, 0, -shift))
    return "".join(out)


def _file_key(unit: Unit) -> tuple[bool, str, int]:
    """Hunks of one file group together; each whole-file unit is a group of its own."""
    return (True, unit.header, -1) if unit.kind == HUNK else (False, unit.file, unit.id)


def not_isolable(units: Sequence[Unit]) -> str | None:
    """Why a change cannot be isolated (said to the user, with no probe run), or None."""
    if not units:
        return "the change is empty"
    if all(u.kind == "binary" or "\nGIT binary patch\n" in u.text for u in units):
        return "the change is binary only"
    if len(units) == 1:
        return "the change is a single hunk"
    return None


def patch_key(patch: str) -> str:
    """A patched tree's key in the store (Run.patch_key): the hash of the patch's text."""
    import hashlib

    return hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def subset_key(units: Sequence[Unit], subset: Iterable[int]) -> str:
    """A stable name for "P with these units applied", for the probe's key in the store: the
    hash of the forward patch, so it is the same whatever the units are numbered."""
    return patch_key(patch_for(units, subset))


def counted(n: int) -> str:
    """`1 hunk`, `3 hunks`: how reports and messages count units."""
    return f"{n} hunk" if n == 1 else f"{n} hunks"


# -- applying, in a probe's worktree ---------------------------------------------------------


def apply_patch(workdir: Path, patch: str, *, reverse: bool = False,
                zero_context: bool = False, three_way: bool = False) -> Applied:
    """`git apply` a patch in a worktree of ours, all of it or nothing (git apply's own rule).

    Not applying is a result, not an error: an isolation probe that does not apply is
    unresolved, and a revert that conflicts at the bad end is said as such. `three_way` (for a
    revert at a later commit) retries where plain matching fails: first with `-C1` (git anchors
    a hunk starting at line 1 to the top of the file, and drops the anchor only when it may
    shorten the context: it then retries with all of it anywhere, and only after that with
    less, down to one line), then with `--3way`, which merges from the blobs the patch names
    and may leave conflict markers in the worktree (the next probe's checkout drops them).
    """
    if not patch:
        return Applied(True)
    args = ["apply", "--whitespace=nowarn"]
    if zero_context:
        args.append("--unidiff-zero")
    if reverse:
        args.append("-R")
    proc = _run(workdir, *args, "-", stdin=patch)
    for retry in (("-C1",), ("--3way",)) if three_way else ():
        if proc.returncode == 0:
            break
        proc = _run(workdir, *args, *retry, "-", stdin=patch)
    if proc.returncode == 0:
        return Applied(True)
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    return Applied(False, lines[-1] if lines else f"git apply exited {proc.returncode}")


def apply_units(workdir: Path, units: Sequence[Unit], subset: Iterable[int], *,
                reverse: bool = False) -> Applied:
    """P + S in a worktree at P (forward), or C - S in one at C (reverse=True)."""
    return apply_patch(workdir, patch_for(units, subset, reverse=reverse), reverse=reverse,
                       zero_context=True)


def realize(units: Sequence[Unit], candidate: Iterable[int]) -> tuple[str, frozenset[int]]:
    """How to build the tree "P with `candidate` applied" with the smaller patch: ("forward",
    S) at P, or ("reverse", the rest) at C. The two trees are the same when both apply."""
    present = frozenset(candidate)
    rest = frozenset(u.id for u in units) - present
    return ("forward", present) if len(present) <= len(rest) else ("reverse", rest)


# -- the revert patch, for the bad end -------------------------------------------------------


def revert_patch(repo: Path, culprit: str, units: Sequence[Unit], subset: Iterable[int]) -> str:
    """The reversal of the units S, as a patch with context against C (git's ordinary diff of C
    to C - S), for `git apply` at a later commit; "" when S is empty.

    C - S is built in a temporary index whose new objects go to a temporary object directory
    (the repository's own are read through it as an alternate): nothing is written to the
    repository, its index or any checkout.
    """
    patch = patch_for(units, subset, reverse=True)
    if not patch:
        return ""
    common = Path(_git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    with tempfile.TemporaryDirectory(prefix="bisector-revert-") as tmp:
        objects = Path(tmp) / "objects"
        objects.mkdir()
        env = {**git_env(), "GIT_INDEX_FILE": str(Path(tmp) / "index"),
               "GIT_OBJECT_DIRECTORY": str(objects),
               "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(common / "objects")}
        _git(repo, "read-tree", _object(culprit), env=env)
        _git(repo, "apply", "--cached", *_APPLY_OPTIONS, "-R", "-", stdin=patch, env=env)
        tree = _git(repo, "write-tree", env=env).strip()
        options = [o for o in _DIFF_OPTIONS if o != "-U0"]
        return _git(repo, "diff", *options, _object(culprit), tree, "--", env=env)


@dataclass(frozen=True, slots=True)
class Reverted:
    """A revert applied at the bad end (`ok`), and the patch as it applies there."""

    ok: bool
    detail: str = ""
    patch: str = ""


def revert_at(workdir: Path, patch: str) -> Reverted:
    """Apply a `revert_patch` in a worktree of ours freshly checked out at the bad end, before
    the tests run there; on success, also give the revert as a patch against the bad end
    itself (what `revert-<short>.patch` should hold: plain `git apply` takes it at that commit,
    where the patch against C may have needed a search or a merge)."""
    applied = apply_patch(workdir, patch, three_way=True)
    if not applied.ok:
        return Reverted(False, applied.detail)
    _git(workdir, "add", "-A", "--", ".")
    options = [o for o in _DIFF_OPTIONS if o != "-U0"]
    return Reverted(True, "", _git(workdir, "diff", "--cached", *options, "HEAD", "--"))


def revert_name(culprit: str) -> str:
    """The file name the revert of a culprit's isolated hunks is written under."""
    return f"revert-{_object(culprit)[:10]}.patch"


def write_revert(directory: Path, culprit: str, patch: str) -> Path:
    """`revert-<short sha>.patch` next to the other reports."""
    path = Path(directory) / revert_name(culprit)
    path.write_text(patch, encoding="utf-8", errors="surrogateescape")
    return path


# -- which units the failure points at ---------------------------------------------------------

_FRAME = re.compile(r'(?:File "(?P<q>[^"]+)", line (?P<ql>\d+))'
                    r"|(?:^(?P<p>[^\s:][^:\n]*):(?P<pl>\d+):)", re.MULTILINE)


def traceback_lines(traceback: str) -> list[tuple[str, int]]:
    """(path, line) of each frame in a traceback: pytest's `path:LINE:` lines and Python's
    `File "path", line N`."""
    out = []
    for match in _FRAME.finditer(traceback or ""):
        path = match.group("q") or match.group("p")
        line = match.group("ql") or match.group("pl")
        out.append((path.strip(), int(line)))
    return out


def _touches(unit: Unit, path: str) -> bool:
    """A frame's path names the unit's file: the same, an absolute path ending in it, or a path
    relative to a pytest rootdir below the repository's root (`pkg/a.py` for `sub/pkg/a.py`)."""
    return (path == unit.file or path.endswith("/" + unit.file)
            or (not path.startswith("/") and unit.file.endswith("/" + path)))


def priority(units: Sequence[Unit], traceback: str | None) -> list[int]:
    """Ids of the units the failure's traceback at C points at, most likely first: those whose
    lines at C hold a frame, then the others in a file with a frame (in diff order)."""
    frames = traceback_lines(traceback or "")
    on_line, in_file = [], []
    for unit in units:
        hits = [line for path, line in frames if _touches(unit, path)]
        if not hits:
            continue
        low, high = unit.new_start, unit.new_start + max(unit.new_lines, 1) - 1
        (on_line if unit.kind != HUNK or any(low <= h <= high for h in hits)
         else in_file).append(unit.id)
    return on_line + in_file
