"""An instance forked from a function's template: init already ran there. A spare (forked ahead
of need) is sent Prepare first and builds then what the template could not build before the
fork; any other fork does that once its Configure comes. Then it attaches and serves.
"""

from __future__ import annotations

import os
import socket
import time

import msgspec

from mlambda.runtime import handler as handlers
from mlambda.runtime import protocol, sandbox
from mlambda.runtime.process import Channel
from mlambda.runtime.worker import Worker, receive_configure, sandbox_error, serve_provided


def serve_initialised(sock: socket.socket, worker: Worker, fork_started: float) -> int:
    """Run an instance forked from a template: init already ran there; only attach and serve."""
    channel = Channel(sock)
    isolation = None
    if worker.config.sandbox is not None:
        # Before the Configure: a pre-forked spare pays for its own /tmp ahead of need.
        try:
            sandbox.isolate_instance(worker.config.sandbox)
        except sandbox.SandboxError as exc:
            isolation = protocol.InitFailed(error=sandbox_error(exc))
    # The fork's cost ends here; a pre-forked spare may now wait a long time for its Configure.
    fork_ms = (time.perf_counter() - fork_started) * 1000
    first = channel.recv()
    prepared: float | BaseException | None = None
    threads = 0
    if isinstance(first, protocol.Prepare):
        # A spare: build now, ahead of need, so that the call that takes it waits for nothing.
        threads = first.threads
        prepared = _prepare(worker, threads, ahead=True)
        first = None
    config = receive_configure(channel, first)
    if isolation is not None:
        channel.send(isolation)
        return 1
    if worker.bootstrap:
        config = msgspec.structs.replace(worker.config, instance_id=config.instance_id)
        return serve_provided(channel, config, worker.bootstrap, "template", fork_ms)
    worker.attach(channel, config)
    if prepared is None:
        threads = config.threads
        prepared = _prepare(worker, threads)
        init_ms = prepared if isinstance(prepared, float) else 0.0
    else:
        init_ms = 0.0  # built before this call came
        if config.threads and config.threads != threads and not isinstance(prepared, BaseException):
            # Prepared as a lone instance and taken beside busy ones (or the other way round):
            # its pools that can change size take this start's share.
            threads = config.threads
            worker.reshare(threads)
    if isinstance(prepared, BaseException):
        # Only a model the template mapped but could not build before the fork fails here.
        payload = handlers.error_payload(
            prepared, "Runtime.InitError", "Unable to load the model: "
        )
        channel.send(protocol.InitFailed(error=payload, logs=worker.capture.end()))
        return 1
    channel.send(
        protocol.Ready(
            pid=os.getpid(),
            import_ms=0.0,
            init_ms=init_ms,
            tier="template",
            fork_ms=fork_ms,
            threads=threads,
        )
    )
    return worker.serve()


def _prepare(worker: Worker, threads: int, ahead: bool = False) -> float | BaseException:
    """``worker.prepare``'s ms, or what it raised (reported once the Configure has come)."""
    try:
        return worker.prepare(threads, ahead)
    except BaseException as exc:
        return exc
