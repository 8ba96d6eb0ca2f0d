"""Names of the resource types a user can select with --resources / MIGRATION_RESOURCES.

The migration engine describes each of these as data; this module only holds the
names so that configuration can reject a typo before anything runs.
"""

from __future__ import annotations

ORG_RESOURCES: tuple[str, ...] = (
    "ai_secrets",
    "roles",
    "groups",
    "environments",
    "org_env_vars",
)

PROJECT_RESOURCES: tuple[str, ...] = (
    "projects",
    "datasets",
    "project_tags",
    "span_iframes",
    "mcp_servers",
    "functions",
    "prompts",
    "project_scores",
    "project_automations",
    "experiments",
    "views",
    "env_vars",
    "logs",
    "dataset_snapshots",
)

POST_RESOURCES: tuple[str, ...] = ("acls",)

ALL_RESOURCES: tuple[str, ...] = ORG_RESOURCES + PROJECT_RESOURCES + POST_RESOURCES
