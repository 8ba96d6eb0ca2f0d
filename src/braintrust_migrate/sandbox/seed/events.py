"""The seed's events phase: write project logs, experiment rows, dataset rows and comments.

:class:`EventsPhase` is driven by the seed executor (``seed.py``) in two places:

* during the object plan, for each dataset, two marker ops (see ``events_ops``):
  write the dataset's *initial* rows through ``POST /v1/dataset/{id}/insert``, then
  read back its newest ``_xact_id`` (``POST /v1/dataset/{id}/fetch``) so that the
  experiments and snapshots created next pin a real dataset version;
* after the plan (:meth:`EventsPhase.run`), in rounds separated by barriers so that
  a row's versions land in order: (B) log traces, experiment traces and the later
  dataset rows, interleaved across containers and batched through the cross-object
  ``POST /v1/insert``; (C) dataset replacements and ``_is_merge`` rows; (D) second
  replacements and ``_object_delete`` rows; (E) comments through ``feedback`` items.

Rows are generated lazily (``events_gen``), serialized once with orjson and
packed into requests of at most ``batch_rows`` rows or ``batch_bytes`` bytes; a few
requests are in flight, and the producer waits when they are all busy, so memory
stays bounded whatever the number of rows. A 413 halves the batch (and the limits
for the rest of the run); 429 / 5xx / connection errors are retried with backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from .events_gen import (
    DEFAULT_ROWS,
    KINDS,
    Attachments,
    DatasetRows,
    EventsSpec,
    ExperimentTraces,
    LogTraces,
    PendingAttachment,
    round_robin,
    stable_salt,
)
from .events_ops import DatasetVersionMarker, EventRowsMarker, EventsMarker
from .http import RETRY_STATUSES, SeedHTTPError, _retry_after_seconds, _snippet

if TYPE_CHECKING:
    from .plan import Plan

__all__ = [
    "DEFAULT_ROWS",
    "DatasetVersionMarker",
    "EventCounts",
    "EventRowsMarker",
    "EventsMarker",
    "EventsPhase",
    "default_rows",
]

_JSON = {"Content-Type": "application/json"}
# Rows per request for the initial dataset rows and later rounds; at most this many bytes.
BATCH_ROWS = 1000
BATCH_BYTES = 4 * 1024 * 1024
VERSION_FETCH_LIMIT = 50


def default_rows(profile: str) -> int:
    return DEFAULT_ROWS.get(profile, DEFAULT_ROWS["small"])


@dataclass
class EventCounts:
    """Event rows of one container kind (``project_logs``, ``experiment``, ``dataset``).

    ``rows`` counts every row written (new rows, replacements, merges, deletes);
    ``live`` the rows a fetch returns afterwards (distinct ids, deleted ones excluded);
    ``comments`` the feedback comments; ``live_by_container`` maps container ids (the
    project id for logs) to their live rows.
    """

    containers: int = 0
    rows: int = 0
    live: int = 0
    comments: int = 0
    bytes: int = 0
    live_by_container: dict[str, int] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


class _OneShot:
    """A request body that forgets its bytes once sent.

    httpx responses sit in reference cycles until the garbage collector runs, and
    each holds its request and so its body: with plain ``bytes`` content, tens of
    megabytes of sent batches would linger between collections.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data: bytes | None = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data, self.data = self.data, None
        if data:
            yield data


class _Group:
    """Rows for one ``(kind, container, field)``: one comma-separated buffer plus row offsets.

    Copying each row into the buffer matters: orjson returns ``bytes`` with spare
    capacity (kilobytes for a 1 KiB row), so keeping the ``bytes`` objects would
    multiply the memory a batch takes.
    """

    __slots__ = ("buf", "starts")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.starts: list[int] = []

    def add(self, row: bytes) -> None:
        if self.starts:
            self.buf += b","
        self.starts.append(len(self.buf))
        self.buf += row

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def payload_bytes(self) -> int:
        return len(self.buf) - max(0, len(self.starts) - 1)

    def rows(self) -> Iterator[bytes]:
        ends = [s - 1 for s in self.starts[1:]] + [len(self.buf)]
        for start, end in zip(self.starts, ends, strict=True):
            yield bytes(self.buf[start:end])


class _Batch:
    __slots__ = ("groups", "rows", "size")

    def __init__(self) -> None:
        # (kind, container id, "events" | "feedback") -> serialized rows
        self.groups: dict[tuple[str, str, str], _Group] = {}
        self.rows = 0
        self.size = 0

    def add(self, key: tuple[str, str, str], row: bytes) -> None:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        group.add(row)
        self.rows += 1
        self.size += len(row) + 1

    def halves(self) -> tuple[_Batch, _Batch]:
        a, b = _Batch(), _Batch()
        n = 0
        for key, group in self.groups.items():
            for row in group.rows():
                (a if n < self.rows // 2 else b).add(key, row)
                n += 1
        return a, b

    def direct_body(self) -> bytes:
        (group,) = self.groups.values()
        return b'{"events":[' + group.buf + b"]}"

    def cross_body(self) -> bytes:
        """``CrossObjectInsertRequest`` bytes, joined once from the serialized rows (no re-encoding)."""
        kinds: dict[str, dict[str, list[tuple[str, _Group]]]] = {}
        for (kind, cid, fld), group in self.groups.items():
            kinds.setdefault(kind, {}).setdefault(cid, []).append((fld, group))
        out: list[bytes | bytearray] = [b"{"]
        for k, (kind, by_id) in enumerate(kinds.items()):
            out.append(b'%s"%s":{' % (b"," if k else b"", kind.encode()))
            for c, (cid, fields) in enumerate(by_id.items()):
                out.append(b"%s%s:{" % (b"," if c else b"", orjson.dumps(cid)))
                for f, (fld, group) in enumerate(fields):
                    out.append(b'%s"%s":[' % (b"," if f else b"", fld.encode()))
                    out.append(group.buf)
                    out.append(b"]")
                out.append(b"}")
            out.append(b"}")
        out.append(b"}")
        return b"".join(out)


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# One stream item: (kind, container id, field, rows).
_Item = tuple[str, str, str, list[dict[str, Any]]]


def _tag(kind: str, cid: str, fld: str, groups: Iterable[list[dict[str, Any]]]) -> Iterator[_Item]:
    for rows in groups:
        yield kind, cid, fld, rows


class EventsPhase:
    """Writes the event rows of ``plan`` (``rows`` in total) to the org behind ``api_key``."""

    def __init__(
        self,
        plan: Plan,
        rows: int,
        *,
        inflight: int = 4,
        batch_rows: int = BATCH_ROWS,
        batch_bytes: int = BATCH_BYTES,
        upload_attachments: bool = True,
        max_attempts: int = 4,
    ) -> None:
        self.seed = plan.seed
        self.spec = EventsSpec.from_plan(plan, rows)
        self.inflight = max(1, inflight)
        self.max_rows = max(1, batch_rows)
        self.max_bytes = max(1024, batch_bytes)
        self.max_attempts = max(1, max_attempts)
        self.attachments = Attachments(self.seed, upload_attachments)
        self.datasets = {
            c.key: DatasetRows(self.seed, c, self.spec.shapes[c.key]) for c in self.spec.datasets
        }
        self.known_xacts: dict[str, dict[str, str]] = {}
        self.counts = {k: EventCounts() for k in KINDS}
        self.notes: list[str] = []
        self.requests = 0
        self.attachments_uploaded = 0
        self.elapsed = 0.0
        self.generate_seconds = 0.0  # time the producer spent generating and serializing rows
        self.split_413 = 0
        self._org_id: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._plain: httpx.AsyncClient | None = None
        self._jitter = random.Random(0xE7E)

    @property
    def enabled(self) -> bool:
        return self.spec.rows > 0

    @property
    def rows_written(self) -> int:
        return sum(c.rows for c in self.counts.values())

    # ------------------------------------------------------------------ connection

    def connect(self, url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        limits = httpx.Limits(max_connections=self.inflight + 2, max_keepalive_connections=self.inflight + 2)
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=120.0,
            transport=transport,
            limits=limits,
        )
        # Signed upload URLs get no API key (they may point at another host).
        self._plain = httpx.AsyncClient(timeout=120.0, transport=transport)

    async def aclose(self) -> None:
        for client in (self._client, self._plain):
            if client is not None:
                await client.aclose()
        self._client = self._plain = None

    # ------------------------------------------------------------------ HTTP

    async def _request(
        self, method: str, path: str, content: bytes, *, client: httpx.AsyncClient | None = None, **kw: Any
    ) -> Any:
        http = client or self._client
        assert http is not None, "EventsPhase.connect() was not called"
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            try:
                headers = {**kw.pop("headers", {}), "Content-Length": str(len(content))}
                resp = await http.request(method, path, content=_OneShot(content), headers=headers, **kw)
            except httpx.TransportError as exc:
                if attempt >= self.max_attempts:
                    raise SeedHTTPError(method, path, None, f"{type(exc).__name__}: {exc}") from exc
                delay: float = 0.2 * 2 ** (attempt - 1)
            else:
                if resp.status_code < 300:
                    return orjson.loads(resp.content) if resp.content else None
                if resp.status_code == 413:
                    raise _TooLarge
                if resp.status_code not in RETRY_STATUSES or attempt >= self.max_attempts:
                    raise SeedHTTPError(method, path, resp.status_code, _snippet(resp.text))
                told = _retry_after_seconds(resp.headers.get("retry-after"))
                delay = 0.2 * 2 ** (attempt - 1) if told is None else told
            await asyncio.sleep(min(delay, 10.0) * (1 + 0.25 * self._jitter.random()))

    async def _post_json(self, path: str, body: Any) -> Any:
        try:
            return await self._request("POST", path, orjson.dumps(body), headers=_JSON)
        except _TooLarge:
            raise SeedHTTPError("POST", path, 413, "request too large") from None

    async def _send(self, batch: _Batch, path: str | None) -> None:
        body = batch.direct_body() if path else batch.cross_body()
        try:
            resp = await self._request("POST", path or "/v1/insert", body, headers=_JSON)
        except _TooLarge:
            if batch.rows <= 1:
                raise SeedHTTPError(
                    "POST", path or "/v1/insert", 413, f"a single row of {batch.size} bytes is too large"
                ) from None
            # Halve this batch, and the limits for everything that follows.
            self.split_413 += 1
            self.max_rows = max(1, min(self.max_rows, batch.rows // 2))
            self.max_bytes = max(1024, min(self.max_bytes, batch.size // 2))
            first, second = batch.halves()
            await self._send(first, path)
            await self._send(second, path)
            return
        del body
        self._check(batch, path, resp)
        for (kind, _cid, fld), group in batch.groups.items():
            counts = self.counts[kind]
            if fld == "events":
                counts.rows += len(group)
                counts.bytes += group.payload_bytes
            else:
                counts.comments += len(group)

    def _check(self, batch: _Batch, path: str | None, resp: Any) -> None:
        """The response must list one row id per inserted row (``InsertEventsResponse``)."""
        where = f"POST {path or '/v1/insert'}"
        for (kind, cid, fld), group in batch.groups.items():
            if fld != "events":
                continue
            try:
                got = resp["row_ids"] if path else resp[kind][cid]["row_ids"]
            except (KeyError, TypeError):
                raise SeedHTTPError(
                    "POST", path or "/v1/insert", 200, f"no row_ids for {kind} {cid} in the response"
                ) from None
            if len(got) != len(group):
                raise SeedHTTPError(
                    "POST",
                    path or "/v1/insert",
                    200,
                    f"{where}: {len(got)} row_ids for {len(group)} {kind} rows",
                )

    # ------------------------------------------------------------------ streaming

    async def _stream(self, items: Iterable[_Item], path: str | None = None) -> None:
        """Send ``(kind, container id, field, rows)`` items in batches, a few requests in flight."""
        # One batch ready ahead of the ones in flight: memory ~ (inflight + 2) batches.
        queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=1)

        async def worker() -> None:
            while (batch := await queue.get()) is not None:
                await self._send(batch, path)

        try:
            await self._produce(items, path, queue, worker)
        except* SeedHTTPError as group:
            first = group.exceptions[0]
            while isinstance(first, ExceptionGroup):  # a nested group: its first error
                first = first.exceptions[0]
            raise SeedHTTPError(first.method, first.path, first.status, first.detail) from first

    async def _produce(
        self, items: Iterable[_Item], path: str | None, queue: asyncio.Queue[_Batch | None], worker: Any
    ) -> None:
        dumps = orjson.dumps
        async with asyncio.TaskGroup() as tg:
            workers = [tg.create_task(worker()) for _ in range(self.inflight)]
            batch = _Batch()
            clock = time.perf_counter
            began = clock()
            for kind, cid, fld, rows in items:
                key = (kind, cid, fld)
                for row in rows:
                    data = dumps(row)
                    if batch.rows and (
                        batch.rows >= self.max_rows or batch.size + len(data) > self.max_bytes
                    ):
                        self.generate_seconds += clock() - began
                        await queue.put(batch)
                        await asyncio.sleep(0)  # let the workers start their requests
                        began = clock()
                        batch = _Batch()
                    batch.add(key, data)
                if self.attachments.pending:
                    self.generate_seconds += clock() - began
                    await self._upload_pending()
                    began = clock()
            self.generate_seconds += clock() - began
            if batch.rows:
                await queue.put(batch)
            for _ in workers:
                await queue.put(None)

    async def _upload_pending(self) -> None:
        pending, self.attachments.pending = self.attachments.pending, []
        for att in pending:
            await self._upload(att)

    async def _upload(self, att: PendingAttachment) -> None:
        """``POST /attachment`` for a signed URL, ``PUT`` the bytes there, mark the upload done."""
        meta = {
            "key": att.key,
            "filename": att.filename,
            "content_type": att.content_type,
            "org_id": self._org_id,
        }
        signed = await self._post_json("/attachment", meta)
        url = (signed or {}).get("signedUrl")
        if not url:
            raise SeedHTTPError(
                "POST", "/attachment", 200, f"no signedUrl in the response: {_snippet(str(signed))}"
            )
        headers = {str(k): str(v) for k, v in ((signed or {}).get("headers") or {}).items()}
        headers.setdefault("Content-Type", att.content_type)
        try:
            await self._request("PUT", url, att.payload(), client=self._plain, headers=headers)
        except _TooLarge:
            raise SeedHTTPError("PUT", "<signed url>", 413, "attachment too large") from None
        await self._post_json(
            "/attachment/status",
            {"key": att.key, "org_id": self._org_id, "status": {"upload_status": "done"}},
        )
        self.attachments_uploaded += 1

    # ------------------------------------------------------------------ plan ops

    async def plan_op(self, marker: EventsMarker, path: str, responses: dict[str, Any]) -> Any:
        """Run a marker op of the object plan; the result is stored as the op's response."""
        started = time.perf_counter()
        try:
            if isinstance(marker, EventRowsMarker):
                return await self._initial_rows(marker, path, responses)
            return await self._version(marker, path)
        finally:
            self.elapsed += time.perf_counter() - started

    async def _initial_rows(self, marker: EventRowsMarker, path: str, responses: dict[str, Any]) -> Any:
        ds = self.datasets[marker.container]
        if not self.enabled or not ds.shape.initial:
            return {"rows": 0}
        ds_id = responses[marker.container]["id"]
        await self._stream(_tag("dataset", ds_id, "events", _chunks(ds.initial_rows(), 64)), path)
        return {"rows": ds.shape.initial}

    async def _version(self, marker: DatasetVersionMarker, path: str) -> Any:
        key = marker.container
        if not self.enabled or not self.spec.shapes[key].initial:
            # No rows, no version: a plausible, deterministic transaction id instead.
            return {"events": [{"_xact_id": str(1000192000000000000 + stable_salt(self.seed, key) % 10**15)}]}
        resp = await self._post_json(path, {"limit": VERSION_FETCH_LIMIT})
        events = [e for e in (resp or {}).get("events") or [] if isinstance(e, dict) and e.get("_xact_id")]
        if not events:
            raise SeedHTTPError("POST", path, 200, f"{key}: the fetch returned no rows after the insert")
        events.sort(key=lambda e: int(e["_xact_id"]), reverse=True)
        self.known_xacts[key] = {e["id"]: e["_xact_id"] for e in events if e.get("id")}
        return {"events": [{"id": e.get("id"), "_xact_id": e["_xact_id"]} for e in events]}

    # ------------------------------------------------------------------ after the plan

    async def run(self, responses: dict[str, Any], org_id: str) -> dict[str, EventCounts]:
        """Rounds B-E (see the module docstring); returns the counts per container kind."""
        self._org_id = org_id
        spec = self.spec
        ids = {c.key: responses[c.key]["id"] for c in (*spec.logs, *spec.experiments, *spec.datasets)}
        for kind, group in (
            ("project_logs", spec.logs),
            ("experiment", spec.experiments),
            ("dataset", spec.datasets),
        ):
            counts = self.counts[kind]
            counts.containers = len(group)
            for c in group:
                live = spec.shapes[c.key].live if kind == "dataset" else spec.budget[c.key]
                counts.live_by_container[ids[c.key]] = live
            counts.live = sum(counts.live_by_container.values())
        if not self.enabled:
            return self.counts
        started = time.perf_counter()
        seed = self.seed
        logs = [LogTraces(seed, c, spec.budget[c.key], self.attachments) for c in spec.logs]
        exps = [
            ExperimentTraces(
                seed,
                c,
                spec.budget[c.key],
                self.datasets.get(c.dataset) if c.dataset else None,
                ids.get(c.dataset) if c.dataset else None,
                self.known_xacts.get(c.dataset or ""),
            )
            for c in spec.experiments
        ]
        dss = [(ids[c.key], self.datasets[c.key]) for c in spec.datasets]
        streams = [_tag("project_logs", ids[g.container.key], "events", g) for g in logs]
        streams += [_tag("experiment", ids[g.container.key], "events", g) for g in exps]
        streams += [_tag("dataset", i, "events", _chunks(d.later_rows(), 8)) for i, d in dss]
        await self._stream(round_robin(streams))  # B
        await self._stream(
            round_robin([_tag("dataset", i, "events", _chunks(d.round1_rows(), 64)) for i, d in dss])
        )
        await self._stream(
            round_robin([_tag("dataset", i, "events", _chunks(d.round2_rows(), 64)) for i, d in dss])
        )
        feedback = [
            _tag("project_logs", ids[g.container.key], "feedback", _chunks(g.feedback(), 64)) for g in logs
        ]
        feedback += [
            _tag("experiment", ids[g.container.key], "feedback", _chunks(g.feedback(), 64)) for g in exps
        ]
        feedback += [_tag("dataset", i, "feedback", _chunks(d.feedback(), 64)) for i, d in dss]
        await self._stream(round_robin(feedback))  # E
        self.elapsed += time.perf_counter() - started
        if self.split_413:
            self.notes.append(
                f"{self.split_413} event request(s) were refused as too large (413): batches were "
                f"halved, to at most {self.max_rows} rows / {self.max_bytes} bytes"
            )
        expected = {
            "project_logs": sum(spec.budget[c.key] for c in spec.logs),
            "experiment": sum(spec.budget[c.key] for c in spec.experiments),
            "dataset": sum(s.rows for s in spec.shapes.values()),
        }
        for kind, want in expected.items():
            if self.counts[kind].rows != want:  # a bug here, not in the server
                raise AssertionError(f"{kind}: wrote {self.counts[kind].rows} rows, planned {want}")
        return self.counts
