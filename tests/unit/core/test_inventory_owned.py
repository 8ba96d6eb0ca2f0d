"""Per-owner listings are remembered per type: listing one type of an owner does not stand in for
another type of the same owner."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from braintrust_migrate.engine.inventory import Inventory, load_owned
from braintrust_migrate.engine.resources import BY_NAME, ResourceType

VIEWS = BY_NAME["views"]
# A second type listed per owner, as a future endpoint would be declared.
PANELS = dataclasses.replace(VIEWS, name="panels", kind="panel", path="/v1/panel")


class OwnedListings:
    """Answers `list_owned` from a table and records every call."""

    side = "source"

    def __init__(self, table: dict[tuple[str, str, str], list[dict[str, Any]]]) -> None:
        self.table = table
        self.calls: list[tuple[str, str, str]] = []

    async def list_owned(self, rt: ResourceType, object_type: str, object_id: str) -> list[dict[str, Any]]:
        self.calls.append((rt.kind, object_type, object_id))
        return self.table.get((rt.kind, object_type, object_id), [])


def test_a_second_per_owner_type_of_the_same_owner_is_listed() -> None:
    owner = ("project", "p1")
    view = {"id": "v1", "object_type": "project", "object_id": "p1", "name": "all rows"}
    panel = {"id": "q1", "object_type": "project", "object_id": "p1", "name": "scores"}
    source = OwnedListings({("view", *owner): [view], ("panel", *owner): [panel]})
    inventory = Inventory("source")

    async def run() -> None:
        await load_owned(source, inventory, VIEWS, [owner])  # type: ignore[arg-type]
        await load_owned(source, inventory, PANELS, [owner])  # type: ignore[arg-type]
        await load_owned(source, inventory, VIEWS, [owner])  # type: ignore[arg-type]

    asyncio.run(run())

    assert source.calls == [("view", *owner), ("panel", *owner)]  # each once, the repeat skipped
    assert inventory.get("view", "v1") == view
    assert inventory.get("panel", "q1") == panel
