"""Batching inside the pool: the callers a batch carries do not depend on the one leading it."""

from __future__ import annotations

import asyncio
import json

import pytest

from mlambda import bundle

pytestmark = pytest.mark.anyio

SLOW_BATCH = """
import time

def handler(events, context):
    time.sleep(0.3)
    return [{"i": event["i"], "size": len(events)} for event in events]
"""


async def test_a_batch_whose_first_caller_goes_away_still_answers_the_others(
    platform, make_function
):
    directory = make_function("slowbatch", SLOW_BATCH, max_instances=1)
    spec = directory / "mlambda.toml"
    spec.write_text(spec.read_text() + "[function.batch]\nmax_size = 8\n")
    await platform.deploy(bundle.pack(directory))
    await platform.invoke("slowbatch", b'{"i": 0}')  # the instance exists

    def call(i: int) -> asyncio.Task:  # type: ignore[type-arg]
        return asyncio.ensure_future(platform.invoke("slowbatch", json.dumps({"i": i}).encode()))

    busy = call(1)
    await asyncio.sleep(0.1)  # the instance is busy with 1: the next ones queue
    queued = [call(i) for i in range(2, 6)]
    await busy
    await asyncio.sleep(0.1)  # 2 leads a batch of 2..5, which is now running
    queued[0].cancel()
    answers = [json.loads((await task).body) for task in queued[1:]]
    assert answers == [{"i": i, "size": 4} for i in range(3, 6)]
    # The instance was released after the call, not when its leader went away.
    again = await platform.invoke("slowbatch", b'{"i": 9}')
    assert json.loads(again.body) == {"i": 9, "size": 1}
