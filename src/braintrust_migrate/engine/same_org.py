"""Copying projects inside one org (source org = destination org, every project renamed).

A same-org copy writes only the copies: project-scoped objects of the selected projects (and the
ACLs on them). Org-scoped objects (roles, groups, secrets, ...) are not copied, and a reference to
anything outside the copy keeps its id: it names the very object the original names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.graph import Key, Node, target_keys
from braintrust_migrate.engine.inventory import Inventory
from braintrust_migrate.engine.names import ProjectNames
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS
from braintrust_migrate.engine.resources import ACL_TYPE, BY_KIND, PROJECT_TYPE
from braintrust_migrate.engine.scope import project_of
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.orgs import SameOrgError, ensure_distinct_orgs

FINGERPRINT_META = "same_org_project_names"
FIX = "add --project-map OLD=NEW or --project-prefix PREFIX so every copied project gets a new name"


class RenameChangedError(ConfigError):
    """A same-org state holds the copies of another rename: reusing it would rename them."""


def is_copy(source_org: Mapping[str, Any], dest_org: Mapping[str, Any], names: ProjectNames) -> bool:
    return source_org.get("id") == dest_org.get("id") and names.active


def early_check(
    source_org: Mapping[str, Any], dest_org: Mapping[str, Any], names: ProjectNames, projects: Iterable[str]
) -> None:
    """From the settings alone, before any state is touched: one org needs renames of every
    named project (or a prefix, when no project is named)."""
    wanted = list(projects)
    possible = all(names.renames(p) for p in wanted) if wanted else bool(names.prefix)
    _ensure(source_org, dest_org, possible)


def check_projects(
    source_org: Mapping[str, Any],
    dest_org: Mapping[str, Any],
    names: ProjectNames,
    selected: Mapping[str, Mapping[str, Any]],
    org_projects: Iterable[Mapping[str, Any]],
    mapped: Mapping[str, str | None],
) -> None:
    """After listing: every selected project gets a new name that no project of the org has,
    except the copy this state made (`mapped`: source project id -> its copy's id)."""
    if source_org.get("id") != dest_org.get("id"):
        return
    _ensure(source_org, dest_org, all(names.renames(str(p.get("name"))) for p in selected.values()))
    taken = {str(p.get("name")): str(p["id"]) for p in org_projects}
    for pid, project in selected.items():
        new = names.dest(str(project.get("name")))
        if new in taken and taken[new] != mapped.get(pid):
            raise SameOrgError(
                f"--project-map/--project-prefix: project {project.get('name')!r} would be copied as {new!r},"
                f" which org {source_org.get('name')!r} already has",
                "choose a name no project of the org has",
            )


def _ensure(source_org: Mapping[str, Any], dest_org: Mapping[str, Any], renames_all: bool) -> None:
    try:
        ensure_distinct_orgs(dict(source_org), dict(dest_org), renames_every_project=renames_all)
    except SameOrgError as exc:
        raise SameOrgError(f"{exc} ({FIX})", exc.fix) from None


def check_fingerprint(state: StateStore, names: ProjectNames, *, record: bool) -> None:
    """One same-org state holds the copies of one rename: another rename needs its own state."""
    stored = state.get_meta(FINGERPRINT_META)
    if stored is not None and stored != names.fingerprint():
        raise RenameChangedError(
            f"the state in {state.path.parent} holds copies made with other --project-map/--project-prefix"
            " values; a different rename would rename those copies: use another --state-dir"
        )
    if stored is None and record:
        state.set_meta(FINGERPRINT_META, names.fingerprint())


def copy_nodes(nodes: dict[Key, Node], inv: Inventory) -> dict[Key, Node]:
    """Only what lives in a selected project (the nodes are already the selection's), and the
    ACLs on what is copied."""
    kept = {key: node for key, node in nodes.items() if project_of(node.rt, node.src, inv) is not None}
    for key, node in nodes.items():
        if node.rt.kind == ACL_TYPE.kind:
            kind = POLYMORPHIC_KINDS.get(str(node.src.get("object_type")))
            if any(k in kept for k in target_keys(kind, str(node.src.get("object_id")))):
                kept[key] = node
    return kept


def without_copies(projects: dict[str, dict[str, Any]], copies: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The selection minus the copies an earlier run made (a prefix would copy them again)."""
    made = set(copies)
    return {pid: p for pid, p in projects.items() if pid not in made}


def copied_projects(state: StateStore) -> set[str]:
    return {m.dest_id for m in state.mappings(PROJECT_TYPE.kind) if m.dest_id}


def mapped_projects(state: StateStore, selected: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pid in selected:
        mapping = state.mapping(PROJECT_TYPE.kind, pid)
        out[pid] = mapping.dest_id if mapping else None
    return out


def self_map(ids: dict[str, str], src_inv: Inventory, projects: Iterable[str]) -> None:
    """Verify of a same-org copy: an object outside the copied projects is its own counterpart."""
    chosen = set(projects)
    for kind, objects in src_inv.objects.items():
        rt = BY_KIND.get(kind)
        for oid, obj in objects.items():
            if oid in ids:
                continue
            if rt is None or project_of(rt, obj, src_inv) not in chosen:
                ids[oid] = oid
