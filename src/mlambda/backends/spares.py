"""The pre-forked spare of each function template: one instance forked ahead of need, prepared
at once (its pools sized, what the template could not build before the fork built and warmed),
so that a start which takes it costs a dispatch. A mixin of ``ZygoteBackend`` (zygotes.py),
which owns the state used here; also what a template is told when it is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlambda.backends.base import StartRequest
from mlambda.backends.forkserver import ForkedProcess, ForkServerHandle, fork_instance
from mlambda.backends.limits import ResourceLimits
from mlambda.pool.environment import model_config
from mlambda.pool.threads import threads_for
from mlambda.runtime import protocol
from mlambda.runtime.threads import THREAD_POOL_VARIABLES


class Spares:
    spares: bool
    limits: ResourceLimits | None

    if TYPE_CHECKING:  # the backend's own (zygotes.py)

        def _keep(self, task: asyncio.Task[None]) -> None: ...

    def _refill(self, template: ForkServerHandle, request: StartRequest) -> None:
        """Fork the template's next instance ahead of need (the pre-forked spare)."""
        if template.closed:
            return  # evicted or shutting down (a refill timed after the call, say)
        if self.spares and template.spare is None and not template.spare_pending:
            template.spare_pending = True
            self._keep(asyncio.get_running_loop().create_task(self._make_spare(template, request)))

    async def _make_spare(self, template: ForkServerHandle, request: StartRequest) -> None:
        try:
            spare = await fork_instance(template)
        except (ConnectionError, OSError):
            return  # the template is gone; the next start builds a new one
        finally:
            template.spare_pending = False
        background(spare.pid)
        if self.limits is not None:
            # Joining a cgroup costs milliseconds in the kernel: done now, not on a call's path.
            try:
                spare.guard = await asyncio.to_thread(
                    self.limits.attach, spare.pid, request.spec.memory_mb, f"spare-{spare.pid}"
                )
            except BaseException:  # cancelled as the platform closes: nothing may leak
                spare.discard()
                raise
        if template.closed or template.spare is not None:
            spare.discard()
            return
        # Its pools sized as if it started now, beside the template's live instances; it
        # builds what the template could not (an ONNX Runtime session) before any call needs it.
        spare.threads = threads_for(request.spec, template.live)
        spare.writer.write(protocol.encode(protocol.Prepare(threads=spare.threads)))
        template.spare = spare
        template.spare_request = request
        spare.exited.add_done_callback(lambda _: self._spare_exited(template, spare))

    def _spare_exited(self, template: ForkServerHandle, spare: ForkedProcess) -> None:
        if template.spare is spare:  # died unused (its template was evicted, say)
            template.spare = None
            spare.discard()

    def _resize_spare(self, template: ForkServerHandle) -> None:
        """The next call of an idle template comes from zero: its spare should have the pools
        of a lone instance, not the share it was given beside busy ones."""
        spare, request = template.spare, template.spare_request
        if spare is None or request is None or template.closed:
            return
        if spare.threads < threads_for(request.spec, 0):
            template.spare = None
            spare.discard()
            self._refill(template, request)


def template_configure(request: StartRequest) -> protocol.Configure:
    """What a function's template is told: the function, with one thread per native pool."""
    return protocol.Configure(
        instance_id="template",
        function_name=request.spec.name,
        function_version=request.function_version,
        handler=request.spec.handler,
        task_root=request.task_root,
        memory_mb=request.spec.memory_mb,
        concurrency=request.spec.concurrency,
        max_response_bytes=request.max_response_bytes,
        preload=[],
        # One thread per pool: a template that started pool threads could not fork. Each
        # instance sizes its pools after the fork (a spare when it is prepared).
        env={**request.env, **dict.fromkeys(THREAD_POOL_VARIABLES, "1")},
        threads=1,
        model=model_config(request.spec, 1),
        batched=request.spec.batch is not None and not request.spec.is_model,
        sandbox=request.sandbox,
        prime=request.spec.prime,
    )


# A spare prepares (builds a session, runs the model's sample) at this niceness, so that on
# shared cores the calls being served go first; it gets the normal one back when a start takes
# it. Only where that can be undone (root: lowering a niceness needs CAP_SYS_NICE).
SPARE_NICENESS = 10


def background(pid: int) -> None:
    """Lower a just-forked spare's priority: it has one thread, and those it starts inherit it."""
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, SPARE_NICENESS)


def foreground(pid: int) -> None:
    """Give a spare taken by a start, every thread of it, the normal priority back."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), 0)
