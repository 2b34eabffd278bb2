"""Per-invocation capture of what the handler prints or logs (thread-aware for concurrency > 1)."""

from __future__ import annotations

import io
import logging
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
