"""Writing rows: batches bounded by rows and bytes; a 413 splits the batch; a single row
still too large has its largest fields moved to attachments, else it is reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from braintrust_migrate.client import ApiClient, ApiError, PayloadTooLargeError
from braintrust_migrate.engine.events.attachments import Attachments, AttachmentsUnsupported

ENVELOPE = len(b'{"events":[]}')
OFFLOAD_ROUNDS = 4


@dataclass(slots=True)
class Encoded:
    """A row ready to send. Until its batch is packed it keeps the insert row itself, which shares
    its values with the parsed source page (per-row JSON bytes measured ~100 MiB more); once
    packed, only the batch's body holds it."""

    row: dict[str, Any] | None  # None once packed
    size: int  # its encoded bytes, or the mean row of a page that fits one request whole (estimate)
    key: str | None  # source _pagination_key
    src_xact: int | None
    comments: list[dict[str, Any]] = field(default_factory=list)
    container: str | None = None  # its source container, when one stream reads several
    row_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.row_id = str(self.row.get("id")) if self.row is not None else ""

    def exact_size(self) -> int:
        """Its encoded bytes (+1 separator), for what a report or a lone-row decision needs."""
        return len(orjson.dumps(self.row)) + 1 if self.row is not None else self.size


@dataclass(slots=True)
class Packed:
    """A batch encoded as it waits for its send: a parsed row takes ~3.4x its JSON in Python
    objects, so a batch held as its body takes about a quarter of the memory. The rows come back
    from the body only when a 413 or a failure needs them one by one."""

    items: list[Encoded]
    body: bytes


def encode(
    row: dict[str, Any], source: dict[str, Any], container: str | None = None, size: int | None = None
) -> Encoded:
    """`size`: a page-level estimate that spares encoding each row twice (see stream.py)."""
    xact = source.get("_xact_id")
    comments = source.get("comments")
    return Encoded(
        row,
        len(orjson.dumps(row)) + 1 if size is None else size,
        source.get("_pagination_key"),
        int(xact) if isinstance(xact, str) and xact.isdigit() else None,
        list(comments) if comments else [],
        container,
    )


def _route_bytes(dest: str) -> int:
    """What one destination container adds to a cross-object body beside its rows (an upper bound)."""
    return len(orjson.dumps({dest: {"events": []}}))


@dataclass
class BatchResult:
    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)  # (row id, size, reason)
    offloaded: list[str] = field(default_factory=list)  # ids of rows sent with fields in attachments


class Inserter:
    """Inserts into one destination container (`dest_id`), or with `routes` (source container ->
    destination container) into several through the cross-object `/v1/insert`."""

    def __init__(
        self,
        dest: ApiClient,
        kind: str,
        dest_id: str | None,
        *,
        max_rows: int,
        max_bytes: int,
        attachments: Attachments | None = None,
        routes: dict[str, str] | None = None,
    ) -> None:
        self.dest = dest
        self.kind, self.routes = kind, routes
        self.path = "/v1/insert" if routes else f"/v1/{kind}/{dest_id}/insert"
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.attachments = attachments

    def batches(self, items: list[Encoded]) -> list[list[Encoded]]:
        """Consecutive groups within the row and byte bounds; routed, each destination container's
        envelope in the cross-object body counts too. (Pinned dataset versions are written
        separately, in order: see versions.py.)"""
        routes = self.routes
        envelope = ENVELOPE if routes is None else len(orjson.dumps({self.kind: {}}))
        out: list[list[Encoded]] = []
        current: list[Encoded] = []
        size, present = envelope, set[str]()
        for item in items:
            extra, dest = item.size, None
            if routes is not None:
                dest = routes[str(item.container)]
                extra += 0 if dest in present else _route_bytes(dest)
            if current and (len(current) >= self.max_rows or size + extra > self.max_bytes):
                out.append(current)
                current, size, present = [], envelope, set()
                if dest is not None:
                    extra = item.size + _route_bytes(dest)
            current.append(item)
            if dest is not None:
                present.add(dest)
            size += extra
        if current:
            out.append(current)
        return out

    def payload(self, batch: list[Encoded]) -> dict[str, Any]:
        """The request body, as JSON: the client encodes it in one go."""
        rows = [(item, item.row) for item in batch if item.row is not None]
        if len(rows) != len(batch):
            raise RuntimeError("a packed batch's rows were sent without unpacking it")
        return self.wrap(rows)

    def wrap(self, rows: list[tuple[Encoded, dict[str, Any]]]) -> dict[str, Any]:
        if self.routes is None:
            return {"events": [row for _, row in rows]}
        by_dest: dict[str, list[dict[str, Any]]] = {}
        for item, row in rows:
            by_dest.setdefault(self.routes[str(item.container)], []).append(row)
        return {self.kind: {dest: {"events": events} for dest, events in by_dest.items()}}

    def pack(self, batch: list[Encoded]) -> Packed:
        """The batch's body, encoded now; its rows are let go (see Packed)."""
        # A copy of exact size: orjson leaves its buffer up to twice the body, held as long as it waits.
        body = memoryview(orjson.dumps(self.payload(batch))).tobytes()
        for item in batch:
            item.row = None
        return Packed(batch, body)

    def unpack(self, packed: Packed) -> list[Encoded]:
        """The batch's items with their rows again, decoded from the body (wrap's order: rows are
        grouped by destination container, in their order within each)."""
        sent = orjson.loads(packed.body)
        if self.routes is None:
            rows = iter(sent["events"])
            for item in packed.items:
                item.row = next(rows)
            return packed.items
        by_dest = {dest: iter(part["events"]) for dest, part in sent[self.kind].items()}
        for item in packed.items:
            item.row = next(by_dest[self.routes[str(item.container)]])
        return packed.items

    async def send(self, batch: list[Encoded] | Packed) -> BatchResult:
        result = BatchResult()
        if isinstance(batch, Packed):
            await self._send_packed(batch, result)
        else:
            await self._send(batch, result)
        return result

    async def _send_packed(self, packed: Packed, result: BatchResult) -> None:
        try:
            self.dest.decode(await self.dest.request("POST", self.path, content=packed.body))
        except PayloadTooLargeError:
            await self._smaller(self.unpack(packed), result)
            return
        except ApiError as error:
            result.failed += [(item.row_id, item.exact_size(), error.message) for item in self.unpack(packed)]
            return
        result.written += [item.row_id for item in packed.items]

    async def _send(self, batch: list[Encoded], result: BatchResult) -> None:
        try:
            # Passed as JSON, not bytes: the client encodes it only once a request slot is free,
            # so a batch queued behind the cap holds no body beside its rows.
            self.dest.decode(await self.dest.request("POST", self.path, json=self.payload(batch)))
        except PayloadTooLargeError:
            await self._smaller(batch, result)
            return
        except ApiError as error:
            result.failed += [(item.row_id, item.exact_size(), error.message) for item in batch]
            return
        result.written += [item.row_id for item in batch]

    async def _smaller(self, batch: list[Encoded], result: BatchResult) -> None:
        """After a 413: the batch in halves, and a lone row with its large fields offloaded."""
        if len(batch) > 1:
            middle = len(batch) // 2
            await self._send(batch[:middle], result)
            await self._send(batch[middle:], result)
            return
        await self._oversize(batch[0], result)

    async def _oversize(self, item: Encoded, result: BatchResult) -> None:
        """Offload fields to attachments, halving the target until the destination accepts it."""
        row_id, size = item.row_id, item.exact_size()
        if self.attachments is None:
            result.failed.append((row_id, size, "row_too_large"))
            return
        target = min(self.max_bytes, size // 2)
        for _ in range(OFFLOAD_ROUNDS):
            try:
                smaller = await self.attachments.offload(item.row or {}, target)
            except AttachmentsUnsupported:
                result.failed.append((row_id, size, "row_too_large: the destination has no attachments"))
                return
            except ApiError as error:
                result.failed.append((row_id, size, f"row_too_large: {error.message}"))
                return
            if smaller is None:
                break
            try:
                await self.dest.post_json(self.path, self.wrap([(item, smaller)]))
            except PayloadTooLargeError:
                target //= 2
                continue
            except ApiError as error:
                result.failed.append((row_id, size, error.message))
                return
            result.written.append(row_id)
            result.offloaded.append(row_id)
            return
        result.failed.append((row_id, size, "row_too_large even with its large fields in attachments"))
