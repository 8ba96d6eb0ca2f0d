"""`decide`: unchanged / updated / conflict for an object the destination already has.

The whole table: ours (in the id map) or not x source changed x destination changed x
--overwrite x a secret in the body x unfinished (an earlier run's object lacking references)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from braintrust_migrate.engine.apply import decide
from braintrust_migrate.engine.checksum import checksum
from braintrust_migrate.engine.state import Mapping

BODY = {"name": "p1", "description": "new text", "metadata": {"k": [1, 2]}}
SRC_SUM = "source-sum-now"
REASON = "some_reason"


def ctx(overwrite: bool) -> Any:
    return SimpleNamespace(options=SimpleNamespace(overwrite=overwrite))


def dest_with(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A destination object holding `body`, plus server fields, and its writable body."""
    return {"id": "dest-1", "created": "2024-01-01", "org_id": "o", **body}, dict(body)


SAME_DEST = dest_with(BODY)
EDITED_DEST = dest_with({**BODY, "description": "edited by hand"})


def mapping(src_changed: bool, dest_sum: str | None) -> Mapping:
    return Mapping("project", "src-1", "dest-1", "old-source-sum" if src_changed else SRC_SUM, dest_sum)


def run(
    mapped: Mapping | None,
    dest: tuple[dict[str, Any], dict[str, Any]],
    *,
    overwrite: bool = False,
    has_secret: bool = False,
    unfinished: bool = False,
) -> tuple[str, str | None, list[str]]:
    return decide(
        ctx(overwrite),
        mapped,
        SRC_SUM,
        BODY,
        dest[0],
        dest[1],
        has_secret=has_secret,
        reason=REASON,
        unfinished=unfinished,
    )


# --- ours -----------------------------------------------------------------------------------
# The destination state for an object in our id map, by how its checksum compares with what we
# last recorded:
#   same        - as we left it
#   unknown     - we created it but died before reading it back (no checksum recorded)
#   edited      - someone changed it in the destination
#   holds_ours  - changed since our record, but to exactly what we would write now (our own
#                 write, killed before it was recorded)
OURS_DEST = {
    "same": (checksum(SAME_DEST[1]), SAME_DEST),
    "unknown": (None, EDITED_DEST),
    "edited": (checksum(SAME_DEST[1]), EDITED_DEST),
    "holds_ours": ("checksum-of-an-older-write", SAME_DEST),
}


def ours_expected(
    src_changed: bool, dest_state: str, overwrite: bool, has_secret: bool
) -> tuple[str, str | None]:
    edited = dest_state == "edited" or (dest_state == "holds_ours" and has_secret)
    if dest_state == "holds_ours" and not has_secret:
        return "unchanged", REASON
    if edited:
        return ("updated", REASON) if overwrite else ("conflict", "changed_in_destination")
    return ("updated", REASON) if src_changed else ("unchanged", REASON)


OURS_CASES = list(itertools.product([False, True], OURS_DEST, [False, True], [False, True], [False, True]))


@pytest.mark.parametrize(
    ("src_changed", "dest_state", "overwrite", "has_secret", "unfinished"),
    OURS_CASES,
    ids=[
        f"src_{'changed' if c else 'same'}-dest_{d}-{'overwrite' if o else 'keep'}-"
        f"{'secret' if s else 'plain'}-{'unfinished' if u else 'finished'}"
        for c, d, o, s, u in OURS_CASES
    ],
)
def test_ours(
    src_changed: bool, dest_state: str, overwrite: bool, has_secret: bool, unfinished: bool
) -> None:
    dest_sum, dest = OURS_DEST[dest_state]
    action, reason, paths = run(
        mapping(src_changed, dest_sum),
        dest,
        overwrite=overwrite,
        has_secret=has_secret,
        unfinished=unfinished,
    )
    # `unfinished` is about objects not in the map: it never changes a decision for ours.
    assert (action, reason) == ours_expected(src_changed, dest_state, overwrite, has_secret)
    if action == "conflict":
        assert paths == (["description"] if dest_state == "edited" else [])
    else:
        assert paths == []


# --- not ours -------------------------------------------------------------------------------


def not_ours_expected(
    same_content: bool, overwrite: bool, has_secret: bool, unfinished: bool
) -> tuple[str, str | None]:
    if same_content and not has_secret:
        return "unchanged", REASON  # adopted
    if unfinished or overwrite:
        return "updated", REASON  # completed, or replaced on request
    return "conflict", "exists_with_different_content"


NOT_OURS_CASES = list(itertools.product([True, False], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize(
    ("same_content", "overwrite", "has_secret", "unfinished"),
    NOT_OURS_CASES,
    ids=[
        f"{'same' if c else 'different'}-{'overwrite' if o else 'keep'}-"
        f"{'secret' if s else 'plain'}-{'unfinished' if u else 'finished'}"
        for c, o, s, u in NOT_OURS_CASES
    ],
)
def test_not_ours(same_content: bool, overwrite: bool, has_secret: bool, unfinished: bool) -> None:
    dest = SAME_DEST if same_content else EDITED_DEST
    action, reason, paths = run(None, dest, overwrite=overwrite, has_secret=has_secret, unfinished=unfinished)
    assert (action, reason) == not_ours_expected(same_content, overwrite, has_secret, unfinished)
    if action == "conflict":
        # A secret cannot be read back: the same visible content still conflicts, with no path.
        assert paths == ([] if same_content else ["description"])
    else:
        assert paths == []


# --- literal rows, readable without the tables above --------------------------------------------


def test_literal_rows() -> None:
    recorded = checksum(SAME_DEST[1])
    assert run(mapping(False, recorded), SAME_DEST) == ("unchanged", REASON, [])
    assert run(mapping(True, recorded), SAME_DEST) == ("updated", REASON, [])
    assert run(mapping(True, recorded), EDITED_DEST) == (
        "conflict",
        "changed_in_destination",
        ["description"],
    )
    assert run(mapping(True, recorded), EDITED_DEST, overwrite=True) == ("updated", REASON, [])
    assert run(None, SAME_DEST) == ("unchanged", REASON, [])
    assert run(None, EDITED_DEST) == ("conflict", "exists_with_different_content", ["description"])
    assert run(None, EDITED_DEST, unfinished=True) == ("updated", REASON, [])


def test_destination_fields_outside_the_body_do_not_count() -> None:
    # Server fields (id, created) and fields we do not write are not compared for adoption.
    dest = ({**SAME_DEST[0], "extra_server_field": {"x": 1}}, SAME_DEST[1])
    assert run(None, dest) == ("unchanged", REASON, [])


def test_a_destination_lacking_a_body_field_is_a_difference() -> None:
    body_without = {k: v for k, v in BODY.items() if k != "metadata"}
    action, why, paths = run(None, dest_with(body_without))
    assert (action, why, paths) == ("conflict", "exists_with_different_content", ["metadata"])


def test_nested_difference_is_reported_by_path() -> None:
    dest = dest_with({**BODY, "metadata": {"k": [1, 3]}})
    assert run(None, dest)[2] == ["metadata.k[1]"]
