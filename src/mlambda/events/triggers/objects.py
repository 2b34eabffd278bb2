"""Object triggers: an object created in (or removed from) a bucket or a folder becomes one
asynchronous invocation with S3's event notification as its payload, with the retries,
destinations and dead letters of the function's asynchronous settings.

Two ways in. ``mode = "watch"``: this module lists the bucket's prefix (or walks the folder,
woken by inotify) and fires once per new (key, ETag); what it has seen is kept in the registry,
so a restart fires nothing twice for what was seen and misses nothing that came while it was
down. ``mode = "notify"``: the store posts its event notifications to ``POST /v1/events/s3``
(``notifications``). Each event is queued with an idempotency key made of the trigger, the key
and the ETag (or the notification's sequencer): the same event queued twice within the queue's
window (a crash between queueing and remembering) is one invocation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from mlambda.events.shapes import CREATED, REMOVED, ObjectEvent, s3_record
from mlambda.events.triggers.listing import Listed, ObjectLister
from mlambda.events.triggers.seen import Seen, SeenObjects
from mlambda.events.triggers.state import RECONNECTING, RUNNING, TriggerState
from mlambda.events.triggers.store import Trigger

log = logging.getLogger("mlambda.triggers")
Accept = Callable[..., Awaitable[Any]]
RETRY_S = (1.0, 30.0)  # after a failed listing: the first wait, doubling up to the last
SAVE_EVERY = 100  # events queued between two writes of what was seen


def wanted(trigger: Trigger, event: ObjectEvent) -> bool:
    """Pure: whether the trigger's filters (bucket, prefix, suffix, event kinds) take the event."""
    source, spec = trigger.source, trigger.spec
    return (
        (source.broker == "file" or event.bucket == source.name)
        and event.key.startswith(source.options.get("prefix", ""))
        and event.key.endswith(spec.suffix)
        and event.kind in spec.events
    )


def changes(
    seen: dict[str, Seen], listed: dict[str, Listed]
) -> tuple[dict[str, Listed], list[str]]:
    """Pure: objects new or with a new ETag since ``seen``, and keys gone from the listing."""
    added = {k: v for k, v in listed.items() if k not in seen or seen[k].etag != v.etag}
    removed = [k for k in seen if k not in listed]
    return added, removed


def idempotency_key(trigger: Trigger, event: ObjectEvent) -> str:
    """A watch's event is named by its object's content: seen again, it is the same event."""
    return f"object:{trigger.id}:{event.kind}:{event.bucket}/{event.key}:{event.etag}"


def payload(trigger: Trigger, event: ObjectEvent, region: str) -> bytes:
    return msgspec.json.encode({"Records": [s3_record(event, region, trigger.id)]})


class ObjectTrigger:
    def __init__(
        self,
        trigger: Trigger,
        lister: ObjectLister,
        seen: SeenObjects,
        accept: Accept,
        state: TriggerState,
        *,
        region: str,
    ) -> None:
        self.trigger = trigger
        self.lister = lister
        self.seen_store = seen
        self.accept = accept
        self.state = state
        self.region = region
        self._sequence = time.time_ns()

    async def run(self) -> None:
        try:
            seen = await asyncio.to_thread(self.seen_store.load)
            delay = RETRY_S[0]
            while True:
                try:
                    listed = await self.lister.listing(seen or {})
                    seen = await self._step(seen, listed)
                    self.state.state = RUNNING  # after the first listing: what follows fires
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the store or the queue: the next listing retries
                    await self._failed(exc, delay)
                    delay = min(delay * 2, RETRY_S[1])
                    continue
                delay = RETRY_S[0]
                await self.lister.wait()
        finally:
            await self.lister.close()

    async def _failed(self, exc: Exception, delay: float) -> None:
        if self.state.state != RECONNECTING:
            log.warning(
                "trigger %s of %s cannot read %s: %s",
                self.trigger.id,
                self.trigger.function,
                self.trigger.source.redacted,
                exc,
            )
        self.state.state = RECONNECTING
        self.state.failed(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(delay)

    async def _step(
        self, seen: dict[str, Seen] | None, listed: dict[str, Listed]
    ) -> dict[str, Seen]:
        mine = {k: v for k, v in listed.items() if k.endswith(self.trigger.spec.suffix)}
        if seen is None:  # the first listing: what is there already fires nothing
            first = {k: Seen(v.etag, v.stamp) for k, v in mine.items()}
            await asyncio.to_thread(self.seen_store.first_listing, first, time.time())
            return first
        added, removed = changes(seen, mine)
        self.state.lagging(len(added) + len(removed))
        done: dict[str, Seen] = {}
        gone: list[str] = []
        for key, item in added.items():
            await self._fire(CREATED, key, item.size, item.etag, item.modified)
            done[key] = Seen(item.etag, item.stamp)
            await self._save(seen, done, gone)
        for key in removed:
            await self._fire(REMOVED, key, None, seen[key].etag, time.time())
            gone.append(key)
            await self._save(seen, done, gone)
        await self._save(seen, done, gone, force=True)
        self.state.lagging(0)
        return seen

    async def _save(
        self, seen: dict[str, Seen], done: dict[str, Seen], gone: list[str], force: bool = False
    ) -> None:
        """What was queued, written to the registry every SAVE_EVERY events and at the end."""
        if not (done or gone) or (not force and len(done) + len(gone) < SAVE_EVERY):
            return
        await asyncio.to_thread(self.seen_store.update, dict(done), list(gone))
        seen.update(done)
        for key in gone:
            seen.pop(key, None)
        done.clear()
        gone.clear()

    async def _fire(self, name: str, key: str, size: int | None, etag: str, at: float) -> None:
        self._sequence += 1
        event = ObjectEvent(name, self.lister.bucket, key, size, etag, f"{self._sequence:016X}", at)
        if event.kind not in self.trigger.spec.events:
            return
        await self.accept(
            self.trigger.function,
            payload(self.trigger, event, self.region),
            idempotency_key=idempotency_key(self.trigger, event),
        )
        self.state.batch({"succeeded": 1})
