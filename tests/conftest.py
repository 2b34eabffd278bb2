"""Fixtures shared by every ring of tests: function directories written inline."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FunctionFactory = Callable[..., Path]


def write_function(root: Path, name: str, code: str, **config: Any) -> Path:
    """A function directory: ``app.py`` holding ``code`` and an mlambda.toml from ``config``."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(code))
    config.setdefault("handler", "app:handler")
    env = config.pop("env", {})
    lines = ["[function]", f'name = "{name}"']
    for key, value in config.items():
        lines.append(f"{key} = {_toml(value)}")
    if env:
        lines.append("[function.env]")
        lines += [f"{key} = {_toml(value)}" for key, value in env.items()]
    (directory / "mlambda.toml").write_text("\n".join(lines) + "\n")
    return directory


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@pytest.fixture
def make_function(tmp_path: Path) -> FunctionFactory:
    def make(name: str, code: str, **config: Any) -> Path:
        return write_function(tmp_path / "functions", name, code, **config)

    return make
