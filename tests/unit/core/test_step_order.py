"""The run's step order (engine/steps.py): rows after the objects by default; with overlap, a rows
step waits for nothing as a whole (each container waits for its own object in the stage)."""

from __future__ import annotations

from braintrust_migrate.engine.resources import EVENT_STREAMS, RESOURCE_TYPES
from braintrust_migrate.engine.steps import dependencies


def waits(overlap: bool) -> dict[str, set[str]]:
    graph = dependencies(RESOURCE_TYPES, EVENT_STREAMS, overlap=overlap)
    return {step.name: {dep.name for dep in deps} for step, deps in graph.items()}


def test_rows_wait_for_the_objects_unless_they_overlap() -> None:
    plain, overlapped = waits(False), waits(True)
    rows = [name for name in plain if name.startswith("rows:")]
    assert rows and all("objects" in plain[name] for name in rows)
    assert all(overlapped[name] == set() for name in rows)
    # What needs the rows still waits for them either way.
    for graph in (plain, overlapped):
        repins = [name for name in graph if name.startswith("repin:")]
        assert repins and all(any(dep.startswith("rows:") for dep in graph[name]) for name in repins)


def test_what_pins_rows_waits_per_container_yet_shards_still_leave_it_for_later() -> None:
    from braintrust_migrate.engine.shards import prune
    from braintrust_migrate.engine.steps import per_container_pins

    whole = dependencies(RESOURCE_TYPES, EVENT_STREAMS)
    run = {step.name: {dep.name for dep in deps} for step, deps in per_container_pins(whole).items()}
    # No step waits for a rows step as a whole: its objects wait for their own containers' rows.
    assert all(not dep.startswith("rows:") for deps in run.values() for dep in deps)
    assert run["after_rows"] and run["repin:dataset"] == {"objects"}
    # Rows still wait for the objects, and the objects-only run leaves what needs rows out.
    assert all("objects" in run[name] for name in run if name.startswith("rows:"))
    objects_only = {step.name for step in prune(whole, "objects")}
    assert "after_rows" not in objects_only and "repin:dataset" not in objects_only
