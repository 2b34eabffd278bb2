"""Bundles: deterministic packing, validation of uploads, and safe read-only unpacking."""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
from pathlib import Path

import pytest

from mlambda import bundle
from mlambda.errors import InvalidSpec

HANDLER = """
def handler(event, context):
    return event
"""


def _names(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.getnames()


def _tar(*members: tuple[str, bytes | str]) -> bytes:
    """A gzip'd tar built by hand: ``bytes`` give a file, ``str`` a symlink to that target."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


SPEC = b'[function]\nname = "echo"\nhandler = "app:handler"\n'


@pytest.fixture
def function_dir(make_function) -> Path:
    return make_function("echo", HANDLER)


def test_packing_the_same_directory_twice_gives_the_same_bytes(function_dir):
    assert bundle.pack(function_dir) == bundle.pack(function_dir)


def test_packing_ignores_modification_times(function_dir):
    first = bundle.pack(function_dir)
    for path in function_dir.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert bundle.pack(function_dir) == first


def test_packing_ignores_the_order_files_were_created_in(tmp_path):
    files = {"mlambda.toml": SPEC, "app.py": HANDLER.encode(), "lib/util.py": b"X = 1\n"}
    for where, order in (("one", sorted(files)), ("two", sorted(files, reverse=True))):
        for name in order:
            path = tmp_path / where / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[name])
    assert bundle.pack(tmp_path / "one") == bundle.pack(tmp_path / "two")


def test_packing_ignores_read_and_write_permission_bits(function_dir):
    first = bundle.pack(function_dir)
    (function_dir / "app.py").chmod(0o600)
    assert bundle.pack(function_dir) == first


def test_changed_code_gives_different_bytes(function_dir):
    first = bundle.pack(function_dir)
    (function_dir / "app.py").write_text(HANDLER + "\n# changed\n")
    assert bundle.pack(function_dir) != first


def test_entries_have_zeroed_times_and_owners_and_normalised_modes(function_dir):
    script = function_dir / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    with tarfile.open(fileobj=io.BytesIO(bundle.pack(function_dir)), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {m.mtime for m in members.values()} == {0}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert members["app.py"].mode == 0o644
    assert members["run.sh"].mode == 0o755


def test_caches_bytecode_and_tooling_state_are_left_out(function_dir):
    for name in [
        "__pycache__/app.cpython-311.pyc",
        "lib/__pycache__/util.cpython-311.pyc",
        "stale.pyc",
        "stale.pyo",
        ".git/HEAD",
        ".venv/bin/python",
        ".mlambda/registry.sqlite3",
        ".pytest_cache/README.md",
        ".DS_Store",
        "lib/util.py",
        "model/weights.bin",
    ]:
        path = function_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert _names(bundle.pack(function_dir)) == [
        "app.py",
        "lib/util.py",
        "mlambda.toml",
        "model/weights.bin",
    ]


def test_a_directory_without_mlambda_toml_is_refused(tmp_path):
    (tmp_path / "app.py").write_text(HANDLER)
    with pytest.raises(InvalidSpec, match=re.escape("no mlambda.toml here")):
        bundle.pack(tmp_path)


def test_a_symlink_cycle_is_not_archived_over_and_over(function_dir):
    (function_dir / "self").symlink_to(".")
    try:
        names = _names(bundle.pack(function_dir))
    except InvalidSpec:
        return
    assert not [name for name in names if name.startswith("self/self/")]


def test_equal_files_give_equal_fingerprints_whatever_their_times(function_dir):
    first = bundle.fingerprint(function_dir)
    for path in function_dir.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert bundle.fingerprint(function_dir) == first


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "app.py").write_text(HANDLER + "# changed\n"),
        lambda d: (d / "app.py").rename(d / "other.py"),
        lambda d: (d / "extra.txt").write_text(""),
        lambda d: (d / "app.py").chmod(0o755),
    ],
    ids=["content", "name", "a new file", "executable bit"],
)
def test_a_fingerprint_changes_with_whatever_changes_the_packed_bytes(function_dir, change):
    first, packed = bundle.fingerprint(function_dir), bundle.pack(function_dir)
    change(function_dir)
    assert bundle.pack(function_dir) != packed
    assert bundle.fingerprint(function_dir) != first


def test_a_fingerprint_ignores_what_packing_leaves_out(function_dir):
    first = bundle.fingerprint(function_dir)
    (function_dir / "__pycache__").mkdir()
    (function_dir / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    assert bundle.fingerprint(function_dir) == first


@pytest.mark.parametrize(
    "config",
    [{}, {"model": "model.onnx", "handler": ""}, {"model": "model.onnx", "handler": "app"}],
    ids=["handler", "model", "model with hooks"],
)
def test_directory_spec_is_the_spec_read_spec_finds_in_the_pack(make_function, config):
    directory = make_function("echo", HANDLER, **config)
    (directory / "model.onnx").write_bytes(b"onnx")
    spec = bundle.directory_spec(directory)
    assert spec == bundle.read_spec(bundle.pack(directory))
    assert spec.framework == ("onnx" if "model" in config else "")


def test_directory_spec_refuses_what_read_spec_refuses(make_function):
    directory = make_function("echo", HANDLER, handler="missing:handler")
    with pytest.raises(InvalidSpec, match="names module 'missing'"):
        bundle.directory_spec(directory)


def test_read_spec_returns_the_spec_of_a_packed_directory(function_dir):
    spec = bundle.read_spec(bundle.pack(function_dir))
    assert (spec.name, spec.handler) == ("echo", "app:handler")


def test_read_spec_applies_the_name_override(function_dir):
    assert bundle.read_spec(bundle.pack(function_dir), name="other").name == "other"


def test_read_spec_refuses_a_bundle_whose_handler_module_is_missing(make_function):
    directory = make_function("classify", HANDLER, handler="model:predict")
    with pytest.raises(InvalidSpec) as caught:
        bundle.read_spec(bundle.pack(directory))
    message = str(caught.value)
    assert "function.handler 'model:predict' names module 'model'" in message
    assert "model.py" in message
    assert "model/__init__.py" in message


@pytest.mark.parametrize(
    ("handler", "module_file"),
    [
        ("pkg:handler", "pkg/__init__.py"),
        ("pkg.app:handler", "pkg/app.py"),
        ("fast:handler", "fast.cpython-311-x86_64-linux-gnu.so"),
    ],
)
def test_read_spec_finds_packages_dotted_modules_and_extensions(handler, module_file):
    spec_text = f'[function]\nname = "echo"\nhandler = "{handler}"\n'.encode()
    spec = bundle.read_spec(_tar(("mlambda.toml", spec_text), (module_file, b"")))
    assert spec.handler == handler


def test_read_spec_refuses_a_dotted_handler_whose_module_is_at_the_root():
    spec_text = b'[function]\nname = "echo"\nhandler = "pkg.app:handler"\n'
    with pytest.raises(InvalidSpec, match=re.escape("pkg/app.py")):
        bundle.read_spec(_tar(("mlambda.toml", spec_text), ("app.py", b"")))


@pytest.mark.parametrize(
    "archive",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"PK\x03\x04 a zip file", id="not-gzip"),
        pytest.param(gzip.compress(b"hello"), id="gzip-of-not-a-tar"),
        pytest.param(gzip.compress(b"x" * 2048), id="gzip-of-garbage-blocks"),
    ],
)
def test_read_spec_refuses_bytes_that_are_not_a_gzipped_tar(archive):
    with pytest.raises(InvalidSpec, match=re.escape("bundle is not a gzip'd tar archive")):
        bundle.read_spec(archive)


def test_read_spec_refuses_a_bundle_without_mlambda_toml_at_its_root():
    archive = _tar(("app.py", HANDLER.encode()), ("sub/mlambda.toml", SPEC))
    with pytest.raises(InvalidSpec, match=re.escape("bundle has no mlambda.toml at its root")):
        bundle.read_spec(archive)


def test_read_spec_refuses_an_invalid_spec_inside_the_bundle():
    archive = _tar(("mlambda.toml", SPEC + b"memory_mb = 1\n"), ("app.py", b""))
    with pytest.raises(InvalidSpec, match=re.escape("function.memory_mb")):
        bundle.read_spec(archive)


def test_unpack_extracts_the_packed_files(function_dir, tmp_path):
    target = bundle.unpack(bundle.pack(function_dir), tmp_path / "cache" / "sha256-abc")
    assert target == tmp_path / "cache" / "sha256-abc"
    assert (target / "app.py").read_text() == (function_dir / "app.py").read_text()
    assert (target / "mlambda.toml").read_bytes() == (function_dir / "mlambda.toml").read_bytes()


def test_unpacked_files_are_read_only(function_dir, tmp_path):
    (function_dir / "lib").mkdir()
    (function_dir / "lib" / "util.py").write_text("X = 1\n")
    target = bundle.unpack(bundle.pack(function_dir), tmp_path / "task")
    files = [path for path in target.rglob("*") if path.is_file()]
    assert len(files) == 3
    for path in files:
        assert path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, path


def test_unpack_keeps_the_executable_bit(function_dir, tmp_path):
    (function_dir / "run.sh").write_text("#!/bin/sh\n")
    (function_dir / "run.sh").chmod(0o755)
    target = bundle.unpack(bundle.pack(function_dir), tmp_path / "task")
    assert stat.S_IMODE((target / "run.sh").stat().st_mode) == 0o555


def test_unpack_into_an_existing_target_leaves_it_as_it_is(function_dir, tmp_path):
    target = tmp_path / "task"
    target.mkdir()
    (target / "marker").write_text("first")
    assert bundle.unpack(bundle.pack(function_dir), target) == target
    assert [p.name for p in target.iterdir()] == ["marker"]


@pytest.mark.parametrize(
    "member",
    [
        pytest.param(("../escape.txt", b"x"), id="dot-dot"),
        pytest.param(("sub/../../escape.txt", b"x"), id="dot-dot-inside-a-path"),
        pytest.param(("link", "../../escape.txt"), id="symlink-out-of-the-tree"),
        pytest.param(("link", "/etc/passwd"), id="absolute-symlink"),
    ],
)
def test_unpack_refuses_members_that_leave_the_target(tmp_path, member):
    cache = tmp_path / "cache"
    with pytest.raises(InvalidSpec, match=r"outside the bundle|leaves the bundle"):
        bundle.unpack(_tar(("mlambda.toml", SPEC), member), cache / "task")
    assert not (tmp_path / "escape.txt").exists()
    assert list(cache.iterdir()) == []
