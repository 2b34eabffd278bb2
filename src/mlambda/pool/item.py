"""One request on its way through a pool: what it asks, when it queued, where it waits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mlambda.pool.invocation import Invocation

if TYPE_CHECKING:
    from mlambda.pool.instance import Instance


class Item:
    """One request on its way through the pool."""

    def __init__(
        self,
        request_id: str,
        payload: bytes,
        client_context: str | None,
        kind: str,
        params: dict[str, str],
    ) -> None:
        self.request_id = request_id
        self.payload = payload
        self.client_context = client_context
        self.kind = kind
        self.params = params
        self.qualifier = ""
        # An asynchronous attempt: a sync call that has to wait goes ahead of it in the queue.
        self.background = False
        self.queued_at = 0.0
        self.wait_ms = 0.0
        self.waiter: asyncio.Future[Instance | None] | None = None
        self._joined: asyncio.Future[Invocation] | None = None

    @property
    def joined(self) -> asyncio.Future[Invocation]:
        """Resolved by the request whose batch took this one."""
        if self._joined is None:
            self._joined = asyncio.get_running_loop().create_future()
        return self._joined

    def dequeued(self, now: float) -> None:
        self.wait_ms = (now - self.queued_at) * 1000
