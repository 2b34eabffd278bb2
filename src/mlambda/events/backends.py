"""The queue backend ``queue_url`` (MLAMBDA_QUEUE_URL, ``--queue-url``) names.

``sqlite:`` (the default) keeps events in ``<data dir>/queue.db``; ``sqlite:///PATH`` elsewhere;
``redis://`` / ``rediss://`` on Redis Streams; ``nats://`` / ``tls://`` on NATS JetStream. A
broker's names start with the URL's ``prefix`` (default ``mlambda``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlambda.errors import InvalidSpec
from mlambda.events.queue import Queue

SCHEMES = ("sqlite", "redis", "rediss", "nats", "tls")


def open_queue(url: str, data_dir: Path, consumer: str, namespace: str = "") -> Queue:
    """The backend for ``url``; ``consumer`` names this gateway to a broker (its leases). A
    ``namespace`` keeps another set of events apart in the same backend (the platform's queues:
    ``<data dir>/queues.db``, or names prefixed ``PREFIX-queues``)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from mlambda.events.sqlite import SqliteQueue

        if not parts.path:
            return SqliteQueue(data_dir / f"{namespace or 'queue'}.db")
        path = Path(parts.path)
        if namespace:
            path = path.with_name(f"{path.stem}-{namespace}{path.suffix}")
        return SqliteQueue(path)
    if namespace:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query["prefix"] = f"{query.get('prefix') or 'mlambda'}-{namespace}"
        url = urlunsplit(parts._replace(query=urlencode(query)))
    if parts.scheme in ("redis", "rediss"):
        from mlambda.events.redis import RedisQueue

        return RedisQueue(url, consumer=consumer)
    if parts.scheme in ("nats", "tls"):
        from mlambda.events.nats import NatsQueue

        return NatsQueue(url, consumer=consumer)
    raise InvalidSpec(
        f"queue_url must start with one of {', '.join(s + ':' for s in SCHEMES)}; got {url!r}"
    )
