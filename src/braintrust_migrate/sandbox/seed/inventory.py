"""Read back an org through the API, and find the references its objects hold.

``fetch_inventory`` lists every control-plane object type (project-scoped lists
that have no project filter are listed org-wide; views are listed per project,
experiment and dataset). ``find_references`` walks those objects and reports every
id-bearing field of ``braintrust-api.md`` §2.x that holds a value, with the type
of object it should point at, so a test (or a post-migration check) can assert
that each reference kind is present and that each target exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .http import SeedClient

# object type -> list path; all take limit / starting_after except where noted.
ORG_LISTS: dict[str, str] = {
    "project": "/v1/project",
    "experiment": "/v1/experiment",
    "dataset": "/v1/dataset",
    "prompt": "/v1/prompt",
    "function": "/v1/function",
    "role": "/v1/role",
    "group": "/v1/group",
    "user": "/v1/user",
    "ai_secret": "/v1/ai_secret",
    "project_tag": "/v1/project_tag",
    "project_score": "/v1/project_score",
    "project_automation": "/v1/project_automation",
    "span_iframe": "/v1/span_iframe",
    "mcp_server": "/v1/mcp_server",
    "dataset_snapshot": "/v1/dataset_snapshot",
    "api_key": "/v1/api_key",
    "service_token": "/v1/service_token",
}
UNPAGED_LISTS: dict[str, str] = {"environment": "/environment", "env_var": "/v1/env_var"}


@dataclass
class Inventory:
    org: dict[str, Any]
    objects: dict[str, list[dict[str, Any]]]

    def by_id(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """id -> (type, object) over every listed object (and the org itself)."""
        out: dict[str, tuple[str, dict[str, Any]]] = {self.org["id"]: ("organization", self.org)}
        for kind, objs in self.objects.items():
            for obj in objs:
                out.setdefault(obj["id"], (kind, obj))
        return out


async def fetch_inventory(client: SeedClient, *, org_name: str | None = None) -> Inventory:
    orgs = await client.list_all("/v1/organization", org_name=org_name)
    if org_name:
        orgs = [o for o in orgs if o.get("name") == org_name]
    if len(orgs) != 1:
        raise RuntimeError(f"expected exactly one organization, the key sees {len(orgs)}")
    org = orgs[0]
    name = org.get("name")
    kinds = list(ORG_LISTS)
    pages = await asyncio.gather(*(client.list_all(ORG_LISTS[k], org_name=name) for k in kinds))
    objects: dict[str, list[dict[str, Any]]] = dict(zip(kinds, pages, strict=True))
    objects["environment"] = await client.list_all("/environment", paginate=False, org_name=name)
    objects["env_var"] = await client.list_all("/v1/env_var", paginate=False)
    objects["acl"] = await client.list_all("/v1/acl/list_org", org_name=name)
    targets = [("project", o["id"]) for o in objects["project"]]
    targets += [("experiment", o["id"]) for o in objects["experiment"]]
    targets += [("dataset", o["id"]) for o in objects["dataset"]]
    views = await asyncio.gather(
        *(client.list_all("/v1/view", object_type=t, object_id=i) for t, i in targets)
    )
    objects["view"] = [v for page in views for v in page]
    return Inventory(org=org, objects=objects)


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    kind: str  # e.g. "experiment.base_exp_id"
    source_id: str
    target_type: str  # object type, "xact", "slug:environment", "ext", "name:project"…
    value: Any


def _saved_fn(kind: str, src: str, ref: Any) -> Iterator[Reference]:
    if isinstance(ref, dict):
        if ref.get("type") == "function" and ref.get("id"):
            yield Reference(kind + ".id", src, "function", ref["id"])
            if ref.get("version"):
                yield Reference(kind + ".version", src, "xact", ref["version"])
        elif ref.get("type") == "global" and ref.get("name"):
            yield Reference(kind + ".global", src, "global", ref["name"])


def _prompt_data(prefix: str, src: str, pd: Any) -> Iterator[Reference]:
    if not isinstance(pd, dict):
        return
    block = pd.get("prompt") or {}
    for msg in block.get("messages") or [] if isinstance(block, dict) else []:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        for part in content if isinstance(content, list) else []:
            file_id = (part.get("file") or {}).get("file_id") if isinstance(part, dict) else None
            if file_id:
                yield Reference(f"{prefix}.prompt_data.prompt.messages.file.file_id", src, "ext", file_id)
        for call in msg.get("tool_calls") or []:
            yield Reference(f"{prefix}.prompt_data.prompt.messages.tool_calls.id", src, "ext", call.get("id"))
        if msg.get("tool_call_id"):
            yield Reference(
                f"{prefix}.prompt_data.prompt.messages.tool_call_id", src, "ext", msg["tool_call_id"]
            )
        for item in msg.get("reasoning") or []:
            if item.get("id"):
                yield Reference(f"{prefix}.prompt_data.prompt.messages.reasoning.id", src, "ext", item["id"])
    for tf in pd.get("tool_functions") or []:
        yield from _saved_fn(f"{prefix}.prompt_data.tool_functions", src, tf)
    for entry in (pd.get("mcp") or {}).values():
        if isinstance(entry, dict) and entry.get("type") == "id":
            yield Reference(f"{prefix}.prompt_data.mcp.id", src, "mcp_server", entry.get("id"))
        elif isinstance(entry, dict) and entry.get("type") == "url":
            yield Reference(f"{prefix}.prompt_data.mcp.url", src, "ext", entry.get("url"))
    origin = pd.get("origin") or {}
    if origin.get("prompt_id"):
        yield Reference(f"{prefix}.prompt_data.origin.prompt_id", src, "prompt", origin["prompt_id"])
    if origin.get("project_id"):
        yield Reference(f"{prefix}.prompt_data.origin.project_id", src, "project", origin["project_id"])
    if origin.get("prompt_version"):
        yield Reference(f"{prefix}.prompt_data.origin.prompt_version", src, "xact", origin["prompt_version"])


def _function_data(src: str, fd: Any) -> Iterator[Reference]:
    if not isinstance(fd, dict):
        return
    t = fd.get("type")
    if t == "code" and isinstance(fd.get("data"), dict) and fd["data"].get("type") == "bundle":
        yield Reference("function.function_data.data.bundle_id", src, "ext", fd["data"].get("bundle_id"))
    elif t == "graph":
        for node in (fd.get("nodes") or {}).values():
            ref = node.get("function") if isinstance(node, dict) and node.get("type") == "function" else None
            if not isinstance(ref, dict):
                continue
            if ref.get("function_id"):
                yield Reference(
                    "function.graph.nodes.function.function_id", src, "function", ref["function_id"]
                )
            if ref.get("project_name") and ref.get("slug"):
                yield Reference(
                    "function.graph.nodes.function.project_name+slug",
                    src,
                    "project_name+slug",
                    (ref["project_name"], ref["slug"]),
                )
            if ref.get("global_function"):
                yield Reference(
                    "function.graph.nodes.function.global_function", src, "global", ref["global_function"]
                )
    elif t in ("facet", "batched_facet"):
        yield from _saved_fn(f"function.{t}.preprocessor", src, fd.get("preprocessor"))
        if t == "batched_facet":
            for entries in (fd.get("topic_maps") or {}).values():
                for e in entries or []:
                    if isinstance(e, dict) and e.get("topic_map_id"):
                        yield Reference(
                            "function.batched_facet.topic_maps.topic_map_id",
                            src,
                            "function",
                            e["topic_map_id"],
                        )
    elif t == "remote_eval" and fd.get("parameters_version"):
        yield Reference("function.remote_eval.parameters_version", src, "xact", fd["parameters_version"])
    elif t == "topic_map":
        for k in ("bundle_key", "report_key"):
            if fd.get(k):
                yield Reference(f"function.topic_map.{k}", src, "ext", fd[k])


def find_references(inv: Inventory) -> Iterator[Reference]:
    """Every §2.x id-bearing field that holds a value, over the whole inventory."""
    o = inv.objects
    for p in o.get("project", []):
        s = p.get("settings") or {}
        if p.get("user_id"):
            yield Reference("project.user_id", p["id"], "user", p["user_id"])
        if s.get("baseline_experiment_id"):
            yield Reference(
                "project.settings.baseline_experiment_id", p["id"], "experiment", s["baseline_experiment_id"]
            )
        yield from _saved_fn("project.settings.default_preprocessor", p["id"], s.get("default_preprocessor"))
        for col in s.get("spanFieldOrder") or []:
            yield Reference("project.settings.spanFieldOrder.column_id", p["id"], "ext", col.get("column_id"))
        for src in s.get("remote_eval_sources") or []:
            yield Reference("project.settings.remote_eval_sources.url", p["id"], "ext", src.get("url"))
    for e in o.get("experiment", []):
        for f, target in (
            ("project_id", "project"),
            ("base_exp_id", "experiment"),
            ("dataset_id", "dataset"),
            ("dataset_version", "xact"),
            ("parameters_id", "function"),
            ("parameters_version", "xact"),
            ("user_id", "user"),
        ):
            if e.get(f):
                yield Reference(f"experiment.{f}", e["id"], target, e[f])
        dfilter = (e.get("internal_metadata") or {}).get("dataset_filter")
        if dfilter:
            yield Reference("experiment.internal_metadata.dataset_filter", e["id"], "opaque", dfilter)
    for kind in (
        "dataset",
        "project_tag",
        "span_iframe",
        "mcp_server",
        "project_score",
        "project_automation",
    ):
        for obj in o.get(kind, []):
            yield Reference(f"{kind}.project_id", obj["id"], "project", obj.get("project_id"))
    for kind in ("prompt", "function"):
        for obj in o.get(kind, []):
            yield Reference(f"{kind}.project_id", obj["id"], "project", obj.get("project_id"))
            yield from _prompt_data(kind, obj["id"], obj.get("prompt_data"))
    for fn in o.get("function", []):
        origin = fn.get("origin") or {}
        if origin.get("object_id"):
            yield Reference(
                f"function.origin.{origin.get('object_type')}",
                fn["id"],
                str(origin.get("object_type")),
                origin["object_id"],
            )
        yield from _function_data(fn["id"], fn.get("function_data"))
    for r in o.get("role", []):
        if r.get("org_id") is None:
            continue
        for m in r.get("member_roles") or []:
            yield Reference("role.member_roles", r["id"], "role", m)
    for g in o.get("group", []):
        for u in g.get("member_users") or []:
            yield Reference("group.member_users", g["id"], "user", u)
        for m in g.get("member_groups") or []:
            yield Reference("group.member_groups", g["id"], "group", m)
    for a in o.get("acl", []):
        ot = a.get("object_type")
        renamed: dict[Any, Any] = {
            "project_log": "project",
            "org_project": "organization",
            "org_member": "organization",
        }
        yield Reference(f"acl.object_id.{ot}", a["id"], str(renamed.get(ot, ot)), a.get("object_id"))
        for f, target in (("user_id", "user"), ("group_id", "group"), ("role_id", "role")):
            if a.get(f):
                yield Reference(f"acl.{f}", a["id"], target, a[f])
        if a.get("permission"):
            yield Reference("acl.permission", a["id"], "permission", a["permission"])
        if a.get("restrict_object_type"):
            yield Reference("acl.restrict_object_type", a["id"], "type", a["restrict_object_type"])
    for pa in o.get("project_automation", []):
        cfg = pa.get("config") or {}
        et = cfg.get("event_type")
        yield Reference(f"project_automation.config.{et}", pa["id"], "config", et)
        for ff in cfg.get("facet_functions") or []:
            yield from _saved_fn("project_automation.config.facet_functions", pa["id"], ff)
        for tm in cfg.get("topic_map_functions") or []:
            yield from _saved_fn(
                "project_automation.config.topic_map_functions.function", pa["id"], tm.get("function")
            )
        ds = cfg.get("data_scope") or {}
        if ds.get("experiment_id"):
            yield Reference(
                "project_automation.config.data_scope.experiment_id",
                pa["id"],
                "experiment",
                ds["experiment_id"],
            )
        for slug in cfg.get("environment_filter") or []:
            yield Reference(
                "project_automation.config.environment_filter", pa["id"], "slug:environment", slug
            )
    for ps in o.get("project_score", []):
        online = (ps.get("config") or {}).get("online") or {}
        for sc in online.get("scorers") or []:
            yield from _saved_fn("project_score.config.online.scorers", ps["id"], sc)
    for v in o.get("view", []):
        yield Reference(
            f"view.object_id.{v.get('object_type')}", v["id"], str(v.get("object_type")), v.get("object_id")
        )
        if v.get("user_id"):
            yield Reference("view.user_id", v["id"], "user", v["user_id"])
        pid = ((v.get("options") or {}).get("options") or {}).get("projectId")
        if pid:
            yield Reference("view.options.options.projectId", v["id"], "project", pid)
    for ev in o.get("env_var", []):
        yield Reference(
            f"env_var.object_id.{ev.get('object_type')}",
            ev["id"],
            str(ev.get("object_type")),
            ev.get("object_id"),
        )
    for ds in o.get("dataset_snapshot", []):
        yield Reference("dataset_snapshot.dataset_id", ds["id"], "dataset", ds.get("dataset_id"))
        yield Reference("dataset_snapshot.xact_id", ds["id"], "xact", ds.get("xact_id"))
    for st in o.get("service_token", []):
        yield Reference("service_token.service_account_id", st["id"], "user", st.get("service_account_id"))
    for ak in o.get("api_key", []):
        if ak.get("user_id"):
            yield Reference("api_key.user_id", ak["id"], "user", ak["user_id"])
    for kind in ("ai_secret", "environment", "project"):
        for obj in o.get(kind, []):
            yield Reference(f"{kind}.org_id", obj["id"], "organization", obj.get("org_id"))


def dangling(inv: Inventory, refs: list[Reference]) -> list[Reference]:
    """References whose target does not exist (or has the wrong type) in the inventory."""
    ids = inv.by_id()
    slugs = {e.get("slug") for e in inv.objects.get("environment", [])}
    fn_by_name = {
        (p["name"], f["slug"])
        for p in inv.objects.get("project", [])
        for f in inv.objects.get("function", []) + inv.objects.get("prompt", [])
        if f.get("project_id") == p["id"]
    }
    bad = []
    for r in refs:
        if r.target_type in ("xact", "ext", "global", "opaque", "config", "permission", "type"):
            ok = bool(r.value)
        elif r.target_type == "slug:environment":
            ok = r.value in slugs
        elif r.target_type == "project_name+slug":
            ok = tuple(r.value) in fn_by_name
        else:
            hit = ids.get(r.value)
            expected = {"function": {"function", "prompt"}, "prompt": {"prompt", "function"}}.get(
                r.target_type, {r.target_type}
            )
            ok = hit is not None and hit[0] in expected
        if not ok:
            bad.append(r)
    return bad
