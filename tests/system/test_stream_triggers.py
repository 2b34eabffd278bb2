"""Stream triggers, by Kinesis's rules, on a Redis stream and a NATS JetStream stream: each key's
records reach the handler in order (a property checked over everything the handler processed,
with duplicates), across lanes, a kill -9 of serve and a restart of the broker; a record that
always fails is isolated by bisecting and goes to on_failure; the starting position is
honoured."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis

from tests.system.brokers import NatsBroker, RedisBroker
from tests.system.conftest import Server
from tests.system.test_async import _function
from tests.system.test_triggers import REDIS, _service

# Records (key, n) of every record it processed in the test's ledger; fails the record
# {"k": "k3", "n": 50} every time.
RECORDER = """
    import base64, json, os, time
    import redis

    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        time.sleep(float(os.environ.get("PAUSE", "0")))
        items = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]
        for position, item in enumerate(items):
            if item == {"k": "k3", "n": 50}:
                done = [json.dumps(i) for i in items[:position]]
                if done:
                    ledger.rpush(os.environ["LEDGER_KEY"], *done)
                raise ValueError("cannot process k3/50")
        ledger.rpush(os.environ["LEDGER_KEY"], *[json.dumps(i) for i in items])
"""
KEYS = 10


class Stream:
    """A stream on a broker of the test's own (Redis or NATS) that it publishes to and may
    restart: ``source`` is the trigger's URL."""

    def __init__(self, kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.kind = kind
        self.name = f"clicks{uuid.uuid4().hex[:6]}"
        broker = RedisBroker if kind == "redis" else NatsBroker
        self.broker = broker(tmp_path / kind).start()
        self.source = f"{self.broker.url}?stream={self.name}"
        if kind == "nats":
            self.source += f"&subject={self.name}.>"

    def publish(self, count: int, start: int = 0) -> list[tuple[str, int]]:
        """``count`` records over KEYS keys, each key's numbered 0, 1, 2... in stream order."""
        sent = [(f"k{i % KEYS}", i // KEYS) for i in range(start, start + count)]
        if self.kind == "redis":
            client = redis.Redis.from_url(self.broker.url)
            pipe = client.pipeline(transaction=False)
            for key, n in sent:
                pipe.xadd(self.name, {"partitionKey": key, "data": json.dumps({"k": key, "n": n})})
            pipe.execute()
        else:
            asyncio.run(self._nats(sent))
        return sent

    async def _nats(self, sent: list[tuple[str, int]]) -> None:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(self.broker.url)
        js = nc.jetstream()
        try:
            await js.stream_info(self.name)
        except NotFoundError:
            await js.add_stream(name=self.name, subjects=[f"{self.name}.>"])
        for key, n in sent:
            body = json.dumps({"k": key, "n": n}).encode()
            await js.publish(f"{self.name}.in", body, headers={"Partition-Key": key})
        await nc.close()

    def restart(self) -> None:
        self.broker.stop()
        self.broker.start()


@pytest.fixture(params=["redis", "nats"])
def stream(request, tmp_path):
    made = Stream(request.param, tmp_path)
    yield made
    made.broker.stop()


@pytest.fixture
def server(tmp_path):
    _service(REDIS)
    started = Server(tmp_path / "data", "--backend", "zygote").start()
    yield started
    started.stop()


def _deploy(server: Server, root, stream_url: str, extra: str = "", pause: float = 0) -> str:  # type: ignore[no-untyped-def]
    ledger = f"mlambda-test:stream:{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_URL": REDIS, "LEDGER_KEY": ledger, "PAUSE": str(pause)}
    directory = _function(root, "ordered", RECORDER, env=env, timeout_s=5, queue_timeout_s=5)
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write(
            f'[[triggers]]\ntype = "stream"\nsource = "{stream_url}"\n'
            'starting_position = "trim_horizon"\nbatch_size = 50\n'
            'on_failure = "mlambda://ordered-failed"\n' + extra
        )
    server.deploy(directory)
    deadline = time.monotonic() + 20
    while server.client.triggers("ordered")[0]["status"]["state"] != "running":
        assert time.monotonic() < deadline, server.client.triggers("ordered")
        time.sleep(0.05)
    return ledger


def _log(ledger: str) -> list[tuple[str, int]]:
    items = [json.loads(x) for x in redis.Redis.from_url(REDIS).lrange(ledger, 0, -1)]
    return [(i["k"], i["n"]) for i in items]


def _in_order_per_key(log: list[tuple[str, int]]) -> None:
    """Whenever a key's record n is processed, its records 0..n-1 were processed before
    (each at least once): a key's order holds across replays."""
    seen: dict[str, set[int]] = {}
    for key, n in log:
        done = seen.setdefault(key, set())
        missing = [m for m in range(n) if m not in done and (key, m) != ("k3", 50)]
        assert not missing, f"{key}/{n} processed before {key}/{missing[:5]}"
        done.add(n)


def _until_processed(ledger: str, expected: set[tuple[str, int]], timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = _log(ledger)
        if set(log) >= expected:
            return log
        time.sleep(0.1)
    missing = sorted(expected - set(_log(ledger)))
    raise AssertionError(f"{len(missing)} never processed: {missing[:10]}")


def _failed_records(server: Server) -> list[dict]:
    response = server.http(
        "POST", "/v1/queues/ordered-failed/messages/receive", params={"max_messages": 10}
    )
    return [m["body"] for m in response.json()["messages"]]


@pytest.mark.parametrize("lanes", [1, 4])
def test_each_keys_records_arrive_in_order_and_a_bad_record_is_bisected_out(
    server, tmp_path, stream, lanes
):
    extra = (
        f"parallelization_factor = {lanes}\nbisect_batch_on_function_error = true\n"
        "maximum_retry_attempts = 1\n"
    )
    ledger = _deploy(server, tmp_path, stream.source, extra)
    sent = stream.publish(2000)
    expected = set(sent) - {("k3", 50)}
    log = _until_processed(ledger, expected)
    _in_order_per_key(log)
    assert ("k3", 50) not in log
    deadline = time.monotonic() + 20
    while not (failed := _failed_records(server)) and time.monotonic() < deadline:
        time.sleep(0.1)
    [record] = failed  # bisected down to the one bad record, then given up
    info = record["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["streamArn"].endswith(f":stream/{stream.name}")
    [trigger] = server.client.triggers("ordered")
    assert trigger["status"]["iteratorAgeSeconds"] is not None


def test_starting_position_latest_skips_what_was_there_before(server, tmp_path, stream):
    source = stream.source
    before = stream.publish(100)  # before either trigger exists
    ledger = _deploy(server, tmp_path, source)  # trim_horizon: from the stream's start
    _until_processed(ledger, set(before))
    # A second trigger on the same stream, from its end: it sees only what comes after it.
    server.client.add_trigger(
        "ordered", {"type": "stream", "source": source, "starting_position": "latest"}
    )
    deadline = time.monotonic() + 20
    while any(t["status"]["state"] != "running" for t in server.client.triggers("ordered")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    later = stream.publish(20, start=100)
    deadline = time.monotonic() + 30
    while not all(_log(ledger).count(item) == 2 for item in later):
        assert time.monotonic() < deadline, _log(ledger)
        time.sleep(0.1)
    log = _log(ledger)
    assert all(log.count(item) == 1 for item in before)


def test_starting_position_at_timestamp_starts_at_the_first_record_from_then(
    server, tmp_path, stream
):
    stream.publish(30)
    time.sleep(1.0)
    since = time.time()
    later = stream.publish(20, start=30)
    ledger = _deploy(server, tmp_path, stream.source)  # a first trigger only makes the function
    _until_processed(ledger, set(later))
    server.client.add_trigger(
        "ordered",
        {
            "type": "stream",
            "source": stream.source,
            "starting_position": "at_timestamp",
            "starting_position_timestamp": since,
        },
    )
    deadline = time.monotonic() + 30
    while not all(_log(ledger).count(item) == 2 for item in later):
        assert time.monotonic() < deadline, _log(ledger)
        time.sleep(0.1)
    time.sleep(0.5)
    log = _log(ledger)
    assert len(log) == 50 + 20  # the first trigger's 50, the second's 20 from `since` on


@pytest.mark.parametrize("fault", ["kill serve", "restart the broker"])
def test_order_per_key_holds_across_a_fault_and_nothing_is_lost(server, tmp_path, stream, fault):
    ledger = _deploy(
        server,
        tmp_path,
        stream.source,
        # k3/50 always fails: given up at once (bisected down to it), the lane goes on.
        "parallelization_factor = 2\nmaximum_retry_attempts = 0\n"
        "bisect_batch_on_function_error = true\n",
        pause=0.02,
    )
    sent = stream.publish(3000)
    deadline = time.monotonic() + 30
    while len(set(_log(ledger))) < 500:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if fault == "kill serve":
        server.stop(9)
        server.start()
    else:
        stream.restart()
    expected = set(sent) - {("k3", 50)}
    log = _until_processed(ledger, expected, timeout=90)
    _in_order_per_key(log)
    print(f"{stream.kind}, {fault}: {len(log) - len(set(log))} records handed over twice")
