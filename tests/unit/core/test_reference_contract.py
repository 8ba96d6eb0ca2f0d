"""The engine's reference table covers every id-bearing field the sandbox's models know.

A sandbox row (from the API spec) without an engine row would be copied with its source id:
a leak. Only fields the tool never writes are exempt, by rule: the owner is no migrated type,
or the field is not among the fields its type copies, or it is a PATCH delta (`add_*`)."""

from __future__ import annotations

import pytest

from braintrust_migrate.engine.refs import REFS_BY_OWNER
from braintrust_migrate.engine.resources import RESOURCE_TYPES
from braintrust_migrate.sandbox.core.references import REFERENCES as SANDBOX_REFS


def _engine_owners(kind: str) -> list[str]:
    """The engine kinds that write a sandbox owner's fields: the type itself and its facets."""
    return [rt.kind for rt in RESOURCE_TYPES if rt.kind == kind or rt.facet_of == kind]


def _written(kind: str, path: str) -> bool:
    top = path.split(".")[0].split("[")[0]
    return any(top in rt.fields for rt in RESOURCE_TYPES if rt.kind == kind or rt.facet_of == kind)


def _exempt(ref) -> str | None:
    if not _engine_owners(ref.owner):
        return "not migrated"
    if ref.path.startswith("add_"):
        return "a PATCH delta"
    if not _written(ref.owner, ref.path):
        return "never written"
    return None


COVERED = [r for r in SANDBOX_REFS if _exempt(r) is None]


@pytest.mark.parametrize("ref", COVERED, ids=[f"{r.owner}.{r.path}" for r in COVERED])
def test_every_sandbox_reference_has_an_engine_reference(ref):
    path = ref.path.replace("[*]", "[]")
    engine = {(r.owner, r.path) for owner in _engine_owners(ref.owner) for r in REFS_BY_OWNER.get(owner, ())}
    assert any((owner, path) in engine for owner in _engine_owners(ref.owner)), (
        f"the sandbox knows {ref.owner}.{ref.path} -> {ref.targets}; engine/refs.py has no row for it"
    )


def test_the_exemptions_are_few_and_named():
    exempt = sorted({f"{r.owner}.{r.path}: {_exempt(r)}" for r in SANDBOX_REFS if _exempt(r)})
    assert exempt == [
        "group.add_member_groups[*]: a PATCH delta",
        "group.add_member_users[*]: a PATCH delta",
        "project.user_id: never written",
        "role.add_member_roles[*]: a PATCH delta",
        "service_token.service_account_id: not migrated",
    ]
