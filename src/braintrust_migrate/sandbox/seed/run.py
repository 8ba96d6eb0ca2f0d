"""Seed generator: fill a Braintrust(-compatible) org with a realistic, deterministic set of objects.

Usage::

    result = await seed_org("http://127.0.0.1:8000", "sk-...", profile="small", seed=7)
    print(result.counts)

The contents come from :func:`braintrust_migrate.sandbox.seed.plan.build_plan`, a
pure function of ``(profile, seed)``; this module discovers what the org already
has (the organization, its users, the system roles), then sends the plan's
requests level by level (everything an op references is created in an earlier
level), up to ``concurrency`` requests in flight.

It covers every id-bearing field of the API (see ``braintrust-api.md`` §2.x),
awkward names, and two reference cycles that a migrator has to break. Then it
writes ``rows`` event rows (project logs, experiment and dataset rows, comments;
see ``events``): a dataset's first rows are written during the plan, so
that experiments and snapshots pin a real dataset version, the rest after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from .events import EventCounts, EventsPhase, default_rows
from .events_ops import DatasetVersionMarker, EventRowsMarker
from .http import SeedClient, SeedHTTPError
from .plan import (
    PROFILES,
    Op,
    OrgRef,
    Plan,
    Profile,
    Ref,
    SystemRoleRef,
    UserRef,
    build_plan,
)

__all__ = [
    "PROFILES",
    "EventCounts",
    "SeedError",
    "SeedInputError",
    "SeedResult",
    "SeededObject",
    "build_plan",
    "seed_org",
    "seed_org_sync",
]

# Bodies that accept ``org_name`` (for keys that belong to several orgs).
_ORG_NAME_BODIES = frozenset(
    {
        ("POST", "/v1/project"),
        ("POST", "/v1/role"),
        ("POST", "/v1/group"),
        ("POST", "/v1/ai_secret"),
        ("POST", "/environment"),
        ("POST", "/v1/api_key"),
        ("POST", "/v1/service_token"),
        ("PATCH", "/v1/organization/members"),
    }
)


class SeedError(RuntimeError):
    """Seeding failed (the server refused a request, or the org is unusable).

    ``status`` is the HTTP status of the refused request (``None`` when the
    server could not be reached or the failure was not an HTTP error);
    ``http`` says whether an HTTP request failed at all.
    """

    def __init__(self, message: str, *, status: int | None = None, http: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.http = http

    @classmethod
    def from_http(cls, exc: SeedHTTPError, prefix: str = "") -> SeedError:
        return cls(f"{prefix}{exc}", status=exc.status, http=True)


class SeedInputError(SeedError, ValueError):
    """The arguments are invalid (bad URL, empty key, unknown profile, …)."""


@dataclass(frozen=True)
class SeededObject:
    kind: str
    key: str
    id: str
    name: str | None


@dataclass
class SeedResult:
    """What a seeding run created.

    ``counts``/``ids`` are per object type (``project``, ``function``, ``acl``…);
    ``objects`` maps each plan key to what it created; ``cycles`` lists the
    reference cycles as ``(description, id_a, id_b)``; ``patches`` counts updates.
    ``user`` counts only users invited by the run (the org's existing users are
    listed in ``user_ids``). ``events`` has the event rows per container kind
    (``project_logs``, ``experiment``, ``dataset``): rows written, live rows, comments.
    """

    url: str
    org_id: str
    org_name: str
    profile: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    objects: dict[str, SeededObject] = field(default_factory=dict)
    cycles: list[tuple[str, str, str]] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    system_role_ids: list[str] = field(default_factory=list)
    patches: int = 0
    requests: int = 0
    elapsed: float = 0.0
    notes: list[str] = field(default_factory=list)
    rows: int = 0  # event rows asked for
    events: dict[str, EventCounts] = field(default_factory=dict)
    event_requests: int = 0
    event_elapsed: float = 0.0
    event_generation: float = 0.0  # of which generating and serializing rows
    attachments: int = 0  # attachments uploaded

    @property
    def event_rows(self) -> int:
        return sum(c.rows for c in self.events.values())

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_key(self, key: str) -> SeededObject:
        return self.objects[key]

    def summary_lines(self) -> list[str]:
        width = max((len(k) for k in self.counts), default=4)
        lines = [f"{kind:<{width}}  {self.counts[kind]:>6}" for kind in sorted(self.counts)]
        lines.append(f"{'total':<{width}}  {self.total:>6}")
        return lines

    def event_lines(self) -> list[str]:
        """``<kind>.rows|live|comments  <n>`` lines, one value per line."""
        return [
            f"{kind + '.' + what:<22}  {getattr(counts, what):>7}"
            for kind, counts in self.events.items()
            for what in ("rows", "live", "comments")
        ]


# --------------------------------------------------------------------------- execution

_DROP = object()


class _Run:
    def __init__(
        self, client: SeedClient, plan: Plan, result: SeedResult, org_name: str | None, events: EventsPhase
    ) -> None:
        self.client = client
        self.events = events
        self.plan = plan
        self.result = result
        self.org_name = org_name
        self.org: dict[str, Any] = {}
        self.users: list[str] = []
        self.system_roles: list[str] = []
        self.responses: dict[str, Any] = {}
        self.kinds: Counter[str] = Counter()
        self._dropped_system_roles = False

    # ------------------------------------------------------------ discovery

    async def discover(self, invite_users: bool) -> None:
        orgs = await self.client.list_all("/v1/organization", org_name=self.org_name)
        if self.org_name:
            orgs = [o for o in orgs if o.get("name") == self.org_name]
        if not orgs:
            raise SeedError(
                f"no organization named {self.org_name!r} is visible to this key"
                if self.org_name
                else "the API key sees no organization"
            )
        if len(orgs) > 1:
            names = ", ".join(sorted(repr(o.get("name")) for o in orgs))
            raise SeedInputError(f"the API key sees several organizations ({names}); pass org_name")
        self.org = orgs[0]
        self.result.org_id = self.org["id"]
        self.result.org_name = self.org.get("name", "")
        name = self.org.get("name")

        users = await self.client.list_all("/v1/user", org_name=name)
        want = self.plan.profile.min_users
        if invite_users and len(users) < want:
            have = {u.get("email") for u in users}
            emails = [e for e in self.plan.invite_emails if e not in have][: want - len(users)]
            if emails:
                body: dict[str, Any] = {
                    "invite_users": {"emails": emails, "send_invite_emails": False},
                    "org_id": self.org["id"],
                }
                if self.org_name:
                    body["org_name"] = self.org_name
                out = await self.client.request("PATCH", "/v1/organization/members", json=body)
                for added in (out or {}).get("added_users") or []:
                    self._record("user", "org.invite." + str(added.get("email")), added)
                users = await self.client.list_all("/v1/user", org_name=name)
        if not users:
            raise SeedError("the organization has no users (and none could be invited)")
        users.sort(key=lambda u: (str(u.get("email") or ""), u["id"]))
        self.users = [u["id"] for u in users]
        self.result.user_ids = list(self.users)

        roles = await self.client.list_all("/v1/role", org_name=name)
        system = sorted(
            (r for r in roles if r.get("org_id") is None), key=lambda r: (r.get("name") or "", r["id"])
        )
        self.system_roles = [r["id"] for r in system]
        self.result.system_role_ids = list(self.system_roles)
        if not self.system_roles:
            self.result.notes.append("the org lists no system roles: system-role references were left out")

    # ------------------------------------------------------------ resolution

    def resolve(self, value: Any, op: Op) -> Any:
        if isinstance(value, Ref):
            if value.key not in self.responses:
                raise SeedError(f"{op.key}: {value.key} was not created")
            found: Any = self.responses[value.key]
            for part in value.field.split("."):
                if isinstance(found, list) and part.isdigit() and int(part) < len(found):
                    found = found[int(part)]
                elif isinstance(found, dict):
                    found = found.get(part)
                else:
                    found = None
            if found is None:
                raise SeedError(f"{op.key}: the response for {value.key} has no {value.field!r}")
            return found
        if isinstance(value, UserRef):
            return self.users[value.index % len(self.users)]
        if isinstance(value, SystemRoleRef):
            if not self.system_roles:
                return _DROP
            return self.system_roles[value.index % len(self.system_roles)]
        if isinstance(value, OrgRef):
            return self.org[value.field]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                r = self.resolve(v, op)
                if r is not _DROP:
                    out[k] = r
            return out
        if isinstance(value, list | tuple):
            return [r for r in (self.resolve(v, op) for v in value) if r is not _DROP]
        return value

    def _fix_acl(self, body: dict[str, Any]) -> dict[str, Any]:
        # Without system roles, an ACL that granted one falls back to a permission.
        if "role_id" not in body and "permission" not in body:
            body["permission"] = "read"
        return body

    # ------------------------------------------------------------ running

    async def run_op(self, op: Op) -> None:
        path = "".join(str(self.resolve(part, op)) for part in op.path)
        body = self.resolve(op.body, op) if op.body is not None else None
        if isinstance(body, dict):
            if self.org_name and (op.method, path) in _ORG_NAME_BODIES:
                body["org_name"] = self.org_name
            if path == "/v1/acl":
                body = self._fix_acl(body)
            elif path == "/v1/acl/batch_update":
                body["add_acls"] = [self._fix_acl(a) for a in body.get("add_acls", [])]
        try:
            if isinstance(body, EventRowsMarker | DatasetVersionMarker):
                resp = await self.events.plan_op(body, path, self.responses)
            else:
                resp = await self.client.request(op.method, path, json=body)
        except SeedHTTPError as exc:
            raise SeedError.from_http(exc, f"{op.key}: ") from exc
        self.responses[op.key] = resp
        if op.kind is None:  # an update (or a read the plan needs, e.g. a fetch for an xact id)
            self.result.patches += op.method in ("PATCH", "PUT")
            return
        if op.result_list:
            created = (resp or {}).get(op.result_list) or []
            for n, obj in enumerate(created):
                self._record(op.kind, f"{op.key}[{n}]", obj)
        else:
            self._record(op.kind, op.key, resp)

    def _record(self, kind: str, key: str, obj: Any) -> None:
        if isinstance(obj, str) and obj:  # e.g. the ``row_ids`` of an events insert
            obj = {"id": obj}
        if not isinstance(obj, dict) or not obj.get("id"):
            raise SeedError(f"{key}: the server returned no object id for a {kind}")
        self.kinds[kind] += 1
        self.result.ids.setdefault(kind, []).append(obj["id"])
        self.result.objects[key] = SeededObject(kind=kind, key=key, id=obj["id"], name=obj.get("name"))

    async def execute(self) -> None:
        for level in self.plan.levels():
            try:
                async with asyncio.TaskGroup() as tg:
                    for op in level:
                        tg.create_task(self.run_op(op))
            except* SeedError as group:
                first = group.exceptions[0]
                while isinstance(first, ExceptionGroup):  # a nested group: its first error
                    first = first.exceptions[0]
                raise SeedError(str(first), status=first.status, http=first.http) from first
        self.result.counts = dict(sorted(self.kinds.items()))
        for desc, a, b in self.plan.cycles:
            self.result.cycles.append((desc, self.result.objects[a].id, self.result.objects[b].id))


def _validate(url: str, api_key: str, profile: str | Profile, seed: int, rows: int | None = None) -> Profile:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) < 10:
        raise SeedInputError(f"url must be an http(s) URL, got {url!r}")
    try:
        httpx.URL(url)
    except Exception as exc:
        raise SeedInputError(f"url is not valid: {url!r}") from exc
    if not isinstance(api_key, str) or not api_key.strip():
        raise SeedInputError("api_key must not be empty")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SeedInputError(f"seed must be an integer, got {seed!r}")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise SeedInputError(f"rows must be an integer >= 0, got {rows!r}")
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise SeedInputError(f"unknown profile {profile!r} (choose from {', '.join(PROFILES)})")
    return PROFILES[profile]


async def seed_org(
    url: str,
    api_key: str,
    *,
    profile: str | Profile = "small",
    seed: int = 0,
    org_name: str | None = None,
    concurrency: int = 8,
    invite_users: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    rows: int | None = None,
) -> SeedResult:
    """Fill the org behind ``api_key`` at ``url`` with the ``profile`` plan for ``seed``.

    ``rows`` event rows are written too (``None``: the profile's default, see
    ``events.DEFAULT_ROWS``; ``0``: none). Raises :class:`SeedInputError` for
    invalid arguments and :class:`SeedError` when the server refuses a request
    (the message names the plan step).
    """
    prof = _validate(url, api_key, profile, seed, rows)
    plan = build_plan(prof, seed)
    rows = default_rows(prof.name) if rows is None else rows
    started = time.perf_counter()
    result = SeedResult(url=url, org_id="", org_name="", profile=prof.name, seed=seed, rows=rows)
    events = EventsPhase(plan, rows, inflight=min(concurrency, 4))
    events.connect(url, api_key, transport=transport)
    try:
        async with SeedClient(url, api_key, concurrency=concurrency, transport=transport) as client:
            run = _Run(client, plan, result, org_name, events)
            try:
                await run.discover(invite_users)
            except SeedHTTPError as exc:
                raise SeedError.from_http(exc) from exc
            await run.execute()
            try:
                result.events = await events.run(run.responses, result.org_id)
            except SeedHTTPError as exc:
                raise SeedError.from_http(exc, "events: ") from exc
            result.requests = client.requests + events.requests
    finally:
        await events.aclose()
    result.event_requests = events.requests
    result.event_elapsed = events.elapsed
    result.event_generation = events.generate_seconds
    result.attachments = events.attachments_uploaded
    result.notes.extend(events.notes)
    result.elapsed = time.perf_counter() - started
    return result


def seed_org_sync(
    url: str,
    api_key: str,
    *,
    profile: str | Profile = "small",
    seed: int = 0,
    org_name: str | None = None,
    concurrency: int = 8,
    invite_users: bool = True,
    rows: int | None = None,
) -> SeedResult:
    """Blocking wrapper around :func:`seed_org` (for the CLI and scripts)."""
    return asyncio.run(
        seed_org(
            url,
            api_key,
            profile=profile,
            seed=seed,
            org_name=org_name,
            concurrency=concurrency,
            invite_users=invite_users,
            rows=rows,
        )
    )
