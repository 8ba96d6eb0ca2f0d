"""Plan placeholders for the seed's events phase (kept apart so ``plan`` imports nothing heavy).

The object plan cannot hold event rows (there may be a million of them, and how
many depends on ``--rows``, not on the plan), but two event steps must happen in
the middle of it: a dataset's first rows have to exist, and their transaction id
be read back, before the experiments and snapshots that pin that dataset version
are created. The plan therefore holds ops whose body is one of these markers;
the executor hands such ops to :class:`braintrust_migrate.sandbox.seed.events.EventsPhase`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventRowsMarker:
    """Op body: write the initial rows of the dataset planned as ``container`` (op key)."""

    object_type: str
    container: str


@dataclass(frozen=True)
class DatasetVersionMarker:
    """Op body: read back the newest ``_xact_id`` of ``container``'s rows.

    The op's response is ``{"events": [{"_xact_id": ..., "id": ...}, ...]}``, newest
    first (the shape of a fetch), so ``Ref(op_key, "events.0._xact_id")`` is the
    dataset version to pin.
    """

    container: str


EventsMarker = EventRowsMarker | DatasetVersionMarker
