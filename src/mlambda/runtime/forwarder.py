"""``network = "platform"``: inside a network namespace of its own, the function reaches the
platform's gateway, and only it, at ``127.0.0.1:<port>`` (the port serve listens on outside).

A small process forked when the sandbox is entered listens there and copies each connection
to and from the gateway's Unix socket, which the sandbox binds into the private root (a Unix
socket is a file: it crosses network namespaces). The gateway still asks for a key.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import threading

from mlambda.runtime import linux

CHUNK = 65536


def start(port: int, socket_path: str) -> int:
    """Fork the forwarder; returns its pid (the caller goes on as it was)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    pid = os.fork()
    if pid:
        listener.close()  # the child serves it; the parent must not keep the port
        return pid
    code = 0
    try:
        _detach(listener.fileno())
        _serve(listener, socket_path)
    except BaseException:
        code = 1
    os._exit(code)


def _detach(keep: int) -> None:
    """Hold nothing of the parent's: its control socket and output pipe must close when it
    exits, so the platform sees it go; and die with it."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, keep)
    os.closerange(keep + 1, limit if limit != resource.RLIM_INFINITY else 65536)


def _serve(listener: socket.socket, socket_path: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_bridge, args=(client, socket_path), daemon=True).start()


def _bridge(client: socket.socket, socket_path: str) -> None:
    with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
        try:
            upstream.connect(socket_path)
        except OSError:
            return  # the platform is not there: the caller sees the connection close
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(CHUNK):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)  # the other way may still be talking
