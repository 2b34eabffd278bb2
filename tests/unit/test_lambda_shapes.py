"""The Lambda API's shapes and mlambda's records, both ways; Lambda zips to bundles and back."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from mlambda import bundle, unpacking
from mlambda.errors import InvalidSpec
from mlambda.gateway.lambda_api import shapes
from mlambda.gateway.lambda_api.code import link, valid
from mlambda.packaging import lambda_zip
from mlambda.registry.model import Alias, FunctionRecord, Routing
from mlambda.spec import FunctionSpec, parse_spec
from mlambda.urlconfig import CorsSpec, UrlSpec

LIMITS = unpacking.Limits(max_bytes=1024 * 1024, max_files=50, max_ratio=200)


@pytest.mark.parametrize(
    ("lambda_handler", "handler"),
    [
        ("app.handler", "app:handler"),
        ("src/app.main", "src.app:main"),
        ("pkg.mod.run", "pkg.mod:run"),
        ("lambda_function.lambda_handler", "lambda_function:lambda_handler"),
    ],
)
def test_lambda_handlers_become_module_function(lambda_handler, handler):
    assert shapes.to_handler(lambda_handler) == handler
    assert shapes.from_handler(handler) == lambda_handler.replace("/", ".")


@pytest.mark.parametrize("bad", ["app", "app:handler", ".handler", "app.", "a b.c", ""])
def test_a_handler_lambda_cannot_read_is_refused(bad):
    with pytest.raises(InvalidSpec, match="Handler"):
        shapes.to_handler(bad)


@pytest.mark.parametrize(
    ("body", "table"),
    [
        ({"Handler": "app.handler"}, {"handler": "app:handler"}),
        ({"Timeout": 9, "MemorySize": 256}, {"timeout_s": 9, "memory_mb": 256}),
        ({"Environment": {"Variables": {"A": "1"}}}, {"env": {"A": "1"}}),
        ({"Environment": {}}, {"env": {}}),
        ({"Runtime": "python3.12", "Role": "arn:aws:iam::1:role/r"},
         {"runtime": "python3.12", "role": "arn:aws:iam::1:role/r"}),
        ({"Description": "d", "EphemeralStorage": {"Size": 1024}},
         {"description": "d", "ephemeral_storage_mb": 1024}),
        ({"PackageType": "Zip", "Layers": [], "TracingConfig": {"Mode": "PassThrough"}}, {}),
        ({"Architectures": [shapes.ARCHITECTURE], "Tags": {}}, {}),
        ({"Timeout": None}, {}),
    ],
)  # fmt: skip
def test_lambda_fields_map_onto_mlambda_toml(body, table):
    assert shapes.config_fields(body) == table


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Runtime": "nodejs20.x"}, "Runtime"),
        ({"Layers": ["arn:aws:lambda:us-east-1:1:layer:x:1"]}, "Layers"),
        ({"PackageType": "Image"}, "PackageType"),
        ({"Tags": {"team": "a"}}, "Tags"),
        ({"Timeout": "3"}, "Timeout"),
        ({"MemorySize": True}, "MemorySize"),
        ({"Environment": {"Variables": {"A": 1}}}, "Environment"),
        ({"SnapStart": {"ApplyOn": "None"}}, "SnapStart"),
    ],
)
def test_what_mlambda_cannot_do_is_refused_not_dropped(body, message):
    with pytest.raises(InvalidSpec, match=message):
        shapes.config_fields(body)


def _record(version: str = "$LATEST", **spec) -> FunctionRecord:  # type: ignore[no-untyped-def]
    full = FunctionSpec(name="fn", handler="app:handler", **spec)
    return FunctionRecord("fn", version, "sha256:" + "ab" * 32, full, 100.0, 1_700_000_000.25)


def test_a_record_as_function_configuration():
    shape = shapes.function_configuration(
        _record(timeout_s=2.5, env={"A": "1"}, role="r", memory_mb=256), "eu-west-1", 1234
    )
    assert shape["FunctionArn"] == "arn:aws:lambda:eu-west-1:000000000000:function:fn"
    assert (shape["Handler"], shape["Timeout"], shape["MemorySize"]) == ("app.handler", 3, 256)
    assert shape["Environment"] == {"Variables": {"A": "1"}} and shape["Role"] == "r"
    assert (shape["State"], shape["LastUpdateStatus"], shape["Version"]) == (
        "Active",
        "Successful",
        "$LATEST",
    )
    assert shape["LastModified"] == "2023-11-14T22:13:20.250+0000"
    assert shape["CodeSize"] == 1234 and shape["Runtime"] == shapes.PYTHON
    version = shapes.function_configuration(_record("3"), "eu-west-1", 1)
    assert version["FunctionArn"].endswith(":function:fn:3") and "Environment" not in version


def test_an_alias_as_alias_configuration():
    alias = Alias("fn", "live", Routing("1", (("2", 0.1),)), "d", "rev")
    assert shapes.alias_configuration(alias, "us-east-1") == {
        "AliasArn": "arn:aws:lambda:us-east-1:000000000000:function:fn:live",
        "Name": "live",
        "FunctionVersion": "1",
        "Description": "d",
        "RevisionId": "rev",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
    }


def test_url_config_both_ways():
    table = shapes.url_table({"AuthType": "NONE", "Cors": {"AllowOrigins": ["*"]}}, None)
    assert table == {"auth_type": "NONE", "cors": {"allow_origins": ["*"]}}
    current = UrlSpec(auth_type="NONE", cors=CorsSpec(allow_origins=["https://a.example"]))
    kept = shapes.url_table({"AuthType": "AWS_IAM"}, current)
    assert kept["auth_type"] == "AWS_IAM" and kept["cors"]["allow_origins"] == ["https://a.example"]
    with pytest.raises(InvalidSpec):
        shapes.url_table({"AuthType": "KEY"}, None)
    with pytest.raises(InvalidSpec):
        shapes.url_table({"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}, None)
    shape = shapes.url_configuration("fn", "", current, "http://h:1/", "us-east-1", 100.0)
    assert shape["FunctionUrl"] == "http://h:1/fn/fn/" and shape["AuthType"] == "NONE"


def _zip(members: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return out.getvalue()


def test_a_lambda_zip_becomes_a_bundle_with_the_lambda_fields():
    files = lambda_zip.read_zip(
        _zip(
            {"app.py": b"def handler(e, c):\n    return 1\n", "bin/tool": b"#!/bin/sh\n"},
            {"bin/tool": stat.S_IFREG | 0o755},
        ),
        LIMITS,
    )
    assert ("bin/tool", b"#!/bin/sh\n", True) in files
    archive = lambda_zip.with_table(files, {"name": "fn", "handler": "app:handler", "env": {}})
    spec = bundle.read_spec(archive)
    assert (spec.name, spec.handler) == ("fn", "app:handler")
    again = lambda_zip.with_table(files, {"name": "fn", "handler": "app:handler", "env": {}})
    assert again == archive  # deterministic: the same zip and fields give the same digest
    assert lambda_zip.read_bundle(archive, LIMITS)[-1][0] == "mlambda.toml"


def test_the_zips_own_mlambda_toml_is_read_and_secrets_never_leave_in_a_download():
    toml = (
        b'[function]\nname = "x"\nhandler = "app:handler"\nconcurrency = 4\n'
        b'[function.secrets]\nTOKEN = "s3cret"\n'
    )
    files = lambda_zip.read_zip(
        _zip({"app.py": b"def handler(e, c): pass\n", "mlambda.toml": toml}), LIMITS
    )
    table = lambda_zip.function_table(files)
    assert table["concurrency"] == 4 and table["secrets"] == {"TOKEN": "s3cret"}
    download = lambda_zip.to_zip(files)
    with zipfile.ZipFile(io.BytesIO(download)) as archive:
        text = archive.read("mlambda.toml").decode()
        assert "s3cret" not in text and "TOKEN" not in text
        assert parse_spec(text).concurrency == 4
        assert archive.read("app.py") == b"def handler(e, c): pass\n"


@pytest.mark.parametrize(
    ("members", "modes", "message"),
    [
        ({"../evil.py": b"x"}, None, "leaves the bundle"),
        ({"/abs.py": b"x"}, None, "leaves the bundle"),
        ({"link": b"/etc/passwd"}, {"link": stat.S_IFLNK | 0o777}, "symlink"),
        ({f"f{i}": b"" for i in range(60)}, None, "more than 50 files"),
        ({"big": b"\0" * (2 * 1024 * 1024)}, None, "unpacks to more than"),
    ],
)
def test_a_hostile_zip_is_refused(members, modes, message):
    with pytest.raises(InvalidSpec, match=message):
        lambda_zip.read_zip(_zip(members, modes), LIMITS)


def test_a_zip_member_that_inflates_past_its_declared_size_is_refused():
    data = bytearray(_zip({"a.py": b"x" * 1000}))
    # Lower the declared size in both headers: the inflated bytes no longer match it.
    at = data.find(b"PK\x03\x04")
    data[at + 22 : at + 26] = (10).to_bytes(4, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(InvalidSpec):
        lambda_zip.read_zip(bytes(data), LIMITS)


@pytest.mark.parametrize("bad", [b"not a zip", b""])
def test_what_is_not_a_zip_is_refused(bad):
    with pytest.raises(InvalidSpec, match="not a zip"):
        lambda_zip.read_zip(bad, LIMITS)


def test_a_code_link_opens_its_artifact_until_it_expires():
    url = link("http://h:1/", "sha256:ab", 1000.0)
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    assert valid("sha256:ab", query["expires"], query["signature"], 1000.0)
    assert not valid("sha256:ab", query["expires"], query["signature"], 1000.0 + 601)
    assert not valid("sha256:cd", query["expires"], query["signature"], 1000.0)
    assert not valid("sha256:ab", str(int(query["expires"]) + 1), query["signature"], 1000.0)
    assert not valid("sha256:ab", "soon", query["signature"], 1000.0)
