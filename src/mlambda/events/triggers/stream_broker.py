"""What a stream trigger needs of a broker: read records in order from a position, and turn a
starting position into one. Positions are the broker's own sequence (a Redis entry id, a NATS
stream sequence), as text; records come back in the stream's order.

    redis_stream.py   a Redis stream, read with XREAD (no consumer group: the trigger keeps
                      its own checkpoint)
    nats_stream.py    a NATS JetStream stream, read by an ephemeral consumer that acks nothing
"""

from __future__ import annotations

import abc

from mlambda.events.shapes import StreamRecord

SHARD = "shardId-000000000000"  # a stream here is one shard; lanes split it by partition key


class StreamReader(abc.ABC):
    broker = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; BrokerError when it cannot."""

    @abc.abstractmethod
    async def start(self, starting_position: str, timestamp: float | None) -> str:
        """The position to read after for a trigger that has no checkpoint yet: the stream's
        end (``latest``), its beginning (``trim_horizon``), or just before the first record at
        or after ``timestamp`` (``at_timestamp``)."""

    @abc.abstractmethod
    async def read(self, after: str, most: int, wait_s: float) -> list[StreamRecord]:
        """Up to ``most`` records after ``after``, in order; waits up to ``wait_s`` for one."""

    @abc.abstractmethod
    async def close(self) -> None: ...
