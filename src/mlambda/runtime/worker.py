"""The instance's main loop: configure, import the handler, then answer Invoke frames.

Started by a backend with the pool's end of a socketpair as ``MLAMBDA_WORKER_FD`` (a plain
process), or entered directly after a fork (``serve(sock)``). Exits when the pool says Shutdown,
when the socket closes, or when the platform process dies (parent-death signal).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import msgspec

from mlambda.runtime import handler as handlers
from mlambda.runtime import protocol, sandbox
from mlambda.runtime import threads as thread_pools
from mlambda.runtime.capture import Capture
from mlambda.runtime.context import LambdaContext, function_arn, log_stream_name
from mlambda.runtime.process import Channel, die_with_parent, max_memory_mb
from mlambda.runtime.user_spans import InvocationTrace

FD_VARIABLE = "MLAMBDA_WORKER_FD"
# Set by the platform for a provided runtime: the bootstrap the instance runs (runtime/provided.py).
BOOTSTRAP_VARIABLE = "MLAMBDA_BOOTSTRAP"


class Worker:
    def __init__(self, channel: Channel | None, config: protocol.Configure) -> None:
        self.channel = channel  # None in a template: each forked instance attaches its own
        self.config = config
        self.capture = Capture()
        self.handler: handlers.Handler | None = None
        self.model: Any = None  # a ModelHandler for model functions (runtime/model.py)
        self.bootstrap = ""  # a provided runtime's, in a template: each instance starts it
        self.threads = config.threads  # what the resizable native pools have now
        self.tracer = InvocationTrace()  # _X_AMZN_TRACE_ID, and spans user code makes
        # As the environment names it (set at start) unless that belongs to another instance.
        stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        if not stream.endswith(f"[{config.function_version}]{config.instance_id}"):
            stream = log_stream_name(config.function_version, config.instance_id)
        self.log_stream = stream

    def initialize(self) -> protocol.Ready | protocol.InitFailed:
        os.environ.update(self.config.env)
        self.bootstrap = os.environ.pop(BOOTSTRAP_VARIABLE, "")
        if self.bootstrap:
            return protocol.Ready(pid=os.getpid(), import_ms=0.0, init_ms=0.0)
        self.capture.install()
        self.capture.begin()
        started = time.perf_counter()
        try:
            handlers.preload(self.config.preload)
            imported = time.perf_counter()
            if self.config.model is not None:
                self.model = handlers.load_model(self.config, defer=self.channel is None)
            else:
                self.handler = handlers.load(self.config.handler, self.config.task_root)
        except handlers.InitFailure as failure:
            return self._init_failed(failure.payload)
        except BaseException as exc:  # a fault of ours must reach the caller too, not vanish
            return self._init_failed(handlers.error_payload(exc, "Runtime.InitError"))
        done = time.perf_counter()
        init_logs = self.capture.end()
        if init_logs:
            sys.__stdout__.write(init_logs)  # type: ignore[union-attr]
            sys.__stdout__.flush()  # type: ignore[union-attr]
        return protocol.Ready(
            pid=os.getpid(),
            import_ms=(imported - started) * 1000,
            init_ms=(done - imported) * 1000,
        )

    def _init_failed(self, error: dict[str, Any]) -> protocol.InitFailed:
        sys.stdout.write(handlers.error_log(error))
        return protocol.InitFailed(error=error, logs=self.capture.end())

    def _context(self, request: protocol.Invoke) -> LambdaContext:
        return LambdaContext(
            request_id=request.request_id,
            function_name=self.config.function_name,
            function_version=self.config.function_version,
            memory_mb=self.config.memory_mb,
            log_stream_name=self.log_stream,
            deadline_ms=request.deadline_ms,
            client_context=request.client_context,
            invoked_arn=function_arn(self.config.function_name, request.qualifier),
            trace=request.trace,
        )

    def invoke(self, request: protocol.Invoke) -> protocol.Result | protocol.Failure:
        if self.model is not None or self.config.batched:
            return self.run([request])[0]
        assert self.handler is not None
        context = self._context(request)
        self.capture.begin()
        traced = self.tracer.begin(request.trace)
        started = time.perf_counter()
        cpu = time.process_time()
        try:
            event = handlers.decode_event(request.payload)
            body = self._checked(handlers.marshal(self.handler(event, context)))
        except SystemExit as exc:
            self._exit(exc)
        except BaseException as exc:
            duration = (time.perf_counter() - started) * 1000
            error = handlers.invocation_error(exc, request.request_id)
            failure = self._failure(request, error, duration, (time.process_time() - cpu) * 1000)
            failure.spans = self.tracer.end(traced)
            return failure
        return protocol.Result(
            spans=self.tracer.end(traced),
            request_id=request.request_id,
            body=body,
            logs=self.capture.end(),
            duration_ms=(time.perf_counter() - started) * 1000,
            max_memory_mb=max_memory_mb(),
            cpu_ms=(time.process_time() - cpu) * 1000,
        )

    def _checked(self, body: bytes) -> bytes:
        if len(body) > self.config.max_response_bytes:
            raise handlers.ResponseTooLarge(len(body), self.config.max_response_bytes)
        return body

    def _exit(self, exc: SystemExit) -> NoReturn:
        # The handler asked the process to exit: it does, and the pool reports the exit status
        # as Runtime.ExitError, as Lambda does. os._exit because a thread cannot exit otherwise.
        sys.__stdout__.write(self.capture.end())  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]
        os._exit(exc.code if isinstance(exc.code, int) else 1)

    def run(self, requests: list[protocol.Invoke]) -> list[protocol.Result | protocol.Failure]:
        """Answer several invocations with one call of the model or batch handler."""
        self.capture.begin()
        traced = self.tracer.begin(requests[0].trace)  # a shared call: the first caller's trace
        started = time.perf_counter()
        cpu = time.process_time()
        outcomes: list[bytes | tuple[bytes, dict[str, str]] | BaseException]
        rows = [1] * len(requests)
        try:
            if self.model is not None:
                outcomes = self._run_model(requests, rows)
            else:
                outcomes = self._run_batch_handler(requests)
        except SystemExit as exc:
            self._exit(exc)
        except BaseException as exc:
            outcomes = [exc] * len(requests)
            sys.stdout.write(handlers.error_log(handlers.invocation_error(exc, "")))
        duration = (time.perf_counter() - started) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000 / len(requests)
        spans = self.tracer.end(traced)
        logs = self.capture.end()
        memory = max_memory_mb()
        answers: list[protocol.Result | protocol.Failure] = []
        for request, outcome, count in zip(requests, outcomes, rows, strict=True):
            headers: dict[str, str] = {}
            if isinstance(outcome, tuple):
                outcome, headers = outcome
            if isinstance(outcome, bytes) and len(outcome) > self.config.max_response_bytes:
                outcome = handlers.ResponseTooLarge(len(outcome), self.config.max_response_bytes)
            if isinstance(outcome, BaseException):
                answers.append(
                    protocol.Failure(
                        request_id=request.request_id,
                        error=handlers.invocation_error(outcome, request.request_id),
                        logs=logs,
                        duration_ms=duration,
                        max_memory_mb=memory,
                        batch_size=len(requests),
                        cpu_ms=cpu_ms,
                        rows=0,
                        spans=spans,
                    )
                )
            else:
                answers.append(
                    protocol.Result(
                        request_id=request.request_id,
                        body=outcome,
                        logs=logs,
                        duration_ms=duration,
                        max_memory_mb=memory,
                        headers=headers,
                        batch_size=len(requests),
                        cpu_ms=cpu_ms,
                        rows=count,
                        spans=spans,
                    )
                )
            logs, spans = "", []  # the batch's output and spans go with its first request
        return answers

    def _run_model(
        self, requests: list[protocol.Invoke], rows: list[int]
    ) -> list[bytes | tuple[bytes, dict[str, str]] | BaseException]:
        """The model's answers; ``rows`` gets each request's rows (0: none predicted)."""
        outcomes: list[bytes | tuple[bytes, dict[str, str]] | BaseException] = []
        decoded: list[Any] = []
        places: list[int] = []
        for request in requests:
            if request.protocol == "v2-metadata":
                rows[len(outcomes)] = 0
                outcomes.append(self.model.metadata())
                continue
            try:
                decoded.append(self.model.decode(request))
                rows[len(outcomes)] = decoded[-1].rows or 1
                places.append(len(outcomes))
                outcomes.append(b"")
            except Exception as exc:
                outcomes.append(handlers.model_input_error(exc))
        for place, outcome in zip(places, self.model.run(decoded), strict=True):
            outcomes[place] = handlers.model_input_error(outcome)
        return outcomes

    def _run_batch_handler(self, requests: list[protocol.Invoke]) -> list[Any]:
        assert self.handler is not None
        outcomes: list[Any] = [None] * len(requests)
        events, places = [], []
        for index, request in enumerate(requests):
            try:
                events.append(handlers.decode_event(request.payload))
                places.append(index)
            except ValueError as exc:
                outcomes[index] = exc
        if events:
            results = self.handler(events, self._context(requests[places[0]]))
            if not isinstance(results, list | tuple) or len(results) != len(events):
                count = (
                    len(results) if isinstance(results, list | tuple) else type(results).__name__
                )
                raise handlers.BatchResultError(
                    f"batch handler returned {count} results for {len(events)} events; "
                    "it must return a list with one result (or exception) per event, in order"
                )
            for index, result in zip(places, results, strict=True):
                if isinstance(result, BaseException):
                    outcomes[index] = result
                    continue
                try:
                    outcomes[index] = handlers.marshal(result)
                except handlers.MarshalError as exc:
                    outcomes[index] = exc
        return outcomes

    def _failure(
        self, request: protocol.Invoke, error: dict[str, Any], duration: float, cpu_ms: float
    ) -> protocol.Failure:
        sys.stdout.write(handlers.error_log(error))  # into the invocation's log, as Lambda does
        return protocol.Failure(
            request_id=request.request_id,
            error=error,
            logs=self.capture.end(),
            duration_ms=duration,
            max_memory_mb=max_memory_mb(),
            cpu_ms=cpu_ms,
            rows=0,
        )

    def _answer(self, message: protocol.Invoke | protocol.Batch) -> None:
        assert self.channel is not None
        first = message if isinstance(message, protocol.Invoke) else message.items[0]
        if first.threads and first.threads != self.threads:
            # A lone call uses every core; one beside busy instances, its share.
            thread_pools.resize(first.threads)
            self.threads = first.threads
        if isinstance(message, protocol.Invoke):
            self.channel.send(self.invoke(message))
            return
        if self.model is None and not self.config.batched:
            for item in message.items:
                self.channel.send(self.invoke(item))
            return
        for answer in self.run(message.items):
            self.channel.send(answer)

    def prepare(self, threads: int, ahead: bool = False) -> float:
        """In an instance forked from a template: size the native pools and build what the
        template could not build before the fork; returns the ms it took. ``ahead`` (a spare,
        before any call needs it): also warm that model with one call on a sample."""
        thread_pools.size(threads)
        self.threads = threads
        started = time.perf_counter()  # init: what is built here (sizing pools is the fork's)
        if self.model is not None:
            self.model.after_fork(threads, warm=ahead and self.config.prime)
        return (time.perf_counter() - started) * 1000

    def reshare(self, threads: int) -> None:
        """A prepared spare started with another share of the cores: the pools that can change
        size (and the variables its code reads) take ``threads``; an ONNX Runtime or TFLite
        session keeps the size it was built with."""
        thread_pools.size(threads, from_one=False)
        self.threads = threads
        if self.model is not None:
            self.model.after_fork(threads)

    def attach(self, channel: Channel, config: protocol.Configure) -> None:
        """Bind a template's initialised worker to a forked instance's own socket and id."""
        self.channel = channel
        self.config = msgspec.structs.replace(self.config, instance_id=config.instance_id)
        self.log_stream = log_stream_name(config.function_version, config.instance_id)
        os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = self.log_stream

    def serve(self) -> int:
        """Answer Invoke frames until Shutdown or EOF; returns the exit status."""
        assert self.channel is not None
        executor = (
            ThreadPoolExecutor(self.config.concurrency) if self.config.concurrency > 1 else None
        )
        while True:
            message = self.channel.recv()
            if message is None or isinstance(message, protocol.Shutdown):
                return 0
            if not isinstance(message, protocol.Invoke | protocol.Batch):
                raise protocol.ProtocolError(f"unexpected {type(message).__name__} frame")
            if executor is None:
                self._answer(message)
            else:
                executor.submit(self._answer, message)


def receive_configure(channel: Channel, config: object = None) -> protocol.Configure:
    if config is None:
        config = channel.recv()
    if not isinstance(config, protocol.Configure):
        raise protocol.ProtocolError("the first frame must be Configure")
    return config


def enter_sandbox(config: protocol.Configure) -> protocol.InitFailed | None:
    """Confine this process as the platform asks, before any of the function's code runs."""
    if config.sandbox is None:
        return None
    try:
        sandbox.enter(config.sandbox)
    except sandbox.SandboxError as exc:
        return protocol.InitFailed(error=sandbox_error(exc))
    return None


def sandbox_error(exc: sandbox.SandboxError) -> dict[str, object]:
    return {
        "errorType": "Runtime.InitError",
        "errorMessage": f"Unable to enter the sandbox: {exc}",
        "stackTrace": [],
    }


def serve(sock: socket.socket, tier: str = "process", fork_started: float | None = None) -> int:
    """Run one instance over a connected socket (init included); returns the exit status."""
    channel = Channel(sock)
    config = receive_configure(channel)
    failed = enter_sandbox(config)
    if failed is not None:
        channel.send(failed)
        return 1
    bootstrap = os.environ.pop(BOOTSTRAP_VARIABLE, "")
    if bootstrap:
        fork_ms = (time.perf_counter() - fork_started) * 1000 if fork_started is not None else 0.0
        return serve_provided(channel, config, bootstrap, tier, fork_ms)
    if fork_started is not None:
        # A fresh process needs none of this: its environment sized them before import.
        thread_pools.size(config.threads)
    worker = Worker(channel, config)
    outcome = worker.initialize()
    if isinstance(outcome, protocol.Ready):
        outcome.tier = tier
        outcome.threads = config.threads
        if fork_started is not None:
            outcome.fork_ms = (time.perf_counter() - fork_started) * 1000
    channel.send(outcome)
    if isinstance(outcome, protocol.InitFailed):
        return 1
    return worker.serve()


def serve_provided(
    channel: Channel, config: protocol.Configure, bootstrap: str, tier: str, fork_ms: float
) -> int:
    # Imported here only: its HTTP server weighs on no Python function's cold start.
    from mlambda.runtime import provided

    return provided.serve(channel, config, bootstrap, tier, fork_ms)


def main() -> int:
    die_with_parent()
    sock = socket.socket(fileno=int(os.environ.pop(FD_VARIABLE)))
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main())
