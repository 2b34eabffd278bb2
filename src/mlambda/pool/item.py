"""One request on its way through a pool: what it asks, when it queued, where it waits."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from mlambda.pool.invocation import Invocation
from mlambda.runtime import protocol
from mlambda.runtime.trace_header import TraceContext, xray_header

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
        # The call's span, and when the request reached the pool (for the spans made of it).
        self.trace: TraceContext | None = None
        self.entered_ns = time.time_ns()
        # The handler run's own span: the instance names it as the parent of what the handler
        # calls (_X_AMZN_TRACE_ID) and of the spans user code makes.
        self.handler_span = ""
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

    def request(self, deadline_ms: int, threads: int) -> protocol.Invoke:
        """The Invoke frame an instance gets for this request."""
        header = ""
        if self.trace is not None:
            self.handler_span = os.urandom(8).hex()
            trace = TraceContext(self.trace.trace_id, self.handler_span, self.trace.sampled)
            header = xray_header(trace)
        return protocol.Invoke(
            request_id=self.request_id,
            payload=self.payload,
            deadline_ms=deadline_ms,
            client_context=self.client_context,
            qualifier=self.qualifier,
            protocol=self.kind,
            params=self.params,
            threads=threads,
            trace=header,
        )

    def invocation(self, instance_id: str, pid: int, batch_size: int, version: str) -> Invocation:
        """What the pool reports of this request, filled in as its outcome comes back."""
        return Invocation(
            self.request_id,
            instance_id=instance_id,
            pid=pid,
            batch_size=batch_size,
            queue_wait_ms=self.wait_ms,
            version=version,
            trace=self.trace,
            handler_span=self.handler_span,
            entered_ns=self.entered_ns,
        )
