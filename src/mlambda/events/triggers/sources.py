"""A trigger's ``source`` URL: which broker, where, and which queue, stream or topic (pure).

    amqp://USER:PASS@HOST:5672/VHOST?queue=orders                RabbitMQ, a queue
    redis://HOST:6379/0?stream=orders&group=g                     Redis, a stream (a consumer
                                                                  group for a queue trigger)
    nats://HOST:4222?stream=ORDERS&subject=orders.>               NATS JetStream
    mqtt://HOST:1883?topic=t/+                                    MQTT (Mosquitto), a topic filter
    mlambda://orders                                              the platform's own queue
    s3://BUCKET/PREFIX/                                           an S3-compatible bucket (object)
    file:///srv/drop/                                             a local folder (object)

Credentials in the URL are the user's secret: ``redacted`` is what logs, the API and the CLI
show.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from mlambda.errors import InvalidSpec

QUEUE, STREAM, OBJECT = "queue", "stream", "object"
# scheme: (broker, the query parameters it needs, those it may take, the trigger types it serves)
SCHEMES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "amqp": ("rabbitmq", ("queue",), (), (QUEUE,)),
    "amqps": ("rabbitmq", ("queue",), (), (QUEUE,)),
    "redis": ("redis", ("stream",), ("group",), (QUEUE, STREAM)),
    "rediss": ("redis", ("stream",), ("group",), (QUEUE, STREAM)),
    "nats": ("nats", ("stream",), ("subject",), (QUEUE, STREAM)),
    "mqtt": ("mqtt", ("topic",), (), (QUEUE,)),
    "mlambda": ("mlambda", (), (), (QUEUE,)),
    "s3": ("s3", (), (), (OBJECT,)),
    "file": ("file", (), (), (OBJECT,)),
}
PLATFORM_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,80}")


@dataclasses.dataclass(frozen=True)
class Source:
    url: str  # as the user gave it (credentials included: never logged)
    broker: str  # rabbitmq, redis, nats, mqtt, mlambda, s3, file
    name: str  # the queue, stream or topic filter; the bucket; the folder
    options: dict[str, str]  # the other query parameters it names (group, subject); prefix

    @property
    def redacted(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (what may be shown and logged)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = urllib.parse.quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def parse_source(url: str, kind: str, where: str) -> Source:
    """Check a trigger's source URL for a trigger of ``kind``; ``where`` names it in errors."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidSpec(f"{where}.source must be a URL such as amqp://HOST/?queue=NAME")
    parts = urllib.parse.urlsplit(url)
    shown = redact(url)
    entry = SCHEMES.get(parts.scheme)
    if entry is None:
        raise InvalidSpec(
            f"{where}.source {shown!r}: the scheme must be one of {', '.join(sorted(SCHEMES))}"
        )
    broker, required, optional, kinds = entry
    if kind not in kinds:
        serves = " or ".join(f"type = {k!r}" for k in kinds)
        raise InvalidSpec(
            f"{where}.source {shown!r}: {broker} serves {serves} triggers, not type = {kind!r}"
        )
    if broker == "mlambda":
        name = (parts.netloc + parts.path).strip("/")
        if not PLATFORM_QUEUE.fullmatch(name):
            raise InvalidSpec(
                f"{where}.source {shown!r}: a platform queue is mlambda://NAME, NAME 1-80 "
                "letters, digits, '-' or '_'"
            )
        return Source(url, broker, name, {})
    if broker in ("s3", "file"):
        return _object_source(url, parts, broker, f"{where}.source {shown!r}")
    if not parts.hostname:
        raise InvalidSpec(f"{where}.source {shown!r}: the URL names no host")
    try:
        # A '+' is MQTT's one-level wildcard (?topic=t/+), not a space: only %XX is decoded.
        query = urllib.parse.parse_qs(
            parts.query.replace("+", "%2B"), keep_blank_values=True, strict_parsing=False
        )
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise InvalidSpec(f"{where}.source {shown!r}: {exc}") from None
    for key, values in query.items():
        if key not in required + optional:
            allowed = ", ".join(required + optional)
            raise InvalidSpec(
                f"{where}.source {shown!r}: unknown parameter {key!r} (takes {allowed})"
            )
        if len(values) != 1 or not values[0]:
            raise InvalidSpec(f"{where}.source {shown!r}: {key} needs exactly one value")
    for key in required:
        if key not in query:
            raise InvalidSpec(f"{where}.source {shown!r}: names no {key} (?{key}=NAME)")
    options = {key: values[0] for key, values in query.items() if key not in required}
    return Source(url, broker, query[required[0]][0], options)


BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _object_source(url: str, parts: urllib.parse.SplitResult, broker: str, where: str) -> Source:
    """s3://BUCKET/PREFIX (the prefix may be empty) or file:///FOLDER/ (absolute)."""
    if parts.query or parts.fragment:
        raise InvalidSpec(f"{where}: takes no query (filters are the trigger's suffix and events)")
    if broker == "s3":
        if not BUCKET.fullmatch(parts.netloc):
            raise InvalidSpec(
                f"{where}: s3://BUCKET/PREFIX, BUCKET 3-63 lowercase letters, digits, '.' or '-'"
            )
        prefix = urllib.parse.unquote(parts.path.lstrip("/"))
        return Source(url, broker, parts.netloc, {"prefix": prefix})
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise InvalidSpec(f"{where}: a folder is file:///ABSOLUTE/PATH/")
    folder = urllib.parse.unquote(parts.path).rstrip("/") or "/"
    return Source(url, broker, folder, {"prefix": ""})
