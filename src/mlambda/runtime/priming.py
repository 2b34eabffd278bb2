"""Priming (as Lambda SnapStart's before-checkpoint hook): warm-up a template runs once, after
init and before it serves forks, so that first-call work is done once and inherited.

Two kinds of warm-up:

- a handler module that defines ``prime(context)``: the template calls it, with a Lambda
  context whose request id is ``"prime"``. It raising fails the template's init (as a failing
  SnapStart hook fails the version's), with a Runtime.InitError naming ``prime``.
- a model function: one call of the model on zeros shaped by its input signature
  (``tensors.sample_inputs``), its result discarded. Only a model built before the fork is primed
  (a loader that builds after the fork, as ONNX Runtime does, would start threads in a process
  that then forks). The user did not ask for this one: it failing logs a line, nothing more.

Only a template primes (``Configure.prime``): an instance started fresh, or forked from a
runtime zygote, has nothing to hand its warm-up on to, so its first call does that work.
Output goes to the function's log, as init's does.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from mlambda.runtime import handler as handlers
from mlambda.runtime import protocol
from mlambda.runtime.context import LambdaContext, function_arn

if TYPE_CHECKING:
    from mlambda.runtime.worker import Worker

HOOK = "prime"
REQUEST_ID = "prime"
# The context's deadline; the platform's init timeout, which priming counts against, binds first.
BUDGET_MS = 15 * 60 * 1000


class Primed:
    """What a template's priming did: ``what`` ran ("" for nothing), taking ``ms``."""

    def __init__(self, what: str = "", ms: float = 0.0) -> None:
        self.what = what
        self.ms = ms


def prime(worker: Worker) -> Primed | protocol.InitFailed:
    """Warm an initialised template's worker up; InitFailed when the user's prime raised."""
    if not worker.config.prime:
        return Primed()
    started = time.perf_counter()
    worker.capture.begin()
    try:
        what = _run(worker)
    except BaseException as exc:  # only the user's prime raises: a model's failure is logged
        payload = handlers.error_payload(exc, "Runtime.InitError", "prime(context) raised: ")
        sys.stdout.write(handlers.error_log(payload))
        return protocol.InitFailed(error=payload, logs=worker.capture.end())
    _flush(worker.capture.end())
    return Primed(what, (time.perf_counter() - started) * 1000 if what else 0.0)


def _run(worker: Worker) -> str:
    if worker.model is not None:
        return _prime_model(worker)
    hook = _hook(worker.config.handler) if worker.handler is not None else None
    if hook is None:
        return ""
    hook(_context(worker))
    return "prime(context)"


def _prime_model(worker: Worker) -> str:
    try:
        primed = worker.model.prime()
    except Exception as exc:
        print(
            f"mlambda: priming {worker.config.function_name} on a sample of its inputs failed "
            f"({type(exc).__name__}: {exc}); its first call does that work instead"
        )
        return ""
    return "model sample" if primed else ""


def _hook(handler: str) -> Any:
    """The handler module's ``prime``, when it defines a callable one."""
    module = sys.modules.get(handler.partition(":")[0])
    hook = getattr(module, HOOK, None)
    return hook if callable(hook) else None


def _context(worker: Worker) -> LambdaContext:
    return LambdaContext(
        request_id=REQUEST_ID,
        function_name=worker.config.function_name,
        function_version=worker.config.function_version,
        memory_mb=worker.config.memory_mb,
        log_stream_name=worker.log_stream,
        deadline_ms=int(time.time() * 1000) + BUDGET_MS,
        client_context=None,
        invoked_arn=function_arn(worker.config.function_name),
    )


def _flush(logs: str) -> None:
    if logs:
        sys.__stdout__.write(logs)  # type: ignore[union-attr]
        sys.__stdout__.flush()  # type: ignore[union-attr]
