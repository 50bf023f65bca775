"""A culprit's guilty hunks (`--isolate`) and its revert check (`--verify-revert`), for the
JSON, Markdown and terminal reports; the keys are those of issue 17 / docs/adr/0021."""

from __future__ import annotations

from typing import Any

from ..model import Finding, Hunk, Isolation, RevertCheck
from .markdown import cell, code, fence_for


def hunk_json(h: Hunk) -> dict[str, Any]:
    return {"file": h.file, "old_start": h.old_start, "old_lines": h.old_lines,
            "new_start": h.new_start, "new_lines": h.new_lines, "text": h.text}


def isolation_json(iso: Isolation | None) -> dict[str, Any] | None:
    if iso is None:
        return None
    return {"hunks": [hunk_json(h) for h in iso.hunks], "total_hunks": iso.total_hunks,
            "probes": iso.probes, "minimal": iso.minimal, "unresolved": iso.unresolved,
            "parent": iso.parent, "note": iso.note or None}


def revert_json(check: RevertCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"verified": check.verified, "at": check.at, "patch": check.patch,
            "detail": check.detail or None, "hunks": check.hunks}


def _count(n: int) -> str:
    return f"{n} hunk" if n == 1 else f"{n} hunks"


def isolation_line(iso: Isolation) -> str:
    """One line: how many hunks of how many, whether minimal, at what cost, and where."""
    if iso.probes == 0 and iso.note:
        return f"not isolated: {iso.note}"
    where = ", ".join(f"{h.file}:{h.new_start}" for h in iso.hunks[:6])
    more = f" and {len(iso.hunks) - 6} more" if len(iso.hunks) > 6 else ""
    state = "minimal" if iso.minimal else "not minimal"
    text = (f"{_count(len(iso.hunks))} of {iso.total_hunks} ({state}, {iso.probes} probes, "
            f"{iso.unresolved} unresolved): {where}{more}")
    return f"{text}; {iso.note}" if iso.note else text


def revert_line(check: RevertCheck) -> str:
    what = _count(check.hunks)
    if check.verified:
        return (f"verified: reverting these {what} at {check.at[:10]} makes the tests pass; "
                f"patch {check.patch}")
    return f"NOT verified: {check.detail}"


def diff_text(hunks: tuple[Hunk, ...]) -> str:
    """The hunks as one diff: each file's header once, then its hunks (a whole-file unit's
    text is its own section, header included)."""
    out: list[str] = []
    last = None
    for h in hunks:
        if h.text.startswith("diff --git "):
            out.append(h.text)
            last = None
            continue
        if h.file != last:
            out.append(f"--- a/{h.file}\n+++ b/{h.file}\n")
            last = h.file
        out.append(h.text)
    return "".join(out)


def markdown(finding: Finding) -> list[str]:
    """The culprit's hunks section: a line of what was found and a diff block of them, then
    the revert check."""
    lines: list[str] = []
    iso, check = finding.isolation, finding.revert
    if iso is not None:
        lines += ["", f"**Guilty hunks**: {cell(isolation_line(iso), None)}"]
        if iso.hunks and iso.probes:
            body = diff_text(iso.hunks).rstrip("\n").splitlines()
            fence = fence_for(body)
            lines += ["", f"{fence}diff", *body, fence]
    if check is not None:
        patch = f" ({code(f'git apply {check.patch}')})" if check.patch else ""
        lines += ["", f"**Revert**: {cell(revert_line(check), None)}{patch}"]
    return lines
