"""Who owns a change: GitHub's CODEOWNERS, matched against a culprit's changed files. Pure.

Syntax as GitHub reads it: one pattern and its owners per line (`@user`, `@org/team` or an
e-mail), `#` comments; the last matching pattern wins for each file. Patterns follow
gitignore's rules without negation or ranges: `*.js` matches at any depth, a leading or inner
`/` anchors to the root, a trailing `/` means a directory and all below it, `docs/*` matches
the files directly in docs/ only, `**` crosses directories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Where GitHub looks, in its order: the first that exists is used.
LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_OWNER = re.compile(r"^(@[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9._-]+)?|[^@\s]+@[^@\s]+\.[^@\s]+)$")


@dataclass(frozen=True, slots=True)
class Rule:
    line: int
    pattern: str
    owners: tuple[str, ...]
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    directory = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in body
    out = []
    i = 0
    while i < len(body):
        if body.startswith("**", i):
            out.append(".*")
            i += 2
            if body.startswith("/", i):  # "**/" also matches no directory at all
                out[-1] = "(?:.*/)?"
                i += 1
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    last = body.rsplit("/", 1)[-1]
    if directory:
        tail = "/.*"
    elif "*" in last and "**" not in last and "/" in body:
        tail = ""  # docs/* : the files directly in docs/
    else:
        tail = "(?:/.*)?"  # a file, or a directory and everything below it
    head = "^" if anchored else "^(?:.*/)?"
    return re.compile(head + "".join(out) + tail + "$")


def parse(text: str) -> tuple[list[Rule], list[str]]:
    """The rules, and one problem per line that could not be read (the rest are still used)."""
    rules, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        pattern, *owners = line.split()
        bad = [o for o in owners if not _OWNER.match(o)]
        if pattern.startswith("!") or "[" in pattern or "\\" in pattern:
            problems.append(f"CODEOWNERS line {number}: {pattern!r}: negation, ranges and "
                            "escapes are not supported by GitHub; line ignored")
            continue
        if bad:
            problems.append(f"CODEOWNERS line {number}: {bad[0]!r} is not an owner (@user, "
                            "@org/team or an e-mail); line ignored")
            continue
        rules.append(Rule(number, pattern, tuple(owners), _compile(pattern)))
    return rules, problems


def owners_of(path: str, rules: list[Rule]) -> tuple[str, ...]:
    """The owners of one file: the last matching rule's (none: a rule without owners)."""
    for rule in reversed(rules):
        if rule.regex.match(path):
            return rule.owners
    return ()


def owners_for(paths: Iterable[str], rules: list[Rule]) -> tuple[str, ...]:
    """Everyone who owns one of these files, in order of first appearance."""
    found: dict[str, None] = {}
    for path in paths:
        for owner in owners_of(path, rules):
            found.setdefault(owner, None)
    return tuple(found)


def culprit_owners(files: Iterable[str], rules: list[Rule], author_name: str,
                   author_email: str) -> tuple[str, ...]:
    """A culprit's owners, the one rule find-break and the nightly both show: the CODEOWNERS
    owners of the files it changed, then its author (`Name <e-mail>`), who wrote the change
    whether or not a rule names anyone, left out only when CODEOWNERS already names that
    e-mail."""
    named = owners_for(files, rules)
    if author_email and author_email.lower() in {o.lower() for o in named}:
        return named
    return (*named, f"{author_name} <{author_email}>")
