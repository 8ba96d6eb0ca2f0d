"""Event endpoints of the spec (insert / fetch / feedback / summarize, ``POST /v1/insert``);
their routes (with ``/btql`` and the SDK's ``/logs3``) are in :mod:`braintrust_migrate.sandbox.http.event_routes`.

Handlers run through :meth:`SandboxState.dispatch` like the object endpoints: one
store transaction per request, bearer auth, ``{"error": ...}`` on failure.

Fetch returns the live rows only: the latest version of each id as of ``version`` (or
now), never a superseded version and never a deleted id. The spec's ``FetchLimit`` text
("later pages may return rows which showed up in earlier pages") describes an older
backend; the hosted API does not do it: a recorded exchange with api.braintrust.dev (the
Python SDK's ``test_datasets_end_to_end_with_real_backend`` cassette) fetches one event
after an insert and a merge of one id, and the official SDKs' ``init_dataset().fetch()``
keep every event they are given. Newest ``_xact_id`` first; a page holds ``limit``
*traces*, where a trace is one ``(_xact_id, root_span_id)`` group, so pages never split a
group and the next page starts strictly below the page's minimum ``(_xact_id,
root_span_id)`` tuple, exactly the deprecated ``max_xact_id`` / ``max_root_span_id``
cursor. The opaque ``cursor`` encodes that tuple; it is absent when the page is empty.
No ``limit``: every trace in one page.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.core.common import ApiError, Ctx, bad_request, request_json
from braintrust_migrate.sandbox.events.store import (
    KINDS,
    Container,
    EventWriter,
    Kind,
    container,
    decode_cursor,
    encode_cursor,
    live_bodies,
    live_count,
    live_scope,
    parse_xact,
)
from braintrust_migrate.sandbox.events.validate import event_error

if TYPE_CHECKING:
    pass


def checked_events(kind: Kind, events: Any, where: str) -> list[dict[str, Any]]:
    """Insert events validated against the container's insert schema (400 naming the field)."""
    if not isinstance(events, list):
        raise bad_request(f"{where}: expected an array of events")
    for index, event in enumerate(events):
        error = event_error(kind.name, event, f"{where}[{index}]")
        if error:
            raise bad_request(f"Invalid request body: {error}")
    return events


def apply_feedback(w: EventWriter, c: Container, items: list[dict[str, Any]], where: str) -> None:
    """Feedback items (already valid for their schema); a field the schema does not list is refused."""
    allowed = spec.schema_properties(c.kind.feedback_schema)
    w.preload(c, [item["id"] for item in items])
    for index, item in enumerate(items):
        for key in item:
            if key not in allowed:
                raise bad_request(
                    f"Invalid request body: {where}[{index}].{key}: {c.kind.feedback_schema} has no field {key!r}"
                )
        fields = {k: item[k] for k in ("scores", "expected", "tags") if item.get(k) is not None}
        w.feedback(
            c,
            item["id"],
            f"{where}[{index}]",
            fields=fields,
            comment=item.get("comment"),
            source=item.get("source"),
            metadata=item.get("metadata"),
        )


# --- insert / feedback --------------------------------------------------------------------------


def insert(ctx: Ctx, kind: Kind) -> dict[str, Any]:
    c = container(ctx.tx, ctx.caller.org_ids, kind, ctx.path_id())
    body = request_json(ctx)
    if not isinstance(body, dict) or "events" not in body:
        raise bad_request("Invalid request body: (root): 'events' is a required property")
    events = checked_events(kind, body["events"], "events")
    w = EventWriter.for_request(ctx)
    row_ids = w.insert(c, events, "events")
    w.flush()
    return {"row_ids": row_ids}


def feedback(ctx: Ctx, kind: Kind) -> dict[str, Any]:
    c = container(ctx.tx, ctx.caller.org_ids, kind, ctx.path_id())
    body = ctx.body()
    w = EventWriter.for_request(ctx)
    apply_feedback(w, c, body["feedback"], "feedback")
    w.flush()
    return {"status": "success"}


def cross_insert(ctx: Ctx) -> dict[str, Any]:
    """``POST /v1/insert``: events and feedback for several objects in one transaction."""
    body = request_json(ctx)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: expected a JSON object")
    unknown = set(body) - set(KINDS)
    if unknown:
        raise bad_request(f"Invalid request body: unknown field(s) {', '.join(sorted(unknown))}")
    w = EventWriter.for_request(ctx)
    out: dict[str, Any] = {}
    for name, kind in KINDS.items():
        objects = body.get(name)
        if objects is None:
            continue
        if not isinstance(objects, dict):
            raise bad_request(f"Invalid request body: {name}: expected a map of object id to events")
        out[name] = {}
        for object_id, entry in objects.items():
            where = f"{name}.{object_id}"
            if not isinstance(entry, dict):
                raise bad_request(f"Invalid request body: {where}: expected an object")
            c = container(ctx.tx, ctx.caller.org_ids, kind, object_id)
            events = checked_events(kind, entry.get("events") or [], f"{where}.events")
            items = entry.get("feedback") or []
            if not isinstance(items, list):
                raise bad_request(f"Invalid request body: {where}.feedback: expected an array")
            for index, item in enumerate(items):
                errors = spec.validate_component(kind.feedback_schema, item)
                if errors:
                    raise bad_request(f"Invalid request body: {where}.feedback[{index}]: {errors[0]}")
            out[name][object_id] = {"row_ids": w.insert(c, events, f"{where}.events")}
            apply_feedback(w, c, items, f"{where}.feedback")
    w.flush()
    return out


# --- fetch --------------------------------------------------------------------------------------


def fetch_post(ctx: Ctx, kind: Kind) -> Response:
    c = container(ctx.tx, ctx.caller.org_ids, kind, ctx.path_id())
    body = ctx.body()
    return fetch(ctx, c, body)


def fetch_get(ctx: Ctx, kind: Kind) -> Response:
    c = container(ctx.tx, ctx.caller.org_ids, kind, ctx.path_id())
    return fetch(ctx, c, ctx.query())


def _decode_fetch_cursor(cursor: str) -> tuple[int, str]:
    decoded = decode_cursor(cursor) or {}
    xact, root = decoded.get("x"), decoded.get("r")
    if type(xact) is not int or not isinstance(root, str):
        raise bad_request("cursor: malformed (pass back the cursor of a previous fetch)")
    return xact, root


def fetch(ctx: Ctx, c: Container, params: dict[str, Any]) -> Response:
    version = parse_xact("version", params.get("version"))
    bound: tuple[int, str] | None = None
    if params.get("cursor"):
        bound = _decode_fetch_cursor(params["cursor"])
    elif params.get("max_xact_id") is not None or params.get("max_root_span_id") is not None:
        max_xact = parse_xact("max_xact_id", params.get("max_xact_id"))
        if max_xact is None or params.get("max_root_span_id") is None:
            raise bad_request("max_xact_id and max_root_span_id form one cursor: pass both (or use cursor)")
        bound = (max_xact, params["max_root_span_id"])
    where, args = live_scope(c.cid, version)
    if bound is not None:
        where.append("(xact_id < ? OR (xact_id = ? AND root_span_id < ?))")
        args += [bound[0], bound[0], bound[1]]
    scope = " AND ".join(where)
    limit = params.get("limit")
    if limit is not None:
        groups = ctx.tx.execute(
            f"SELECT xact_id, root_span_id FROM event_rows WHERE {scope} GROUP BY xact_id, root_span_id "
            "ORDER BY xact_id DESC, root_span_id DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        if not groups:
            return _fetch_response([], None)
        last_xact, last_root = groups[-1]
        scope += " AND (xact_id > ? OR (xact_id = ? AND root_span_id >= ?))"
        args += [last_xact, last_xact, last_root]
    rows = ctx.tx.execute(
        f"SELECT xact_id, root_span_id, body FROM event_rows WHERE {scope} "
        "ORDER BY xact_id DESC, root_span_id DESC, seq DESC",
        args,
    ).fetchall()
    cursor = encode_cursor({"x": rows[-1][0], "r": rows[-1][1]}) if rows else None
    return _fetch_response([raw for _, _, raw in rows], cursor)


def _fetch_response(bodies: list[bytes], cursor: str | None) -> Response:
    payload: dict[str, Any] = {"events": [orjson.Fragment(raw) for raw in bodies]}
    if cursor is not None:
        payload["cursor"] = cursor
    return Response(orjson.dumps(payload), media_type="application/json")


# --- summarize ----------------------------------------------------------------------------------


def _names(ctx: Ctx, c: Container, base_url: str) -> tuple[str, str]:
    org = ctx.tx.get(c.org_id, ["organization"], include_deleted=True)
    project = ctx.tx.get(c.project_id, ["project"], include_deleted=True)
    project_name = project.body["name"] if project else ""
    org_name = org.body["name"] if org else ""
    return project_name, f"{base_url}/app/{quote(org_name, safe='')}/p/{quote(project_name, safe='')}"


def summarize_dataset(ctx: Ctx, base_url: str) -> dict[str, Any]:
    c = container(ctx.tx, ctx.caller.org_ids, KINDS["dataset"], ctx.path_id())
    query = ctx.query()
    project_name, project_url = _names(ctx, c, base_url)
    out: dict[str, Any] = {
        "project_name": project_name,
        "dataset_name": c.obj.body["name"],
        "project_url": project_url,
        "dataset_url": f"{project_url}/datasets/{quote(c.obj.body['name'], safe='')}",
    }
    if query.get("summarize_data"):
        out["data_summary"] = {"total_records": live_count(ctx.tx, c.cid)}
    return out


def summarize_experiment(ctx: Ctx, base_url: str) -> dict[str, Any]:
    """Scores and metrics are averaged over the live rows that have them; improvements and
    regressions count rows matched by ``input`` whose value went up / down (for metrics,
    lower is better)."""
    kind = KINDS["experiment"]
    c = container(ctx.tx, ctx.caller.org_ids, kind, ctx.path_id())
    query = ctx.query()
    project_name, project_url = _names(ctx, c, base_url)
    out: dict[str, Any] = {
        "project_name": project_name,
        "experiment_name": c.obj.body["name"],
        "project_url": project_url,
        "experiment_url": f"{project_url}/experiments/{quote(c.obj.body['name'], safe='')}",
    }
    if not query.get("summarize_scores"):
        return out
    other = _comparison(ctx, c, query.get("comparison_experiment_id"))
    scores, metrics = _stats(ctx, c)
    base_scores, base_metrics = _stats(ctx, other) if other else ({}, {})
    if other is not None:
        out["comparison_experiment_name"] = other.obj.body["name"]
    out["scores"] = {
        name: {
            "name": name,
            "score": mean,
            **_compare(mean, by_input, base_scores.get(name), higher_is_better=True),
        }
        for name, (mean, by_input) in scores.items()
    }
    out["metrics"] = {
        name: {
            "name": name,
            "metric": mean,
            "unit": "s" if name == "duration" else "tok" if name.endswith("tokens") else "",
            **_compare(mean, by_input, base_metrics.get(name), higher_is_better=False),
        }
        for name, (mean, by_input) in metrics.items()
    }
    return out


def _comparison(ctx: Ctx, c: Container, explicit: str | None) -> Container | None:
    kind = KINDS["experiment"]
    if explicit is not None:
        return container(ctx.tx, ctx.caller.org_ids, kind, explicit)
    base_id = c.obj.body.get("base_exp_id")
    if base_id:
        try:
            return container(ctx.tx, ctx.caller.org_ids, kind, base_id)
        except ApiError:  # a base experiment that is gone: fall back to the previous one
            pass
    for row in ctx.tx.select(
        "experiment",
        org_ids=[c.org_id],
        where=["json_extract(body, '$.project_id') = ?"],
        params=[c.project_id],
        before_seq=None,
        after_seq=c.obj.seq,
        limit=1,
    ):
        return container(ctx.tx, ctx.caller.org_ids, kind, row.id)
    return None


Stats = dict[str, tuple[float, dict[bytes, float]]]


def _stats(ctx: Ctx, c: Container) -> tuple[Stats, Stats]:
    scores: dict[str, dict[bytes, list[float]]] = {}
    metrics: dict[str, dict[bytes, list[float]]] = {}
    for row in live_bodies(ctx.tx, c.cid):
        key = orjson.dumps(row.get("input"), option=orjson.OPT_SORT_KEYS)
        for name, value in (row.get("scores") or {}).items():
            if type(value) in (int, float):
                scores.setdefault(name, {}).setdefault(key, []).append(float(value))
        row_metrics = row.get("metrics") or {}
        values = {
            name: float(value)
            for name, value in row_metrics.items()
            if name not in ("start", "end") and not name.startswith("caller_")
            if type(value) in (int, float)
        }
        start, end = row_metrics.get("start"), row_metrics.get("end")
        if isinstance(start, int | float) and isinstance(end, int | float):
            values["duration"] = float(end - start)
        for name, value in values.items():
            metrics.setdefault(name, {}).setdefault(key, []).append(value)
    return _means(scores), _means(metrics)


def _means(by_name: dict[str, dict[bytes, list[float]]]) -> Stats:
    out: Stats = {}
    for name, by_key in sorted(by_name.items()):
        every = [v for values in by_key.values() for v in values]
        out[name] = (statistics.fmean(every), {k: statistics.fmean(v) for k, v in by_key.items()})
    return out


def _compare(
    mean: float,
    by_input: dict[bytes, float],
    base: tuple[float, dict[bytes, float]] | None,
    *,
    higher_is_better: bool,
) -> dict[str, Any]:
    if base is None:
        return {"improvements": 0, "regressions": 0}
    up = sum(1 for k, v in by_input.items() if k in base[1] and v > base[1][k])
    down = sum(1 for k, v in by_input.items() if k in base[1] and v < base[1][k])
    improvements, regressions = (up, down) if higher_is_better else (down, up)
    return {"diff": mean - base[0], "improvements": improvements, "regressions": regressions}
