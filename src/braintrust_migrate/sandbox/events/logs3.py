"""What the official Braintrust Python SDK (0.48) calls besides the REST API of the spec.

Read from the SDK's source (``braintrust/logger.py``, ``braintrust/api/auth.py``):

* ``POST <app_url>/api/apikey/login`` (bearer) -> ``{"org_info": [{id, name, api_url,
  proxy_url, realtime_url, is_universal_api, git_metadata}]}``; the SDK then talks to
  ``api_url``, which the sandbox points back at itself (unless ``BRAINTRUST_API_URL``
  overrides it). Projects, experiments and datasets are then registered through the
  spec's ``POST /v1/project`` / ``/v1/experiment`` / ``/v1/dataset``.
* ``POST /logs3`` ``{"rows": [...], "api_version": 2}``: each row names its container
  (``project_id`` + ``log_id: "g"``, ``experiment_id`` or ``dataset_id``) and goes
  through the same validation and write path as the insert endpoints, all rows in one
  transaction (one ``_xact_id``). Two SDK row shapes are feedback rather than events:
  a row carrying ``_audit_source`` / ``_audit_metadata`` (``log_feedback`` scores /
  expected / tags: merged, audited) and a row carrying ``comment: {"text"}`` with
  ``origin: {"id": <row id>}`` (a comment on that row). ``_async_scoring_control`` and
  ``_skip_async_scoring`` are accepted and ignored (the sandbox runs no scorers).
  Response: ``{"row_ids": [...]}`` aligned with the rows.
* Older SDKs (read in 0.3.15) registered objects on the app URL instead:
  ``POST /api/project/register {project_name, org_id}`` -> ``{"project"}``,
  ``POST /api/experiment/register {project_name | project_id, org_id, experiment_name,
  update, description, repo_info, base_exp_id | base_experiment, dataset_id,
  dataset_version, public, metadata, ancestor_commits}`` -> ``{"project", "experiment"}``,
  ``POST /api/dataset/register {project_name | project_id, org_id, dataset_name,
  description, metadata}`` -> ``{"project", "dataset"}``, and ``GET /api/project?id=``.
  They create (or return) the objects exactly like ``POST /v1/project`` /
  ``/v1/experiment`` / ``/v1/dataset`` (same handler; ``update: true`` reuses an
  experiment of that name, otherwise a new name is picked as ``ensure_new`` does).
* ``POST /logs3/overflow`` ``{content_type, size_bytes, rows}`` -> ``{method: "PUT",
  signedUrl, headers, key}``; the payload is PUT to ``signedUrl`` (a sandbox URL, no
  auth, like a signed object-store URL), then ``POST /logs3`` with ``{"rows": {"type":
  "logs3_overflow", "key": ...}}`` ingests it. The SDK only uses this when ``GET
  /version`` advertises ``logs3_payload_max_bytes``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from braintrust_migrate.sandbox.core.common import (
    Ctx,
    Request,
    bad_request,
    forbidden,
    ident_of,
    request_json,
    visible,
)
from braintrust_migrate.sandbox.events.store import (
    KINDS,
    Container,
    EventWriter,
    container,
    normalize_created,
)
from braintrust_migrate.sandbox.events.validate import event_error
from braintrust_migrate.sandbox.objects import handlers
from braintrust_migrate.sandbox.objects.model import TYPES

if TYPE_CHECKING:
    from braintrust_migrate.sandbox.core.state import SandboxState

_ROUTING_FIELDS = ("project_id", "log_id", "experiment_id", "dataset_id")
_IGNORED_FIELDS = ("_async_scoring_control", "_skip_async_scoring")
OVERFLOW_TYPE = "logs3_overflow"
UPLOAD_PREFIX = "/_sandbox/logs3-overflow/"


def login(ctx: Ctx, base_url: str) -> dict[str, Any]:
    orgs = []
    for org_id in ctx.caller.org_ids:
        row = ctx.tx.get(org_id, ["organization"])
        if row is None:
            continue
        orgs.append(
            {
                "id": row.id,
                "name": row.body["name"],
                "api_url": row.body.get("api_url") or base_url,
                "proxy_url": row.body.get("proxy_url"),
                "realtime_url": row.body.get("realtime_url"),
                "is_universal_api": bool(row.body.get("is_universal_api")),
                "git_metadata": None,
            }
        )
    return {"org_info": orgs}


# --- object registration (older SDKs) ------------------------------------------------------------

GLOBAL_PROJECT = "Global"  # the SDK's default project name


def _create(ctx: Ctx, type_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/<type>`` with ``body``, inside this request's transaction."""
    t = TYPES[type_name]
    req = Request(t.base, "POST", {}, [], orjson.dumps(body), ctx.req.authorization)
    return handlers.create(Ctx(ctx.tx, ctx.caller, req, ctx.now), t)


def _register_body(ctx: Ctx) -> dict[str, Any]:
    body = request_json(ctx)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: expected a JSON object")
    return body


def _project(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """The project a registration names: by ``project_id``, else created / found by ``project_name``."""
    if body.get("project_id") is not None:
        return visible(ctx, ("project",), str(body["project_id"]), label="project").body
    fields: dict[str, Any] = {"name": body.get("project_name") or GLOBAL_PROJECT}
    org_id = body.get("org_id")
    if org_id is not None:
        org = ctx.tx.get(str(org_id), ["organization"])
        if org is None or org.id not in ctx.caller.org_ids:
            raise forbidden(f"org_id: organization {org_id} is not accessible with this API key")
        fields["org_name"] = org.body["name"]
    return _create(ctx, "project", fields)


def register_project(ctx: Ctx) -> dict[str, Any]:
    return {"project": _project(ctx, _register_body(ctx))}


def register_experiment(ctx: Ctx) -> dict[str, Any]:
    body = _register_body(ctx)
    project = _project(ctx, body)
    fields: dict[str, Any] = {"project_id": project["id"], "ensure_new": not body.get("update")}
    if body.get("experiment_name") is not None:
        fields["name"] = body["experiment_name"]
    for name in (
        "description",
        "repo_info",
        "base_exp_id",
        "dataset_id",
        "dataset_version",
        "public",
        "metadata",
    ):
        if body.get(name) is not None:
            fields[name] = body[name]
    if body.get("base_experiment") is not None and "base_exp_id" not in fields:
        t = TYPES["experiment"]
        wanted = {"project_id": project["id"], "name": body["base_experiment"]}
        base = ctx.tx.find_ident(t.name, project["org_id"], ident_of(t.identity, wanted) or "")
        if base is None:
            raise bad_request(
                f"base experiment {body['base_experiment']!r} not found in project {project['name']!r}"
            )
        fields["base_exp_id"] = base.id
    return {"project": project, "experiment": _create(ctx, "experiment", fields)}


def register_dataset(ctx: Ctx) -> dict[str, Any]:
    body = _register_body(ctx)
    project = _project(ctx, body)
    fields: dict[str, Any] = {"project_id": project["id"], "name": body.get("dataset_name") or "logs"}
    for name in ("description", "metadata"):
        if body.get(name) is not None:
            fields[name] = body[name]
    return {"project": project, "dataset": _create(ctx, "dataset", fields)}


def get_project(ctx: Ctx) -> dict[str, Any]:
    project_id = dict(ctx.req.query).get("id")
    if not project_id:
        raise bad_request("id: the project id is required")
    return visible(ctx, ("project",), project_id, label="project").body


# --- logs3 --------------------------------------------------------------------------------------


def _route(ctx: Ctx, row: dict[str, Any], where: str, cache: dict[tuple[str, str], Container]) -> Container:
    """The container a logs3 row names (its routing fields are removed from ``row``)."""
    ids = {name: row.pop(name) for name in _ROUTING_FIELDS if name in row}
    for unsupported in ("prompt_session_id", "function_data"):
        if unsupported in row:
            raise bad_request(
                f"{where}.{unsupported}: logging to this object type is not supported by the sandbox"
            )
    if "dataset_id" in ids:
        kind, object_id = KINDS["dataset"], ids["dataset_id"]
    elif "experiment_id" in ids:
        kind, object_id = KINDS["experiment"], ids["experiment_id"]
    elif "project_id" in ids and ids.get("log_id") == "g":
        kind, object_id = KINDS["project_logs"], ids["project_id"]
    else:
        raise bad_request(
            f"{where}: a row must name its container: dataset_id, experiment_id, or project_id with log_id 'g'"
        )
    if not isinstance(object_id, str):
        raise bad_request(f"{where}: the container id must be a string")
    key = (kind.name, object_id)
    if key not in cache:
        cache[key] = container(ctx.tx, ctx.caller.org_ids, kind, object_id)
    return cache[key]


def logs3(ctx: Ctx) -> dict[str, Any]:
    body = request_json(ctx)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: expected a JSON object")
    rows = body.get("rows")
    if isinstance(rows, dict) and rows.get("type") == OVERFLOW_TYPE:
        rows = _overflow_rows(ctx, rows)
    if not isinstance(rows, list):
        raise bad_request("rows: expected an array of rows")
    w = EventWriter.for_request(ctx)
    cache: dict[tuple[str, str], Container] = {}
    plan: list[tuple[Container, dict[str, Any], str]] = []
    for index, raw in enumerate(rows):
        where = f"rows[{index}]"
        if not isinstance(raw, dict):
            raise bad_request(f"{where}: expected an object")
        row = dict(raw)
        c = _route(ctx, row, where, cache)
        for name in _IGNORED_FIELDS:
            row.pop(name, None)
        plan.append((c, row, where))
    for c in cache.values():
        w.preload(c, [row["id"] for cc, row, _ in plan if cc is c and isinstance(row.get("id"), str)])
    row_ids = [_apply(w, c, row, where) for c, row, where in plan]
    w.flush()
    return {"row_ids": row_ids}


def _apply(w: EventWriter, c: Container, row: dict[str, Any], where: str) -> str:
    source = row.pop("_audit_source", None)
    metadata = row.pop("_audit_metadata", None)
    if source is not None and source not in ("app", "api", "external"):
        raise bad_request(f"{where}._audit_source: expected one of app, api, external")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request(f"{where}._audit_metadata: expected an object")
    if "comment" in row:
        return _comment(w, c, row, where, source, metadata)
    error = event_error(c.kind.name, row, where)
    if error:
        raise bad_request(f"Invalid request body: {error}")
    if source is None and metadata is None:
        return w.insert(c, [row], where)[0]
    # The SDK's log_feedback (scores / expected / tags, possibly merged by the SDK into the
    # row it is about): write the row as usual, then record the audit entry.
    id_ = row.get("id")
    before = w.current(c, id_) if isinstance(id_, str) else None
    id_ = w.insert(c, [row], where)[0]
    keys: list[str] = [k for k in ("scores", "expected", "tags") if k in row]
    w.audit(c, id_, before, keys, source=source, metadata=metadata)
    return id_


def _comment(
    w: EventWriter,
    c: Container,
    row: dict[str, Any],
    where: str,
    source: str | None,
    metadata: dict[str, Any] | None,
) -> str:
    comment, origin = row.pop("comment"), row.pop("origin", None)
    text = comment.get("text") if isinstance(comment, dict) else comment
    if not isinstance(text, str):
        raise bad_request(f"{where}.comment: expected {{'text': <string>}}")
    if not isinstance(origin, dict) or not isinstance(origin.get("id"), str):
        raise bad_request(f"{where}.origin.id: a comment row names the row it is about in origin.id")
    extra = set(row) - {"id", "created"}
    if extra:
        raise bad_request(f"{where}: unexpected field(s) on a comment row: {', '.join(sorted(extra))}")
    given_id = row.get("id")
    comment_id = given_id if isinstance(given_id, str) else str(uuid.uuid4())
    created = row.get("created")
    w.feedback(
        c,
        origin["id"],
        where,
        fields={},
        comment=text,
        source=source,
        metadata=metadata,
        comment_id=comment_id,
        comment_created=normalize_created(created) if isinstance(created, str) else None,
    )
    return comment_id


# --- overflow -----------------------------------------------------------------------------------


def logs3_overflow(ctx: Ctx, base_url: str) -> dict[str, Any]:
    body = request_json(ctx)
    if not isinstance(body, dict) or not isinstance(body.get("size_bytes"), int):
        raise bad_request("size_bytes: expected the payload size in bytes")
    key = f"logs3-overflow-{uuid.uuid4().hex}"
    ctx.tx.execute("INSERT INTO logs3_overflow (key, body) VALUES (?, NULL)", (key,))
    return {
        "method": "PUT",
        "signedUrl": f"{base_url}{UPLOAD_PREFIX}{key}",
        "headers": {"Content-Type": body.get("content_type") or "application/json"},
        "key": key,
    }


def _overflow_rows(ctx: Ctx, reference: dict[str, Any]) -> Any:
    key = reference.get("key")
    record = ctx.tx.execute("SELECT body FROM logs3_overflow WHERE key = ?", (key,)).fetchone()
    if record is None or record[0] is None:
        raise bad_request(f"rows.key: no uploaded overflow payload with key {key!r}")
    ctx.tx.execute("DELETE FROM logs3_overflow WHERE key = ?", (key,))
    try:
        payload = orjson.loads(record[0])
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the overflow payload is not JSON: {exc}") from None
    return payload.get("rows") if isinstance(payload, dict) else None


def unauthenticated_routes(state: SandboxState) -> list[BaseRoute]:
    """The overflow upload target: like a signed object-store URL, it takes no API key."""

    async def upload(request: HttpRequest) -> Response:
        key = request.path_params["key"]

        def known() -> bool:
            with state.store.transaction() as tx:
                return tx.execute("SELECT 1 FROM logs3_overflow WHERE key = ?", (key,)).fetchone() is not None

        # The key is the only credential here: check it before reading (buffering) the body.
        if not await run_in_threadpool(known):
            return Response(orjson.dumps({"error": "Unknown upload key"}), 404, media_type="application/json")
        payload = await request.body()

        def store() -> bool:
            with state.store.transaction() as tx:
                cur = tx.execute("UPDATE logs3_overflow SET body = ? WHERE key = ?", (payload, key))
                return cur.rowcount > 0

        if not await run_in_threadpool(store):
            return Response(orjson.dumps({"error": "Unknown upload key"}), 404, media_type="application/json")
        return Response(status_code=200)

    return [Route(UPLOAD_PREFIX + "{key}", upload, methods=["PUT"])]
