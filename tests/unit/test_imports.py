"""Layering: what runs inside instances imports nothing from the control plane."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("starlette", "uvicorn", "sqlalchemy", "httpx", "prometheus_client", "numpy", "asyncio")


def _modules_after(statement: str) -> list[str]:
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_the_worker_imports_only_the_runtime_stdlib_and_msgspec():
    modules = _modules_after("import mlambda.runtime.worker")
    ours = {m for m in modules if m.startswith("mlambda.")}
    assert ours <= {
        "mlambda.runtime",
        "mlambda.runtime.worker",
        "mlambda.runtime.process",
        "mlambda.runtime.protocol",
        "mlambda.runtime.handler",
        "mlambda.runtime.capture",
        "mlambda.runtime.context",
        "mlambda.runtime.sandbox",
        "mlambda.runtime.linux",
        "mlambda.runtime.forwarder",
        "mlambda.runtime.threads",
        "mlambda.runtime.trace_header",
        "mlambda.runtime.user_spans",
    }, ours
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    assert heavy == []


def test_importing_the_package_does_nothing_but_define_the_version():
    modules = _modules_after("import mlambda")
    assert [m for m in modules if m.startswith("mlambda")] == ["mlambda"]
