"""A bisection's result for people (terminal, Markdown) and machines (JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.text import Text

from ..model import BisectResult, CommitInfo, Finding
from .history import commit_json
from .isolation import isolation_json, revert_json, terminal_lines
from .isolation import markdown as isolation_markdown
from .links import Links
from .markdown import cell, code, details, fence_for


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _groups(result: BisectResult) -> list[tuple[str | None, list[Finding]]]:
    """Tests that broke at the same commit, together; unresolved ones last."""
    groups: dict[str | None, list[Finding]] = {}
    for f in result.findings:
        groups.setdefault(f.culprit.sha if f.culprit else None, []).append(f)
    return sorted(groups.items(), key=lambda kv: kv[0] is None)


def _merge(findings: list[Finding]) -> CommitInfo | None:
    """The first-parent merge that brought a culprit in from a merged branch (one per culprit:
    the first merge on the searched line that contains it)."""
    return findings[0].merge if findings[0].culprit else None


MERGED = "the first-parent merge that brought it in"


def _confidence(f: Finding) -> str:
    if f.confidence is None:
        return "-"
    text = f"{f.confidence:.3f}"
    if f.false_fail_rate is not None and f.false_fail_interval is not None:
        low, high = f.false_fail_interval
        text += (f" (flaky: false-failure rate {f.false_fail_rate:.2f}, "
                 f"95% CI {low:.2f}-{high:.2f})")
    return text


SCHEMA = 1  # find-break --json; changes only when a key is removed or changes meaning


def _test_json(f: Finding, sha: str | None) -> dict[str, Any]:
    return {
        "test": f.nodeid,
        "signature": f.signature,
        "message": f.message,
        "traceback": f.traceback,
        "confirmed": f.confirmed,
        "suspects": list(f.suspects) if not sha else [sha],
        "verdict": f.verdict,
        "confidence": None if f.confidence is None else round(f.confidence, 4),
        "false_fail_rate": None if f.false_fail_rate is None else round(f.false_fail_rate, 4),
        "false_fail_interval": None if f.false_fail_interval is None
        else [round(x, 4) for x in f.false_fail_interval],
        "note": f.note,
    }


def to_json(result: BisectResult, links: Links | None = None) -> dict[str, Any]:
    """`find-break --json`: culprits with their tests, the notes and the bisect log; `links`
    (commit page, diff, CI run) when they are known."""
    links = links or Links()
    return {
        "schema": SCHEMA,
        "good": result.good,
        "bad": result.bad,
        "candidates": result.candidates,
        "probes_run": result.probes_run,
        "probes_reused": result.probes_reused,
        "rounds": result.rounds,
        "jobs": result.jobs,
        "seconds": round(result.seconds, 3),
        "culprits": [
            {
                "commit": commit_json(findings[0].culprit) if sha else None,
                "merge": commit_json(merge) if (merge := _merge(findings)) else None,
                "files": list(findings[0].files) if sha else [],
                "owners": list(findings[0].owners) if sha else [],
                "links": {"commit": links.commit_url(sha), "diff": links.diff_url(sha)},
                "tests": [_test_json(f, sha) for f in findings],
                "isolation": isolation_json(findings[0].isolation),
                "revert": revert_json(findings[0].revert),
            }
            for sha, findings in _groups(result)
        ],
        "links": {"run": links.run_url()},
        "notes": list(result.notes),
        "bisect_log": list(result.bisect_log),
    }


def _culprit_markdown(findings: list[Finding], links: Links) -> list[str]:
    c = findings[0].culprit
    assert c is not None
    merge = _merge(findings)
    url, diff = links.commit_url(c.sha), links.diff_url(c.sha)
    short = f"[`{c.sha[:10]}`]({url})" if url else f"`{c.sha[:10]}`"
    lines = [
        f"## Culprit {short} {cell(c.subject, None)}",
        "",
        f"- author: {cell(c.author_name, None)} <{cell(c.author_email, None)}>",
        f"- date: {_when(c.committed_at)}",
        f"- commit: `{c.sha}`",
        *([f"- diff: [{diff}]({diff})"] if diff else []),
        *([f"- merged by: `{merge.sha[:10]}` {cell(merge.subject, None)} ({MERGED}: "
           f"`{merge.sha}`)"] if merge else []),
        f"- files: {', '.join(code(p) for p in findings[0].files) or '(none)'}",
        f"- owners: {cell(', '.join(findings[0].owners), None) or '(none in CODEOWNERS)'}",
        "",
        "| test | failure | signature | confidence | confirmed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in findings:
        confirmed = "yes" if f.confirmed else "NO: " + cell(f.note, None)
        lines.append(f"| {code(f.nodeid)} | {cell(f.message, None)} | `{f.signature}` | "
                     f"{_confidence(f)} | {confirmed} |")
    lines += isolation_markdown(isolation_json(findings[0].isolation),
                                revert_json(findings[0].revert))
    for f in findings:
        if f.traceback:
            lines += ["", *details(f"Traceback of {f.nodeid} at {c.sha[:10]}", f.traceback)]
    return [*lines, ""]


def to_markdown(result: BisectResult, links: Links | None = None) -> str:
    links = links or Links()
    lines = [f"# bisector: {result.good[:10]}..{result.bad[:10]}", ""]
    if links.run_url():
        lines += [f"CI run: [{links.run_url()}]({links.run_url()})", ""]
    for sha, findings in _groups(result):
        if sha is None:
            lines.append("## No culprit named")
            lines += [f"- {code(f.nodeid)}: {cell(f.note, None)}" for f in findings]
            lines.append("")
            continue
        lines += _culprit_markdown(findings, links)
    lines += [
        f"{result.candidates} candidate commits; {result.probes_run} probes run"
        f"{_rounds(result)}, {result.probes_reused} reused from history; "
        f"{result.seconds:.1f} s.",
        "",
    ]
    for note in result.notes:
        lines.append(f"- {cell(note, None)}")
    fence = fence_for(result.bisect_log)  # its comments carry commit subjects
    lines += ["", "Replay with `git bisect replay FILE`:", "", fence, *result.bisect_log, fence,
              ""]
    return "\n".join(lines)


def summary_lines(result: BisectResult) -> list[str]:
    """Plain lines for pytest's terminal summary."""
    lines = []
    for sha, findings in _groups(result):
        if sha is None:
            lines += [f"{f.nodeid}: {f.note}" for f in findings]
            continue
        c = findings[0].culprit
        assert c is not None
        lines.append(f"culprit {c.sha[:10]} {c.subject} ({c.author_name} <{c.author_email}>)")
        if merge := _merge(findings):
            lines.append(f"  merged by {merge.short} {merge.subject} ({MERGED})")
        if findings[0].owners:
            lines.append(f"  owners {', '.join(findings[0].owners)}")
        for f in findings:
            state = "confirmed" if f.confirmed else f.note
            lines.append(f"  {f.nodeid}: {f.message or ''} ({state})")
            lines.append(f"    confidence {_confidence(f)}")
        lines += _isolation_lines(findings[0])
    lines += [f"note: {n}" for n in result.notes]
    lines.append(f"{result.candidates} candidates, {result.probes_run} probes run"
                 f"{_rounds(result)}, {result.probes_reused} reused, {result.seconds:.1f} s")
    return lines


def render(result: BisectResult, console: Console) -> None:
    """The result for a terminal. Subjects, names, test ids, messages and paths are data: they
    go in as `Text`, never through markup or emoji codes (`[/tmp]`, `:bug:` print as written)."""
    def line(*parts: str | tuple[str, str], style: str = "") -> None:
        console.print(Text.assemble(*parts, style=style), soft_wrap=True)

    for sha, findings in _groups(result):
        if sha is None:
            for f in findings:
                label = {"flaky": "no culprit", "inconclusive": "inconclusive"}.get(
                    f.verdict, "not isolated")
                line((label, "yellow"), f" {f.nodeid}: {f.note or ''}")
            continue
        c = findings[0].culprit
        assert c is not None
        line(("culprit", "bold red"), " ", (c.sha[:10], "cyan"), f" {c.subject}")
        if merge := _merge(findings):
            line("  merged  ", (merge.short, "cyan"), f" {merge.subject} ({MERGED})")
        line(f"  author  {c.author_name} <{c.author_email}>, {_when(c.committed_at)}")
        line(f"  files   {', '.join(findings[0].files) or '(none)'}")
        if findings[0].owners:
            line(f"  owners  {', '.join(findings[0].owners)}")
        for f in findings:
            mark = ("confirmed", "green") if f.confirmed else (f.note or "", "yellow")
            line(f"  test    {f.nodeid}: {f.message or ''} (", mark, ")")
            line(f"          confidence {_confidence(f)}")
        for text in _isolation_lines(findings[0]):
            line(text, style="red" if "NOT verified" in text else "")
    for note in result.notes:
        line(f"note: {note}", style="dim")
    line(f"{result.candidates} candidates, {result.probes_run} probes run"
         f"{_rounds(result)}, {result.probes_reused} reused from history, "
         f"{result.seconds:.1f} s", style="dim")


def _isolation_lines(f: Finding) -> list[str]:
    return terminal_lines(isolation_json(f.isolation), revert_json(f.revert))


def _rounds(result: BisectResult) -> str:
    """ in R rounds of up to K, when probes ran in parallel (--jobs K)."""
    return f" in {result.rounds} rounds of up to {result.jobs}" if result.jobs > 1 else ""
