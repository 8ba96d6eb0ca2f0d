"""Creating many objects per request, for types the table gives a batch endpoint (ACLs)."""

from __future__ import annotations

import asyncio
from typing import Any

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.engine.inventory import identity
from braintrust_migrate.engine.resources import ResourceType
from braintrust_migrate.liblog import get_logger

log = get_logger(__name__)

# How long a partly filled batch waits for more bodies: every writer of a phase arrives within
# a few loop turns, so this only merges them; it never holds a write back noticeably.
GATHER_SECONDS = 0.005


class Batcher:
    """Collects create bodies of one type and sends them `rt.batch.size` at a time."""

    def __init__(self, client: ApiClient, rt: ResourceType) -> None:
        assert rt.batch is not None
        self.client, self.rt, self.spec = client, rt, rt.batch
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._timer: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """The created object (without an id when the response did not name it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((body, future))
        if len(self._waiting) >= self.spec.size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_soon())
        return await future

    async def _flush_soon(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]) -> None:
        try:
            response = await self.client.post_json(self.spec.path, {self.spec.field: [b for b, _ in batch]})
        except ApiError as error:
            if error.status == 400 and len(batch) > 1:
                # One bad body refuses the whole batch: send each alone so only it fails.
                await asyncio.gather(*(self._send([entry]) for entry in batch))
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException as error:  # cancelled or broken: no writer may wait for ever
            for _, future in batch:
                if not future.done():
                    future.set_exception(error if isinstance(error, Exception) else asyncio.CancelledError())
            raise
        items = response.get(self.spec.result) if isinstance(response, dict) else None
        created = {identity(self.rt, obj): obj for obj in items or () if isinstance(obj, dict)}
        for body, future in batch:
            if not future.done():
                future.set_result(created.get(identity(self.rt, body)) or dict(body))
        log.info("created in one batch", type=self.rt.name, count=len(batch))
