"""Pre-flight checks: is each side reachable, is its key accepted, can we read and write?"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from braintrust_migrate.btql import Query
from braintrust_migrate.client import ApiClient, ApiError, NetworkError, NotFoundError
from braintrust_migrate.client.errors import SIDE_LABEL, SIDE_VARS
from braintrust_migrate.engine import same_org
from braintrust_migrate.engine.names import ProjectNames
from braintrust_migrate.engine.private import make_dirs
from braintrust_migrate.engine.resources import EVENT_STREAMS, PROJECT_TYPE, SELECTABLE
from braintrust_migrate.orgs import OrgChoiceError, choose_org

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass(frozen=True)
class Probe:
    """One list endpoint the migration reads, and the selectable names that read it."""

    label: str
    path: str
    takes_org: bool
    pages: bool  # takes a page limit
    names: tuple[str, ...]


def _read_probes() -> tuple[Probe, ...]:
    """One probe per list path of the type table; users are read to map members by email."""
    by_path: dict[str, list[Any]] = {}
    for rt in SELECTABLE:
        if rt.per_owner:
            continue  # read per owner object, through a path another probe reads org-wide
        if rt.listing_path in by_path:
            by_path[rt.listing_path][4] += (rt.name,)
        else:
            by_path[rt.listing_path] = [rt.name, rt.listing_path, rt.org_name_param, rt.cursor, (rt.name,)]
    probes = [
        Probe(" / ".join(names), path, org, pages, names) for _, path, org, pages, names in by_path.values()
    ]
    return (*probes, Probe("users", "/v1/user", True, True, ("users",)))


READ_PROBES = _read_probes()
WRITE_PROBE_PREFIX = "braintrust-migrate-write-check-"
# Read on every run whatever the selection: projects hold everything, users map ACLs and groups.
ALWAYS_READ = frozenset({PROJECT_TYPE.name, "users"})
EVENT_RESOURCES = frozenset(stream.selected_as for stream in EVENT_STREAMS)


@dataclass
class Check:
    side: str
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class SideInfo:
    org_id: str | None = None
    org_name: str | None = None


@dataclass
class ValidationResult:
    checks: list[Check] = field(default_factory=list)
    orgs: dict[str, SideInfo] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "orgs": {side: asdict(info) for side, info in self.orgs.items()},
            "checks": [asdict(check) for check in self.checks],
        }


def _fix_for(error: ApiError) -> str:
    if isinstance(error, NetworkError):
        return f"check {SIDE_VARS[error.side][1]}, DNS, proxy and firewall"
    if error.status == 401:
        return f"check {SIDE_VARS[error.side][0]}"
    if error.status == 403:
        import re  # local: this function is the only user

        named = re.search(r"missing '(\w+)' permission", error.message)  # the sandbox and API name it
        if named:
            permission = named.group(1)
        elif "/v1/acl" in error.message:
            permission = "read_acls"
        else:
            return "grant the key's user read access to this resource type"
        where = "on the organization" if permission.endswith("_acls") else "on the objects to migrate"
        return f"grant the key's user the {permission} permission {where} (e.g. add it to the Owners group)"
    return ""


async def _identify_side(client: ApiClient, org_name: str | None) -> tuple[list[Check], SideInfo]:
    """Reachable, key accepted, one org chosen; `info.org_id` stays None when any fails."""
    side = client.side
    label = SIDE_LABEL[side]
    checks: list[Check] = []
    info = SideInfo()

    def add(name: str, status: Status, detail: str, fix: str = "") -> None:
        checks.append(Check(side, name, status, detail, fix))

    try:
        await client.request("GET", "/v1", auth=False)
        add("reachable", "pass", f"{client.base_url} answers")
    except ApiError as error:
        add("reachable", "fail", error.message, _fix_for(error))
        return checks, info

    try:
        orgs = await client.list_all("/v1/organization")
    except ApiError as error:
        add("api key", "fail", error.message, _fix_for(error))
        return checks, info
    add("api key", "pass", f"the {label} key is accepted")

    try:
        chosen = choose_org(orgs, org_name, side)
    except OrgChoiceError as error:
        add("organization", "fail", str(error), error.fix)
        return checks, info
    info.org_id, info.org_name = chosen.get("id"), chosen.get("name")
    add("organization", "pass", f"{info.org_name} ({info.org_id})")
    return checks, info


async def _access_checks(
    client: ApiClient, org_name: str | None, *, resources: frozenset[str] | None, write_check: bool
) -> list[Check]:
    checks = await _read_checks(client, org_name, resources)
    if write_check:
        checks.append(await _write_check(client, org_name))
    elif client.side == "dest":
        checks.append(
            Check(
                "dest",
                "write access",
                "skip",
                "not checked: it needs a probe object",
                "run with --write-check",
            )
        )
    return checks


async def _read_checks(
    client: ApiClient, org_name: str | None, resources: frozenset[str] | None
) -> list[Check]:
    async def probe(entry: Probe) -> Check:
        params: dict[str, Any] = {"limit": 1} if entry.pages else {}
        if entry.takes_org and org_name:
            params["org_name"] = org_name
        name = f"read {entry.label}"
        try:
            await client.get_json(entry.path, params)
        except ApiError as error:
            return Check(client.side, name, "fail", error.message, _fix_for(error))
        return Check(client.side, name, "pass", f"GET {entry.path}")

    wanted = None if resources is None else resources | ALWAYS_READ
    selected = [e for e in READ_PROBES if wanted is None or wanted & set(e.names)]
    checks = list(await asyncio.gather(*(probe(entry) for entry in selected)))
    if resources is None or resources & EVENT_RESOURCES:
        checks.append(await _event_check(client, org_name))
    return checks


async def _event_check(client: ApiClient, org_name: str | None) -> Check:
    """Event rows are read with BTQL: probe it on one project's logs (or note the fallback)."""
    name = "read event rows"
    try:
        page = await client.get_json(PROJECT_TYPE.path, {"limit": 1, "org_name": org_name})
    except ApiError as error:
        return Check(client.side, name, "fail", error.message, _fix_for(error))
    projects = page.get("objects") or []
    if not projects:
        return Check(client.side, name, "skip", "no project to probe")
    logs = next(stream for stream in EVENT_STREAMS if stream.container == PROJECT_TYPE.kind)
    query = Query(logs.kind, [projects[0]["id"]], measures=["count(1) as n"])
    try:
        await client.post_json("/btql", query.body())
    except NotFoundError:
        return Check(
            client.side,
            name,
            "warn",
            "this data plane has no /btql: rows will be read through /fetch (slower)",
        )
    except ApiError as error:
        return Check(client.side, name, "fail", error.message, _fix_for(error))
    return Check(client.side, name, "pass", "POST /btql")


async def _project_checks(client: ApiClient, org_name: str | None, names: list[str]) -> list[Check]:
    async def find(name: str) -> Check:
        params = {"project_name": name, "org_name": org_name}
        try:
            found = await client.get_json("/v1/project", params)
        except ApiError as error:
            return Check(client.side, f"project {name!r}", "fail", error.message, _fix_for(error))
        if found.get("objects"):
            return Check(client.side, f"project {name!r}", "pass", "exists in the source org")
        return Check(
            client.side,
            f"project {name!r}",
            "fail",
            # Lists show only what the key may read: a project it may not read looks absent.
            f"no project named {name!r} that the source key can read",
            "fix the name in MIGRATION_PROJECTS / --projects (names are exact), or grant the key's user read on it",
        )

    return list(await asyncio.gather(*(find(name) for name in names)))


def check_state_dir(state_dir: Path) -> Check:
    """The state folder must be creatable and writable before a migration depends on it."""
    try:
        make_dirs(state_dir)  # private, as migrate makes it
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        return Check(
            "local",
            "state dir",
            "fail",
            f"cannot write to MIGRATION_STATE_DIR={str(state_dir)!r}: {exc.strerror or exc}",
            "choose a writable folder with --state-dir",
        )
    return Check("local", "state dir", "pass", f"{state_dir} is writable")


async def _write_check(client: ApiClient, org_name: str | None) -> Check:
    name = WRITE_PROBE_PREFIX + secrets.token_hex(4)
    body: dict[str, Any] = {
        "name": name,
        "description": "temporary: braintrust-migrate validate --write-check",
    }
    if org_name:
        body["org_name"] = org_name
    try:
        created = await client.post_json("/v1/project", body)
    except ApiError as error:
        return Check(client.side, "write access", "fail", error.message, "give the key create permission")
    try:
        await client.delete_json(f"/v1/project/{created['id']}")
    except ApiError as error:
        return Check(
            client.side,
            "write access",
            "fail",
            f"created probe project {name!r} but could not delete it: {error.message}",
            f"delete project {name!r} by hand and grant delete permission",
        )
    return Check(client.side, "write access", "pass", "created and deleted a probe project")


async def run_validation(
    source: ApiClient,
    dest: ApiClient,
    *,
    source_org: str | None = None,
    dest_org: str | None = None,
    write_check: bool = False,
    resources: list[str] | None = None,
    projects: list[str] | None = None,
    state_dir: Path | None = None,
    project_names: ProjectNames | None = None,
) -> ValidationResult:
    """Every check, or SameOrgError (exit 2) before anything is written when both keys act
    in one org and the projects are not all renamed (a copy inside one org): no other check
    matters then."""
    selection = frozenset(resources) if resources else None
    (src_checks, src_info), (dst_checks, dst_info) = await asyncio.gather(
        _identify_side(source, source_org), _identify_side(dest, dest_org)
    )
    if src_info.org_id and dst_info.org_id:
        same_org.early_check(
            {"id": src_info.org_id, "name": src_info.org_name},
            {"id": dst_info.org_id, "name": dst_info.org_name},
            project_names or ProjectNames(),
            projects or [],
        )
    src_more, dst_more = await asyncio.gather(
        _access_checks(source, source_org, resources=selection, write_check=False)
        if src_info.org_id
        else _nothing(),
        _access_checks(dest, dest_org, resources=selection, write_check=write_check)
        if dst_info.org_id
        else _nothing(),
    )
    src_checks += src_more
    dst_checks += dst_more
    if projects and src_info.org_id:
        src_checks += await _project_checks(source, source_org, projects)
    local = [check_state_dir(state_dir)] if state_dir is not None else []
    return ValidationResult(
        checks=local + src_checks + dst_checks, orgs={"source": src_info, "dest": dst_info}
    )


async def _nothing() -> list[Check]:
    return []
