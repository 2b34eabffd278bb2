"""Fork servers: the base zygote, runtime zygotes and function templates.

The platform starts the base zygote (``python -m mlambda.runtime.zygote``): an interpreter with
this package imported and nothing else. Every other process is forked, never started:

    base zygote --Spawn(zygote, preload)--> runtime zygote   (imports numpy, sklearn...)
    runtime zygote --Spawn(template)--> template             (imports the handler: model loaded)
    template --Spawn(instance)--> instance                   (serves; model pages shared COW)

A template waits for its Configure on its own control socket: the platform sends it once the
template's limits are in place, since init is the function's own code. It enters the sandbox
(runtime/sandbox.py) before init; each instance forked from it isolates itself further.

Each fork server reads Spawn packets on its SOCK_SEQPACKET control socket. A Spawn carries two
descriptors: the child's own socket (a control socket for a zygote or template, the worker
stream for an instance) and the write end of the child's output pipe. The server answers
Spawned(pid); it reaps its children and reports Exited(pid, status). A server exits when its
control socket closes; its children then die with it (parent-death signal).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time
import traceback

from mlambda.runtime import priming, protocol
from mlambda.runtime import threads as thread_pools
from mlambda.runtime.forked import serve_initialised
from mlambda.runtime.handler import error_payload
from mlambda.runtime.process import die_with_parent
from mlambda.runtime.worker import Worker, enter_sandbox, serve

FD_VARIABLE = "MLAMBDA_ZYGOTE_FD"
MAX_PACKET = 1 << 20


def send(control: socket.socket, message: protocol.Message) -> None:
    control.send(protocol.encode_packet(message))


def recv(control: socket.socket) -> tuple[protocol.Message | None, list[int]]:
    try:
        data, fds, _, _ = socket.recv_fds(control, MAX_PACKET, 2)
    except ConnectionResetError:
        # The platform closed its end with our replies unread (it is stopping): as at EOF.
        return None, []
    if not data:
        return None, fds
    return protocol.decode(data), fds


class ForkServer:
    def __init__(self, control: socket.socket, tier: str, worker: Worker | None = None) -> None:
        self.control = control
        self.tier = tier  # "base" | "runtime" | "template"
        self.worker = worker  # set in a template: its handler is initialised
        self._wakeup_r, self._wakeup_w = os.pipe()
        self._selector: selectors.BaseSelector | None = None

    def run(self) -> int:
        """Serve Spawn packets until the control socket closes."""
        os.set_blocking(self._wakeup_w, False)
        os.set_blocking(self._wakeup_r, False)
        # SIGCHLD wakes the loop through the pipe, so exits are reaped and reported at once.
        signal.set_wakeup_fd(self._wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.control, selectors.EVENT_READ, "control")
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, "signal")
        while True:
            for key, _ in self._selector.select():
                if key.data == "signal":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wakeup_r, 4096)
                    self._reap()
                    continue
                message, fds = recv(self.control)
                if message is None:
                    return 0
                if not isinstance(message, protocol.Spawn) or len(fds) != 2:
                    for fd in fds:
                        os.close(fd)
                    raise protocol.ProtocolError("a fork server takes Spawn with two descriptors")
                self._spawn(message, fds[0], fds[1])

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send(self.control, protocol.Exited(pid=pid, status=os.waitstatus_to_exitcode(status)))

    def _spawn(self, message: protocol.Spawn, child_fd: int, output_fd: int) -> None:
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self._after_fork(child_fd, output_fd)
                code = self._become(message, child_fd, started)
            except (BrokenPipeError, ConnectionResetError):
                code = 1  # the platform let go of us (stopping, or evicted): nothing to report
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(child_fd)
        os.close(output_fd)
        fork_ms = (time.perf_counter() - started) * 1000
        send(self.control, protocol.Spawned(pid=pid, fork_ms=fork_ms))

    def _after_fork(self, child_fd: int, output_fd: int) -> None:
        """Fork hygiene: the child must hold nothing of the server's and share nothing random."""
        # A session of its own: the platform kills an instance's whole process group at once.
        os.setsid()
        # The server's handlers and wakeup pipe are not the child's.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        if self._selector is not None:
            self._selector.close()
        # detach: the socket object must not close the number again once user code reuses it.
        for fd in (self._wakeup_r, self._wakeup_w, self.control.detach()):
            with contextlib.suppress(OSError):
                os.close(fd)
        # Its own output pipe, so the platform can tell whose lines are whose.
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        # Die with the server that forked us, which dies with the platform: no orphans.
        die_with_parent()
        # Forked children would otherwise draw the same "random" numbers.
        random.seed()
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()

    def _become(self, message: protocol.Spawn, fd: int, started: float) -> int:
        if message.kind == "zygote":
            return become_runtime_zygote(socket.socket(fileno=fd), message.preload)
        if message.kind == "template":
            return become_template(socket.socket(fileno=fd))
        sock = socket.socket(fileno=fd)
        if self.worker is not None:
            return serve_initialised(sock, self.worker, started)
        return serve(sock, tier=self.tier, fork_started=started)


def become_runtime_zygote(control: socket.socket, preload: list[str]) -> int:
    started = time.perf_counter()
    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException as exc:
        payload = error_payload(exc, "Runtime.ImportModuleError", "Unable to preload: ")
        send(control, protocol.InitFailed(error=payload))
        return 1
    import_ms = (time.perf_counter() - started) * 1000
    freeze_heap()
    send(control, protocol.ZygoteReady(pid=os.getpid(), import_ms=import_ms))
    return ForkServer(control, "runtime").run()


def freeze_heap() -> None:
    """Move every object to the collector's permanent generation before serving forks: the
    children's collections then never write to (and so copy) the pages they share with us."""
    # Instances size the pools of what is loaded now without searching for them again.
    thread_pools.discover()
    gc.collect()
    gc.freeze()


def running_threads() -> str:
    """Why this process must not be forked, or "" when only this thread runs."""
    names = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if names:
        return f"init left threads running ({', '.join(names)})"
    with contextlib.suppress(OSError):
        tasks = len(os.listdir("/proc/self/task"))
        if tasks > 1:
            return f"init left {tasks - 1} native thread(s) running"
    return ""


def become_template(control: socket.socket) -> int:
    config, _ = recv(control)
    if not isinstance(config, protocol.Configure):
        raise protocol.ProtocolError("a template's first packet must be Configure")
    failed = enter_sandbox(config)
    if failed is not None:
        send(control, failed)
        return 1
    worker = Worker(None, config)
    outcome = worker.initialize()
    if isinstance(outcome, protocol.InitFailed):
        send(control, outcome)
        return 1
    primed = priming.prime(worker)
    if isinstance(primed, protocol.InitFailed):
        send(control, primed)
        return 1
    # After priming: a warm-up that started threads makes the template unforkable too.
    unforkable = running_threads()
    send(
        control,
        protocol.TemplateReady(
            pid=os.getpid(),
            import_ms=outcome.import_ms,
            init_ms=outcome.init_ms,
            unforkable=unforkable,
            primed=primed.what,
            prime_ms=primed.ms,
        ),
    )
    if unforkable:
        return 0  # instances start from the runtime zygote and run init after the fork
    freeze_heap()
    return ForkServer(control, "template", worker).run()


def main() -> int:
    die_with_parent()
    control = socket.socket(fileno=int(os.environ.pop(FD_VARIABLE)))
    send(control, protocol.ZygoteReady(pid=os.getpid(), import_ms=0.0))
    return ForkServer(control, "base").run()


if __name__ == "__main__":
    sys.exit(main())
