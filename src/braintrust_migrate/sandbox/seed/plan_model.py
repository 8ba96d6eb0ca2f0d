"""Seed plan data: placeholders, :class:`Op`, :class:`Plan` and the size profiles (:class:`Profile`).

Re-exported by :mod:`.plan`; see its docstring for how the pieces fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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
