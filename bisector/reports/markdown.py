"""Data in Markdown: test ids, subjects, names, messages and paths stay what they are.

A table cell is one line with its pipes escaped, so that no value can end a row or add a
column; a code span is fenced with more backticks than the value holds, so that a backtick in
a test id cannot close it early (CommonMark's rule).
"""

from __future__ import annotations

import html
import re
from typing import Any

CELL_LIMIT = 160


def cell(text: Any, limit: int | None = CELL_LIMIT) -> str:
    """One line, pipes escaped, clipped to `limit` characters (None: whole)."""
    s = " ".join(str(text if text is not None else "").split()).replace("|", "\\|")
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


def code(text: Any) -> str:
    """A code span that shows `text` (made one line, pipes escaped for tables) as written."""
    s = cell(text, limit=None)
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", s)), default=0))
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def fence_for(lines: Any) -> str:
    """A code block fence longer than any run of backticks in `lines`."""
    runs = [len(run) for line in lines for run in re.findall(r"`+", str(line))]
    return "`" * max(3, 1 + max(runs, default=0))


def details(summary: str, text: str) -> list[str]:
    """A folded block: the summary escaped as HTML (it is inside a tag), the text in a fenced
    code block longer than any backtick run in it, so nothing in it becomes markup."""
    body = text.rstrip("\n").splitlines()
    fence = fence_for(body)
    return ["<details>", f"<summary>{html.escape(' '.join(summary.split()))}</summary>", "",
            f"{fence}text", *body, fence, "", "</details>"]
