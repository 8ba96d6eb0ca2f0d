"""Seed ACLs: on each project's objects, and organization-level grants (planned last)."""

from __future__ import annotations

from typing import Any

from .plan_base import V1, PlannerBase, ProjectCtx
from .plan_model import OrgRef, Ref, SystemRoleRef


class AclPlanner(PlannerBase):
    def _acls(self, c: ProjectCtx) -> None:
        """ACLs on the project's objects."""
        self.project_acls(c.P, c.exp_keys, c.ds_keys, c.prompt_keys, c.fn("task"))

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
        g: list[Ref | None] = [Ref(k) for k in self.group_keys] or [None]
        r: list[Ref | SystemRoleRef] = [Ref(k) for k in self.role_keys] or [SystemRoleRef(0)]
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
