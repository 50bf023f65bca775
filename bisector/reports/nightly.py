"""The nightly report as Markdown (the Actions job summary) and as terminal lines.

Rendered from the same dict as nightly.json (docs/nightly-report.md), never from live objects,
so that every format says the same thing.
"""

from __future__ import annotations

from typing import Any

from .markdown import cell as _cell
from .markdown import code

STATUS = {
    "regression": "new regressions",
    "still-failing": "still failing, no new regression",
    "flaky": "flaky failures, no new regression",
    "clean": "clean, nothing fails",
    "no-baseline": "no baseline yet",
}


def _commit(c: dict[str, Any] | None) -> str:
    if not c:
        return "(not isolated)"
    return f"{code(c['short'])} {_cell(c.get('subject', ''))}".rstrip()


def _plain_commit(c: dict[str, Any] | None) -> str:
    """`_commit` for the terminal: the subject as written, backticks and all."""
    if not c:
        return "(not isolated)"
    return f"{c['short']} {c.get('subject', '')}".rstrip()


def headline(data: dict[str, Any]) -> str:
    n_new = sum(len(g["tests"]) for g in data["regressions"])
    parts = [_plural(n_new, "new regression"),
             f"{len(data['still_failing'])} still failing",
             f"{len(data['flaky'])} flaky"]
    if data["failing"]:
        parts.append(f"{len(data['failing'])} failing without a baseline")
    return ", ".join(parts)


def _outcomes(run: dict[str, Any]) -> str:
    counts = run.get("outcomes") or {}
    return ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def to_markdown(data: dict[str, Any]) -> str:
    head = data["head"] or {}
    run = data["run"]
    lines = [
        f"# bisector nightly: {_cell(data['repository'])} {code(data['branch'])} "
        f"at {code(head.get('short'))}",
        "",
        f"**{STATUS.get(data['status'], data['status'])}**: {headline(data)}. "
        f"Tonight's run: {_outcomes(run)} ({run['seconds']:.1f} s"
        f"{', container ' + run['container'] if run.get('container') else ''}). "
        f"Exit {data['exit_code']} (`--fail-on {data['fail_on']}`).",
        "",
    ]
    if data["status"] == "no-baseline":
        lines += ["> No baseline yet: this is the first tracked run. Regressions are found "
                  "from the next night on.", ""]
    if data["regressions"]:
        lines += ["## New regressions", ""]
    for g in data["regressions"]:
        c = g["culprit"]
        if c is None:
            lines += ["### No culprit named", ""]
        else:
            lines += [
                f"### Culprit {_commit(c)}",
                "",
                *([f"- merged by: {_commit(g['merge'])} (the first-parent merge that brought "
                   "it in)"] if g.get("merge") else []),
                f"- author: {_cell(c['author'])} <{_cell(c['author_email'])}>, "
                f"{c['committed_at']}",
                f"- files: {', '.join(code(p) for p in g['files']) or '(none)'}",
                f"- owners: {_cell(', '.join(g['owners'])) or '(none)'}",
            ]
            b = g.get("bisection")
            if b:
                lines.append(f"- bisection: {b['candidates']} candidates, {b['probes_run']} "
                             f"probes run, {b['probes_reused']} reused, {b['seconds']:.1f} s")
            lines.append("")
        lines += ["| test | before | after | confidence | confirmed |",
                  "| --- | --- | --- | --- | --- |"]
        for t in g["tests"]:
            lines.append(
                f"| {code(t['test'])} | {_side(t.get('before'))} | {_side(t.get('after'))} "
                f"| {_conf(t.get('confidence'))} | "
                f"{'yes' if t.get('confirmed') else _cell(t.get('note') or 'no')} |")
        if g["probes"]:
            steps = [f"`{p['short']}` {_cell(p.get('detail') or p['purpose'])}: "
                     + "/".join(sorted(set(p["outcomes"].values()))) for p in g["probes"]]
            lines += ["", "Probes: " + " → ".join(steps)]
        lines.append("")
    if data["still_failing"]:
        lines += ["## Still failing", "", "| test | since | culprit | owners | failure |",
                  "| --- | --- | --- | --- | --- |"]
        for s in data["still_failing"]:
            lines.append(f"| {code(s['test'])} | {s['since'][:10]} | "
                         f"still failing since {_commit(s['culprit'])} | "
                         f"{_cell(', '.join(s.get('owners') or [])) or '-'} | "
                         f"{_cell(s.get('message'))} |")
        lines.append("")
    if data["flaky"]:
        lines += ["## Flaky tonight", "", "| test | failure | false-failure rate | note |",
                  "| --- | --- | --- | --- |"]
        for f in data["flaky"]:
            rate = "-" if f.get("false_fail_rate") is None else f"{f['false_fail_rate']:.2f}"
            lines.append(f"| {code(f['test'])} | {_cell(f.get('message'))} | {rate} | "
                         f"{_cell(f.get('note'))} |")
        lines.append("")
    if data["failing"]:
        lines += ["## Failing without a baseline", "",
                  "No pass of these within the lookback window, so no culprit to look for.",
                  ""]
        lines += [f"- {code(f['test'])} ({f['outcome']}): {_cell(f.get('message'))}"
                  for f in data["failing"]]
        lines.append("")
    stats = data.get("stats")
    if stats:
        lines += ["## Trend", "", _stats_line(stats), ""]
    if data["notes"]:
        lines += ["## Notes", ""] + [f"- {_cell(n)}" for n in data["notes"]] + [""]
    return "\n".join(lines)


def _stats_line(stats: dict[str, Any]) -> str:
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


def _side(side: dict[str, Any] | None) -> str:
    if not side:
        return "-"
    text = f"{side['outcome']} at `{(side.get('sha') or '')[:10]}`"
    if side.get("message"):
        text += f": {_cell(side['message'])}"
    return text


def _conf(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_lines(data: dict[str, Any]) -> list[str]:
    """What `bisector nightly` prints when it is done: the verdict, each culprit, each carry."""
    head = data["head"] or {}
    out = [f"nightly {data['branch']} at {head.get('short')}: "
           f"{STATUS.get(data['status'], data['status'])} ({headline(data)})"]
    for g in data["regressions"]:
        c = g["culprit"]
        if c:
            out.append(f"  culprit {c['short']} {c['subject']} ({c['author']})")
            if g.get("merge"):
                out.append(f"    merged by {g['merge']['short']} {g['merge']['subject']}")
            if g["owners"]:
                out.append(f"    owners {', '.join(g['owners'])}")
        else:
            out.append("  no culprit named")
        out += [f"    {t['test']}" for t in g["tests"]]
    out += [f"  still failing since {_plain_commit(s['culprit'])}: {s['test']}"
            for s in data["still_failing"]]
    out += [f"  flaky: {f['test']}" for f in data["flaky"]]
    out += [f"  failing, no baseline: {f['test']}" for f in data["failing"]]
    out += [f"  note: {n}" for n in data["notes"]]
    return out
