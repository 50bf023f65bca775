"""The nightly report as Markdown (the Actions job summary) and as terminal lines.

Rendered from the report model (`nightly_model.NightlyReport`, whose JSON is nightly.json),
never from live objects, so that every format says the same thing. Data stays data: table
cells and code spans through `markdown.cell`/`code`, tracebacks in fenced blocks longer than
any backtick run they hold, HTML (the `<details>` around them) escaped, URLs through
`links.safe_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .isolation import markdown as isolation_markdown
from .isolation import terminal_lines
from .markdown import cell as _cell
from .markdown import code, details
from .nightly_model import (
    CommitRef,
    NightlyReport,
    RegressionGroup,
    Side,
    as_report,
)

STATUS = {
    "regression": "new regressions",
    "still-failing": "still failing, no new regression",
    "flaky": "flaky failures, no new regression",
    "clean": "clean, nothing fails",
    "no-baseline": "no baseline yet",
}


def _commit(c: CommitRef | None, url: str | None = None) -> str:
    if not c:
        return "(not isolated)"
    sha = f"[{code(c.short)}]({url})" if url else code(c.short)
    return f"{sha} {_cell(c.subject or '')}".rstrip()


def _plain_commit(c: CommitRef | None) -> str:
    """`_commit` for the terminal: the subject as written, backticks and all."""
    if not c:
        return "(not isolated)"
    return f"{c.short} {c.subject or ''}".rstrip()


def headline(data: NightlyReport | Mapping[str, Any]) -> str:
    report = as_report(data)
    parts = [_plural(report.new_regressions, "new regression"),
             f"{len(report.still_failing)} still failing",
             f"{len(report.flaky)} flaky"]
    if report.failing:
        parts.append(f"{len(report.failing)} failing without a baseline")
    return ", ".join(parts)


def _outcomes(report: NightlyReport) -> str:
    counts = report.run.outcomes if report.run else {}
    return ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def to_markdown(data: NightlyReport | Mapping[str, Any]) -> str:
    report = as_report(data)
    lines = _intro(report)
    if report.regressions:
        lines += ["## New regressions", ""]
    for g in report.regressions:
        lines += _group(report, g)
    lines += _still_failing(report) + _flaky(report) + _failing(report)
    if report.stats:
        lines += ["## Trend", "", _stats_line(report.stats), ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {_cell(n)}" for n in report.notes] + [""]
    return "\n".join(lines)


def _intro(report: NightlyReport) -> list[str]:
    run = report.run
    seconds = run.seconds if run and run.seconds is not None else 0.0
    container = f", container {run.container}" if run and run.container else ""
    head = report.head.short if report.head else None
    run_url = report.links.run_url()
    lines = [
        f"# bisector nightly: {_cell(report.repository)} {code(report.branch)} at {code(head)}",
        "",
        f"**{STATUS.get(report.status, report.status)}**: {headline(report)}. "
        f"Tonight's run: {_outcomes(report)} ({seconds:.1f} s{container}). "
        f"Exit {report.exit_code} (`--fail-on {report.fail_on}`).",
        "",
    ]
    if run_url:
        lines += [f"CI run: [{run_url}]({run_url})", ""]
    if report.status == "no-baseline":
        lines += ["> No baseline yet: this is the first tracked run. Regressions are found "
                  "from the next night on.", ""]
    return lines


def _culprit_lines(report: NightlyReport, g: RegressionGroup) -> list[str]:
    c = g.culprit
    if c is None:
        return ["### No culprit named", ""]
    links = report.links
    lines = [f"### Culprit {_commit(c, links.commit_url(c.sha))}", ""]
    if g.merge:
        lines.append(f"- merged by: {_commit(g.merge, links.commit_url(g.merge.sha))} (the "
                     "first-parent merge that brought it in)")
    lines += [
        f"- author: {_cell(c.author)} <{_cell(c.author_email)}>, {c.committed_at}",
        f"- files: {', '.join(code(p) for p in g.files) or '(none)'}",
        f"- owners: {_cell(', '.join(g.owners)) or '(none)'}",
    ]
    diff = links.diff_url(c.sha)
    if diff:
        lines.append(f"- diff: [{diff}]({diff})")
    b = g.bisection
    if b:
        lines.append(f"- bisection: {b.candidates} candidates, {b.probes_run} probes run, "
                     f"{b.probes_reused} reused, {b.seconds or 0.0:.1f} s")
    return [*lines, ""]


def _group(report: NightlyReport, g: RegressionGroup) -> list[str]:
    lines = _culprit_lines(report, g)
    lines += ["| test | before | after | confidence | confirmed |",
              "| --- | --- | --- | --- | --- |"]
    for t in g.tests:
        confirmed = "yes" if t.confirmed else _cell(t.note or "no")
        lines.append(f"| {code(t.test)} | {_side(t.before)} | {_side(t.after)} "
                     f"| {_conf(t.confidence)} | {confirmed} |")
    for t in g.tests:
        if t.after and t.after.traceback:
            lines += ["", *details(f"Traceback of {t.test} at {(t.after.sha or '')[:10]}",
                                   t.after.traceback)]
    lines += isolation_markdown(g.isolation, g.revert)
    if g.probes:
        steps = [f"`{p.short}` {_cell(p.detail or p.purpose)}: "
                 + "/".join(sorted(set(p.outcomes.values()))) for p in g.probes]
        lines += ["", "Probes: " + " → ".join(steps)]
    return [*lines, ""]


def _still_failing(report: NightlyReport) -> list[str]:
    if not report.still_failing:
        return []
    lines = ["## Still failing", "", "| test | since | culprit | owners | failure |",
             "| --- | --- | --- | --- | --- |"]
    for s in report.still_failing:
        url = report.links.commit_url(s.culprit.sha) if s.culprit else None
        lines.append(f"| {code(s.test)} | {(s.since or '')[:10]} | "
                     f"still failing since {_commit(s.culprit, url)} | "
                     f"{_cell(', '.join(s.owners)) or '-'} | {_cell(s.message)} |")
    lines += _tracebacks((s.test, s.traceback) for s in report.still_failing)
    return [*lines, ""]


def _flaky(report: NightlyReport) -> list[str]:
    if not report.flaky:
        return []
    lines = ["## Flaky tonight", "", "| test | failure | false-failure rate | note |",
             "| --- | --- | --- | --- |"]
    for f in report.flaky:
        rate = "-" if f.false_fail_rate is None else f"{f.false_fail_rate:.2f}"
        lines.append(f"| {code(f.test)} | {_cell(f.message)} | {rate} | {_cell(f.note)} |")
    lines += _tracebacks((f.test, f.traceback) for f in report.flaky)
    return [*lines, ""]


def _failing(report: NightlyReport) -> list[str]:
    if not report.failing:
        return []
    lines = ["## Failing without a baseline", "",
             "No pass of these within the lookback window, so no culprit to look for.", ""]
    lines += [f"- {code(f.test)} ({f.outcome}): {_cell(f.message)}" for f in report.failing]
    lines += _tracebacks((f.test, f.traceback) for f in report.failing)
    return [*lines, ""]


def _tracebacks(pairs: Any) -> list[str]:
    out: list[str] = []
    for test, traceback in pairs:
        if traceback:
            out += ["", *details(f"Traceback of {test}", traceback)]
    return out


def _stats_line(stats: Mapping[str, Any]) -> str:
    """The trend in one sentence, from `bisector stats --json`'s document."""
    window = stats.get("window") or {}
    span = (f"last {window['commits']} commits" if window.get("commits")
            else f"last {window.get('days')} days")
    parts = [f"Over the {span}: {_plural(stats.get('regressions', 0), 'regression')} "
             f"({stats.get('regressions_per_100_commits', 0)} per 100 commits)"]
    if stats.get("mean_hours_to_detection") is not None:
        parts.append(f"detected {stats['mean_hours_to_detection']:.1f} h after the commit "
                     "on average")
    if stats.get("mean_seconds_to_culprit") is not None:
        parts.append(f"culprit named in {stats['mean_seconds_to_culprit']:.1f} s on average")
    parts.append(_plural(len(stats.get("flaky") or []), "flaky test"))
    return "; ".join(parts) + "."


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _side(side: Side | None) -> str:
    if not side:
        return "-"
    text = f"{side.outcome} at `{(side.sha or '')[:10]}`"
    if side.message:
        text += f": {_cell(side.message)}"
    return text


def _conf(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_lines(data: NightlyReport | Mapping[str, Any]) -> list[str]:
    """What `bisector nightly` prints when it is done: the verdict, each culprit, each carry."""
    report = as_report(data)
    head = report.head.short if report.head else None
    out = [f"nightly {report.branch} at {head}: "
           f"{STATUS.get(report.status, report.status)} ({headline(report)})"]
    for g in report.regressions:
        out += _group_summary(g)
    out += [f"  still failing since {_plain_commit(s.culprit)}: {s.test}"
            for s in report.still_failing]
    out += [f"  flaky: {f.test}" for f in report.flaky]
    out += [f"  failing, no baseline: {f.test}" for f in report.failing]
    out += [f"  note: {n}" for n in report.notes]
    return out


def _group_summary(g: RegressionGroup) -> list[str]:
    c = g.culprit
    if c is None:
        out = ["  no culprit named"]
    else:
        out = [f"  culprit {c.short} {c.subject} ({c.author})"]
        if g.merge:
            out.append(f"    merged by {g.merge.short} {g.merge.subject}")
        if g.owners:
            out.append(f"    owners {', '.join(g.owners)}")
        out += ["  " + line for line in terminal_lines(g.isolation, g.revert)]
    return out + [f"    {t.test}" for t in g.tests]
