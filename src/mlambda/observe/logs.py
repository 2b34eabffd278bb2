"""Function logs: one append-only file per function, and live subscribers for ``--follow``.

A stored line is ``<ISO-8601 UTC timestamp> <text>``; a log file past ``max_bytes`` is rotated
to ``<name>.log.1`` (one generation kept), so logs never fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO


def timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class LogSink:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._files: dict[str, TextIO] = {}
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def write(self, function: str, lines: Iterable[str], now: float | None = None) -> None:
        stamp = timestamp(time.time() if now is None else now)
        text = "".join(f"{stamp} {line}\n" for line in lines)
        if not text:
            return
        handle = self._file(function)
        handle.write(text)
        handle.flush()
        for queue in self._subscribers.get(function, ()):
            queue.put_nowait(text)
        if handle.tell() > self.max_bytes:
            self._rotate(function)

    def _file(self, function: str) -> TextIO:
        handle = self._files.get(function)
        if handle is None:
            handle = self._files[function] = self.path(function).open("a", encoding="utf-8")
        return handle

    def _rotate(self, function: str) -> None:
        self._files.pop(function).close()
        self.path(function).replace(self.path(function).with_suffix(".log.1"))

    def tail(self, function: str, lines: int) -> list[str]:
        path = self.path(function)
        if not path.exists():
            return []
        with path.open(encoding="utf-8", errors="replace") as handle:
            content = handle.read().splitlines(keepends=True)
        return content[-lines:] if lines > 0 else []

    async def follow(self, function: str) -> AsyncIterator[str]:
        """Yield text as it is written, until the consumer stops iterating."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers.setdefault(function, set()).add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[function].discard(queue)

    def remove(self, function: str) -> None:
        handle = self._files.pop(function, None)
        if handle is not None:
            handle.close()
        for path in (self.path(function), self.path(function).with_suffix(".log.1")):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()
