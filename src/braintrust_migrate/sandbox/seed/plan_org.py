"""Org-level seed planning: AI secrets, environments, role and group chains, members, org env vars."""

from __future__ import annotations

from typing import Any

from .names import SECRET_TYPES, env_name, slugify
from .plan_base import V1, PlannerBase
from .plan_model import OrgRef, Ref, SystemRoleRef


class OrgPlanner(PlannerBase):
    def org(self) -> None:
        p, rng = self.p, self.rng
        self.plan.invite_emails = [f"seed-{self.plan.seed}-user-{i}@example.com" for i in range(p.min_users)]

        for i in range(p.ai_secrets):
            stype = SECRET_TYPES[i % len(SECRET_TYPES)]
            # One dict type for every request body below (they hold refs, lists and maps).
            body: dict[str, Any] = {
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
                body = {"name": name, "description": f"chain {c} level {j}"}
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
        invite: dict[str, Any] = {
            "emails": [f"seed-{self.plan.seed}-late@example.com"],
            "send_invite_emails": False,
        }
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
