"""Per-invocation capture of what the handler prints or logs (thread-aware for concurrency > 1),
or of what a provided runtime's bootstrap writes to its output pipe (``PipeCapture``)."""

from __future__ import annotations

import codecs
import io
import logging
import os
import select
import sys
import threading
import time
from typing import Any, TextIO


class CapturingStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: text written during an invocation goes to its buffer."""

    def __init__(self, fallback: TextIO, local: threading.local) -> None:
        self._fallback = fallback
        self._local = local

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            return self._fallback.write(text)
        return int(buffer.write(text))

    def flush(self) -> None:
        self._fallback.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "encoding", "utf-8")


class Capture:
    """Install once per process; ``begin``/``end`` bracket one invocation on the calling thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def install(self) -> None:
        sys.stdout = CapturingStream(sys.__stdout__, self._local)  # type: ignore[arg-type]
        sys.stderr = CapturingStream(sys.__stderr__, self._local)  # type: ignore[arg-type]
        # Lambda's Python runtime gives the root logger a handler that writes to the function log.
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        handler = logging.StreamHandler(sys.stdout)
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        root.addHandler(handler)

    def begin(self) -> None:
        self._local.buffer = io.StringIO()

    def end(self) -> str:
        buffer: Any = getattr(self._local, "buffer", None)
        self._local.buffer = None
        return buffer.getvalue() if buffer is not None else ""


class PipeCapture:
    """What a child process writes to a pipe (its stdout and stderr), read by a thread: into
    the buffer ``begin`` opened, or straight to ``fallback`` (the instance's output) when none
    is open. ``end`` first reads what the pipe holds: whatever the child wrote before it
    answered the invocation is in the pipe by then, so it lands in that invocation's log."""

    def __init__(self, fd: int, fallback: TextIO) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._fallback = fallback
        self._lock = threading.Lock()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer: io.StringIO | None = None

    def start(self) -> None:
        threading.Thread(target=self._pump, name="bootstrap-output", daemon=True).start()

    def _pump(self) -> None:
        while self._take():
            select.select([self._fd], [], [])

    def _take(self) -> bool:
        """Read what the pipe holds now; False once the child's end is closed."""
        with self._lock:
            while True:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    return True
                self._write(self._decoder.decode(data, final=not data))
                if not data:
                    return False

    def _write(self, text: str) -> None:
        if not text:
            return
        if self._buffer is not None:
            self._buffer.write(text)
        else:
            self._fallback.write(text)
            self._fallback.flush()

    def begin(self) -> None:
        with self._lock:
            self._buffer = io.StringIO()

    def end(self) -> str:
        self._take()
        with self._lock:
            buffer, self._buffer = self._buffer, None
        return buffer.getvalue() if buffer is not None else ""
