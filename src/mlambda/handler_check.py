"""Does the handler's module define the handler function? Read from its source at deploy, without
running it, so `app:handlr` is refused with a did-you-mean instead of failing the first invoke."""

from __future__ import annotations

import ast
import difflib
import importlib.util
from pathlib import Path

from mlambda.errors import InvalidSpec
from mlambda.runtime.loaders import FRAMEWORKS
from mlambda.spec import SPEC_FILE, FunctionSpec

# Larger modules are left to the first import (the check is a convenience, not a guarantee).
MAX_SOURCE_BYTES = 2 * 1024 * 1024


def module_source(task_root: Path, module: str) -> Path | None:
    base = task_root / module.replace(".", "/")
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_names(tree: ast.Module) -> set[str] | None:
    """Names the module binds at import, or None when it cannot be told without running it
    (``from x import *``, a module ``__getattr__``, writes through ``globals()``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("globals", "exec"):
            return None
    for node in _statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.For | ast.With):
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
        elif isinstance(node, ast.NamedExpr):
            names.add(node.target.id)
    if "__getattr__" in names:
        return None
    return names


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements, and those inside top-level if/try/with blocks."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        for field in ("body", "orelse", "finalbody"):
            if isinstance(node, ast.If | ast.Try | ast.With):
                found += _statements(getattr(node, field, []))
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                found += _statements(handler.body)
    return found


def check_handler_defined(spec: FunctionSpec, task_root: Path) -> None:
    if spec.is_model or spec.is_provided or ":" not in spec.handler:
        return
    module, _, function = spec.handler.partition(":")
    path = module_source(task_root, module)
    if path is None or path.stat().st_size > MAX_SOURCE_BYTES:
        return
    try:
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except (SyntaxError, ValueError):
        return  # reported by the first import as Runtime.UserCodeSyntaxError, with its line
    names = top_level_names(tree)
    if names is None or function in names:
        return
    close = difflib.get_close_matches(function, sorted(names), n=1)
    hint = f" (did you mean '{module}:{close[0]}'?)" if close else ""
    raise InvalidSpec(
        f"{SPEC_FILE}: function.handler {spec.handler!r}: module {module!r} defines no "
        f"{function!r}{hint}"
    )


def check_runtime_installed(spec: FunctionSpec) -> None:
    """A model function's runtime packages must be importable where its instances run."""
    if not spec.is_model:
        return
    framework = FRAMEWORKS[spec.framework]
    missing = [name for name in framework.requires if not _importable(name)]
    if missing:
        raise InvalidSpec(
            f"the {framework.name} runtime needs {', '.join(missing)}, which is not installed "
            f"where mlambda serve runs: pip install 'mlambda[{framework.extra}]' (from the "
            f"mlambda checkout: pip install -e '.[{framework.extra}]')"
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
