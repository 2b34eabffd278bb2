"""Function logs: one append-only file per function, and live subscribers for ``--follow``.

A stored line is ``<ISO-8601 UTC timestamp> <text>``; a log file past ``max_bytes`` is rotated
to ``<name>.log.1`` (one generation kept), so logs never fill the disk. ``expire`` removes the
lines older than a retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import BinaryIO

_second: tuple[int, str] = (-1, "")


def timestamp(now: float) -> str:
    global _second
    whole = int(now)
    if _second[0] != whole:  # formatted once a second: strftime is the costly part
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(now % 1 * 1000):03d}Z"


class LogSink:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._files: dict[str, BinaryIO] = {}
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._unflushed: set[BinaryIO] = set()
        self._sizes: dict[str, int] = {}
        # Text written while the function's file is being cut (expire): appended after.
        self._held: dict[str, list[str]] = {}

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def write(self, function: str, lines: Iterable[str], now: float | None = None) -> None:
        stamp = timestamp(time.time() if now is None else now)
        text = "".join(f"{stamp} {line}\n" for line in lines)
        if not text:
            return
        held = self._held.get(function)
        if held is not None:
            held.append(text)
        else:
            self.write_text(function, text)
        for queue in self._subscribers.get(function, ()):
            queue.put_nowait(text)

    def _flush_soon(self, handle: BinaryIO) -> None:
        """Written to the file before the event loop reads its next request: one write per
        loop turn for all the calls that ended in it, not one per call."""
        if not self._unflushed:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a tool, a test): at once
                handle.flush()
                return
        self._unflushed.add(handle)

    def flush(self) -> None:
        for handle in self._unflushed:
            with contextlib.suppress(OSError, ValueError):  # ValueError: closed since
                handle.flush()
        self._unflushed.clear()

    def _file(self, function: str) -> BinaryIO:
        handle = self._files.get(function)
        if handle is None:
            handle = self._files[function] = self.path(function).open("ab")
            self._sizes[function] = handle.tell()  # opened at its end
        return handle

    def _rotate(self, function: str) -> None:
        self._close(function)
        self.path(function).replace(self.path(function).with_suffix(".log.1"))

    async def expire(self, before: float) -> int:
        """Remove the lines written before ``before`` from every function's files; returns the
        files cut. A file is cut in a thread; what its function writes meanwhile is held and
        appended once it is done, so nothing is lost and the loop never waits on the disk."""
        cutoff = timestamp(before)
        cut = 0
        for path in sorted(self.directory.glob("*.log*")):
            if path.suffix == ".cut":  # a cut that a crash interrupted
                path.unlink(missing_ok=True)
                continue
            if not _older_first_line(path, cutoff):
                continue
            function = path.name.split(".log")[0]
            current = path == self.path(function)
            if current:
                self._held[function] = []
                self._close(function)
            try:
                await asyncio.to_thread(_cut, path, cutoff)
                cut += 1
            finally:
                if current:
                    held = self._held.pop(function)
                    if held:
                        self.write_text(function, "".join(held))
        return cut

    def write_text(self, function: str, text: str) -> None:
        """Append already stamped text."""
        handle = self._file(function)
        data = text.encode("utf-8", errors="replace")
        handle.write(data)
        self._sizes[function] += len(data)
        self._flush_soon(handle)
        if self._sizes[function] > self.max_bytes:
            self._rotate(function)

    def _close(self, function: str) -> None:
        handle = self._files.pop(function, None)
        if handle is not None:
            self._unflushed.discard(handle)
            with contextlib.suppress(OSError):
                handle.close()

    def tail(self, function: str, lines: int) -> list[str]:
        self.flush()
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
        self._close(function)
        for path in (self.path(function), self.path(function).with_suffix(".log.1")):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self.flush()
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()


def _older_first_line(path: Path, cutoff: str) -> bool:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        return handle.read(len(cutoff)).decode("ascii", errors="replace") < cutoff
    return False


def _cut(path: Path, cutoff: str) -> None:
    """Keep the lines stamped at or after ``cutoff`` (lines are in time order)."""
    with path.open("rb") as handle:
        lines = handle.readlines()
    stamp = cutoff.encode()
    keep = next((i for i, line in enumerate(lines) if line[: len(stamp)] >= stamp), len(lines))
    if keep == len(lines):
        path.unlink(missing_ok=True)
        return
    spare = path.with_name(path.name + ".cut")
    with spare.open("wb") as handle:
        handle.writelines(lines[keep:])
    os.replace(spare, path)
