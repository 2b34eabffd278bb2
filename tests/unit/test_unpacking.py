"""Uploaded archives are checked member by member, and bombs are refused before they inflate."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from mlambda import bundle, unpacking
from mlambda.errors import InvalidSpec

SPEC = b'[function]\nname = "echo"\nhandler = "app:handler"\n'
APP = b"def handler(event, context):\n    return event\n"


def _tar(*members: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _bomb(declared: int) -> bytes:
    """A gzip'd tar whose member says it holds ``declared`` zero bytes but carries only 1 MiB:
    refused on its header, the bundle gives a bomb error; read further, a truncation error."""
    spec = tarfile.TarInfo("mlambda.toml")
    spec.size = len(SPEC)
    zeros = tarfile.TarInfo("zeros.bin")
    zeros.size = declared
    body = spec.tobuf() + SPEC + b"\0" * (-len(SPEC) % 512) + zeros.tobuf() + b"\0" * (1 << 20)
    return gzip.compress(body, compresslevel=9)


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_special("hard", tarfile.LNKTYPE, "app.py"), "hard link"),
        (_special("dev", tarfile.CHRTYPE), "device or fifo"),
        (_special("fifo", tarfile.FIFOTYPE), "device or fifo"),
        (_special("out", tarfile.SYMTYPE, "../../etc/passwd"), "outside the bundle"),
        (_special("abs", tarfile.SYMTYPE, "/etc/passwd"), "outside the bundle"),
        (("/etc/cron.d/x", b"x"), "leaves the bundle"),
        (("a/../../x", b"x"), "leaves the bundle"),
        (("./", b"x"), "names the bundle's root"),  # found by the fuzzer: a 500 before
    ],
)
def test_members_that_are_not_plain_files_inside_the_tree_are_refused(member, message, tmp_path):
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP), member)
    with pytest.raises(InvalidSpec, match=message):
        bundle.read_spec(archive)
    with pytest.raises(InvalidSpec, match=message):
        bundle.unpack(archive, tmp_path / "task")
    assert not (tmp_path / "task").exists()


def test_a_symlink_inside_the_tree_is_allowed(tmp_path):
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP), _special("alias.py", b"2", "app.py"))
    assert bundle.read_spec(archive).name == "echo"
    assert (bundle.unpack(archive, tmp_path / "t") / "alias.py").read_bytes() == APP


def test_too_many_files_is_refused_naming_the_limit():
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP), *((f"f{i}", b"") for i in range(5)))
    with pytest.raises(InvalidSpec, match=r"more than 4 files.*max_bundle_files"):
        bundle.read_spec(archive, limits=unpacking.Limits(max_files=4))


def test_more_bytes_than_the_limit_is_refused():
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP), ("big", b"x" * 5000))
    with pytest.raises(InvalidSpec, match="max_unpacked_bytes"):
        bundle.read_spec(archive, limits=unpacking.Limits(max_bytes=4096))


def test_a_decompression_bomb_is_refused_on_its_header_before_it_is_inflated(tmp_path):
    bomb = _bomb(2 * 1024**3)
    assert len(bomb) < 10_000
    with pytest.raises(InvalidSpec, match="decompression bomb"):
        bundle.read_spec(bomb)
    with pytest.raises(InvalidSpec, match="decompression bomb"):
        bundle.unpack(bomb, tmp_path / "task")
    assert not (tmp_path / "task").exists()


def test_a_member_larger_than_the_unpacked_limit_is_refused_on_its_header():
    with pytest.raises(InvalidSpec, match="max_unpacked_bytes"):
        bundle.read_spec(_bomb(5 * 1024**3))


def test_well_compressed_small_bundles_are_not_bombs():
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP), ("zeros", b"\0" * 1_000_000))
    assert bundle.read_spec(archive).name == "echo"


def test_a_truncated_archive_is_a_clear_400():
    archive = _tar(("mlambda.toml", SPEC), ("app.py", APP * 2000))
    with pytest.raises(InvalidSpec, match="not a gzip'd tar"):
        bundle.read_spec(archive[: len(archive) // 2])
