"""The replay check of a find-break's `bisect_log`: `git bisect replay` on a fresh clone ends on
the named culprit. The `every_log_replays` fixture (conftest.py) runs it on every JSON result a
test module's `run_cli` produces."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.MULTILINE)

Run = Callable[..., subprocess.CompletedProcess[str]]

def replay(repo: Path, log: list[str]) -> subprocess.CompletedProcess[str]:
    """`git bisect replay` of `log` in a fresh clone of `repo`: the user's checkout (and the
    test's) is never in a bisect state."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bisector-replay-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", "--no-checkout", root, str(clone)],
                       check=True, capture_output=True)
        path = Path(tmp) / "bisect.log"
        path.write_text("\n".join(log) + "\n")
        return subprocess.run(["git", "bisect", "replay", str(path)], cwd=clone,
                              capture_output=True, text=True, timeout=60)


def lead_culprit(data: dict[str, Any]) -> str | None:
    """The culprit the log says it ends on (`# first bad commit: [SHA] subject`), if any."""
    for line in data["bisect_log"]:
        if line.startswith("# first bad commit: ["):
            return line.split("[", 1)[1].split("]", 1)[0]
    return None


def assert_replays(repo: Path, data: dict[str, Any]) -> None:
    """The log of a find-break JSON result replays to its culprit.

    With several culprits, one `git bisect` can end on only one: the log follows the first test
    that has a culprit and names it in its last line, as `git bisect log` does.
    """
    culprits = [g["commit"]["sha"] for g in data["culprits"] if g["commit"]]
    if not culprits:
        assert lead_culprit(data) is None, data["bisect_log"]
        return
    proc = replay(repo, data["bisect_log"])
    found = FIRST_BAD.findall(proc.stdout)
    assert proc.returncode == 0 and len(found) == 1 and found[0] in culprits, (
        f"replay did not end on a culprit of {culprits}:\n{proc.stdout}\n{proc.stderr}\n"
        + "\n".join(data["bisect_log"]))
    assert lead_culprit(data) == found[0], data["bisect_log"]  # the one the log says


def replaying(run: Run) -> Run:
    """`run_cli` that replays the log of every find-break it runs that writes JSON (stdout
    with --json, or a --report json file) and succeeds."""
    def wrapper(*args: str, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = run(*args, cwd=cwd, env=env)
        if args[:1] != ("find-break",) or proc.returncode != 0 or cwd is None:
            return proc
        reports = [Path(cwd, args[i + 2]) for i, arg in enumerate(args[:-2])
                   if arg == "--report" and args[i + 1] == "json"]
        texts = ([proc.stdout] if "--json" in args else []) + [p.read_text() for p in reports]
        for text in texts:
            assert_replays(cwd, json.loads(text))
        return proc
    return wrapper
