"""Failure signatures: what makes two failures "the same failure".

Exception type plus the first line of its message, with memory addresses folded, hashed. Pure
and stdlib-only: the pytest plugin computes it for every failure on the hot path.
"""

from __future__ import annotations

import hashlib
import re

from .model import TRACEBACK_MAX

MESSAGE_LIMIT = 500
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def signature(crash_line: str) -> str:
    """Hash of `ExcType: first message line`, stable across runs and memory layouts."""
    line = _ADDRESS.sub("0x?", first_line(crash_line))
    exc_type, _, message = line.partition(":")
    return hashlib.sha1(f"{exc_type.strip()}\0{message.strip()}".encode()).hexdigest()[:16]


_TYPE = re.compile(r"([A-Za-z_][\w.]*)\s*(?::|$)")


def exception_type(message: str | None) -> str | None:
    """The exception type a failure message names, or None when it names none.

    pytest shortens a rewritten assertion's crash line to `assert ...`; that is an
    AssertionError. Used to tell "another failure" from the one being bisected: the message
    of the same failure drifts from commit to commit (`assert 3 == 4`, `assert 5 == 4`), its
    type does not.
    """
    line = first_line(message or "")
    if line.startswith("assert ") or line == "assert":
        return "AssertionError"
    found = _TYPE.match(line)
    if found is None or found.group(1) in {"E", "assert"}:
        return None
    name = found.group(1).rsplit(".", 1)[-1]
    return name if name[:1].isupper() else None


def short_message(text: str) -> str:
    line = first_line(text.replace("\0", ""))
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def traceback_tail(text: str | None) -> str | None:
    """A failure's long representation as stored: its last `TRACEBACK_MAX` characters (the
    end holds the assertion and the `E` lines a person reads first), None when empty."""
    if not text or not text.strip():
        return None
    text = text.replace("\0", "")
    return text if len(text) <= TRACEBACK_MAX else "…" + text[-(TRACEBACK_MAX - 1):]


def crash_line_from_text(text: str) -> str:
    """The `E   Exc: msg` line of a rendered traceback, else its last non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E   "):
            return line[4:].strip()
    return lines[-1].strip() if lines else ""
