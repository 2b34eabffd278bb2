"""An instance process's plumbing: its frame channel to the pool, its parent-death signal,
its peak memory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys
import threading

from mlambda.runtime import protocol


class Channel:
    """Blocking frame I/O over the instance's socket; ``send`` is safe from several threads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._lock = threading.Lock()

    def recv(self) -> protocol.Message | None:
        header = self._file.read(protocol.HEADER.size)
        if len(header) < protocol.HEADER.size:
            return None
        body = self._file.read(protocol.frame_length(header))
        return protocol.decode(body)

    def send(self, message: protocol.Message) -> None:
        data = protocol.encode(message)
        with self._lock:
            self._sock.sendall(data)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL us when the platform dies, so no instance outlives `serve`."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim): a model built from
    a parsed file leaves the parse's memory free but still counted against the instance."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL(None).malloc_trim(0)
