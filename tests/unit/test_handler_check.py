"""A handler the module does not define is refused at deploy, read from the source (by table)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlambda.errors import InvalidSpec
from mlambda.handler_check import check_handler_defined
from mlambda.spec import FunctionSpec


def _check(tmp_path: Path, source: str, handler: str = "app:handler", module: str = "app.py"):  # type: ignore[no-untyped-def]
    path = tmp_path / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    check_handler_defined(FunctionSpec(name="f", handler=handler), tmp_path)


@pytest.mark.parametrize(
    "source",
    [
        "def handler(event, context):\n    return 1\n",
        "async def handler(event, context):\n    return 1\n",
        "from lib import handler\n",
        "import lib as handler\n",
        "handler = make_handler()\n",
        "handler: object = object()\n",
        "class handler:\n    pass\n",
        "try:\n    from fast import handler\nexcept ImportError:\n    def handler(e, c): pass\n",
        "if True:\n    def handler(e, c): pass\n",
        "with open('x') as handler:\n    pass\n",
        "from lib import *\n",  # cannot tell without running it: accepted
        "def __getattr__(name):\n    return print\n",
        "globals()['handler'] = print\n",
        "def broken(:\n",  # a syntax error is the first import's to report, with its line
    ],
)
def test_a_module_that_defines_or_may_define_the_handler_is_accepted(tmp_path, source):
    _check(tmp_path, source)


@pytest.mark.parametrize(
    ("source", "handler", "message"),
    [
        (
            "def handler(e, c): pass\n",
            "app:handlr",
            "module 'app' defines no 'handlr' (did you mean 'app:handler'?)",
        ),
        ("def run(e, c): pass\n", "app:handler", "module 'app' defines no 'handler'"),
        (
            "def predict(e, c):\n    def handler(): pass\n",
            "app:handler",
            "defines no 'handler'",
        ),
    ],
)
def test_a_handler_the_module_does_not_define_is_refused_with_a_hint(
    tmp_path, source, handler, message
):
    with pytest.raises(InvalidSpec) as caught:
        _check(tmp_path, source, handler)
    assert message in str(caught.value)


def test_a_package_module_is_read_from_its_init(tmp_path):
    with pytest.raises(InvalidSpec, match="did you mean 'pkg:handler'"):
        _check(tmp_path, "def handler(e, c): pass\n", "pkg:handle", "pkg/__init__.py")
    _check(tmp_path, "def run(e, c): pass\n", "pkg.mod:run", "pkg/mod.py")
