"""Names of what a user can select with --resources / MIGRATION_RESOURCES, read from the type
table so that configuration can reject a typo before anything runs."""

from __future__ import annotations

from braintrust_migrate.engine.resources import SELECTABLE, STREAM_SELECTIONS

ALL_RESOURCES: tuple[str, ...] = (*(rt.name for rt in SELECTABLE), *STREAM_SELECTIONS)
