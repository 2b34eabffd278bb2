"""Queue triggers survive faults without losing a message: ``serve`` killed with SIGKILL in the
middle of a flow and started again, and the broker restarted in the middle of a flow. Every
message is processed in the end; duplicates are allowed (at least once) and counted."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid

import pytest
import redis

from tests.system.brokers import MosquittoBroker, NatsBroker, RedisBroker
from tests.system.conftest import Server
from tests.system.test_async import _function
from tests.system.test_triggers import AMQP, REDIS, _service

# Records each number it processed; slow enough that a fault lands in the middle of the flow.
SLOW = """
    import json, os, time
    import redis

    ledger = redis.Redis.from_url(os.environ["LEDGER_URL"])

    def handler(event, context):
        time.sleep(0.25)
        numbers = [json.loads(r["body"])["n"] for r in event["Records"]]
        ledger.rpush(os.environ["LEDGER_KEY"], *numbers)
"""
COUNT = 2000


def _deploy(server: Server, root, name: str, source: str) -> str:  # type: ignore[no-untyped-def]
    ledger = f"mlambda-test:{name}:{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_URL": REDIS, "LEDGER_KEY": ledger}
    # Two batches at a time, a quarter second each: the flow lasts about five seconds.
    directory = _function(
        root, name, SLOW, env=env, timeout_s=2, queue_timeout_s=2, max_instances=2
    )
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write(f'[[triggers]]\ntype = "queue"\nsource = "{source}"\nbatch_size = 50\n')
    server.deploy(directory)
    deadline = time.monotonic() + 20
    while server.client.triggers(name)[0]["status"]["state"] != "running":
        assert time.monotonic() < deadline, server.client.triggers(name)
        time.sleep(0.05)
    return ledger


def _processed(ledger: str) -> list[int]:
    return [int(n) for n in redis.Redis.from_url(REDIS).lrange(ledger, 0, -1)]


def _wait_for(ledger: str, at_least: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _processed(ledger)
        if len(set(seen)) >= at_least:
            return seen
        time.sleep(0.05)
    missing = sorted(set(range(COUNT)) - set(_processed(ledger)))
    raise AssertionError(f"{len(missing)} never processed, first {missing[:10]}")


def _bodies() -> list[bytes]:
    return [json.dumps({"n": n}).encode() for n in range(COUNT)]


class Source:
    """A broker the test can publish to and restart: (its trigger URL, publish, restart)."""

    def __init__(self, kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.kind = kind
        self.name = f"f{uuid.uuid4().hex[:8]}"
        self.own = None
        if kind == "redis":
            self.own = RedisBroker(tmp_path / "redis").start()
            self.url = f"{self.own.url}?stream={self.name}"
        elif kind == "nats":
            self.own = NatsBroker(tmp_path / "nats").start()
            self.url = f"{self.own.url}?stream={self.name}&subject={self.name}.>"
        elif kind == "mqtt":
            self.own = MosquittoBroker(tmp_path / "mqtt").start()
            self.url = f"{self.own.url}?topic={self.name}/+"
        else:
            _service("amqp://127.0.0.1:5672")
            self.url = f"{AMQP}?queue={self.name}"

    def publish(self) -> None:
        if self.kind == "redis":
            client = redis.Redis.from_url(self.own.url)  # type: ignore[union-attr]
            pipe = client.pipeline(transaction=False)
            for body in _bodies():
                pipe.xadd(self.name, {"body": body})
            pipe.execute()
        elif self.kind == "nats":
            asyncio.run(self._nats())
        elif self.kind == "mqtt":
            from tests.system.test_triggers import publish_mqtt

            publish_mqtt(self.own.port, f"{self.name}/in", _bodies())  # type: ignore[union-attr]
        else:
            asyncio.run(self._rabbit())

    async def _nats(self) -> None:
        import nats

        nc = await nats.connect(self.own.url)  # type: ignore[union-attr]
        js = nc.jetstream()
        for body in _bodies():
            await js.publish(f"{self.name}.in", body, stream=self.name)
        await nc.close()

    async def _rabbit(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(self.name, durable=True)
            persistent = aio_pika.DeliveryMode.PERSISTENT
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(b, delivery_mode=persistent), routing_key=self.name
                    )
                    for b in _bodies()
                )
            )

    def restart(self) -> None:
        if self.own is not None:
            # Redis (fsync always) and NATS (JetStream on disk) are killed; Mosquitto keeps
            # messages in memory between autosaves, so it is stopped as a service stops it.
            self.own.stop(signal.SIGTERM if self.kind == "mqtt" else signal.SIGKILL)
            self.own.start()
            return
        for action in ("stop_app", "start_app"):
            subprocess.run(["rabbitmqctl", action], check=True, capture_output=True, timeout=120)

    def close(self) -> None:
        if self.own is not None:
            self.own.stop()


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path / "data", "--backend", "zygote").start()
    yield started
    started.stop()


KINDS = ["redis", "nats", "mqtt", "rabbitmq"]


@pytest.mark.parametrize("kind", KINDS)
def test_serve_killed_mid_flow_loses_no_message(server, tmp_path, kind):
    source = Source(kind, tmp_path)
    try:
        ledger = _deploy(server, tmp_path, f"killed-{kind}", source.url)
        source.publish()
        _wait_for(ledger, 300)
        server.stop(9)  # SIGKILL: nothing acknowledged in flight, nothing flushed
        server.start()
        seen = _wait_for(ledger, COUNT)
        assert set(seen) == set(range(COUNT))
        print(f"{kind}: {len(seen) - COUNT} duplicates after kill -9")
    finally:
        source.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_broker_restarted_mid_flow_loses_no_message(server, tmp_path, kind):
    source = Source(kind, tmp_path)
    try:
        ledger = _deploy(server, tmp_path, f"restarted-{kind}", source.url)
        source.publish()
        _wait_for(ledger, 300)
        assert len(set(_processed(ledger))) < COUNT  # the restart lands mid-flow
        source.restart()
        seen = _wait_for(ledger, COUNT, timeout=90)
        assert set(seen) == set(range(COUNT))
        deadline = time.monotonic() + 30
        while (state := server.client.triggers(f"restarted-{kind}")[0]["status"])[
            "state"
        ] != "running":
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        if kind != "redis":  # redis-py reconnects a lost connection itself, unseen
            assert state["lastError"]  # the outage was seen, and is shown
        log = server.log.read_text()
        # Logged once per outage, not once per attempt.
        assert log.count("unavailable") <= 2, log[-2000:]
        print(f"{kind}: {len(seen) - COUNT} duplicates after a broker restart")
    finally:
        source.close()
