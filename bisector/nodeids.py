"""Test ids are data: the one check of a node id where it enters bisector, and how it is
written on a command line.

A node id reaches a probe's `python -m pytest ...` as an argument. One that starts with `-`
is read there as an option (`--debug=out.log` writes a file, `-pNAME` imports a module), one
that starts with `@` as a file of more arguments (pytest reads `@FILE` since 8.2), and a NUL,
a newline or a carriage return has no place in an id and breaks argument lists, logs and
line-based output. Such an id is refused where it is typed (`check_nodeid`, one line, exit 2)
and skipped with a note where it is read from a store or a file (`usable`). Command lines are
built with `as_argument` besides, so that what this check misses is still no option: pytest
does not honour `--` (its intermixed parsing reads options after it), see ADR 0010.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError

# Characters no node id contains: they end or split an argument, a log line, a JUnit name.
_FORBIDDEN = {"\0": "a NUL", "\n": "a newline", "\r": "a carriage return"}
# First characters pytest's argument parser gives a meaning of its own.
_OPTION_START = {"-": "starts with '-' (it would be read as an option)",
                 "@": "starts with '@' (pytest would read arguments from that file)"}


def refusal(nodeid: str) -> str | None:
    """Why this text cannot be a test id on a probe's command line; None when it can."""
    if not nodeid:
        return "is empty"
    why = _OPTION_START.get(nodeid[0])
    if why is not None:
        return why
    for char, name in _FORBIDDEN.items():
        if char in nodeid:
            return f"contains {name}"
    return None


def shown(nodeid: str, limit: int = 80) -> str:
    """A refused id (or argument), quoted for a one-line message (control characters
    escaped), at most `limit` characters."""
    text = repr(nodeid)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_nodeid(text: str, source: str = "the command line") -> str:
    """The test id typed by the user, or ConfigError (one line, exit 2) naming the fix."""
    why = refusal(text)
    if why is None:
        return text
    raise ConfigError(f"test id {shown(text)} from {source} {why}",
                      hint="give node ids such as tests/test_x.py::test_y")


def usable(nodeids: Iterable[str], source: str) -> tuple[list[str], list[str]]:
    """The ids read from a store or a file that may reach a command line, in order, and a note
    for each one skipped (it stays stored, it is never run)."""
    kept: list[str] = []
    notes: list[str] = []
    for nodeid in nodeids:
        why = refusal(nodeid)
        if why is None:
            kept.append(nodeid)
        else:
            notes.append(f"test id {shown(nodeid)} from {source} skipped: it {why}")
    return kept, notes


def as_argument(nodeid: str) -> str:
    """The id as a command-line argument that no parser reads as an option or an @file.

    Checked ids pass unchanged; one that starts with `-` or `@` anyway becomes a relative
    path (`./-x`), which pytest takes as a file that does not exist: the test is untestable,
    never an option.
    """
    return "./" + nodeid if nodeid[:1] in _OPTION_START else nodeid
