"""Generated repositories for the benchmarks: one linear history written by git fast-import.

Hundreds of commits in well under a second, so the benchmarks time the tools, not the set-up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
       "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True, env=ENV).stdout.strip()


def build_linear(repo: Path, commits: int, files_at: Callable[[int], dict[str, str]],
                 message_at: Callable[[int], str] = lambda i: f"c{i}") -> list[str]:
    """Commit i holds files_at(i) (on top of the earlier ones); the shas, oldest first."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    stream = []
    for i in range(commits):
        msg = message_at(i)
        stream.append(f"commit refs/heads/main\nmark :{i + 1}\n"
                      f"committer Bench <bench@example.invalid> {1700000000 + i * 60} +0000\n"
                      f"data {len(msg.encode())}\n{msg}\n")
        if i:
            stream.append(f"from :{i}\n")
        for name, text in files_at(i).items():
            stream.append(f"M 100644 inline {name}\ndata {len(text.encode())}\n{text}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream),
                   text=True, check=True, env=ENV)
    git(repo, "checkout", "-q", "main")
    return git(repo, "rev-list", "--reverse", "main").split()


def probe_script(path: Path, counter: Path, command: str) -> Path:
    """A `git bisect run`-style script that counts its runs in `counter`, then runs command."""
    counter.write_text("")
    path.write_text(f"#!/bin/sh\necho x >> {counter}\nexec {command}\n")
    path.chmod(0o755)
    return path
