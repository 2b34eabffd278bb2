"""Queue triggers: how fast a backlog drains, side by side with a bare consumer loop, and the
time from publish to handler at a low rate.

    .venv/bin/python bench/triggers.py [--messages 100000] [--brokers redis,rabbitmq,...]

For each broker (RabbitMQ, Redis and NATS as this machine runs them, a Mosquitto of the run's
own that keeps every message, and the platform's own queue):
- drain: `--messages` messages are published while the function's trigger is disabled
  (batch_size 100, a no-op handler), then it is enabled and timed until every message is
  processed; the floor is a bare consumer loop on the same broker, with the same client
  library, calling the same handler in-process (receive 100, call, acknowledge). Goal: the
  trigger drains at >= 50% of the floor's rate.
- latency: one message every 50 ms, the handler recording its arrival time minus the
  publish time in the body. Goal: p50 <= 10 ms.
Writes the "triggers" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from results import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlambda.events.shapes import QueueMessage, sqs_event  # noqa: E402
from tests.conftest import write_function  # noqa: E402
from tests.system.brokers import MosquittoBroker  # noqa: E402
from tests.system.conftest import Server  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
NATS = "nats://127.0.0.1:4222"
LATENCY_KEY = "mlambda-bench:latency"
HANDLER = """
import json, time
import redis

latency = redis.Redis.from_url("redis://127.0.0.1:6379/0")

def handler(event, context):
    now = time.time()
    bodies = [r["body"] for r in event["Records"]]
    delays = [now - json.loads(body)["t"] for body in bodies if body[:5] == '{"t":']
    if delays:
        latency.rpush("mlambda-bench:latency", *delays)
"""
BROKERS = ("rabbitmq", "redis", "nats", "mqtt", "mlambda")


def bodies(count: int) -> list[bytes]:
    return [json.dumps({"n": n}).encode() for n in range(count)]


# -- publishing -------------------------------------------------------------------------------


class Target:
    """One broker's queue for one run: its trigger URL, publishing and a bare consumer."""

    def __init__(self, kind: str, mqtt: MosquittoBroker | None, server: Server | None) -> None:
        self.kind = kind
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        self.mqtt = mqtt
        self.server = server

    @property
    def source(self) -> str:
        return {
            "rabbitmq": f"{AMQP}?queue={self.name}",
            "redis": f"{REDIS}?stream={self.name}",
            "nats": f"{NATS}?stream={self.name}&subject={self.name}.>",
            "mqtt": f"{self.mqtt.url if self.mqtt else ''}?topic={self.name}/+",
            "mlambda": f"mlambda://{self.name}",
        }[self.kind]

    def publish(self, payloads: list[bytes]) -> None:
        if self.kind == "redis":
            client = redis.Redis.from_url(REDIS)
            for start in range(0, len(payloads), 1000):
                pipe = client.pipeline(transaction=False)
                for body in payloads[start : start + 1000]:
                    pipe.xadd(self.name, {"body": body})
                pipe.execute()
        elif self.kind == "mqtt":
            import paho.mqtt.client as paho

            assert self.mqtt is not None
            client = paho.Client(paho.CallbackAPIVersion.VERSION2)
            client.max_inflight_messages_set(1000)
            client.max_queued_messages_set(0)
            client.connect("127.0.0.1", self.mqtt.port)
            client.loop_start()
            for start in range(0, len(payloads), 1000):  # paho queues a bounded number
                chunk = payloads[start : start + 1000]
                for info in [client.publish(f"{self.name}/in", b, qos=1) for b in chunk]:
                    info.wait_for_publish(60)
            client.disconnect()
            client.loop_stop()
        elif self.kind == "mlambda":
            assert self.server is not None
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda b: self.server.client.send_message(self.name, b), payloads))
        else:
            asyncio.run(self._publish_async(payloads))

    async def _publish_async(self, payloads: list[bytes]) -> None:
        if self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect(AMQP)
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                await channel.declare_queue(self.name, durable=True)
                for start in range(0, len(payloads), 5000):
                    await asyncio.gather(
                        *(
                            channel.default_exchange.publish(
                                aio_pika.Message(b), routing_key=self.name
                            )
                            for b in payloads[start : start + 5000]
                        )
                    )
            return
        import nats

        nc = await nats.connect(NATS)
        js = nc.jetstream()
        try:
            await js.stream_info(self.name)
        except Exception:
            await js.add_stream(name=self.name, subjects=[f"{self.name}.>"])
        for start in range(0, len(payloads), 1000):
            await asyncio.gather(
                *(js.publish(f"{self.name}.in", b) for b in payloads[start : start + 1000])
            )
        await nc.close()


# -- the floor: a bare consumer loop, the handler called in-process ---------------------------


def load_handler(directory: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_noop", directory / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def event(records: list[tuple[str, bytes]]) -> dict:
    """The event the function is written for, SQS's, built as the trigger builds it."""
    messages = [QueueMessage(i, b, i, time.time(), time.time()) for i, b in records]
    return sqs_event(messages, "bare", "bench", "us-east-1")


async def bare(target: Target, count: int, handler, data: Path) -> float:  # type: ignore[no-untyped-def]
    """Seconds a bare loop takes to consume ``count`` messages already published."""
    started = time.perf_counter()
    done = 0
    if target.kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS)
        await client.xgroup_create(target.name, "bare", id="0", mkstream=True)
        while done < count:
            reply = await client.xreadgroup("bare", "c", {target.name: ">"}, count=100, block=1000)
            entries = reply[0][1] if reply else []
            handler(event([(i.decode(), f[b"body"]) for i, f in entries]), None)
            if entries:
                await client.xack(target.name, "bare", *[i for i, _ in entries])
            done += len(entries)
        await client.aclose()
    elif target.kind == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=200)
            queue = await channel.declare_queue(target.name, durable=True)
            batch: list = []
            async with queue.iterator() as messages:
                async for message in messages:
                    batch.append(message)
                    if len(batch) == 100 or done + len(batch) == count:
                        handler(event([(str(m.delivery_tag), m.body) for m in batch]), None)
                        for m in batch:
                            await m.ack()
                        done += len(batch)
                        batch = []
                        if done >= count:
                            break
    elif target.kind == "nats":
        import nats

        nc = await nats.connect(NATS)
        sub = await nc.jetstream().pull_subscribe(f"{target.name}.>", "bare", stream=target.name)
        while done < count:
            try:
                got = await sub.fetch(100, timeout=1)
            except Exception:
                continue
            handler(event([(str(m.metadata.sequence.stream), m.data) for m in got]), None)
            for m in got:
                await m.ack()
            done += len(got)
        await nc.close()
    elif target.kind == "mqtt":
        done = await bare_mqtt(target, count, handler)
    else:
        from mlambda.events.backends import open_queue
        from mlambda.events.queues import PlatformQueues

        data.mkdir(parents=True, exist_ok=True)
        queues = PlatformQueues(open_queue("sqlite:", data, "bare", namespace="queues"))
        # The platform queue's own file in a scratch data dir: filled first, then drained.
        for body in bodies(count):
            await queues.send(target.name, body)
        started = time.perf_counter()
        while done < count:
            got = []
            for _ in range(10):
                got += await queues.receive(target.name, 10, 60)
            handler(event([(m.record.id, m.record.payload) for m in got]), None)
            for m in got:
                await queues.delete(target.name, m.receipt)
            done += len(got)
        await queues.close()
    return time.perf_counter() - started


async def bare_mqtt(target: Target, count: int, handler) -> int:  # type: ignore[no-untyped-def]
    """MQTT's floor: the same persistent session, drained with manual acks."""
    import paho.mqtt.client as paho

    assert target.mqtt is not None
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id="bare-" + target.name,
        clean_session=False, manual_ack=True,
    )  # fmt: skip
    client.on_message = lambda c, u, m: loop.call_soon_threadsafe(inbox.put_nowait, m)
    client.connect("127.0.0.1", target.mqtt.port)
    client.loop_start()
    done = 0
    while done < count:
        batch = [await inbox.get()]
        while not inbox.empty() and len(batch) < 100:
            batch.append(inbox.get_nowait())
        handler(event([(str(m.mid), m.payload) for m in batch]), None)
        for m in batch:
            client.ack(m.mid, 1)
        done += len(batch)
    client.disconnect()
    client.loop_stop()
    return done


def subscribe_bare_mqtt(target: Target) -> None:
    """Make the bare consumer's persistent session before publishing (MQTT keeps messages only
    for sessions that exist)."""
    import paho.mqtt.client as paho

    assert target.mqtt is not None
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id="bare-" + target.name, clean_session=False
    )
    client.connect("127.0.0.1", target.mqtt.port)
    client.loop_start()
    client.subscribe(f"{target.name}/+", qos=1)[1]
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


# -- the platform -------------------------------------------------------------------------------


def trigger_of(server: Server) -> dict:
    [trigger] = server.client.triggers("noop")
    return trigger


def deploy(server: Server, root: Path, target: Target) -> str:
    directory = write_function(root, "noop", HANDLER, max_instances=2)
    table = (
        f'[[triggers]]\ntype = "queue"\nsource = "{target.source}"\nbatch_size = 100\n'
        "max_concurrency = 2\n"
    )
    with (directory / "mlambda.toml").open("a") as toml:
        toml.write(table)
    server.deploy(directory)
    deadline = time.monotonic() + 30
    while trigger_of(server)["status"]["state"] != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the trigger did not start: {trigger_of(server)}")
        time.sleep(0.05)
    return trigger_of(server)["id"]


def drain(server: Server, trigger_id: str, count: int) -> float:
    started = time.perf_counter()
    server.client.set_trigger_enabled(trigger_id, True)
    deadline = time.monotonic() + 1800
    while server.client.trigger(trigger_id)["status"]["processed"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained: {server.client.trigger(trigger_id)}")
        time.sleep(0.05)
    return time.perf_counter() - started


def latency(server: Server, target: Target, samples: int) -> float:
    store = redis.Redis.from_url(REDIS)
    store.delete(LATENCY_KEY)
    for _ in range(samples):
        target.publish([json.dumps({"t": time.time()}).encode()])
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while store.llen(LATENCY_KEY) < samples and time.monotonic() < deadline:
        time.sleep(0.05)
    delays = [float(d) for d in store.lrange(LATENCY_KEY, 0, -1)]
    return statistics.median(delays) * 1000


def run(kind: str, count: int, samples: int, root: Path, mqtt: MosquittoBroker | None) -> dict:
    server = Server(root / f"data-{kind}", "--backend", "zygote").start()
    try:
        target = Target(kind, mqtt, server)
        trigger_id = deploy(server, root, target)
        server.client.set_trigger_enabled(trigger_id, False)
        payloads = bodies(count)
        target.publish(payloads)
        seconds = drain(server, trigger_id, count)
        p50 = latency(server, target, samples)
    finally:
        server.stop()
    floor_target = Target(kind, mqtt, None)
    if kind == "mqtt":
        subscribe_bare_mqtt(floor_target)
    if kind != "mlambda":
        floor_target.publish(payloads)
    handler = load_handler(root / "noop")
    floor = asyncio.run(bare(floor_target, count, handler, root / f"floor-{kind}"))
    return {"kind": kind, "rate": count / seconds, "floor": count / floor, "p50": p50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--brokers", default=",".join(BROKERS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mqtt = MosquittoBroker(root / "mosquitto").start()
        try:
            for kind in args.brokers.split(","):
                row = run(kind, args.messages, args.samples, root, mqtt)
                print(row, flush=True)
                rows.append(row)
        finally:
            mqtt.stop()
    lines = [
        "## Triggers: draining a queue",
        "",
        f"{machine()}. `make bench-triggers`: {args.messages:,} messages published with the",
        "trigger disabled (batch_size 100, max_concurrency 2, a no-op handler), then timed from",
        "enabling it until the trigger reports every message processed. The floor: a bare loop",
        "on the same broker and client library calling the same handler in-process (receive",
        "100, build the SQS event the handler is written for, call, acknowledge). Latency: one",
        "message every 50 ms, publish to handler, p50.",
        "",
        "| broker | trigger msg/s | floor msg/s | ratio (goal >= 50%) "
        "| publish -> handler p50 (goal <= 10 ms) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["rate"] / row["floor"]
        lines.append(
            f"| {row['kind']} | {row['rate']:,.0f} | {row['floor']:,.0f} | "
            f"{ratio:.0%} {'met' if ratio >= 0.5 else 'not met'} | "
            f"{row['p50']:.1f} ms {'met' if row['p50'] <= 10 else 'not met'} |"
        )
    write_section("triggers", "\n".join(lines))


if __name__ == "__main__":
    main()
