"""A provided runtime: the bundle's ``bootstrap``, started by each instance and served the Lambda
Runtime API (runtime_api.py) from inside that instance.

The instance's worker process becomes the bootstrap's parent. It serves the Runtime API on
127.0.0.1 (an ephemeral port), starts ``bootstrap`` from the task root with
``AWS_LAMBDA_RUNTIME_API`` pointing there, and is Ready at the bootstrap's first /next. Then each
Invoke frame of the pool is the answer to the bootstrap's pending /next, and its /response or
/error the Result or Failure frame; what it writes meanwhile is that invocation's log.

The bootstrap stays in the instance's process group and cgroup, so a timeout or a stop that
kills the instance kills it too; it dies with the worker (parent-death signal); and when it
exits, the worker exits the same way, so the pool reports Runtime.ExitError as for any crash.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

from mlambda.runtime import linux, protocol
from mlambda.runtime.capture import PipeCapture
from mlambda.runtime.context import function_arn, log_stream_name
from mlambda.runtime.runtime_api import Event, RuntimeApi

if TYPE_CHECKING:
    from mlambda.runtime.process import Channel


def bootstrap_environment(
    environ: Mapping[str, str], config: protocol.Configure, address: str
) -> dict[str, str]:
    """The bootstrap's environment: the instance's Lambda variables (pool/environment.py),
    pointed at its own Runtime API and log stream."""
    env = dict(environ)
    stream = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
    if not stream.endswith(f"[{config.function_version}]{config.instance_id}"):
        stream = log_stream_name(config.function_version, config.instance_id)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "LAMBDA_TASK_ROOT": config.task_root,
            "_HANDLER": config.handler,
        }
    )
    return env


def entrypoint_error(path: str, exc: OSError) -> dict[str, object]:
    """Lambda's error for a bootstrap that cannot be started (missing, not executable...)."""
    return {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"Error: fork/exec {path}: {(exc.strerror or str(exc)).lower()}",
        "stackTrace": [],
    }


class ProvidedRuntime:
    """One instance's bootstrap process and the Runtime API it is served."""

    def __init__(self, config: protocol.Configure, path: str) -> None:
        self.config = config
        self.path = path
        self.api = RuntimeApi(config.max_response_bytes)
        self.output: PipeCapture | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # While idle (waiting for the pool's next frame) a bootstrap's exit ends the instance at
        # once; otherwise it arrives as an event where the instance waits for the bootstrap.
        self._lock = threading.Lock()
        self._idle = False
        self._exit_status: int | None = None
        self._stopping = False

    def start(self) -> protocol.Ready | protocol.InitFailed:
        """Start the bootstrap; Ready at its first /next, InitFailed at its /init/error."""
        started = time.perf_counter()
        read_fd, write_fd = os.pipe()
        linux.libc()  # loaded now: the child must not load a library between fork and exec
        try:
            self.process = subprocess.Popen(
                [self.path],
                cwd=self.config.task_root,
                env=bootstrap_environment(os.environ, self.config, self.api.address),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                preexec_fn=_die_with_parent,  # no thread of ours runs yet: fork is safe
            )
        except OSError as exc:
            os.close(read_fd)
            return protocol.InitFailed(error=entrypoint_error(self.path, exc))
        finally:
            os.close(write_fd)
        self.output = PipeCapture(read_fd, sys.__stdout__)  # type: ignore[arg-type]
        self.output.begin()
        self.output.start()
        self.api.start()
        threading.Thread(target=self._watch, name="bootstrap-exit", daemon=True).start()
        event = self._next_event()
        logs = self.output.end()
        if event.kind == "init_error":
            return protocol.InitFailed(error=event.error, logs=logs)
        sys.__stdout__.write(logs)  # type: ignore[union-attr]  # init's output, as for Python
        sys.__stdout__.flush()  # type: ignore[union-attr]
        init_ms = (time.perf_counter() - started) * 1000
        return protocol.Ready(pid=os.getpid(), import_ms=0.0, init_ms=init_ms)

    def invoke(self, request: protocol.Invoke) -> protocol.Result | protocol.Failure:
        assert self.output is not None
        self.output.begin()
        started = time.perf_counter()
        cpu = self._cpu_ms()
        self.api.offer(request, function_arn(self.config.function_name, request.qualifier))
        event = self._next_event()
        duration = (time.perf_counter() - started) * 1000
        logs = self.output.end()
        memory = self._max_memory_mb()
        cpu = self._cpu_ms() - cpu
        if event.kind == "response":
            return protocol.Result(
                request_id=request.request_id,
                body=event.body,
                logs=logs,
                duration_ms=duration,
                max_memory_mb=memory,
                cpu_ms=cpu,
            )
        return protocol.Failure(
            request_id=request.request_id,
            error=event.error,
            logs=logs,
            duration_ms=duration,
            max_memory_mb=memory,
            cpu_ms=cpu,
            rows=0,
        )

    def _cpu_ms(self) -> float:
        """CPU time of this process and the bootstrap so far (its own children not counted)."""
        own = time.process_time() * 1000
        assert self.process is not None
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                # Fields after the command's closing parenthesis; utime and stime are 14 and 15.
                fields = stat.read().rpartition(")")[2].split()
            return own + (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return own

    def _next_event(self) -> Event:
        event = self.api.events.get()
        if event.kind == "exited":
            assert self._exit_status is not None
            self._exit_like(self._exit_status)
        return event

    def receive(self, recv: Callable[[], protocol.Message | None]) -> protocol.Message | None:
        """The pool's next frame; a bootstrap that exits meanwhile ends the instance."""
        with self._lock:
            if self._exit_status is not None:
                self._exit_like(self._exit_status)
            self._idle = True
        try:
            return recv()
        finally:
            with self._lock:
                self._idle = False

    def _watch(self) -> None:
        assert self.process is not None
        status = self.process.wait()
        with self._lock:
            self._exit_status = status
            if self._stopping:
                return
            if self._idle:
                self._exit_like(status)
            self.api.events.put(Event("exited"))

    def _exit_like(self, status: int) -> NoReturn:
        """Exit as the bootstrap did (its code, or its signal), its last output written out."""
        if self.output is not None:
            sys.__stdout__.write(self.output.end())  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]
        if status < 0:
            # SIGKILL's action cannot be changed, nor need it be.
            with contextlib.suppress(OSError, ValueError):
                signal.signal(-status, signal.SIG_DFL)
            os.kill(os.getpid(), -status)
        os._exit(status if status >= 0 else 128 - status)

    def _max_memory_mb(self) -> int:
        """The larger peak of this process and the bootstrap (its own children not counted)."""
        own = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        assert self.process is not None
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return max(own, int(line.split()[1]) // 1024)
        except (OSError, ValueError, IndexError):
            pass
        return own

    def stop(self) -> None:
        """Kill the bootstrap (the instance is done); idempotent."""
        with self._lock:
            self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.api.close()


def _die_with_parent() -> None:
    """In the bootstrap, before exec: SIGKILL when the worker (its parent) dies, however."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def serve(
    channel: Channel, config: protocol.Configure, path: str, tier: str, fork_ms: float = 0.0
) -> int:
    """Run one instance of the bootstrap at ``path`` over the instance's connected channel
    (its sandbox entered already); returns the exit status."""
    runtime = ProvidedRuntime(config, path)
    outcome = runtime.start()
    if isinstance(outcome, protocol.Ready):
        outcome.tier = tier
        outcome.fork_ms = fork_ms
    channel.send(outcome)
    if isinstance(outcome, protocol.InitFailed):
        runtime.stop()
        return 1
    while True:
        message = runtime.receive(channel.recv)
        if message is None or isinstance(message, protocol.Shutdown):
            runtime.stop()
            return 0
        if isinstance(message, protocol.Invoke):
            channel.send(runtime.invoke(message))
        elif isinstance(message, protocol.Batch):
            for item in message.items:  # never sent: a provided runtime takes no batches
                channel.send(runtime.invoke(item))
        else:
            raise protocol.ProtocolError(f"unexpected {type(message).__name__} frame")
