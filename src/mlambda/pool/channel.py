"""Asynchronous frame I/O on the pool's side of an instance's stream."""

from __future__ import annotations

import asyncio

from mlambda.runtime import protocol


async def read_message(reader: asyncio.StreamReader) -> protocol.Message | None:
    """The next frame, or None when the instance closed its end (exited)."""
    try:
        header = await reader.readexactly(protocol.HEADER.size)
        body = await reader.readexactly(protocol.frame_length(header))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return protocol.decode(body)


def write_message(writer: asyncio.StreamWriter, message: protocol.Message) -> None:
    writer.write(protocol.encode(message))
