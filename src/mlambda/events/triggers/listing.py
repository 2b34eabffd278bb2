"""Where an object trigger that watches lists its objects: an S3-compatible bucket (ListObjectsV2
through boto3) or a local folder (a walk, woken by inotify through watchfiles, polling where
inotify is not to be had).

A listing maps each key under the source's prefix to its ETag (S3's; for a file, the MD5 of its
content, as S3 computes a single-part upload's) and a stamp (size and modification time) that
tells when a file's ETag must be computed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from typing import Protocol

from mlambda.events.s3_client import s3_client
from mlambda.events.triggers.config import TriggerSpec
from mlambda.events.triggers.seen import Seen
from mlambda.events.triggers.sources import Source

log = logging.getLogger("mlambda.triggers")
S3_POLL_S = 5.0
FOLDER_POLL_S = 1.0
# A file modified this recently may still be being written: it is listed once it has settled.
SETTLE_S = 0.5


@dataclasses.dataclass(frozen=True)
class Listed:
    etag: str
    stamp: str
    size: int
    modified: float  # epoch seconds


class ObjectLister(Protocol):
    """Lists a bucket's prefix or a folder. ``listing`` raises when the store cannot be read
    (the trigger reports it and tries again); ``wait`` returns when something may have
    changed or after the poll interval; ``close`` is idempotent."""

    bucket: str

    async def listing(self, known: dict[str, Seen]) -> dict[str, Listed]: ...

    async def wait(self) -> None: ...

    async def close(self) -> None: ...


class BucketLister:
    def __init__(self, spec: TriggerSpec, source: Source) -> None:
        self.bucket = source.name
        self.prefix = source.options.get("prefix", "")
        self.interval = spec.poll_interval_s or S3_POLL_S
        self._client = s3_client(
            spec.endpoint_url, spec.region, spec.access_key_id, spec.secret_access_key
        )

    async def listing(self, known: dict[str, Seen]) -> dict[str, Listed]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> dict[str, Listed]:
        found: dict[str, Listed] = {}
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                etag = item["ETag"].strip('"')
                found[item["Key"]] = Listed(
                    etag, f"{item['Size']}:{etag}", item["Size"], item["LastModified"].timestamp()
                )
        return found

    async def wait(self) -> None:
        await asyncio.sleep(self.interval)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


class FolderLister:
    def __init__(self, spec: TriggerSpec, source: Source) -> None:
        self.root = source.name
        self.bucket = os.path.basename(self.root) or "root"
        self.interval = spec.poll_interval_s or FOLDER_POLL_S
        self._changed = asyncio.Event()
        self._unsettled = False
        self._watcher: asyncio.Task[None] | None = None

    async def listing(self, known: dict[str, Seen]) -> dict[str, Listed]:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        found, self._unsettled = await asyncio.to_thread(walk, self.root, known, time.time())
        return found

    async def wait(self) -> None:
        timeout = SETTLE_S if self._unsettled else self.interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    async def _watch(self) -> None:
        """Wakes ``wait`` when inotify reports a change; the poll interval covers the rest."""
        import watchfiles

        while True:
            try:
                async for _ in watchfiles.awatch(self.root, debounce=100, step=20):
                    self._changed.set()
            except Exception as exc:  # the folder went away: polling finds it again
                log.debug("watching %s: %s", self.root, exc)
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher


def walk(root: str, known: dict[str, Seen], now: float) -> tuple[dict[str, Listed], bool]:
    """Every settled file under ``root`` (hidden ones left out: a writer's temporary file), by
    its path relative to it; whether a file was left for not having settled."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"the folder {root} does not exist")
    found: dict[str, Listed] = {}
    unsettled = False
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue  # gone since the walk saw it
            if now - info.st_mtime < SETTLE_S:
                unsettled = True
                continue
            key = os.path.relpath(path, root).replace(os.sep, "/")
            stamp = f"{info.st_size}:{info.st_mtime_ns}"
            seen = known.get(key)
            etag = seen.etag if seen is not None and seen.stamp == stamp else _md5(path)
            if etag:
                found[key] = Listed(etag, stamp, info.st_size, info.st_mtime)
    return found, unsettled


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()
