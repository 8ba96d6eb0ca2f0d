"""The migration report as one self-contained HTML page, rendered from the report dict alone.

Offline by design: inline CSS, an inline SVG chart, no scripts, no external fonts or images, and a
Content-Security-Policy that forbids them anyway. Every value from either org (names, messages)
goes through `esc`: printable() makes control and bidi characters visible, html.escape the rest.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

from braintrust_migrate.engine.report import ACTIONS
from braintrust_migrate.textsafe import printable

MIB = 1048576
CSP = "default-src 'none'; style-src 'unsafe-inline'"
EXAMPLES = 200  # items listed per group; the JSON report has them all
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1120px;
color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;
padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:left;vertical-align:top}
td{white-space:pre-wrap}
th{background:#f1f4f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}dt{color:#5a6472}dd{margin:0}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.ok{background:#1f8a4c}.bad{background:#c62828}.warn{background:#b26a00}.muted{color:#5a6472}
tr.bad td{background:#fdecea}tr.warn td{background:#fff4e0}
details{margin:4px 0 10px}summary{cursor:pointer;font-weight:600}
.fix{background:#eef5ff;border-left:3px solid #3b78e7;padding:4px 8px;margin:4px 0}
svg text{font:11px system-ui,sans-serif;fill:#5a6472}
"""


def esc(value: object) -> str:
    """A value as HTML text: inert whatever a name contains."""
    return html.escape(printable("" if value is None else value), quote=True)


def num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else esc(value)


def table(head: Sequence[str], rows: Iterable[Sequence[object]], classes: Sequence[str] = ()) -> str:
    """Cells are escaped; numbers right-aligned. `classes`: one CSS class per row (e.g. 'bad')."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = classes[i] if i < len(classes) and classes[i] else ""
        out.append(f'<tr class="{esc(cls)}">' if cls else "<tr>")
        for cell in row:
            numeric = isinstance(cell, int | float) and not isinstance(cell, bool)
            out.append(f'<td class="n">{num(cell)}</td>' if numeric else f"<td>{esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def facts(items: Iterable[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def page(title: str, body: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def where(item: dict[str, Any]) -> str:
    return f"{item['project']}/{item.get('name')}" if item.get("project") else str(item.get("name"))


def mib(nbytes: object) -> str:
    return f"{(nbytes or 0) / MIB:.1f}" if isinstance(nbytes, int | float) else ""


# throughput chart


def throughput_svg(throughput: dict[str, Any] | None, width: int = 900, height: int = 240) -> str:
    """Rows/s between consecutive samples as a step area, rows written so far as a line."""
    points = [p for p in (throughput or {}).get("points") or [] if len(p) >= 2]
    if len(points) < 2 or not points[-1][1]:
        return '<p class="muted">No event rows were written by this invocation.</p>'
    left, right, top, bottom = 56, 64, 14, 30
    w, h = width - left - right, height - top - bottom
    t_max = max(float(points[-1][0]), 1e-3)
    rates = [
        (float(a[0]), float(b[0]), (b[1] - a[1]) / (b[0] - a[0])) for a, b in pairwise(points) if b[0] > a[0]
    ]
    r_max = max([r for _, _, r in rates] or [1.0]) or 1.0
    total = points[-1][1]

    def x(t: float) -> float:
        return left + w * t / t_max

    def y(v: float, top_value: float) -> float:
        return top + h - h * v / top_value

    area = [f"{x(0):.1f},{y(0, r_max):.1f}"]
    for t0, t1, rate in rates:
        area += [f"{x(t0):.1f},{y(rate, r_max):.1f}", f"{x(t1):.1f},{y(rate, r_max):.1f}"]
    area.append(f"{x(rates[-1][1] if rates else t_max):.1f},{y(0, r_max):.1f}")
    line = " ".join(f"{x(float(p[0])):.1f},{y(p[1], total):.1f}" for p in points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>event rows per second over time</title>',
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafbfd" stroke="#d8dde6"/>',
        f'<polygon points="{" ".join(area)}" fill="#3b78e7" fill-opacity="0.35" stroke="#3b78e7"/>',
        f'<polyline points="{line}" fill="none" stroke="#1f8a4c" stroke-width="2"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        yy = y(frac * r_max, r_max)
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{r_max * frac:,.0f}</text>')
        parts.append(f'<text x="{left + w + 6}" y="{yy + 4:.1f}">{total * frac:,.0f}</text>')
        parts.append(
            f'<text x="{x(t_max * frac):.1f}" y="{top + h + 16}" text-anchor="middle">{t_max * frac:.1f} s</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 2}">rows/s (blue, left)</text>')
    parts.append(
        f'<text x="{left + w}" y="{height - 2}" text-anchor="end">rows written so far (green, right)</text>'
    )
    parts.append("</svg>")
    interval = (throughput or {}).get("interval_s")
    note = f'<p class="muted">{len(points)} samples, at most one every {esc(interval)} s.</p>'
    return "".join(parts) + note


# the migration report


def exit_meaning(report: dict[str, Any]) -> tuple[str, str]:
    """What the command's exit code says about this report, and a badge class."""
    if report.get("interrupted"):
        return "130: interrupted; re-run the same command to resume", "warn"
    if report.get("failed"):
        return f"1: {report['failed']} failed (see Failures below)", "bad"
    if not report.get("complete", True):
        return "in progress: this report is a checkpoint of a running migration", "warn"
    return ("0: dry run, nothing written" if report.get("dry_run") else "0: no failures"), "ok"


def _summary(report: dict[str, Any]) -> list[str]:
    meaning, kind = exit_meaning(report)
    title = "dry run" if report.get("dry_run") else "migration"
    items: list[tuple[str, object]] = [
        ("source org", f"{report.get('source_org')} ({report.get('source_org_id', '')})"),
        ("destination org", f"{report.get('dest_org')} ({report.get('dest_org_id', '')})"),
        ("run id", report.get("run_id")),
        ("dry run", "yes" if report.get("dry_run") else "no"),
        ("started", report.get("started_at")),
        ("report written", report.get("written_at")),
        ("duration", f"{report.get('duration_s', 0)} s"),
        ("invocations", report.get("invocations", 1)),
        ("failed", report.get("failed", 0)),
        ("exit code", meaning),
    ]
    selection = report.get("selection") or {}
    if selection.get("projects"):
        items.append(("projects", ", ".join(map(str, selection["projects"]))))
    return [
        f"<h1>braintrust-migrate {esc(title)} {esc(report.get('run_id', ''))}</h1>",
        badge(_verdict(report, kind), kind),
        facts(items),
    ]


def _verdict(report: dict[str, Any], kind: str) -> str:
    if report.get("interrupted"):
        return "INTERRUPTED"
    return {"ok": "OK", "bad": "FAILED"}.get(kind, "IN PROGRESS")


def _per_type(report: dict[str, Any]) -> str:
    rows, classes = [], []
    for name, counts in (report.get("totals") or {}).items():
        rows.append([name, *(counts.get(a, 0) for a in ACTIONS), sum(counts.values())])
        classes.append("bad" if counts.get("failed") else "warn" if counts.get("conflict") else "")
    return "<h2>Objects per type</h2>" + table(["type", *ACTIONS, "total"], rows, classes)


def _per_project(report: dict[str, Any]) -> str:
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    for obj in report.get("objects") or []:
        actions[obj.get("project") or ""][obj["action"]] += 1
    rows_written: Counter[str] = Counter()
    for container in (report.get("events") or {}).get("containers") or []:
        project = container.get("project") or ""
        actions.setdefault(project, Counter())
        rows_written[project] += container.get("rows_written") or 0
    rows = [
        [project or "(org level)", *(counts.get(a, 0) for a in ACTIONS), rows_written[project]]
        for project, counts in sorted(actions.items())
    ]
    classes = ["bad" if actions[p].get("failed") else "" for p in sorted(actions)]
    return "<h2>Per project</h2>" + table(["project", *ACTIONS, "event rows written"], rows, classes)


def _problems(report: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in report.get("objects") or []:
        if obj["action"] in ("failed", "conflict", "skipped"):
            groups[f"{obj['action']}: {obj.get('reason') or 'error'}"].append(obj)
    failed = [c for c in (report.get("events") or {}).get("containers") or [] if c.get("status") == "failed"]
    if not groups and not failed:
        return "<h2>Failures, conflicts and skipped objects</h2><p>None.</p>"
    out = ["<h2>Failures, conflicts and skipped objects</h2>"]
    order = sorted(groups.items(), key=lambda kv: (not kv[0].startswith("failed"), kv[0]))
    for label, objs in order:
        rows = [
            [o["type"], o.get("project") or "", o["name"], (o.get("error") or {}).get("message") or ""]
            for o in objs[:EXAMPLES]
        ]
        opened = " open" if label.startswith(("failed", "conflict")) else ""
        more = f" (first {EXAMPLES})" if len(objs) > EXAMPLES else ""
        out.append(
            f"<details{opened}><summary>{esc(label)} ({len(objs)}){esc(more)}</summary>"
            + table(["type", "project", "name", "error"], rows)
            + "</details>"
        )
    for container in failed:
        out.append(
            f"<h3>failed event stream: {esc(container['type'])} {esc(where(container))}</h3>"
            f"<p>{esc(container.get('error') or '')}</p>"
        )
        rows = [[r.get("row_id"), r.get("size"), r.get("reason")] for r in container.get("failed_rows") or []]
        if rows:
            out.append(table(["row id", "bytes", "reason"], rows))
    return "".join(out)


def _todos(report: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in report.get("follow_ups") or []:
        groups[item["reason"]].append(item)
    if not groups:
        return "<h2>To do by hand</h2><p>Nothing.</p>"
    out = ["<h2>To do by hand</h2>"]
    for reason, items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        rows = []
        for item in items[:EXAMPLES]:
            fields = ", ".join(f"{f.get('field')} -> {f.get('target_id')}" for f in item.get("fields") or [])
            rows.append([item.get("type"), item.get("project") or "", item.get("name"), fields])
        head = ["type", "project", "name", "references"]
        if not any(row[-1] for row in rows):  # only reference to-dos name fields
            head, rows = head[:-1], [row[:-1] for row in rows]
        out.append(
            f"<h3>{esc(reason)} ({len(items)})</h3>"
            f'<div class="fix">fix: {esc(items[0].get("todo"))}</div>' + table(head, rows)
        )
    return "".join(out)


def _events(report: dict[str, Any]) -> str:
    events = report.get("events") or {}
    out = ["<h2>Event rows</h2>"]
    plan = events.get("plan") or {}
    if plan.get("totals"):
        out.append("<h3>Plan (dry run): what a real run would copy</h3>")
        head = ["row type", "containers", "rows", "to copy", "copied", "~MiB"]
        out.append(table(head, [
            [k, v["containers"], v["rows_total"], v["rows_to_copy"], v["already_copied"],
             mib(v["bytes_estimate"])] for k, v in plan["totals"].items()
        ]))  # fmt: skip
        rows = [
            [c.get("type"), c.get("project") or "", c.get("name"), c.get("rows_total"), c.get("rows_to_copy"),
             mib(c.get("bytes_estimate")), c.get("error") or ""] for c in plan.get("containers") or []
        ]  # fmt: skip
        out.append(table(["row type", "project", "container", "rows", "to copy", "~MiB", "error"], rows))
    if events.get("totals"):
        out.append(table(["row type", "containers", "read", "written", "failed", "MiB"], [
            [k, v["containers"], v["rows_read"], v["rows_written"], v["rows_failed"], mib(v["bytes"])]
            for k, v in events["totals"].items()
        ]))  # fmt: skip
    containers = events.get("containers") or []
    if containers:
        out.append("<h3>Per container</h3>")
        rows, classes = [], []
        for c in containers:
            notes = "; ".join(map(str, c.get("notes") or []))
            rows.append([
                c.get("type"), c.get("project") or "", c.get("name"), c.get("status"), c.get("rows_read", 0),
                c.get("rows_written", 0), c.get("rows_failed", 0), mib(c.get("bytes")),
                c.get("duration_s", ""), notes,
            ])  # fmt: skip
            status = c.get("status")
            classes.append("bad" if status == "failed" else "" if status == "done" else "warn")
        head = [
            "row type",
            "project",
            "container",
            "status",
            "read",
            "written",
            "failed",
            "MiB",
            "s",
            "notes",
        ]
        out.append(table(head, rows, classes))
    if len(out) == 1:
        out.append("<p>No event streams in this run.</p>")
    out.append("<h3>Throughput over time</h3>")
    out.append(throughput_svg(report.get("throughput")))
    return "".join(out)


def _http(report: dict[str, Any]) -> str:
    sides = report.get("http") or {}
    if not sides:
        return ""
    names = sorted({k for stats in sides.values() for k in stats})
    rows = [[side, *(stats.get(k, "") for k in names)] for side, stats in sides.items()]
    return "<h2>HTTP</h2>" + table(["side", *names], rows)


def render_html(report: dict[str, Any]) -> str:
    """The migration (or dry-run) report dict as one self-contained HTML page."""
    title = (
        f"braintrust-migrate {'dry run' if report.get('dry_run') else 'migration'} {report.get('run_id', '')}"
    )
    body = [
        *_summary(report),
        _per_type(report),
        _per_project(report),
        _problems(report),
        _todos(report),
        _events(report),
        _http(report),
        '<p class="muted">Generated from migration_report.json, which holds every detail.</p>',
    ]
    return page(title, body)
