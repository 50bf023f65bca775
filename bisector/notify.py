"""Tell the owner: `bisector nightly --notify github` and `--notify webhook`.

Built on the nightly's JSON (the dict nightly.json holds, docs/nightly-report.md), never on
live objects, so that it works from an archived report as well as from tonight's.

GitHub: one issue per culprit, found again on later nights by its label and a hidden marker
in its body (the culprit's sha, the branch, the tests and a fingerprint of what was said), so
a rerun never opens a second one; a later night comments only when the fingerprint changed,
and closes the issue when none of its tests fails any more. Webhook: one POST per night with
a Slack-compatible `text` and the whole report.

A notification that fails (a refused token, a rate limit, no network) is one warning line:
the night's result and exit status stand. The token goes in one header, never redirected,
never to another host, and is scrubbed from every message.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from .errors import ConfigError
from .reports.markdown import cell, code, fence_for

KINDS = ("github", "webhook")
LABEL = "bisector"
MARKER = re.compile(r"<!-- bisector:culprit (\{.*?\}) -->")
TIMEOUT = 15.0
MAX_PAGES = 50
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters
HUNKS_LIMIT = 20_000
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
SHA = re.compile(r"[0-9a-f]{7,64}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")

Say = Callable[[str], None]


class NotifyFailed(Exception):
    """A notification that did not go through: one line, already free of secrets."""


# -- settings, checked before the night runs -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class GitHubTarget:
    api: str  # GITHUB_API_URL, e.g. https://api.github.com
    repository: str  # GITHUB_REPOSITORY, owner/name
    token: str = field(repr=False)
    server: str = "https://github.com"  # GITHUB_SERVER_URL: for links
    run_id: str | None = None  # GITHUB_RUN_ID: the CI run's link


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str = field(repr=False)  # a Slack webhook's path is its secret
    run_url: str | None = None  # the CI run, when Actions says which


Target = GitHubTarget | WebhookTarget


def check_url(url: str, what: str) -> str:
    """`url` when it is http(s) with a host: nothing else is ever opened (no file://)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} is not an http(s) URL",
                          hint="give one that starts with https://")
    return url.strip()


def github_target(env: Mapping[str, str]) -> GitHubTarget:
    """From what Actions sets (GITHUB_API_URL, GITHUB_REPOSITORY) and GITHUB_TOKEN."""
    repository = env.get("GITHUB_REPOSITORY", "")
    if not REPOSITORY.fullmatch(repository):
        raise ConfigError("--notify github needs GITHUB_REPOSITORY as owner/name",
                          hint="set it (Actions sets it) to the repository to open issues in")
    token = env.get("GITHUB_TOKEN", "")
    if not token.strip():
        raise ConfigError("--notify github needs GITHUB_TOKEN",
                          hint="in Actions: env: GITHUB_TOKEN: ${{ github.token }}, with "
                               "permissions: issues: write")
    api = check_url(env.get("GITHUB_API_URL") or "https://api.github.com", "GITHUB_API_URL")
    server = check_url(env.get("GITHUB_SERVER_URL") or "https://github.com",
                       "GITHUB_SERVER_URL")
    run_id = env.get("GITHUB_RUN_ID", "")
    return GitHubTarget(api=api.rstrip("/"), repository=repository, token=token.strip(),
                        server=server.rstrip("/"), run_id=run_id if run_id.isdigit() else None)


def run_url(env: Mapping[str, str]) -> str | None:
    """The Actions run's page, from what Actions sets; None outside Actions."""
    server = env.get("GITHUB_SERVER_URL") or ""
    repository = env.get("GITHUB_REPOSITORY") or ""
    run_id = env.get("GITHUB_RUN_ID") or ""
    if not (server.startswith(("https://", "http://")) and REPOSITORY.fullmatch(repository)
            and run_id.isdigit()):
        return None
    return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"


def targets(kinds: tuple[str, ...], webhook_url: str | None,
            env: Mapping[str, str] | None = None) -> list[Target]:
    """What `--notify` asks for, checked now: a bad setting is exit 2 before the night runs,
    not a warning after it."""
    env = os.environ if env is None else env
    found: list[Target] = []
    for kind in dict.fromkeys(kinds):
        if kind == "github":
            found.append(github_target(env))
        elif kind == "webhook":
            if not webhook_url:
                raise ConfigError("--notify webhook needs a URL",
                                  hint="give --webhook-url URL or set BISECTOR_WEBHOOK_URL")
            found.append(WebhookTarget(check_url(webhook_url, "the webhook URL"),
                                       run_url=run_url(env)))
        else:
            raise ConfigError(f"--notify {kind!r} is not one of {', '.join(KINDS)}")
    if webhook_url and "webhook" not in kinds:
        raise ConfigError("--webhook-url without --notify webhook",
                          hint="add --notify webhook, or drop the URL")
    return found


# -- sending ------------------------------------------------------------------------------------


def notify(data: dict[str, Any], target: Target, *, say: Say, warn: Say,
           timeout: float = TIMEOUT) -> bool:
    """Send the night's news to `target`; False, after one warning line, when it failed."""
    secret = target.token if isinstance(target, GitHubTarget) else target.url
    try:
        if isinstance(target, GitHubTarget):
            client = Http(target.api, timeout, token=target.token)
            GitHubNotifier(target, client, say).run(data)
        else:
            post_webhook(data, target, timeout, say)
    except NotifyFailed as exc:
        reason = str(exc)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # an answer not as
        reason = f"unexpected answer ({type(exc).__name__})"  # documented: still a warning
    else:
        return True
    warn(f"bisector: warning: {kind_of(target)} notification failed: {scrub(reason, secret)}")
    return False


def kind_of(target: Target) -> str:
    return "GitHub" if isinstance(target, GitHubTarget) else "webhook"


def scrub(text: str, secret: str) -> str:
    """One line, the secret (and a URL's path, for a webhook) never in it."""
    line = " ".join(text.split())
    return line.replace(secret, "***") if secret else line


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the token must reach the API host and nothing else."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


class Http:
    """JSON over urllib to one origin: the Authorization header is sent to that origin only
    (a `next` page elsewhere is refused) and never follows a redirect."""

    def __init__(self, base: str, timeout: float, token: str | None = None,
                 service: str = "GitHub") -> None:
        self.base = base
        self.origin = _origin(base)
        self.timeout = timeout
        self.token = token
        self.service = service
        self.opener = urllib.request.build_opener(_NoRedirect)

    def what(self, method: str, url: str) -> str:
        """The request in a message: GitHub's path, only the host of a webhook (its path is
        its secret)."""
        if self.service == "GitHub":
            return f"{method} {urllib.parse.urlsplit(url).path}"
        return f"{method} to {_host(url)}"

    def request(self, method: str, url: str, body: Any = None) -> tuple[Any, Message]:
        if _origin(url) != self.origin:
            raise NotifyFailed(f"refused to follow a link to another host ({_host(url)})")
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "bisector")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_unredirected_header("Authorization", f"Bearer {self.token}")
        with (_answering(self.what(method, url), self.timeout, self.service),
              self.opener.open(req, timeout=self.timeout) as resp):
            raw = resp.read()
            headers = resp.headers
        if self.service != "GitHub":  # a webhook's answer is its own ("ok" from Slack)
            return None, headers
        try:
            return (json.loads(raw) if raw.strip() else None), headers
        except ValueError:
            raise NotifyFailed(f"the answer to {method} is not JSON") from None


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or "?"


class _answering:
    """Every way a request fails, as one NotifyFailed line saying what to do."""

    def __init__(self, what: str, timeout: float, service: str) -> None:
        self.what = what
        self.timeout = timeout
        self.service = service

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, NotifyFailed):
            return
        if isinstance(exc, urllib.error.HTTPError):
            raise http_failure(exc.code, exc.headers, _error_text(exc), self.what,
                               self.service) from None
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            raise NotifyFailed(f"{self.what}: no answer within {self.timeout:g} s") from None
        if isinstance(exc, urllib.error.URLError):
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise NotifyFailed(f"{self.what}: cannot connect ({reason})") from None
        if isinstance(exc, OSError | ValueError | http.client.HTTPException):
            raise NotifyFailed(f"{self.what}: {type(exc).__name__}: {exc}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    """GitHub's own words for a refusal ("Validation Failed: ..."), clipped."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        return ""
    if not isinstance(body, dict):
        return ""
    words = [str(body.get("message") or "")]
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            words.append(str(err.get("message") or err.get("code") or ""))
    return cell(": ".join(w for w in words if w), limit=200)


def http_failure(status: int, headers: Message | None, text: str, what: str,
                 service: str = "GitHub") -> NotifyFailed:
    """The line a person acts on, for each status a notification meets."""
    headers = headers or Message()
    if status == 429 or (status == 403 and (headers.get("X-RateLimit-Remaining") == "0"
                                            or headers.get("Retry-After"))):
        return NotifyFailed(f"{what}: rate limited ({status}); {_retry(headers)}")
    if service != "GitHub":
        return NotifyFailed(f"{what}: {status}, the webhook refused the post: check its URL"
                            + (f" ({text})" if text else ""))
    hints = {
        401: "the token was refused: check GITHUB_TOKEN",
        403: "forbidden: the token needs issues: write (permissions: issues: write in the "
             "workflow)",
        404: "not found: check GITHUB_REPOSITORY (or the URL) and that the token can see it",
        422: "the request was refused as invalid",
    }
    hint = hints.get(status, "unexpected answer")
    return NotifyFailed(f"{what}: {status}, {hint}" + (f" ({text})" if text else ""))


def _retry(headers: Message) -> str:
    after = headers.get("Retry-After")
    if after and after.strip().isdigit():
        return f"try again in {int(after)} s"
    reset = headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        from .reports.history import iso

        return f"the limit resets at {iso(int(reset))}"
    return "try again later"


# -- GitHub issues ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Culprit:
    """One culprit failing tonight, new or carried, with what its issue says about it."""

    sha: str
    commit: dict[str, Any]
    tests: tuple[str, ...]
    messages: tuple[str, ...]
    owners: tuple[str, ...]
    group: dict[str, Any] | None  # the regression group, on the night it was found

    def state(self) -> str:
        """What a comment would say, as a fingerprint: the failing tests and their failures
        (addresses masked, so `<object at 0x7f..>` is not news every night). Not the owners:
        a new culprit's are read at the bad commit, a carried one's at HEAD."""
        said = [list(self.tests), [ADDRESS.sub("0x…", m) for m in self.messages]]
        return hashlib.sha256(json.dumps(said).encode()).hexdigest()[:16]


def culprits(data: dict[str, Any]) -> dict[str, Culprit]:
    """Every named culprit failing tonight: tonight's regressions, then the carried ones."""
    found: dict[str, Culprit] = {}
    for g in data.get("regressions") or []:
        c = g.get("culprit")
        if not c or not SHA.fullmatch(str(c.get("sha", ""))):
            continue
        tests = [t for t in g.get("tests") or []]
        found[c["sha"]] = Culprit(
            sha=c["sha"], commit=c, tests=tuple(t["test"] for t in tests),
            messages=tuple(str(((t.get("after") or {}).get("message")) or "") for t in tests),
            owners=tuple(g.get("owners") or ()), group=g)
    carried: dict[str, list[dict[str, Any]]] = {}
    for s in data.get("still_failing") or []:
        c = s.get("culprit")
        if c and SHA.fullmatch(str(c.get("sha", ""))) and c["sha"] not in found:
            carried.setdefault(c["sha"], []).append(s)
    for sha, rows in carried.items():
        found[sha] = Culprit(sha=sha, commit=rows[0]["culprit"],
                             tests=tuple(r["test"] for r in rows),
                             messages=tuple(str(r.get("message") or "") for r in rows),
                             owners=tuple(rows[0].get("owners") or ()), group=None)
    return found


def failing_tests(data: dict[str, Any]) -> set[str]:
    """Every test that failed tonight, for whatever reason: an issue whose tests are none of
    these is closed; a flaky failure keeps it open (it may be the same break)."""
    tests = {t["test"] for g in data.get("regressions") or [] for t in g.get("tests") or []}
    for key in ("still_failing", "failing", "flaky"):
        tests |= {row["test"] for row in data.get(key) or []}
    return tests


@dataclass(frozen=True, slots=True)
class Issue:
    number: int
    body: str
    marker: dict[str, Any]


def read_marker(body: str) -> dict[str, Any] | None:
    """The hidden marker bisector put in an issue's body, or None (not one of ours, edited)."""
    match = MARKER.search(body or "")
    if not match:
        return None
    try:
        marker = json.loads(match.group(1))
    except ValueError:
        return None
    if (not isinstance(marker, dict) or not SHA.fullmatch(str(marker.get("sha", "")))
            or not isinstance(marker.get("tests"), list)):
        return None
    return marker


def write_marker(marker: dict[str, Any]) -> str:
    """JSON in an HTML comment; `<` and `>` escaped so no test id can end the comment."""
    text = json.dumps(marker, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- bisector:culprit {text} -->"


class GitHubNotifier:
    """One night against the repository's issues: open, comment, close."""

    def __init__(self, target: GitHubTarget, http: Http, say: Say) -> None:
        self.target = target
        self.http = http
        self.say = say
        self.issues_url = (f"{target.api}/repos/"
                           f"{urllib.parse.quote(target.repository, safe='/')}/issues")

    def run(self, data: dict[str, Any]) -> None:
        branch = str(data.get("branch") or "")
        ours = {i.marker["sha"]: i for i in self.open_issues()
                if i.marker.get("branch") == branch}
        tonight = culprits(data)
        for sha, culprit in tonight.items():
            issue = ours.get(sha)
            if issue is not None:
                self.update(issue, culprit, data)
            elif culprit.group is not None:  # only a new culprit opens an issue
                self.open(culprit, data)
        failing = failing_tests(data)
        for sha, issue in ours.items():
            if sha not in tonight and not failing & set(issue.marker["tests"]):
                self.close(issue, data)

    def open_issues(self) -> list[Issue]:
        """This repository's open issues with our label, every page (Link: rel="next")."""
        url: str | None = (f"{self.issues_url}?labels={LABEL}&state=open&per_page=100")
        found: list[Issue] = []
        for _page in range(MAX_PAGES):
            if url is None:
                break
            items, headers = self.http.request("GET", url)
            for item in items if isinstance(items, list) else []:
                issue = _issue(item)
                if issue is not None:
                    found.append(issue)
            url = next_page(headers.get("Link"))
        return found

    def open(self, culprit: Culprit, data: dict[str, Any]) -> None:
        body = issue_body(culprit, data, self.target)
        made, _h = self.http.request("POST", self.issues_url, {
            "title": issue_title(culprit, data), "body": body, "labels": [LABEL]})
        number = made.get("number") if isinstance(made, dict) else None
        self.say(f"notified: opened issue #{number} for {culprit.sha[:10]}")

    def update(self, issue: Issue, culprit: Culprit, data: dict[str, Any]) -> None:
        """A comment only when what it would say changed, and the marker moved with it."""
        state = culprit.state()
        if issue.marker.get("state") == state:
            return
        self.comment(issue, still_failing_comment(issue, culprit, data, self.target))
        marker = write_marker(_marker(culprit, data, state))
        self.http.request("PATCH", f"{self.issues_url}/{issue.number}",
                          {"body": MARKER.sub(lambda _m: marker, issue.body, count=1)})
        self.say(f"notified: commented on issue #{issue.number} ({culprit.sha[:10]} changed)")

    def close(self, issue: Issue, data: dict[str, Any]) -> None:
        head = (data.get("head") or {}).get("short") or "HEAD"
        self.comment(issue, f"None of these tests fails any more at {code(head)}: closing."
                     + _run_line(self.target))
        self.http.request("PATCH", f"{self.issues_url}/{issue.number}",
                          {"state": "closed", "state_reason": "completed"})
        self.say(f"notified: closed issue #{issue.number} (its tests pass again)")

    def comment(self, issue: Issue, text: str) -> None:
        self.http.request("POST", f"{self.issues_url}/{issue.number}/comments",
                          {"body": text})


def _issue(item: Any) -> Issue | None:
    if not isinstance(item, dict) or "pull_request" in item:
        return None
    number, body = item.get("number"), item.get("body") or ""
    marker = read_marker(body) if isinstance(body, str) else None
    if not isinstance(number, int) or marker is None:
        return None
    return Issue(number=number, body=body, marker=marker)


def next_page(link: str | None) -> str | None:
    """The `rel="next"` URL of a Link header (RFC 8288), as GitHub paginates."""
    for part in (link or "").split(","):
        match = re.fullmatch(r'\s*<([^>]*)>\s*;(.*)', part)
        if match and re.search(r'\brel="?next"?', match.group(2)):
            return match.group(1)
    return None


def _marker(culprit: Culprit, data: dict[str, Any], state: str) -> dict[str, Any]:
    return {"sha": culprit.sha, "branch": data.get("branch"), "tests": list(culprit.tests),
            "state": state}


# -- what the issues say ------------------------------------------------------------------------


def issue_title(culprit: Culprit, data: dict[str, Any]) -> str:
    c = culprit.commit
    title = f"{c.get('short') or culprit.sha[:10]} {c.get('subject') or ''}".strip()
    return cell(f"{title} broke tests on {data.get('branch')}", limit=200).replace("\\|", "|")


def _links(culprit: Culprit, target: GitHubTarget) -> list[str]:
    repo = f"{target.server}/{target.repository}"
    url = culprit.commit.get("url") or f"{repo}/commit/{culprit.sha}"
    lines = [f"- commit and its diff: {url}"]
    if target.run_id:
        lines.append(f"- the nightly run: {repo}/actions/runs/{target.run_id}")
    return lines


def _run_line(target: GitHubTarget) -> str:
    if not target.run_id:
        return ""
    return (f"\n\nNightly run: {target.server}/{target.repository}/actions/runs/"
            f"{target.run_id}")


def _mentions(owners: tuple[str, ...]) -> str:
    handles = [o for o in owners if re.fullmatch(r"@[A-Za-z0-9][A-Za-z0-9-]*(/[\w.-]+)?", o)]
    return "cc " + " ".join(handles) if handles else ""


def issue_body(culprit: Culprit, data: dict[str, Any], target: GitHubTarget) -> str:
    """The Markdown card: culprit, owners mentioned, the failure, the hunks, the links."""
    c = culprit.commit
    g = culprit.group or {}
    lines = [
        write_marker(_marker(culprit, data, culprit.state())),
        f"**bisector nightly** on {code(data.get('branch'))} found that commit "
        f"{code(c.get('short') or culprit.sha[:10])} {code(c.get('subject') or '')} broke "
        f"{len(culprit.tests)} test{'' if len(culprit.tests) == 1 else 's'}.",
        "",
        f"- author: {cell(c.get('author'))}, {cell(c.get('committed_at'))}",
        f"- files: {', '.join(code(p) for p in g.get('files') or []) or '(see the commit)'}",
        f"- owners: {', '.join(code(o) for o in culprit.owners) or '(none)'}",
    ]
    if g.get("merge"):
        lines.append(f"- merged by: {code(g['merge'].get('short'))} "
                     f"{code(g['merge'].get('subject') or '')}")
    mentions = _mentions(culprit.owners)
    lines += ["", *([mentions, ""] if mentions else []), "## Failing tests", ""]
    lines += _failures(g, culprit)
    lines += _hunks(g)
    lines += ["## Links", "", *_links(culprit, target)]
    body = "\n".join(lines) + "\n"
    return body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "\n\n(clipped)\n"


def _failures(g: dict[str, Any], culprit: Culprit) -> list[str]:
    lines: list[str] = []
    tests = g.get("tests") or [{"test": t, "after": {"message": m}}
                               for t, m in zip(culprit.tests, culprit.messages, strict=True)]
    for t in tests:
        after = t.get("after") or {}
        lines.append(f"- {code(t['test'])}: {code(after.get('message') or after.get('outcome'))}")
        traceback = after.get("traceback") or t.get("traceback")
        if traceback:
            text = str(traceback).splitlines()
            fence = fence_for(text)
            lines += ["", "  <details><summary>traceback</summary>", "",
                      f"  {fence}text", *[f"  {x}" for x in text], f"  {fence}", "",
                      "  </details>", ""]
    return [*lines, ""]


def _hunks(g: dict[str, Any]) -> list[str]:
    """The isolated hunks (the isolation issue's `isolation.hunks`) as one diff block."""
    hunks = (g.get("isolation") or {}).get("hunks") or []
    if not hunks:
        return []
    text: list[str] = []
    for h in hunks:
        if not isinstance(h, dict):
            continue
        body = str(h.get("text") or "")
        text += [f"--- a/{h.get('file')}", f"+++ b/{h.get('file')}"]
        if not body.startswith("@@"):
            text.append(f"@@ -{h.get('old_start')},{h.get('old_lines')} "
                        f"+{h.get('new_start')},{h.get('new_lines')} @@")
        text += body.splitlines()
    joined = "\n".join(text)
    if len(joined) > HUNKS_LIMIT:
        text = [*joined[:HUNKS_LIMIT].splitlines(), "... (clipped: the report has the rest)"]
    fence = fence_for(text)
    return ["## The lines that broke it", "",
            f"{len(hunks)} hunk{'' if len(hunks) == 1 else 's'} of the commit, isolated:", "",
            f"{fence}diff", *text, fence, ""]


def still_failing_comment(issue: Issue, culprit: Culprit, data: dict[str, Any],
                          target: GitHubTarget) -> str:
    before = {str(t) for t in issue.marker.get("tests") or []}
    now = set(culprit.tests)
    head = (data.get("head") or {}).get("short") or "HEAD"
    lines = [f"Still failing at {code(head)}: "
             f"{len(now)} test{'' if len(now) == 1 else 's'}.", ""]
    lines += [f"- newly failing: {code(t)}" for t in sorted(now - before)]
    lines += [f"- no longer failing: {code(t)}" for t in sorted(before - now)]
    lines += [f"- {code(t)}: {code(m or '(no message)')}"
              for t, m in zip(culprit.tests, culprit.messages, strict=True)]
    mentions = _mentions(culprit.owners)
    if mentions:
        lines += ["", mentions]
    return "\n".join(lines) + _run_line(target)


# -- webhook ------------------------------------------------------------------------------------


def webhook_text(data: dict[str, Any], run: str | None = None) -> str:
    """The summary lines, escaped as Slack's mrkdwn needs (`&`, `<`, `>`): no subject or test
    id can become a link or an @channel; then the CI run's page."""
    from .reports.nightly import summary_lines

    text = "\n".join(summary_lines(data))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text + (f"\n{run}" if run else "")


def post_webhook(data: dict[str, Any], target: WebhookTarget, timeout: float,
                 say: Say) -> None:
    client = Http(target.url, timeout, service="webhook")
    client.request("POST", target.url, {"text": webhook_text(data, target.run_url),
                                      "nightly": data})
    say(f"notified: posted the night to the webhook at {_host(target.url)}")


# -- the action's step --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m bisector.notify REPORT --notify github`: what `nightly --notify` does, from
    a written nightly.json. action.yml runs it as a step of its own, so that the token is in
    that step's environment only, never in the suite's (the tests run the project's code)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bisector.notify",
                                     description="Tell the owners what a night found.")
    parser.add_argument("report", help="nightly.json")
    parser.add_argument("--notify", action="append", default=[], choices=KINDS, required=True)
    parser.add_argument("--webhook-url", default=os.environ.get("BISECTOR_WEBHOOK_URL") or None)
    args = parser.parse_args(argv)

    def warn(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        found = targets(tuple(args.notify), args.webhook_url)
    except ConfigError as exc:
        warn(f"bisector: error: {exc.one_line()}")
        return exc.exit_code
    try:
        with open(args.report, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        data = exc
    if not isinstance(data, dict):
        warn(f"bisector: warning: no notification: {args.report} is not a nightly report"
             + (f" ({scrub(str(data), '')})" if isinstance(data, Exception) else ""))
        return 0
    for target in found:
        notify(data, target, say=print, warn=warn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
