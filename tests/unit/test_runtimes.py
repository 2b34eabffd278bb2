"""Provided runtimes: what mlambda.toml, a bundle, a Lambda zip and the Lambda API's fields may say
of a function whose bootstrap serves the calls, and the environment its instances start with."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from mlambda import bundle
from mlambda.errors import InvalidSpec
from mlambda.gateway.lambda_api import shapes
from mlambda.packaging import lambda_zip
from mlambda.pool.environment import instance_environment
from mlambda.runtime.worker import BOOTSTRAP_VARIABLE
from mlambda.spec import FunctionSpec, parse_spec
from mlambda.unpacking import Limits

BASE = '[function]\nname = "custom"\nruntime = "provided.al2023"\n'


def _spec(*lines: str) -> FunctionSpec:
    return parse_spec(BASE + "\n".join(lines) + "\n")


@pytest.mark.parametrize("runtime", ["provided", "provided.al2", "provided.al2023"])
@pytest.mark.parametrize("handler", ["app.handler", "bootstrap", "Example::handleRequest"])
def test_a_provided_runtime_takes_its_handler_as_free_text(runtime, handler):
    spec = parse_spec(f'[function]\nname = "c"\nruntime = "{runtime}"\nhandler = "{handler}"\n')
    assert spec.is_provided and spec.handler == handler


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['handler = "app.handler"', "concurrency = 2"], "function.concurrency must be 1"),
        (['handler = "app.handler"', "[function.batch]"], "[function.batch] cannot be used"),
        (['handler = "app.handler"', 'preload = ["numpy"]'], "function.preload cannot be used"),
        (['handler = "a b"'], "function.handler is free text"),
        (['model = "model.onnx"'], "function.model cannot be served"),
    ],
)
def test_what_a_bootstrap_cannot_do_is_refused_naming_the_field(lines, message):
    with pytest.raises(InvalidSpec, match=re.escape(message)):
        _spec(*lines)


def test_an_unknown_runtime_is_refused_with_the_one_meant():
    with pytest.raises(InvalidSpec, match=re.escape("did you mean 'provided.al2023'")):
        parse_spec('[function]\nname = "c"\nruntime = "provided.al2022"\nhandler = "x"\n')
    with pytest.raises(
        InvalidSpec, match=re.escape("function.runtime must be a python3.x runtime")
    ):
        parse_spec('[function]\nname = "c"\nruntime = "nodejs20.x"\nhandler = "app:handler"\n')


def test_the_platforms_bootstrap_marker_cannot_be_set_by_a_function():
    with pytest.raises(InvalidSpec, match="reserved"):
        _spec('handler = "x"', "[function.env]", f'{BOOTSTRAP_VARIABLE} = "/bin/sh"')


def _bundle(bootstrap_mode: int | None) -> bytes:
    files = [("mlambda.toml", (BASE + 'handler = "app.handler"\n').encode(), False)]
    if bootstrap_mode is not None:
        files.append(("bootstrap", b"#!/bin/sh\n", bool(bootstrap_mode & 0o111)))
    return bundle.pack_files(files)


def test_a_provided_bundle_needs_an_executable_bootstrap_at_its_root():
    assert bundle.read_spec(_bundle(0o755)).is_provided
    with pytest.raises(InvalidSpec, match="no 'bootstrap' file at its root"):
        bundle.read_spec(_bundle(None))
    with pytest.raises(InvalidSpec, match=re.escape("chmod +x bootstrap")):
        bundle.read_spec(_bundle(0o644))


def test_a_lambda_zip_that_keeps_no_modes_still_has_an_executable_bootstrap():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bootstrap", "#!/bin/sh\n")  # zipfile records 0o600
        archive.writestr("run.sh", "#!/bin/sh\n")
    files = {
        name: executable for name, _, executable in lambda_zip.read_zip(out.getvalue(), Limits())
    }
    assert files == {"bootstrap": True, "run.sh": False}


@pytest.mark.parametrize(
    ("body", "handler"),
    [
        ({"Runtime": "provided.al2023", "Handler": "app.handler"}, "app.handler"),
        ({"Runtime": "provided", "Handler": "bootstrap"}, "bootstrap"),
        ({"Runtime": "python3.12", "Handler": "app.handler"}, "app:handler"),
        ({"Handler": "app.handler"}, "app:handler"),
        ({"Handler": "bootstrap"}, "bootstrap"),  # left for the spec to judge
    ],
)
def test_the_lambda_apis_handler_is_kept_as_given_for_a_provided_runtime(body, handler):
    assert shapes.config_fields(body)["handler"] == handler


def test_a_handler_made_module_function_by_an_update_is_lambdas_again_for_a_provided_runtime():
    table = {"name": "c", "runtime": "provided.al2", "handler": "app:handler"}
    spec = bundle.read_spec(lambda_zip.with_table([("bootstrap", b"#!/bin/sh\n", True)], table))
    assert spec.handler == "app.handler"


def test_a_provided_runtimes_instances_are_told_where_the_bootstrap_is():
    spec = FunctionSpec(name="custom", handler="app.handler", runtime="provided.al2023")
    env = instance_environment({}, spec, "$LATEST", "/srv/task", "i-1")
    assert env[BOOTSTRAP_VARIABLE] == "/srv/task/bootstrap"
    assert env["_HANDLER"] == "app.handler"
    assert "AWS_EXECUTION_ENV" not in env  # Lambda sets none for its OS-only runtimes
    python = FunctionSpec(name="py", handler="app:handler")
    assert BOOTSTRAP_VARIABLE not in instance_environment({}, python, "$LATEST", "/t", "i-2")
