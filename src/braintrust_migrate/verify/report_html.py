"""The verify report as one self-contained HTML page, rendered from verify_report.json's dict alone
(the same page rules as engine/report_html.py: inline CSS, no scripts, every value escaped)."""

from __future__ import annotations

from typing import Any

from braintrust_migrate.engine.report_html import EXAMPLES, badge, esc, facts, page, table, where
from braintrust_migrate.verify.expected import grouped

KINDS = ("missing", "extra", "differing")


def _summary(report: dict[str, Any]) -> list[str]:
    ok = bool(report.get("ok"))
    return [
        "<h1>braintrust-migrate verify</h1>",
        badge("PARITY" if ok else "DIFFERENCES FOUND", "ok" if ok else "bad"),
        facts(
            [
                ("source org", report.get("source_org")),
                ("destination org", report.get("dest_org")),
                ("started", report.get("started_at")),
                ("duration", f"{report.get('duration_s', 0)} s"),
                ("exit code", "0: parity" if ok else "1: differences found (listed below)"),
            ]
        ),
    ]


def _objects(report: dict[str, Any]) -> str:
    head = ["type", "source", "matched", "missing", "extra", "differing", "n/a", "expected", "ok"]
    rows, classes = [], []
    for r in report.get("objects") or []:
        rows.append(
            [r["type"], r.get("source", 0), r.get("matched", 0), r.get("missing", 0), r.get("extra", 0),
             r.get("differing", 0), len(r.get("not_migratable") or []), r.get("expected", 0),
             "yes" if r.get("ok") else "NO"]
        )  # fmt: skip
        classes.append("" if r.get("ok") else "bad")
    out = ["<h2>Objects per type</h2>", table(head, rows, classes)]
    diffs = []
    for r in report.get("objects") or []:
        for kind in KINDS:
            for item in (r.get(f"{kind}_sample") or [])[:EXAMPLES]:
                fields = ", ".join(map(str, item.get("fields") or []))
                diffs.append([kind, r["type"], where(item), fields, item.get("reason") or ""])
    out.append("<h2>Object differences</h2>")
    out.append(table(["difference", "type", "name", "fields", "reason"], diffs) if diffs else "<p>None.</p>")
    not_migratable = [
        [r["type"], where(item), item.get("reason") or ""]
        for r in report.get("objects") or []
        for item in r.get("not_migratable") or []
    ]
    if not_migratable:
        out.append("<h3>Not applicable (never migrated)</h3>")
        out.append(table(["type", "name", "reason"], not_migratable[:EXAMPLES]))
    return "".join(out)


def _events(report: dict[str, Any]) -> str:
    events = report.get("events") or []
    if not events:
        return "<h2>Event rows</h2><p>No event containers compared.</p>"
    head = ["container", "name", "source rows", "dest rows", "missing", "extra", "differing", "sampled"]
    rows = [
        [e.get("container"), e.get("name"), e.get("source_rows", 0), e.get("dest_rows", 0), e.get("missing", 0),
         e.get("extra", 0), e.get("differing", 0), "" if e.get("sampled_rows") is None else e["sampled_rows"]]
        for e in events
    ]  # fmt: skip
    out = ["<h2>Event rows</h2>", table(head, rows, ["" if e.get("ok") else "bad" for e in events])]
    samples = [
        [kind, f"{e.get('container')} {e.get('name')}", ", ".join(map(str, e[f"{kind}_sample"][:EXAMPLES]))]
        for e in events
        for kind in KINDS
        if e.get(f"{kind}_sample")
    ]
    if samples:
        out.append(
            "<h3>Row differences (first ids)</h3>" + table(["difference", "container", "row ids"], samples)
        )
    return "".join(out)


def _leaks(report: dict[str, Any]) -> str:
    count = report.get("source_id_leak_count") or 0
    if not count:
        return "<h2>Source-org ids in the destination</h2><p>None found.</p>"
    rows = [
        [
            leak.get("type"),
            leak.get("dest_id"),
            leak.get("row_id", ""),
            leak.get("field"),
            leak.get("source_id"),
        ]
        for leak in report.get("source_id_leaks") or []
    ]
    return f"<h2>Source-org ids in the destination ({count:,})</h2>" + table(
        ["type", "dest id", "row", "field", "source id"], rows, ["bad"] * len(rows)
    )


def _expected(report: dict[str, Any]) -> str:
    items = report.get("expected_differences") or []
    if not items:
        return ""
    out = [
        f"<h2>Expected differences ({len(items)}): to-dos reported by migrate, they do not fail verify</h2>"
    ]
    for reason, group in grouped(items).items():
        rows = [
            [i.get("type"), i.get("project") or "", i.get("name"), ", ".join(map(str, i.get("users") or []))]
            for i in group[:EXAMPLES]
        ]
        out.append(
            f"<h3>{esc(reason)} ({len(group)}): {esc(group[0].get('what'))}</h3>"
            f'<div class="fix">to do: {esc(group[0].get("todo"))}</div>'
            + table(["type", "project", "name", "users"], rows)
        )
    return "".join(out)


def render_verify_html(report: dict[str, Any]) -> str:
    """The verify report dict as one self-contained HTML page."""
    not_compared = "; ".join(map(str, report.get("not_compared") or []))
    return page(
        f"braintrust-migrate verify: {'PARITY' if report.get('ok') else 'DIFFERENCES FOUND'}",
        [
            *_summary(report),
            _objects(report),
            _events(report),
            _leaks(report),
            _expected(report),
            f'<p class="muted">Not compared: {esc(not_compared)}</p>' if not_compared else "",
            '<p class="muted">Generated from verify_report.json, which holds every detail.</p>',
        ],
    )
