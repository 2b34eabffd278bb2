"""The runtime a function names (``function.runtime``, the Lambda API's ``Runtime``), pure.

A ``python3.x`` runtime runs ``handler(event, context)`` on the platform's own Python. A provided
runtime (``provided``, ``provided.al2``, ``provided.al2023``) runs the bundle's ``bootstrap``
executable instead, which takes its calls from the Lambda Runtime API one at a time
(runtime/provided.py); its ``handler`` is free text handed to it as ``_HANDLER``.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from mlambda.errors import InvalidSpec

if TYPE_CHECKING:
    from mlambda.spec import FunctionSpec

PYTHON_PATTERN = re.compile(r"python3\.\d+")
PROVIDED = ("provided", "provided.al2", "provided.al2023")
# The executable a provided runtime starts, at the root of the bundle (Lambda's task root).
BOOTSTRAP = "bootstrap"
# Lambda's Handler for a provided runtime: any text without whitespace, up to 128 characters.
PROVIDED_HANDLER = re.compile(r"\S{1,128}")


def is_provided(runtime: str) -> bool:
    return runtime in PROVIDED


def is_supported(runtime: str) -> bool:
    return bool(PYTHON_PATTERN.fullmatch(runtime)) or is_provided(runtime)


def unsupported(runtime: str) -> str:
    """Why ``runtime`` is refused, with the runtime meant when it is a near miss."""
    close = difflib.get_close_matches(runtime, [*PROVIDED, "python3.12"], n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"must be a python3.x runtime (it runs on the platform's Python) or one of "
        f"{', '.join(PROVIDED)} (the bundle's bootstrap runs), got {runtime!r}{hint}"
    )


def check_provided(spec: FunctionSpec, source: str) -> None:
    """What a provided runtime rules out: its bootstrap takes one call at a time, imports
    nothing of ours, and is named by no ``module:function``."""
    where = f"{source}: with function.runtime = {spec.runtime!r}"
    if spec.model:
        raise InvalidSpec(
            f"{where}, function.model cannot be served (the bootstrap serves the calls); "
            "leave function.runtime unset to serve a model file"
        )
    if not PROVIDED_HANDLER.fullmatch(spec.handler):
        raise InvalidSpec(
            f"{where}, function.handler is free text passed to the bootstrap as _HANDLER "
            f"(up to 128 characters, no spaces), got {spec.handler!r}"
        )
    if spec.concurrency != 1:
        raise InvalidSpec(
            f"{where}, function.concurrency must be 1 (the Runtime API hands a bootstrap one "
            f"call at a time; add instances with max_instances instead), got {spec.concurrency}"
        )
    if spec.batch is not None:
        raise InvalidSpec(
            f"{where}, [function.batch] cannot be used (the Runtime API hands a bootstrap one "
            "event per call); remove it"
        )
    if spec.preload:
        raise InvalidSpec(
            f"{where}, function.preload cannot be used (it imports Python modules into the "
            "platform's runtime, which a bootstrap does not run in); remove it"
        )
