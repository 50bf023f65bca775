"""Links from a report to the commit, the culprit's diff and the CI run that found it.

In GitHub Actions they come from the variables the runner sets (`GITHUB_SERVER_URL`,
`GITHUB_REPOSITORY`, `GITHUB_RUN_ID`); elsewhere from `[tool.bisector] commit-url`, a template
with one `{sha}` (checked by `bisector.config`). A value from the environment that does not
look like what Actions sets is left out rather than linked: a report never links somewhere odd.

Every URL a report shows passes `safe_url`: characters that could end a Markdown link or an
HTML attribute are percent-encoded, whatever the template held.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

SHA = "{sha}"
_SERVER = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~/-]*)?")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
# RFC 3986's reserved and unreserved characters, less the ones that end a Markdown link
# destination or an attribute: ( ) < > quotes, backtick, space; `%` kept (already encoded)
_KEEP = ":/?#[]@!$&*+,;=-._~%"


def safe_url(url: str) -> str:
    """`url` with everything outside `_KEEP` and letters/digits percent-encoded."""
    return quote(url, safe=_KEEP)


@dataclass(frozen=True, slots=True)
class Links:
    """Where a report's commits and run live; None where nothing is known."""

    commit: str | None = None  # a template with one {sha}: the commit's page
    run: str | None = None  # the CI run that produced the report

    def commit_url(self, sha: str | None) -> str | None:
        if not self.commit or not sha or not _HEX.fullmatch(sha):
            return None
        return safe_url(self.commit.replace(SHA, sha))

    def diff_url(self, sha: str | None) -> str | None:
        """The commit's patch (`<commit page>.diff`, as GitHub, GitLab and Gitea serve it)."""
        url = self.commit_url(sha)
        if url is None:
            return None
        base, hash_, fragment = url.partition("#")
        path, query, rest = base.partition("?")
        return f"{path}.diff{query}{rest}{hash_}{fragment}"

    def run_url(self) -> str | None:
        return safe_url(self.run) if self.run else None

    @classmethod
    def from_json(cls, data: Any) -> Links:
        if not isinstance(data, Mapping):
            return cls()
        commit, run = data.get("commit"), data.get("run")
        return cls(commit if isinstance(commit, str) and SHA in commit else None,
                   run if isinstance(run, str) and run.startswith(("http://", "https://"))
                   else None)

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "run": self.run}


def links_from(environ: Mapping[str, str], commit_url: str | None) -> Links:
    """GitHub Actions' own variables when they are set, else the configured `commit-url`."""
    server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
    repository = environ.get("GITHUB_REPOSITORY", "")
    if _SERVER.fullmatch(server) and _REPOSITORY.fullmatch(repository):
        base = f"{server}/{quote(repository, safe='/')}"
        run_id = environ.get("GITHUB_RUN_ID", "")
        run = f"{base}/actions/runs/{run_id}" if run_id.isdigit() else None
        return Links(commit=f"{base}/commit/{SHA}", run=run)
    return Links(commit=commit_url)
