"""The platform's end of a fork server's control socket, on both event loops serve can run."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from mlambda.backends.forkserver import ForkServerHandle
from mlambda.runtime import protocol

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reply_read_before_anyone_waits_for_it_is_kept(loop):
    async def scenario() -> protocol.Message:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        handle = ForkServerHandle(ours, pid=1, name="runtime")
        ready = protocol.ZygoteReady(pid=1, import_ms=1.0)
        theirs.send(protocol.encode_packet(ready))
        await asyncio.sleep(0.05)  # the loop reads the packet: nobody asked for it yet
        try:
            return await asyncio.wait_for(handle.next_message(), 2)
        finally:
            handle.close()
            theirs.close()

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(scenario()) == protocol.ZygoteReady(pid=1, import_ms=1.0)
