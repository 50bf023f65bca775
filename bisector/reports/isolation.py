"""A culprit's guilty hunks (`--isolate`) and its revert check (`--verify-revert`), for the
JSON, Markdown and terminal reports; the keys are those of issue 17 / docs/adr/0021."""

from __future__ import annotations

from typing import Any

from ..hunks import counted
from ..model import Hunk, Isolation, RevertCheck
from .markdown import cell, code, fence_for


def hunk_json(h: Hunk) -> dict[str, Any]:
    return {"file": h.file, "old_start": h.old_start, "old_lines": h.old_lines,
            "new_start": h.new_start, "new_lines": h.new_lines, "text": h.text,
            "index": h.index}


def isolation_json(iso: Isolation | None) -> dict[str, Any] | None:
    if iso is None:
        return None
    return {"hunks": [hunk_json(h) for h in iso.hunks], "total_hunks": iso.total_hunks,
            "probes": iso.probes, "minimal": iso.minimal, "unresolved": iso.unresolved,
            "parent": iso.parent, "note": iso.note or None,
            "other_hunks": [hunk_json(h) for h in iso.others]}


def revert_json(check: RevertCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"verified": check.verified, "at": check.at, "patch": check.patch,
            "detail": check.detail or None, "hunks": check.hunks}


Json = dict[str, Any]
DIFF_LINES_MAX = 400  # of the guilty hunks' diff in the Markdown (the step summary)


def isolation_line(iso: Json) -> str:
    """One line: how many hunks of how many, whether minimal, at what cost, and where."""
    note, hunks = iso.get("note") or "", iso.get("hunks") or []
    if not iso.get("probes") and note:
        return f"not isolated: {note}"
    where = ", ".join(f"{h['file']}:{h['new_start']}" for h in hunks[:6])
    more = f" and {len(hunks) - 6} more" if len(hunks) > 6 else ""
    state = "minimal" if iso.get("minimal") else "not minimal"
    text = (f"{counted(len(hunks))} of {iso.get('total_hunks')} ({state}, {iso.get('probes')} "
            f"probes, {iso.get('unresolved')} unresolved): {where}{more}")
    return f"{text}; {note}" if note else text


def revert_line(check: Json) -> str:
    if check.get("verified"):
        n = check.get("hunks") or 0
        what = "this hunk" if n == 1 else f"these {counted(n)}"
        return (f"verified: reverting {what} at "
                f"{str(check.get('at'))[:10]} makes the tests pass; patch {check.get('patch')}")
    return f"NOT verified: {check.get('detail')}"


def diff_text(hunks: list[Json]) -> str:
    """The hunks as one diff: each file's header once, then its hunks (a whole-file unit's
    text is its own section, header included)."""
    out: list[str] = []
    last = None
    for h in hunks:
        if h["text"].startswith("diff --git "):
            out.append(h["text"])
            last = None
            continue
        if h["file"] != last:
            out.append(f"--- a/{h['file']}\n+++ b/{h['file']}\n")
            last = h["file"]
        out.append(h["text"])
    return "".join(out)


def change_blocks(iso: Json) -> list[dict[str, Any]]:
    """The culprit's whole change for the HTML page, in diff order: each guilty hunk a block of
    its own (`guilty`), each run of other hunks between them one block to fold. A change that
    was not searched (no probe) is one folded block; a report from before `index` and
    `other_hunks` keeps the guilty hunks alone, in their order."""
    searched = bool(iso.get("probes"))
    tagged = [(h, searched) for h in iso.get("hunks") or []]
    tagged += [(h, False) for h in iso.get("other_hunks") or []]
    tagged.sort(key=lambda pair: pair[0].get("index", -1))
    blocks: list[dict[str, Any]] = []
    for h, guilty in tagged:
        if guilty or not blocks or blocks[-1]["guilty"]:
            blocks.append({"guilty": guilty, "hunks": [h]})
        else:
            blocks[-1]["hunks"].append(h)
    return blocks


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A hunk's lines with the CSS class each is drawn with (add, del, ctx); a whole-file
    unit's header (`--- a/x`, `+++ b/x`, up to its first `@@`) is context, not a change."""
    out, body = [], False
    for line in text.splitlines():
        body = body or line.startswith("@@")
        kind = "add" if line[:1] == "+" else "del" if line[:1] == "-" else "ctx"
        out.append((kind if body else "ctx", line))
    return out


def terminal_lines(iso: Json | None, check: Json | None) -> list[str]:
    """The culprit's guilty hunks and its revert check, one line each, when asked for."""
    lines = []
    if iso is not None:
        lines.append(f"  hunks   {isolation_line(iso)}")
    if check is not None:
        lines.append(f"  revert  {revert_line(check)}")
    return lines


def _diff_block(body: list[str]) -> list[str]:
    """A fenced diff block, its first DIFF_LINES_MAX lines: GitHub refuses a step summary over
    1 MiB, and a guilty set can be a whole new file of thousands of lines."""
    left_out = len(body) - DIFF_LINES_MAX
    body = body[:DIFF_LINES_MAX]
    fence = fence_for(body)
    lines = ["", f"{fence}diff", *body, fence]
    if left_out > 0:
        lines += ["", f"({left_out} more lines of these hunks are not shown here: the JSON "
                      "report holds them whole)"]
    return lines


def markdown(iso: Json | None, check: Json | None) -> list[str]:
    """The culprit's hunks section: a line of what was found and a diff block of them, then
    the revert check."""
    lines: list[str] = []
    if iso is not None:
        lines += ["", f"**Guilty hunks**: {cell(isolation_line(iso), None)}"]
        if iso.get("hunks") and iso.get("probes"):
            lines += _diff_block(diff_text(iso["hunks"]).rstrip("\n").splitlines())
    if check is not None:
        where = check.get("patch")
        patch = f" ({code('git apply ' + str(where))})" if where else ""
        lines += ["", f"**Revert**: {cell(revert_line(check), None)}{patch}"]
    return lines
