"""Which destination objects, not in our id map, count as unfinished copies (completed)
rather than conflicts: pure cases of the rule, no server."""

from __future__ import annotations

import pytest

from braintrust_migrate.engine.apply import lacks_only_references

SOURCE = {"name": "e", "parameters_id": "f-1", "parameters_version": "200", "description": "d"}


@pytest.mark.parametrize(
    ("dest", "unfinished"),
    [
        ({**SOURCE, "parameters_version": "100"}, True),  # an older pin of the same target: stale
        ({**SOURCE, "parameters_version": "300"}, False),  # a newer pin: someone moved it on purpose
        ({**SOURCE, "parameters_id": "f-2", "parameters_version": "100"}, False),  # another target
        ({**SOURCE, "parameters_version": "100", "description": "mine"}, False),  # and an edit
        (SOURCE, False),  # equal: plain adoption, nothing to complete
    ],
)
def test_stale_version_pins(dest: dict, unfinished: bool) -> None:
    assert lacks_only_references("experiment", SOURCE, dest) is unfinished


def test_prompt_origin_pinned_to_an_older_version_is_stale() -> None:
    source = {"name": "p", "slug": "p", "prompt_data": {"origin": {"prompt_id": "o", "prompt_version": "9"}}}
    dest = {"name": "p", "slug": "p", "prompt_data": {"origin": {"prompt_id": "o", "prompt_version": "7"}}}
    assert lacks_only_references("prompt", source, dest)
    assert not lacks_only_references("prompt", dest, source)
