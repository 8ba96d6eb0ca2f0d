"""The seed plan: every request the seed generator will send, as pure data.

Planning is a pure function of ``(profile, seed)``: all randomness is drawn here,
sequentially, from one ``random.Random(seed)``, so the same inputs give the same
names and contents whatever order the server later answers in.

A plan is a list of :class:`Op` (one HTTP request each). Request bodies hold
symbolic placeholders instead of ids:

* :class:`Ref` — a field (``id``, ``_xact_id``, ``name``, ``slug``…) of the object
  another op created;
* :class:`UserRef` / :class:`SystemRoleRef` / :class:`OrgRef` — things the org
  already has, discovered before execution (its users, the system roles, itself).

The executor (``seed.py``) derives dependency levels from those placeholders, so
ops only need to say what they reference; creation order follows automatically,
and a dependency cycle is expressed as "create A without the reference, create B
pointing at A, then PATCH A to point at B".

Events phase: ``plan_dataset_events`` adds, per dataset, two marker ops that
``seed_events`` carries out (write the initial rows, read their ``_xact_id``
back), so :func:`dataset_xact` makes experiment ``dataset_version`` and snapshot
``xact_id`` point at a real transaction id; all other event rows are written
after the plan.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .seed_events_ops import DatasetVersionMarker, EventRowsMarker
from .seed_names import (
    COLORS,
    DATASET_WORDS,
    EXPERIMENT_WORDS,
    FUNCTION_WORDS,
    MESSAGES,
    MODELS,
    PROJECT_WORDS,
    PROMPT_WORDS,
    SECRET_TYPES,
    TAG_WORDS,
    NameFactory,
    env_name,
    slugify,
)

# --------------------------------------------------------------------------- placeholders


@dataclass(frozen=True)
class Ref:
    """``field`` of the response of the op ``key`` (a dotted path: ``added_users.0.id``)."""

    key: str
    field: str = "id"


@dataclass(frozen=True)
class UserRef:
    """The org's ``index``-th user (modulo the number of users), by id."""

    index: int


@dataclass(frozen=True)
class SystemRoleRef:
    """The ``index``-th system role (``org_id: null``), by id."""

    index: int


@dataclass(frozen=True)
class OrgRef:
    """A field of the organization being seeded."""

    field: str = "id"


Placeholder = Ref | UserRef | SystemRoleRef | OrgRef


def iter_placeholders(value: Any) -> Iterator[Placeholder]:
    if isinstance(value, Ref | UserRef | SystemRoleRef | OrgRef):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_placeholders(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from iter_placeholders(v)


# --------------------------------------------------------------------------- ops


@dataclass
class Op:
    """One request of the plan.

    ``kind`` names the object type the request creates (counted in the result);
    ``None`` marks an update (PATCH) that creates nothing. ``path`` is a tuple of
    literal strings and placeholders, joined after resolution. Batch requests set
    ``result_list`` to the response field that holds the created objects (or their
    ids). ``after`` lists ops that must run first although nothing of theirs is
    referenced (e.g. reading a dataset back after inserting its rows).
    """

    key: str
    kind: str | None
    method: str
    path: tuple[str | Placeholder, ...]
    body: Any = None
    name: str | None = None
    result_list: str | None = None
    after: tuple[str, ...] = ()

    def deps(self) -> set[str]:
        found = set(self.after)
        found |= {p.key for p in iter_placeholders(list(self.path)) if isinstance(p, Ref)}
        found |= {p.key for p in iter_placeholders(self.body) if isinstance(p, Ref)}
        return found


@dataclass(frozen=True)
class Profile:
    name: str
    projects: int
    # org level
    ai_secrets: int
    environments: int
    role_chains: int
    role_chain_len: int
    group_chains: int
    group_chain_len: int
    min_users: int
    org_env_vars: int
    # per project (each project always gets the full coverage kit on top)
    datasets: int
    snapshots_per_dataset: int
    tags: int
    span_iframes: int
    mcp_servers: int
    extra_code_functions: int
    extra_prompts: int
    experiments: int
    extra_scores: int
    extra_views: int
    project_env_vars: int
    acl_every_object: bool


PROFILES: dict[str, Profile] = {
    "small": Profile(
        name="small",
        projects=2,
        ai_secrets=2,
        environments=2,
        role_chains=1,
        role_chain_len=3,
        group_chains=1,
        group_chain_len=3,
        min_users=3,
        org_env_vars=1,
        datasets=2,
        snapshots_per_dataset=1,
        tags=2,
        span_iframes=1,
        mcp_servers=1,
        extra_code_functions=0,
        extra_prompts=0,
        experiments=3,
        extra_scores=0,
        extra_views=0,
        project_env_vars=1,
        acl_every_object=False,
    ),
    "medium": Profile(
        name="medium",
        projects=5,
        ai_secrets=4,
        environments=3,
        role_chains=2,
        role_chain_len=3,
        group_chains=2,
        group_chain_len=3,
        min_users=5,
        org_env_vars=3,
        datasets=4,
        snapshots_per_dataset=1,
        tags=5,
        span_iframes=2,
        mcp_servers=2,
        extra_code_functions=6,
        extra_prompts=5,
        experiments=8,
        extra_scores=3,
        extra_views=3,
        project_env_vars=2,
        acl_every_object=True,
    ),
    "large": Profile(
        name="large",
        projects=30,
        ai_secrets=10,
        environments=5,
        role_chains=4,
        role_chain_len=4,
        group_chains=4,
        group_chain_len=4,
        min_users=12,
        org_env_vars=6,
        datasets=8,
        snapshots_per_dataset=2,
        tags=8,
        span_iframes=3,
        mcp_servers=3,
        extra_code_functions=14,
        extra_prompts=12,
        experiments=14,
        extra_scores=5,
        extra_views=6,
        project_env_vars=3,
        acl_every_object=True,
    ),
}


@dataclass
class Plan:
    profile: Profile
    seed: int
    ops: dict[str, Op] = field(default_factory=dict)
    # (description, key of A, key of B): A refers to B and B refers to A.
    cycles: list[tuple[str, str, str]] = field(default_factory=list)
    invite_emails: list[str] = field(default_factory=list)

    def add(self, op: Op) -> str:
        if op.key in self.ops:
            raise ValueError(f"duplicate op key {op.key!r}")
        self.ops[op.key] = op
        return op.key

    def levels(self) -> list[list[Op]]:
        """Ops grouped so that each op comes after everything it references."""
        level: dict[str, int] = {}

        def depth(key: str, stack: tuple[str, ...] = ()) -> int:
            if key in level:
                return level[key]
            if key in stack:
                raise ValueError(f"dependency cycle in plan: {' -> '.join((*stack, key))}")
            if key not in self.ops:
                raise ValueError(f"op {stack[-1] if stack else '?'} references unknown op {key!r}")
            deps = self.ops[key].deps()
            level[key] = 1 + max((depth(d, (*stack, key)) for d in deps), default=-1)
            return level[key]

        for key in self.ops:
            depth(key)
        out: list[list[Op]] = [[] for _ in range(1 + max(level.values(), default=-1))]
        for key, op in self.ops.items():
            out[level[key]].append(op)
        return out

    def fingerprint(self) -> list[tuple[str, str | None, str, str, Any]]:
        """A comparable rendering of the plan (for determinism checks)."""
        return [(op.key, op.kind, op.method, repr(op.path), repr(op.body)) for op in self.ops.values()]


# --------------------------------------------------------------------------- helpers

V1 = "/v1/"


def fn_ref(key: str, *, version: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"type": "function", "id": Ref(key)}
    if version:
        ref["version"] = Ref(key, "_xact_id")
    return ref


def global_ref(name: str, function_type: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"type": "global", "name": name}
    if function_type:
        ref["function_type"] = function_type
    return ref


def dataset_xact(plan: Plan, ds_key: str, rng: random.Random) -> Any:
    """The transaction id to pin a dataset version to (experiment ``dataset_version``, snapshot ``xact_id``).

    Once the events phase reads the dataset back after writing its rows (an op keyed
    ``<ds_key>.version``, e.g. ``POST /v1/dataset/{id}/fetch`` with ``{"limit": 1}``),
    this is the ``_xact_id`` of the newest row. Until then it is a synthetic,
    plausible xact id (19 digits) drawn from the plan's rng.
    """
    version_key = f"{ds_key}.version"
    if version_key in plan.ops:
        return Ref(version_key, "events.0._xact_id")
    return str(1000192000000000000 + rng.randrange(10**15))


def plan_dataset_events(plan: Plan, ds_key: str, rng: random.Random) -> None:
    """Events phase hook: the dataset's initial rows, then its version read back.

    ``{ds_key}.events`` writes the rows that exist before any experiment or snapshot
    pins the dataset (``POST /v1/dataset/{id}/insert``); ``{ds_key}.version`` then
    reads the newest ``_xact_id`` back (``POST /v1/dataset/{id}/fetch``), which
    :func:`dataset_xact` pins. Both bodies are markers: how many rows depends on
    ``--rows``, so ``seed_events.EventsPhase`` writes them. Everything else (later
    rows, updates, merges, deletes, comments) is written after the plan.
    """
    path = ("/v1/dataset/", Ref(ds_key))
    plan.add(Op(f"{ds_key}.events", None, "POST", (*path, "/insert"), EventRowsMarker("dataset", ds_key)))
    plan.add(
        Op(
            f"{ds_key}.version",
            None,
            "POST",
            (*path, "/fetch"),
            DatasetVersionMarker(ds_key),
            after=(f"{ds_key}.events",),
        )
    )


def plan_experiment_events(plan: Plan, exp_key: str, rng: random.Random) -> None:
    """Events phase hook: experiment rows are written after the plan (``seed_events``).

    An experiment on a dataset planned later (the next project's) got a synthetic
    ``dataset_version`` from :func:`dataset_xact`; point it at that dataset's real version.
    """
    body = plan.ops[exp_key].body
    dataset = body.get("dataset_id")
    if isinstance(dataset, Ref) and isinstance(body.get("dataset_version"), str):
        body["dataset_version"] = Ref(f"{dataset.key}.version", "events.0._xact_id")


def plan_project_logs(plan: Plan, project_key: str, rng: random.Random) -> None:
    """Events phase hook: project logs are written after the plan (``seed_events``); nothing to plan."""


def _inline_code(runtime: str, code: str) -> dict[str, Any]:
    version = "3.11" if runtime == "python" else "20"
    return {
        "type": "code",
        "data": {"type": "inline", "runtime_context": {"runtime": runtime, "version": version}, "code": code},
    }


PY_SNIPPETS = (
    "def handler(input, **kwargs):\n    return str(input).strip().lower()\n",
    "def handler(output, expected, **kwargs):\n    return 1.0 if output == expected else 0.0\n",
    "import json\n\ndef handler(output, **kwargs):\n    try:\n        json.loads(output)\n        return 1\n    except Exception:\n        return 0\n",
    "def handler(input, **kwargs):\n    return {'words': len(str(input).split()), 'note': \"naïve — ✓\"}\n",
)
JS_SNIPPETS = (
    "function handler({ input }) {\n  return String(input).replace(/<[^>]+>/g, '');\n}\n",
    "async function handler({ city }) {\n  return { city, forecast: 'sunny ☀️' };\n}\n",
    "function handler({ output, expected }) {\n  return output === expected ? 1 : 0;\n}\n",
)


# --------------------------------------------------------------------------- the planner


@dataclass
class _ProjectCtx:
    """What the per-project planning steps share."""

    i: int
    P: str  # the project's op key
    other: str  # op key of the project that cross-project references point at
    ds_keys: list[str] = field(default_factory=list)
    mcp_keys: list[str] = field(default_factory=list)
    exp_keys: list[str] = field(default_factory=list)
    prompt_keys: list[str] = field(default_factory=list)
    fn_counter: int = 0

    @property
    def pid(self) -> Ref:
        return Ref(self.P)

    def fn(self, suffix: str) -> str:
        return f"{self.P}.fn.{suffix}"


class _Planner:
    def __init__(self, profile: Profile, seed: int) -> None:
        self.p = profile
        self.rng = random.Random(seed)
        self.names = NameFactory(self.rng)
        self.plan = Plan(profile=profile, seed=seed)
        self.seq = 0  # org-wide counter for names that must be unique org-wide
        self.env_keys: list[str] = []
        self.role_keys: list[str] = []
        self.group_keys: list[str] = []
        self.project_keys: list[str] = []

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add(self, key: str, kind: str | None, method: str, path: tuple, body: Any = None, **kw: Any) -> str:
        name = kw.pop("name", None)
        if name is None and isinstance(body, dict) and isinstance(body.get("name"), str):
            name = body["name"]
        return self.plan.add(Op(key=key, kind=kind, method=method, path=path, body=body, name=name, **kw))

    def user(self) -> UserRef:
        return UserRef(self.rng.randrange(10_000))

    # ------------------------------------------------------------------ org level

    def org(self) -> None:
        p, rng = self.p, self.rng
        self.plan.invite_emails = [f"seed-{self.plan.seed}-user-{i}@example.com" for i in range(p.min_users)]

        for i in range(p.ai_secrets):
            stype = SECRET_TYPES[i % len(SECRET_TYPES)]
            body = {
                "name": f"{stype.upper()}_API_KEY"
                if i < len(SECRET_TYPES)
                else f"{stype.upper()}_API_KEY_{i}",
                "type": stype,
                "secret": f"sk-{stype}-{rng.getrandbits(96):024x}",
                "metadata": {"seeded": True, "rotation_days": rng.choice([30, 90, 365]), "note": "🔐 test"},
            }
            if i == 1:
                body["name"] = "Azure / EU “prod” key"
                body["metadata"] = {
                    "api_base": "https://example-eu.openai.azure.com/",
                    "deployment": "gpt-4o",
                    "supportsStreaming": True,
                }
            self.add(f"ai_secret.{i}", "ai_secret", "POST", (V1 + "ai_secret",), body)

        env_words = ("Production", "Staging", "Development", "QA", "Canary", "Load test", "Demo")
        for i in range(p.environments):
            word = env_words[i % len(env_words)]
            name = word if i < len(env_words) else f"{word} {i}"
            body = {
                "name": name if i != 2 else "Développement 🧪",
                "slug": slugify(name, "env", i) if i >= 2 else word.lower(),
                "description": f"The {word.lower()} environment",
            }
            self.env_keys.append(self.add(f"environment.{i}", "environment", "POST", ("/environment",), body))

        perms = (
            "read",
            "update",
            "create",
            "delete",
            "create_acls",
            "read_acls",
            "update_acls",
            "delete_acls",
        )
        restrict = ("project", "experiment", "dataset", "prompt", None, "group", "role", "project_log")
        for c in range(p.role_chains):
            prev: str | None = None
            for j in range(p.role_chain_len):
                member_perms = []
                for _ in range(1 + rng.randrange(3)):
                    mp: dict[str, Any] = {"permission": rng.choice(perms)}
                    rt = rng.choice(restrict)
                    if rt is not None:
                        mp["restrict_object_type"] = rt
                    member_perms.append(mp)
                member_roles: list[Any] = []
                if prev is not None:
                    member_roles.append(Ref(prev))
                if j == 1:
                    member_roles.append(SystemRoleRef(c))
                n = self.next_seq()
                name = self.names.name(("Reviewer", "Annotator", "Auditor", "Maintainer"), n, awkward=j == 2)
                body: dict[str, Any] = {"name": name, "description": f"chain {c} level {j}"}
                if member_perms:
                    body["member_permissions"] = member_perms
                if member_roles:
                    body["member_roles"] = member_roles
                prev = self.add(f"role.{c}.{j}", "role", "POST", (V1 + "role",), body)
                self.role_keys.append(prev)
            # Delta PATCH on the head of the chain: add a permission and a system role.
            self.add(
                f"role.{c}.patch",
                None,
                "PATCH",
                (V1 + "role/", Ref(f"role.{c}.0")),
                {
                    "add_member_permissions": [{"permission": "read", "restrict_object_type": "dataset"}],
                    "add_member_roles": [SystemRoleRef(c + 1)],
                },
            )

        for c in range(p.group_chains):
            prev = None
            for j in range(p.group_chain_len):
                n = self.next_seq()
                name = self.names.name(
                    ("Engineering", "Labelers", "Data science", "Support"), n, awkward=j == 1
                )
                body = {
                    "name": name,
                    "description": f"group chain {c} level {j}",
                    "member_users": sorted({self.user() for _ in range(1 + rng.randrange(2))}, key=repr),
                }
                if prev is not None:
                    body["member_groups"] = [Ref(prev)]
                prev = self.add(f"group.{c}.{j}", "group", "POST", (V1 + "group",), body)
                self.group_keys.append(prev)
            self.add(
                f"group.{c}.patch",
                None,
                "PATCH",
                (V1 + "group/", Ref(f"group.{c}.0")),
                {"add_member_users": [self.user()], "description": "patched with add_member_users"},
            )

        # Members: a late invite straight into groups (by id and by name), a service account
        # and its token (service_token.service_account_id), and an API key of the caller.
        invite = {"emails": [f"seed-{self.plan.seed}-late@example.com"], "send_invite_emails": False}
        if self.group_keys:
            invite["group_ids"] = [Ref(self.group_keys[0])]
            invite["group_names"] = [Ref(self.group_keys[-1], "name")]
        members = (V1 + "organization/members",)
        self.add(
            "org.invite",
            "user",
            "PATCH",
            members,
            {"invite_users": invite, "org_id": OrgRef()},
            result_list="added_users",
        )
        account = {"service_accounts": [{"name": f"CI bot {self.plan.seed}"}], "send_invite_emails": False}
        self.add(
            "org.service_account",
            "user",
            "PATCH",
            members,
            {"invite_users": account, "org_id": OrgRef()},
            result_list="added_users",
        )
        self.add(
            "org.service_token",
            "service_token",
            "POST",
            (V1 + "service_token",),
            {
                "name": f"CI token {self.plan.seed}",
                "service_account_id": Ref("org.service_account", "added_users.0.id"),
            },
        )
        self.add(
            "org.api_key", "api_key", "POST", (V1 + "api_key",), {"name": f"seed key {self.plan.seed} 🔑"}
        )

        for i in range(p.org_env_vars):
            body = {
                "object_type": "organization",
                "object_id": OrgRef(),
                "name": env_name(rng.choice(("shared token", "proxy url", "sentry dsn")), i),
                "value": f"org-secret-{rng.getrandbits(64):016x}",
                "metadata": {"scope": "org", "owner": "platform-team"},
                "secret_type": rng.choice(("env_var", "openai", None)),
            }
            if body["secret_type"] is None:
                del body["secret_type"]
            self.add(f"env_var.org.{i}", "env_var", "POST", (V1 + "env_var",), body)

    # ------------------------------------------------------------------ per project

    def project(self, i: int) -> None:
        P = f"p{i}"
        pname = self.names.awkward_project(i) if i % 2 == 1 else self.names.name(PROJECT_WORDS, i)
        self.add(
            P, "project", "POST", (V1 + "project",), {"name": pname, "description": f"Seeded project {i} 📦"}
        )
        self.project_keys.append(P)
        # Cross-project references go to the next project (the last wraps around to the first).
        # Ordering is per op, so two projects referring to each other form no cycle.
        c = _ProjectCtx(i=i, P=P, other=f"p{(i + 1) % self.p.projects}")
        plan_project_logs(self.plan, P, self.rng)
        self._leaves(c)
        self._functions(c)
        self._agent(c)
        self._prompts(c)
        self._prompt_cycle(c)
        self._agent_cycle(c)
        self._experiments(c)
        self._origin_functions(c)
        self._settings(c)
        self._scores(c)
        self._automations(c)
        self._views(c)
        self._env_vars(c)
        self._snapshots(c)
        self._acls(c)

    def _function(self, c: _ProjectCtx, suffix: str, body: dict[str, Any], *, name: str | None = None) -> str:
        c.fn_counter += 1
        k = c.fn_counter
        full_name = name if name is not None else self.names.name(FUNCTION_WORDS, k)
        # Prompts and functions may share one slug namespace per project: suffix f<k> / p<k>.
        body = {"project_id": c.pid, "name": full_name, "slug": slugify(full_name, "fn", f"f{k}"), **body}
        return self.add(c.fn(suffix), "function", "POST", (V1 + "function",), body)

    def _prompt(self, c: _ProjectCtx, suffix: str, body: dict[str, Any], *, name: str | None = None) -> str:
        k = len(c.prompt_keys)
        full_name = name if name is not None else self.names.name(PROMPT_WORDS, k, awkward=k == 1)
        body = {"project_id": c.pid, "name": full_name, "slug": slugify(full_name, "prompt", f"p{k}"), **body}
        key = self.add(f"{c.P}.prompt.{suffix}", "prompt", "POST", (V1 + "prompt",), body)
        c.prompt_keys.append(key)
        return key

    def _leaves(self, c: _ProjectCtx) -> None:
        """Leaves: datasets, tags, span iframes, MCP servers."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        i = c.i
        ds_keys = c.ds_keys
        mcp_keys = c.mcp_keys
        for j in range(p.datasets):
            body = {
                "project_id": pid,
                "name": names.name(DATASET_WORDS, j, awkward=j == 1),
                "description": rng.choice(("Curated by hand", "Sampled from production", None, "ラベル付き")),
                "tags": rng.sample(list(TAG_WORDS), 2),
                "metadata": {"source": rng.choice(("prod", "synthetic", "vendor")), "version": j},
            }
            if body["description"] is None:
                del body["description"]
            k = self.add(f"{P}.ds{j}", "dataset", "POST", (V1 + "dataset",), body)
            ds_keys.append(k)
            plan_dataset_events(self.plan, k, rng)

        for j in range(p.tags):
            body = {
                "project_id": pid,
                "name": TAG_WORDS[j % len(TAG_WORDS)] if j < len(TAG_WORDS) else f"tag {j}",
                "description": "seeded tag",
                "color": COLORS[(i + j) % len(COLORS)],
            }
            if j == 1:
                body["name"] = "⚠️ needs/legal review"
            self.add(f"{P}.tag{j}", "project_tag", "POST", (V1 + "project_tag",), body)

        for j in range(p.span_iframes):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"Trace viewer {n}" if j else names.awkward(n),
                "url": f"https://viewer.example.com/embed/{n}?theme=dark&span={{{{span_id}}}}",
                "description": "Renders the span as a custom view",
                "post_message": bool(j % 2 == 0),
            }
            self.add(f"{P}.iframe{j}", "span_iframe", "POST", (V1 + "span_iframe",), body)

        for j in range(p.mcp_servers):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"MCP tools {n}" if j else f"GitHub MCP {n} 🐙",
                "url": f"https://mcp.example.com/{n}/sse",
                "description": "Model Context Protocol server",
            }
            mcp_keys.append(self.add(f"{P}.mcp{j}", "mcp_server", "POST", (V1 + "mcp_server",), body))

    def _functions(self, c: _ProjectCtx) -> None:
        """Functions: leaves first (the leveling does the ordering, keys document intent)."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        function = partial(self._function, c)

        function(
            "task",
            {
                "function_type": "task",
                "function_data": _inline_code("python", PY_SNIPPETS[0]),
                "description": "normalizes its input",
                "function_schema": {
                    "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
                    "returns": {"type": "string"},
                },
                "tags": ["seed", "task"],
            },
        )
        function(
            "scorer",
            {"function_type": "scorer", "function_data": _inline_code("node", JS_SNIPPETS[2])},
        )
        function(
            "tool",
            {
                "function_type": "tool",
                "function_data": _inline_code("node", JS_SNIPPETS[1]),
                "function_schema": {
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    }
                },
            },
            name=names.awkward(self.next_seq()),
        )
        fn_pre = function(
            "pre",
            {"function_type": "preprocessor", "function_data": _inline_code("python", PY_SNIPPETS[3])},
        )
        function(
            "global",
            {
                "function_type": "scorer",
                "function_data": {
                    "type": "global",
                    "name": rng.choice(("Factuality", "ClosedQA", "Levenshtein", "ExactMatch")),
                    "function_type": "scorer",
                    "config": {"threshold": round(rng.random(), 2)},
                },
            },
        )
        function(
            "llm",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(
                    chat=True, tools=[global_ref("web_search", "tool")], transcript=True
                ),
            },
        )
        function(
            "classifier",
            {
                "function_type": "classifier",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True, parser=True),
            },
        )
        topic_maps = []
        for t in range(2):
            topic_maps.append(
                function(
                    f"topic_map{t}",
                    {
                        "function_data": {
                            "type": "topic_map",
                            "source_facet": "intent" if t == 0 else "sentiment",
                            "embedding_model": "text-embedding-3-small",
                            "bundle_key": f"topic-bundles/{P}/{t}/bundle.bin",
                            "report_key": f"topic-reports/{P}/{t}/report.json",
                            "topic_names": {"0": "billing", "1": "shipping", "2": "退货"},
                            "generation_settings": {
                                "algorithm": "hdbscan" if t == 0 else "kmeans",
                                "dimension_reduction": "umap",
                                "n_clusters": 8,
                                "naming_model": "gpt-4o-mini",
                            },
                            "distance_threshold": 0.35,
                        },
                    },
                )
            )
        function(
            "facet",
            {
                "function_type": "facet",
                "function_data": {
                    "type": "facet",
                    "preprocessor": fn_ref(fn_pre, version=True),
                    "prompt": "What is the user's intent? Answer with one word.",
                    "model": rng.choice(MODELS),
                    "embedding_model": "text-embedding-3-small",
                    "no_match_pattern": "^(none|n/a)$",
                },
            },
        )
        function(
            "batched_facet",
            {
                "function_type": "facet",
                "function_data": {
                    "type": "batched_facet",
                    "preprocessor": fn_ref(fn_pre),
                    "facets": [
                        {"name": "intent", "prompt": "Intent?", "model": "gpt-4o-mini"},
                        {"name": "sentiment", "prompt": "Sentiment?", "no_match_pattern": "neutral"},
                    ],
                    "topic_maps": {
                        "intent": [
                            {
                                "function_name": "intent topics",
                                "topic_map_id": Ref(topic_maps[0]),
                                "topic_map_data": {
                                    "type": "topic_map",
                                    "source_facet": "intent",
                                    "embedding_model": "text-embedding-3-small",
                                },
                            }
                        ],
                        "sentiment": [
                            {
                                "function_name": "sentiment topics",
                                "topic_map_id": Ref(topic_maps[1]),
                                "topic_map_data": {
                                    "type": "topic_map",
                                    "source_facet": "sentiment",
                                    "embedding_model": "text-embedding-3-small",
                                    "topic_names": {"0": "angry", "1": "happy"},
                                },
                            }
                        ],
                    },
                },
            },
        )
        fn_params = function(
            "params",
            {
                "function_type": "parameters",
                "function_data": {
                    "type": "parameters",
                    "data": {"model": rng.choice(MODELS), "temperature": round(rng.random(), 2), "top_k": 8},
                    "__schema": {
                        "type": "object",
                        "properties": {
                            "model": {"type": "string"},
                            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                            "top_k": {"type": "integer"},
                        },
                        "required": ["model"],
                        "additionalProperties": False,
                    },
                },
            },
        )
        function(
            "remote_eval",
            {
                "function_type": "task",
                "function_data": {
                    "type": "remote_eval",
                    "endpoint": f"https://evals.example.com/{P}/run",
                    "eval_name": "nightly regression",
                    "parameters": {"model": "gpt-4o", "retries": 2},
                    "parameters_version": Ref(fn_params, "_xact_id"),
                },
            },
        )
        function(
            "bundle",
            {
                "function_type": "scorer",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "node", "version": "20"},
                        "location": {
                            "type": "experiment",
                            "eval_name": "my-eval",
                            "position": {"type": "scorer", "index": 0},
                        },
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                        "preview": "function score({ output }) { return output.length > 0; }",
                    },
                },
            },
        )
        function(
            "bundle_fn",
            {
                "function_type": "tool",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "python", "version": "3.12"},
                        "location": {"type": "function", "index": 1},
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                    },
                },
            },
        )
        function(
            "bundle_sandbox",
            {
                "function_type": "sandbox",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "python", "version": "3.12"},
                        "location": {
                            "type": "sandbox",
                            "sandbox_spec": {
                                "provider": "modal",
                                "snapshot_ref": f"im-{rng.getrandbits(32):08x}",
                            },
                            "entrypoints": ["main.py"],
                            "eval_name": "sandboxed eval",
                            "parameters": {"timeout": 60},
                        },
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                    },
                },
            },
        )
        for j in range(p.extra_code_functions):
            runtime = rng.choice(("python", "node"))
            code = rng.choice(PY_SNIPPETS if runtime == "python" else JS_SNIPPETS)
            function(
                f"extra{j}",
                {
                    "function_type": rng.choice(("scorer", "task", "tool", "preprocessor")),
                    "function_data": _inline_code(runtime, code),
                    "tags": rng.sample(list(TAG_WORDS), 1),
                },
            )

    def _agent(self, c: _ProjectCtx) -> None:
        """The agent (graph): function nodes by function_id and by project_name + slug."""
        other = c.other
        i = c.i
        function = partial(self._function, c)
        fn_task = c.fn("task")
        fn_llm = c.fn("llm")
        graph_nodes: dict[str, Any] = {
            "input": {"type": "input", "position": {"x": 0, "y": 0}},
            "classify": {
                "type": "function",
                "function": {"function_id": Ref(fn_llm)},
                "position": {"x": 200, "y": 0},
            },
            "lookup": {
                "type": "function",
                "function": {"project_name": Ref(other, "name"), "slug": Ref(f"{other}.fn.tool", "slug")},
                "position": {"x": 400, "y": 0},
            },
            "normalize": {
                "type": "function",
                "function": {"function_id": Ref(fn_task), "version": Ref(fn_task, "_xact_id")},
            },
            "judge": {"type": "function", "function": {"global_function": "Factuality"}},
            "template": {
                "type": "prompt_template",
                "prompt": {"type": "chat", "messages": [{"role": "user", "content": "Combine {{classify}}"}]},
            },
            "gate": {"type": "gate", "condition": "classify.score > 0.5"},
            "constant": {"type": "literal", "value": {"k": 3}},
            "output": {"type": "output", "position": {"x": 800, "y": 0}},
        }
        edges = {}
        for a, b in (
            ("input", "classify"),
            ("classify", "lookup"),
            ("lookup", "normalize"),
            ("normalize", "template"),
        ):
            edges[f"{a}->{b}"] = {
                "source": {"node": a, "variable": "output"},
                "target": {"node": b, "variable": "input"},
                "purpose": "data",
            }
        edges["template->output"] = {
            "source": {"node": "template", "variable": "output"},
            "target": {"node": "output", "variable": "output"},
            "purpose": "messages",
        }
        function(
            "agent",
            {
                "function_type": "task",
                "function_data": {"type": "graph", "nodes": graph_nodes, "edges": edges},
                "description": "A multi-step agent (graph function)",
            },
            name=f"Support agent {i} 🤖",
        )

    def _prompts(self, c: _ProjectCtx) -> None:
        """Prompts."""
        p = self.p
        rng = self.rng
        other = c.other
        prompt = partial(self._prompt, c)
        fn_tool = c.fn("tool")
        mcp_keys = c.mcp_keys

        mcp_map: dict[str, Any] = {
            "inline-docs": {
                "type": "url",
                "url": "https://mcp.example.com/docs/sse",
                "enabled_tools": ["search"],
            },
        }
        for j, mk in enumerate(mcp_keys):
            mcp_map[f"project-server-{j}"] = {"type": "id", "id": Ref(mk), "is_disabled": j > 0}
        prompt(
            "main",
            {
                "description": "Answers with tools",
                "prompt_data": self.prompt_data(
                    chat=True,
                    tools=[
                        fn_ref(fn_tool, version=True),
                        fn_ref(f"{other}.fn.task"),
                        global_ref("calculator", "tool"),
                    ],
                    mcp=mcp_map,
                    transcript=True,
                ),
                "tags": ["production"],
            },
        )
        prompt("completion", {"prompt_data": self.prompt_data(chat=False), "function_type": "llm"})
        prompt(
            "classifier", {"prompt_data": self.prompt_data(chat=True, parser=True), "function_type": "scorer"}
        )
        other_main = f"{other}.prompt.main"
        prompt(
            "copy",
            {
                "description": "Copied from another prompt",
                "prompt_data": {
                    **self.prompt_data(chat=True),
                    "origin": {
                        "prompt_id": Ref(other_main),
                        "project_id": Ref(other),
                        "prompt_version": Ref(other_main, "_xact_id"),
                    },
                },
            },
        )
        for j in range(p.extra_prompts):
            prompt(f"extra{j}", {"prompt_data": self.prompt_data(chat=rng.random() < 0.7)})

    def _prompt_cycle(self, c: _ProjectCtx) -> None:
        """Cycle 1: prompt P uses tool F as a tool; F.origin points at P."""
        i = c.i
        function = partial(self._function, c)
        prompt = partial(self._prompt, c)
        pr_cyc = prompt("cycle", {"prompt_data": self.prompt_data(chat=True)}, name=f"Cycle prompt {i}")
        fn_cyc = function(
            "cycle_tool",
            {
                "function_type": "tool",
                "function_data": _inline_code("python", PY_SNIPPETS[0]),
                "origin": {"object_type": "prompt", "object_id": Ref(pr_cyc), "internal": False},
            },
            name=f"Cycle tool {i}",
        )
        cyc_data = self.prompt_data(chat=True, tools=[fn_ref(fn_cyc)])
        self.add(
            f"{pr_cyc}.close_cycle", None, "PATCH", (V1 + "prompt/", Ref(pr_cyc)), {"prompt_data": cyc_data}
        )
        self.plan.cycles.append(("prompt.tool_functions <-> function.origin(prompt)", pr_cyc, fn_cyc))

    def _agent_cycle(self, c: _ProjectCtx) -> None:
        """Cycle 2: an agent calls a prompt-function that uses the agent as a tool."""
        i = c.i
        function = partial(self._function, c)
        fn_pf = function(
            "cycle_pf",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True),
            },
            name=f"Cycle prompt function {i}",
        )
        fn_cyc_agent = function(
            "cycle_agent",
            {
                "function_type": "task",
                "function_data": {
                    "type": "graph",
                    "nodes": {
                        "in": {"type": "input"},
                        "call": {"type": "function", "function": {"function_id": Ref(fn_pf)}},
                        "out": {"type": "output"},
                    },
                    "edges": {
                        "a": {
                            "source": {"node": "in", "variable": "output"},
                            "target": {"node": "call", "variable": "input"},
                            "purpose": "data",
                        },
                        "b": {
                            "source": {"node": "call", "variable": "output"},
                            "target": {"node": "out", "variable": "output"},
                            "purpose": "data",
                        },
                    },
                },
            },
            name=f"Cycle agent {i}",
        )
        self.add(
            f"{fn_pf}.close_cycle",
            None,
            "PATCH",
            (V1 + "function/", Ref(fn_pf)),
            {"prompt_data": self.prompt_data(chat=True, tools=[fn_ref(fn_cyc_agent)])},
        )
        self.plan.cycles.append(("function.tool_functions <-> graph node function_id", fn_pf, fn_cyc_agent))

    def _experiments(self, c: _ProjectCtx) -> None:
        """Experiments: dataset links, parameters, base_exp_id chains."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        other = c.other
        fn_params = c.fn("params")
        ds_keys = c.ds_keys
        exp_keys = c.exp_keys
        for j in range(p.experiments):
            ds = ds_keys[j % len(ds_keys)] if j % 3 != 2 else f"{other}.ds0"
            body: dict[str, Any] = {
                "project_id": pid,
                "name": names.name(EXPERIMENT_WORDS, j, awkward=j == 1),
                "description": rng.choice(("Nightly run", "Ablation", "Baseline", "Комментарий")),
                "repo_info": {
                    "commit": f"{rng.getrandbits(160):040x}",
                    "branch": rng.choice(("main", "feature/rag-v2", "fix/ünïcode")),
                    "dirty": rng.random() < 0.3,
                    "author_name": "Seed Bot",
                    "author_email": "seed@example.com",
                    "commit_message": "Tune retrieval\n\nLonger body with 'quotes'",
                },
                "metadata": {"model": rng.choice(MODELS), "temperature": round(rng.random(), 2)},
                "tags": rng.sample(list(TAG_WORDS), 2),
                "public": j == 0,
            }
            if j % 4 != 3:
                body["dataset_id"] = Ref(ds)
                body["dataset_version"] = dataset_xact(self.plan, ds, rng)
                body["internal_metadata"] = {
                    "dataset_filter": {"btql": f"metadata.split = 'test-{j}'", "dataset_id": Ref(ds)}
                }
            if j % 2 == 0:
                body["parameters_id"] = Ref(fn_params)
                body["parameters_version"] = Ref(fn_params, "_xact_id")
            if j > 0 and j % 5 != 4:  # chains of base_exp_id, broken every fifth experiment
                body["base_exp_id"] = Ref(exp_keys[j - 1])
            k = self.add(f"{P}.exp{j}", "experiment", "POST", (V1 + "experiment",), body)
            exp_keys.append(k)
            plan_experiment_events(self.plan, k, rng)

    def _origin_functions(self, c: _ProjectCtx) -> None:
        """Functions whose origin points at a project / an experiment / a prompt."""
        other = c.other
        function = partial(self._function, c)
        exp_keys = c.exp_keys
        pr_main = f"{c.P}.prompt.main"
        function(
            "origin_project",
            {
                "function_type": "scorer",
                "function_data": _inline_code("python", PY_SNIPPETS[1]),
                "origin": {"object_type": "project", "object_id": Ref(other)},
            },
        )
        function(
            "origin_experiment",
            {
                "function_type": "scorer",
                "function_data": _inline_code("node", JS_SNIPPETS[2]),
                "origin": {"object_type": "experiment", "object_id": Ref(exp_keys[0]), "internal": True},
            },
        )
        function(
            "origin_prompt",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True),
                "origin": {"object_type": "prompt", "object_id": Ref(pr_main)},
            },
        )

    def _settings(self, c: _ProjectCtx) -> None:
        """Project settings (PATCH only) and the creator."""
        P = c.P
        pid = c.pid
        i = c.i
        fn_pre = c.fn("pre")
        exp_keys = c.exp_keys
        settings: dict[str, Any] = {
            "comparison_key": "input",
            "baseline_experiment_id": Ref(exp_keys[0]),
            "spanFieldOrder": [
                {"object_type": "experiment", "column_id": "input", "position": "0|a", "layout": "full"},
                {
                    "object_type": "experiment",
                    "column_id": "output",
                    "position": "0|b",
                    "layout": "two_column",
                },
                {"object_type": "project_logs", "column_id": "metadata", "position": "0|c", "layout": None},
            ],
            "remote_eval_sources": [
                {"url": f"https://evals.example.com/{P}", "name": "Remote evals", "description": "dev box"},
                {"url": "http://localhost:8300"},
            ],
            "disable_realtime_queries": i % 2 == 1,
            "default_preprocessor": fn_ref(fn_pre, version=True),
        }
        self.add(
            f"{P}.settings",
            None,
            "PATCH",
            (V1 + "project/", pid),
            {"settings": settings, "user_id": self.user(), "description": f"Seeded project {i} (patched)"},
        )

    def _scores(self, c: _ProjectCtx) -> None:
        """Project scores: every score type, online scorers referencing functions."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        fn_scorer = c.fn("scorer")
        score_bodies: list[dict[str, Any]] = [
            {"score_type": "slider", "description": "0..1 quality"},
            {
                "score_type": "categorical",
                "categories": [
                    {"name": "good 👍", "value": 1},
                    {"name": "ok", "value": 0.5},
                    {"name": "bad", "value": 0},
                ],
                "config": {"multi_select": True, "destination": "expected"},
            },
            {"score_type": "weighted", "categories": {"accuracy": 0.7, "style": 0.3}},
            {"score_type": "minimum", "categories": ["accuracy", "safety"]},
            {"score_type": "maximum", "categories": ["helpfulness", "brevity"]},
            {
                "score_type": "online",
                "config": {
                    "online": {
                        "sampling_rate": round(0.05 + rng.random() * 0.5, 2),
                        "scorers": [
                            fn_ref(fn_scorer, version=True),
                            fn_ref(f"{P}.fn.global"),
                            global_ref("Factuality", "scorer"),
                        ],
                        "btql_filter": "metadata.env = 'prod'",
                        "apply_to_root_span": True,
                        "apply_to_span_names": ["llm-call"],
                        "skip_logging": False,
                        "scope": {"type": "trace", "idle_seconds": 30},
                    }
                },
            },
            {"score_type": "free-form", "description": "Reviewer notes"},
        ]
        for j in range(p.extra_scores):
            score_bodies.append(rng.choice(score_bodies[:5]) | {"description": f"extra score {j}"})
        for j, sb in enumerate(score_bodies):
            body = {
                "project_id": pid,
                "name": names.name(("Accuracy", "Helpfulness", "Tone"), j, awkward=j == 3),
                **sb,
            }
            self.add(f"{P}.score{j}", "project_score", "POST", (V1 + "project_score",), body)

    def _automations(self, c: _ProjectCtx) -> None:
        """Automations: every config kind (names are unique org-wide: the spec leaves scope open)."""
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        i = c.i
        fn_facet = c.fn("facet")
        topic_maps = [c.fn("topic_map0"), c.fn("topic_map1")]
        exp_keys = c.exp_keys
        env_slugs = [Ref(k, "slug") for k in self.env_keys]
        automations: list[tuple[str, dict[str, Any]]] = [
            (
                "Alert on errors",
                {
                    "event_type": "logs",
                    "btql_filter": "error IS NOT NULL",
                    "interval_seconds": 300,
                    "action": {"type": "webhook", "url": "https://hooks.example.com/bt?x=1&y=2"},
                },
            ),
            (
                "Slack low scores",
                {
                    "event_type": "logs",
                    "btql_filter": "scores.Factuality < 0.5",
                    "interval_seconds": 3600,
                    "action": {
                        "type": "slack",
                        "workspace_id": "T0SEED",
                        "channel": "#evals-🔔",
                        "message_template": "{{count}} low scores",
                    },
                },
            ),
            (
                "Export traces to S3",
                {
                    "event_type": "btql_export",
                    "export_definition": {"type": "log_traces"},
                    "scope": {"type": "group", "group_by": "metadata.session_id", "idle_seconds": 600},
                    "export_path": f"s3://seed-exports/{P}/traces/",
                    "format": "parquet",
                    "interval_seconds": 86400,
                    "credentials": {
                        "type": "aws_iam",
                        "role_arn": "arn:aws:iam::123456789012:role/bt-export",
                        "external_id": f"ext-{rng.getrandbits(32):08x}",
                    },
                    "batch_size": 1000,
                },
            ),
            (
                "Export query to GCS",
                {
                    "event_type": "btql_export",
                    "export_definition": {
                        "type": "btql_query",
                        "btql_query": "select: * | filter: tags includes 'pii'",
                    },
                    "scope": {"type": "span"},
                    "export_path": f"gs://seed-exports/{P}/query/",
                    "format": "jsonl",
                    "interval_seconds": 3600,
                    "credentials": {
                        "type": "gcp_service_account",
                        "service_account_email": "exporter@seed.iam.gserviceaccount.com",
                    },
                },
            ),
            (
                "Export spans",
                {
                    "event_type": "btql_export",
                    "export_definition": {"type": "log_spans"},
                    "export_path": f"s3://seed-exports/{P}/spans/",
                    "format": "jsonl",
                    "interval_seconds": 600,
                    "credentials": {
                        "type": "aws_iam",
                        "role_arn": "arn:aws:iam::123456789012:role/bt-export",
                        "external_id": "ext-spans",
                    },
                },
            ),
            (
                "Log retention",
                {"event_type": "retention", "object_type": "project_logs", "retention_days": 30},
            ),
            (
                "Experiment retention",
                {"event_type": "retention", "object_type": "experiment", "retention_days": 365},
            ),
            ("Dataset retention", {"event_type": "retention", "object_type": "dataset", "retention_days": 0}),
            (
                "Prompt deployed",
                {
                    "event_type": "environment_update",
                    "environment_filter": env_slugs[:2],
                    "action": {"type": "webhook", "url": "https://hooks.example.com/deploy"},
                },
            ),
            (
                "Topics on experiment",
                {
                    "event_type": "topic",
                    "sampling_rate": 0.25,
                    "facet_functions": [fn_ref(fn_facet, version=True), global_ref("Sentiment", "facet")],
                    "topic_map_functions": [
                        {"function": fn_ref(topic_maps[0])},
                        {
                            "function": fn_ref(topic_maps[1], version=True),
                            "btql_filter": "metadata.lang = 'en'",
                        },
                    ],
                    "scope": {"type": "trace", "idle_seconds": 120},
                    "data_scope": {"type": "experiment", "experiment_id": Ref(exp_keys[0])},
                    "btql_filter": "is_root",
                    "rerun_seconds": 3600,
                    "relabel_overlap_seconds": 120,
                    "backfill_time_range": {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
                },
            ),
            (
                "Topics on logs",
                {
                    "event_type": "topic",
                    "sampling_rate": 1,
                    "facet_functions": [fn_ref(fn_facet)],
                    "topic_map_functions": [{"function": fn_ref(topic_maps[0])}],
                    "data_scope": {"type": "project_logs"},
                    "backfill_time_range": "7d",
                },
            ),
        ]
        if i % 2 == 1:  # vary the kind mix a little per project
            automations.append(
                (
                    "Environment change (all)",
                    {
                        "event_type": "environment_update",
                        "action": {"type": "slack", "workspace_id": "T0SEED", "channel": "#deploys"},
                    },
                )
            )
        for j, (title, config) in enumerate(automations):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"{title} {n}" if j != 1 else names.awkward(n),
                "description": f"seeded automation ({config['event_type']})",
                "config": config,
            }
            self.add(f"{P}.automation{j}", "project_automation", "POST", (V1 + "project_automation",), body)

    def _views(self, c: _ProjectCtx) -> None:
        """Views (with user_id) on the project, its experiments and datasets."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        ds_keys = c.ds_keys
        exp_keys = c.exp_keys
        view_specs: list[tuple[str, Any, str, dict[str, Any]]] = [
            (
                "project",
                pid,
                "experiments",
                {
                    "view_data": {"search": {"filter": ["tags includes 'good'"], "sort": ["created desc"]}},
                    "options": {"columnVisibility": {"metadata": False}, "columnOrder": ["name", "scores"]},
                },
            ),
            (
                "project",
                pid,
                "monitor",
                {
                    "options": {
                        "viewType": "monitor",
                        "options": {
                            "spanType": "range",
                            "rangeValue": "7d",
                            "projectId": pid,
                            "type": "project",
                            "groupBy": "metadata.model",
                        },
                    }
                },
            ),
            (
                "project",
                pid,
                "logs",
                {"view_data": {"search": {"filter": ["metadata.env = 'prod'"], "match": ["refund"]}}},
            ),
            (
                "experiment",
                Ref(exp_keys[0]),
                "experiment",
                {"options": {"rowHeight": "tall", "layout": "grid", "grouping": "metadata.model"}},
            ),
            ("dataset", Ref(ds_keys[0]), "dataset", {"view_data": {"search": {"tag": ["golden"]}}}),
        ]
        for j in range(p.extra_views):
            ek = exp_keys[(j + 1) % len(exp_keys)]
            dk = ds_keys[(j + 1) % len(ds_keys)]
            view_specs.append(
                rng.choice(
                    (
                        ("experiment", Ref(ek), "experiment", {"options": {"chartHeight": 240}}),
                        ("dataset", Ref(dk), "dataset", {"view_data": {"search": {"sort": ["id asc"]}}}),
                        ("project", pid, "datasets", {}),
                    )
                )
            )
        for j, (otype, oid, vtype, extra) in enumerate(view_specs):
            n = self.next_seq()
            body = {
                "object_type": otype,
                "object_id": oid,
                "view_type": vtype,
                "name": f"My {vtype} view {n}" if j != 2 else names.awkward(n),
                "user_id": self.user(),
                **extra,
            }
            self.add(f"{P}.view{j}", "view", "POST", (V1 + "view",), body)

    def _env_vars(self, c: _ProjectCtx) -> None:
        """Env vars on the project and on functions."""
        p = self.p
        rng = self.rng
        P = c.P
        pid = c.pid
        fn_task = c.fn("task")
        fn_tool = c.fn("tool")
        for j in range(p.project_env_vars):
            body = {
                "object_type": "project",
                "object_id": pid,
                "name": env_name(
                    rng.choice(("database url", "retriever key", "vendor token")), self.next_seq()
                ),
                "value": f"proj-secret-{rng.getrandbits(64):016x}",
            }
            if j == 0:
                body["metadata"] = {"description": "used by tools", "rotated": "2026-01-01"}
            self.add(f"{P}.env{j}", "env_var", "POST", (V1 + "env_var",), body)
        for j, fk in enumerate((fn_tool, fn_task)):
            body = {
                "object_type": "function",
                "object_id": Ref(fk),
                "name": env_name("weather api key" if j == 0 else "normalizer mode", self.next_seq()),
                "value": f"fn-secret-{rng.getrandbits(64):016x}",
                "secret_type": "env_var",
            }
            self.add(f"{P}.fnenv{j}", "env_var", "POST", (V1 + "env_var",), body)

    def _snapshots(self, c: _ProjectCtx) -> None:
        """Dataset snapshots."""
        p = self.p
        rng = self.rng
        names = self.names
        ds_keys = c.ds_keys
        for dk in ds_keys:
            for s in range(p.snapshots_per_dataset):
                n = self.next_seq()
                body = {
                    "dataset_id": Ref(dk),
                    "name": f"snapshot {n} (v{s + 1})" if s or n % 3 else names.awkward(n),
                    "description": rng.choice(("before relabel", "release candidate", "☃ frozen")),
                    "xact_id": dataset_xact(self.plan, dk, rng),
                }
                self.add(f"{dk}.snapshot{s}", "dataset_snapshot", "POST", (V1 + "dataset_snapshot",), body)

    def _acls(self, c: _ProjectCtx) -> None:
        """ACLs on the project's objects."""
        self.project_acls(c.P, c.exp_keys, c.ds_keys, c.prompt_keys, c.fn("task"))

    def prompt_data(
        self,
        *,
        chat: bool,
        tools: list[dict[str, Any]] | None = None,
        parser: bool = False,
        mcp: dict[str, Any] | None = None,
        transcript: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        if chat:
            block: dict[str, Any] = {
                "type": "chat",
                "messages": [
                    {"role": "system", "content": rng.choice(MESSAGES)},
                    {"role": "user", "content": "{{input}}"},
                ],
            }
            if rng.random() < 0.3:
                block["messages"].append({"role": "assistant", "content": "Sure — here you go."})
            if transcript:
                block["messages"].extend(self._transcript())
        else:
            block = {"type": "completion", "content": "Complete this: {{input}} →"}
        data: dict[str, Any] = {
            "prompt": block,
            "options": {
                "model": rng.choice(MODELS),
                "params": {
                    "temperature": round(rng.random(), 2),
                    "max_tokens": rng.choice((256, 1024, 4096)),
                },
            },
            "template_format": rng.choice(("mustache", "nunjucks", "none")),
        }
        if parser:
            data["parser"] = {
                "type": "llm_classifier",
                "use_cot": True,
                "choice_scores": {"A": 1, "B": 0.5, "C": 0},
                "choice": ["A", "B", "C"],
                "allow_no_match": False,
            }
        if tools:
            data["tool_functions"] = tools
        if mcp:
            data["mcp"] = mcp
        return data

    def _transcript(self) -> list[dict[str, Any]]:
        """Few-shot messages carrying LLM-side ids (file, tool call, reasoning): not Braintrust objects."""
        rng = self.rng
        call_id = f"call_{rng.getrandbits(64):016x}"
        return [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this invoice? 🧾"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://files.example.com/invoice.png", "detail": "low"},
                    },
                    {
                        "type": "file",
                        "file": {"file_id": f"file-{rng.getrandbits(64):016x}", "filename": "invoice.pdf"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": '{"id": 42}'},
                    }
                ],
                "reasoning": [{"id": f"rs_{rng.getrandbits(64):016x}", "content": "Need the order first."}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"status": "shipped"}'},
        ]

    # ------------------------------------------------------------------ ACLs

    def project_acls(
        self, P: str, exp_keys: list[str], ds_keys: list[str], prompt_keys: list[str], fn_key: str
    ) -> None:
        rng = self.rng
        custom_role = Ref(rng.choice(self.role_keys)) if self.role_keys else SystemRoleRef(0)
        group = Ref(rng.choice(self.group_keys)) if self.group_keys else None
        items: list[dict[str, Any]] = [
            {"object_type": "project", "object_id": Ref(P), "group_id": group, "role_id": SystemRoleRef(1)},
            {
                "object_type": "project",
                "object_id": Ref(P),
                "user_id": self.user(),
                "permission": "read",
                "restrict_object_type": "experiment",
            },
            {"object_type": "project_log", "object_id": Ref(P), "user_id": self.user(), "permission": "read"},
            {
                "object_type": "experiment",
                "object_id": Ref(exp_keys[0]),
                "group_id": group,
                "permission": "update",
            },
            {
                "object_type": "dataset",
                "object_id": Ref(ds_keys[0]),
                "user_id": self.user(),
                "role_id": custom_role,
            },
            {
                "object_type": "prompt",
                "object_id": Ref(prompt_keys[0]),
                "group_id": group,
                "permission": "read",
            },
            {
                "object_type": "prompt",
                "object_id": Ref(fn_key),
                "user_id": self.user(),
                "permission": "update",
            },
        ]
        if self.p.acl_every_object:
            for ek in exp_keys[1:]:
                items.append(
                    {
                        "object_type": "experiment",
                        "object_id": Ref(ek),
                        "user_id": self.user(),
                        "permission": "read",
                    }
                )
            for dk in ds_keys[1:]:
                items.append(
                    {
                        "object_type": "dataset",
                        "object_id": Ref(dk),
                        "group_id": group,
                        "role_id": custom_role,
                    }
                )
        items = [{k: v for k, v in it.items() if v is not None} for it in items]
        # Half through POST /v1/acl, the rest in one batch_update.
        half = len(items) // 2
        for j, item in enumerate(items[:half]):
            self.add(f"{P}.acl{j}", "acl", "POST", (V1 + "acl",), item)
        self.add(
            f"{P}.acl_batch",
            "acl",
            "POST",
            (V1 + "acl/batch_update",),
            {"add_acls": items[half:]},
            result_list="added_acls",
        )

    def org_acls(self) -> None:
        rng = self.rng
        g = [Ref(k) for k in self.group_keys] or [None]
        r = [Ref(k) for k in self.role_keys] or [SystemRoleRef(0)]
        items: list[dict[str, Any]] = [
            {"object_type": "organization", "object_id": OrgRef(), "group_id": g[0], "role_id": r[-1]},
            {
                "object_type": "organization",
                "object_id": OrgRef(),
                "user_id": self.user(),
                "role_id": SystemRoleRef(2),
            },
            {
                "object_type": "organization",
                "object_id": OrgRef(),
                "user_id": self.user(),
                "permission": "read",
                "restrict_object_type": "project",
            },
            {"object_type": "org_member", "object_id": OrgRef(), "group_id": g[-1], "permission": "read"},
            {"object_type": "org_project", "object_id": OrgRef(), "group_id": g[-1], "permission": "create"},
            {"object_type": "group", "object_id": g[0], "user_id": self.user(), "permission": "update"},
            {"object_type": "role", "object_id": r[0], "group_id": g[-1], "permission": "read"},
            {"object_type": "role", "object_id": r[-1], "user_id": self.user(), "permission": "delete"},
        ]
        for j, item in enumerate(items):
            item = {k: v for k, v in item.items() if v is not None}
            if "object_id" not in item:
                continue
            self.add(f"org.acl{j}", "acl", "POST", (V1 + "acl",), item)
        # A batch that mixes organization-level grants to several groups.
        batch = [
            {"object_type": "org_project", "object_id": OrgRef(), "group_id": gk, "role_id": rng.choice(r)}
            for gk in g[: max(1, len(g) // 2)]
            if gk is not None
        ]
        if batch:
            self.add(
                "org.acl_batch",
                "acl",
                "POST",
                (V1 + "acl/batch_update",),
                {"add_acls": batch},
                result_list="added_acls",
            )


def build_plan(profile: str | Profile, seed: int = 0) -> Plan:
    """The full, deterministic plan for ``profile`` and ``seed``."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    planner = _Planner(prof, seed)
    planner.org()
    for i in range(prof.projects):
        planner.project(i)
    planner.org_acls()
    return planner.plan
