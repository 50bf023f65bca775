"""GitHub Actions workflow commands from nightly.json: an `::error file=...,line=...::` on
each of tonight's culprits' lines, and the action's outputs.

The lines are the culprit's isolated hunks where the report has them (`isolation.hunks`), else
the first changed line of each of its files (from `git diff`, line 1 when git cannot say).
Run by action.yml as `python -m bisector.annotations REPORT [--repo DIR] [--github-output F]`.

Everything written is escaped as the runner reads commands: no subject, path or test id can
end a command early or start another one.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
TITLE = "bisector: regression"
MAX_TESTS_NAMED = 3

FirstLines = Callable[[str, list[str]], dict[str, int]]


def escape_data(text: str) -> str:
    """A command's message: `%`, CR and LF escaped (the runner's own rule)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property's value: the message's escapes, and `:` and `,` that end a property."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(file: str, line: int, message: str, end_line: int | None = None) -> str:
    props = [f"file={escape_property(file)}", f"line={line}"]
    if end_line is not None and end_line > line:
        props.append(f"endLine={end_line}")
    props.append(f"title={escape_property(TITLE)}")
    return f"::error {','.join(props)}::{escape_data(message)}"


def _tests(group: dict[str, Any]) -> str:
    tests = [str(t.get("test")) for t in group.get("tests") or []]
    named = ", ".join(tests[:MAX_TESTS_NAMED])
    more = len(tests) - MAX_TESTS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def annotations(data: dict[str, Any], first_lines: FirstLines | None = None) -> list[str]:
    """One command per isolated hunk, else per changed file, of each new culprit."""
    found: list[str] = []
    for g in data.get("regressions") or []:
        culprit = g.get("culprit") or {}
        sha = str(culprit.get("sha") or "")
        if not SHA.fullmatch(sha):
            continue
        what = f"{culprit.get('short') or sha[:10]} {culprit.get('subject') or ''}".strip()
        hunks = [h for h in (g.get("isolation") or {}).get("hunks") or []
                 if isinstance(h, dict) and h.get("file")]
        if hunks:
            found += [_hunk(h, what, g) for h in hunks]
            continue
        files = [str(f) for f in g.get("files") or []]
        lines = first_lines(sha, files) if first_lines and files else {}
        found += [command(f, lines.get(f, 1), f"changed by {what}, which broke {_tests(g)}")
                  for f in files]
    return found


def _hunk(h: dict[str, Any], what: str, g: dict[str, Any]) -> str:
    start = _int(h.get("new_start"), 1)
    count = _int(h.get("new_lines"), 1)
    return command(str(h["file"]), start,
                   f"this change in {what} breaks {_tests(g)} (isolated hunk)",
                   end_line=start + count - 1 if count > 1 else None)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and value >= 1 else default


def git_first_lines(repo: Path) -> FirstLines:
    """The first changed line (in the new file) of each file the commit changed, by one
    `git diff -U0` against its first parent; {} when git cannot say (a root commit)."""

    def first_lines(sha: str, files: list[str]) -> dict[str, int]:
        cmd = ["git", "--literal-pathspecs", "-C", str(repo), "diff", "--no-color",
               "--no-ext-diff", "--no-renames", "-U0", f"{sha}^", sha, "--", *files]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                 timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        return parse_first_lines(out.splitlines())

    return first_lines


def parse_first_lines(diff: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    path: str | None = None
    for line in diff:
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None  # /dev/null, quoted
        elif path is not None and path not in found:
            match = HUNK.match(line)
            if match:
                found[path] = max(int(match.group(1)), 1)
    return found


def outputs(data: dict[str, Any] | None) -> dict[str, str]:
    """The action's outputs: `error` and 0 when the nightly wrote no report."""
    if data is None:
        return {"status": "error", "new-regressions": "0"}
    new = sum(len(g.get("tests") or []) for g in data.get("regressions") or [])
    return {"status": str(data.get("status") or "error"), "new-regressions": str(new)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bisector.annotations",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="nightly.json")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the checkout")
    parser.add_argument("--github-output", type=Path, default=None,
                        help="append the outputs (status, new-regressions) here")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = None
        print(f"::warning::{escape_data(f'no readable nightly report at {args.report}')}")
    if args.github_output is not None:
        with args.github_output.open("a", encoding="utf-8") as out:
            out.writelines(f"{k}={v}\n" for k, v in outputs(data).items())
    for line in annotations(data or {}, git_first_lines(args.repo)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
