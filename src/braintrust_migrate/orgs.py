"""Which organization a key acts in: the only one it sees, or the one named by *_ORG_NAME."""

from __future__ import annotations

from typing import Any

from braintrust_migrate.config import ConfigError

ORG_VARS = {"source": "BT_SOURCE_ORG_NAME", "dest": "BT_DEST_ORG_NAME"}


class OrgChoiceError(ConfigError):
    """The key's orgs and the configured org name do not pick exactly one org."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def choose_org(orgs: list[dict[str, Any]], org_name: str | None, side: str) -> dict[str, Any]:
    var = ORG_VARS[side]
    names = ", ".join(str(org.get("name")) for org in orgs)
    if org_name:
        for org in orgs:
            if org.get("name") == org_name:
                return org
        raise OrgChoiceError(
            f"{var}={org_name!r} is not among the orgs this key sees: {names}",
            f"set {var} to one of those names",
        )
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise OrgChoiceError("the key sees no organization", "use a key created inside the org")
    raise OrgChoiceError(
        f"the key sees {len(orgs)} orgs ({names}) and {var} is not set", f"set {var} to the org to use"
    )


class SameOrgError(OrgChoiceError):
    """Both keys act in one org: a migration would rewrite its own source."""


def ensure_distinct_orgs(
    source: dict[str, Any], dest: dict[str, Any], *, renames_every_project: bool = False
) -> None:
    """Refuse (exit 2) when source and destination are one org, judged by org id, not name.

    `renames_every_project` is the hook for copying projects inside one org under new
    names: only then may both sides be the same org.
    """
    if source.get("id") != dest.get("id") or renames_every_project:
        return
    raise SameOrgError(
        f"the source and destination keys both act in org {source.get('name')!r} (id {source.get('id')}):"
        " migrating an org into itself would rewrite the source",
        "set BT_DEST_API_KEY (and BT_DEST_URL) to a key of the destination org",
    )
