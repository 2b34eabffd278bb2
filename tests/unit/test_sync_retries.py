"""A retried synchronous Invoke attaches to the first execution or takes its kept result."""

from __future__ import annotations

import asyncio

import pytest

from mlambda.errors import Throttled
from mlambda.gateway.lambda_api.retries import SyncCalls, call_key
from mlambda.pool.invocation import Invocation

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _starter(runs: list[str], body: bytes = b"{}", delay: float = 0.0, fail: bool = False):  # type: ignore[no-untyped-def]
    async def start() -> Invocation:
        runs.append("run")
        await asyncio.sleep(delay)
        if fail:
            raise Throttled("busy")
        return Invocation(request_id=f"r{len(runs)}", body=body)

    return start


KEY = call_key("MLK1", "fn", "", "id-1", b"{}")


async def test_a_retry_while_the_first_runs_attaches_to_it():
    calls, runs = SyncCalls(), []
    first = asyncio.ensure_future(calls.run(KEY, _starter(runs, delay=0.05)))
    await asyncio.sleep(0.01)
    second = await calls.run(KEY, _starter(runs))
    assert runs == ["run"] and second is await first


async def test_a_retry_after_the_first_finished_takes_its_result():
    calls, runs = SyncCalls(), []
    first = await calls.run(KEY, _starter(runs))
    assert await calls.run(KEY, _starter(runs)) is first and runs == ["run"]


async def test_the_execution_goes_on_when_the_caller_that_started_it_goes_away():
    calls, runs = SyncCalls(), []
    first = asyncio.ensure_future(calls.run(KEY, _starter(runs, delay=0.05)))
    await asyncio.sleep(0.01)
    first.cancel()  # botocore's read timeout: the first connection is closed
    again = await calls.run(KEY, _starter(runs))
    assert runs == ["run"] and again.request_id == "r1"


@pytest.mark.parametrize(
    "other",
    [
        call_key("MLK2", "fn", "", "id-1", b"{}"),
        call_key("MLK1", "gn", "", "id-1", b"{}"),
        call_key("MLK1", "fn", "live", "id-1", b"{}"),
        call_key("MLK1", "fn", "", "id-2", b"{}"),
        call_key("MLK1", "fn", "", "id-1", b'{"a": 1}'),
    ],
)
async def test_another_key_name_qualifier_id_or_payload_is_another_call(other):
    calls, runs = SyncCalls(), []
    await calls.run(KEY, _starter(runs))
    await calls.run(other, _starter(runs))
    assert runs == ["run", "run"]


async def test_a_refusal_is_not_kept_so_the_retry_runs():
    calls, runs = SyncCalls(), []
    with pytest.raises(Throttled):
        await calls.run(KEY, _starter(runs, fail=True))
    await calls.run(KEY, _starter(runs))
    assert runs == ["run", "run"] and len(calls) == 1


async def test_results_expire_and_the_oldest_go_past_the_byte_budget():
    clock, runs = Clock(), []
    calls = SyncCalls(keep_s=60, max_bytes=3000, clock=clock)
    await calls.run(KEY, _starter(runs, body=b"x" * 1000))
    clock.now = 61
    await calls.run(KEY, _starter(runs))
    assert runs == ["run", "run"]
    keys = [call_key("MLK1", "fn", "", f"id-{i}", b"{}") for i in range(3)]
    for key in keys:
        await calls.run(key, _starter(runs, body=b"x" * 1000))
    assert len(calls) <= 2  # each kept result counts its body and 1 KiB: the oldest went


async def test_without_an_invocation_id_every_call_runs():
    calls, runs = SyncCalls(), []
    await calls.run(None, _starter(runs))
    await calls.run(None, _starter(runs))
    assert runs == ["run", "run"] and len(calls) == 0
