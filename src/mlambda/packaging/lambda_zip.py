"""Lambda's code packages and mlambda bundles, both ways: a zip made for Lambda (the handler's
module at its root) becomes a bundle with an mlambda.toml written from the Lambda API's fields;
a bundle's mlambda.toml is rewritten when a Lambda call changes the configuration; a bundle is
handed back as a zip for GetFunction, without its secrets' values.

A zip comes from anyone holding a deploy key, so it is read as warily as a bundle: every member
checked and counted against the same limits (unpacking.Budget), each one inflated to no more
than the size its header declares, no symlinks or special files."""

from __future__ import annotations

import io
import stat
import tarfile
import tomllib
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import tomli_w

from mlambda import bundle, unpacking
from mlambda.errors import InvalidSpec
from mlambda.runtimes import BOOTSTRAP, is_provided
from mlambda.spec import HANDLER_PATTERN, SPEC_FILE

# (path in the bundle, content, executable)
File = tuple[str, bytes, bool]


def read_zip(data: bytes, limits: unpacking.Limits) -> list[File]:
    """The files of a Lambda zip, checked as an uploaded bundle is."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidSpec(f"Code.ZipFile is not a zip archive: {exc}") from None
    budget = unpacking.Budget(limits, len(data))
    files: list[File] = []
    with archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if info.is_dir():
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: a zip that keeps no type
                raise InvalidSpec(
                    f"zip member {info.filename!r} is a symlink or a special file; "
                    "a Lambda zip here holds files and directories only"
                )
            member = tarfile.TarInfo(info.filename)
            member.size = info.file_size
            budget.take(member)  # names, count, bytes and ratio, before inflating it
            try:
                with archive.open(info) as source:
                    content = source.read(info.file_size + 1)
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as exc:
                raise InvalidSpec(f"zip member {info.filename!r} cannot be read: {exc}") from None
            if len(content) != info.file_size:
                raise InvalidSpec(
                    f"zip member {info.filename!r} does not hold the size its header declares"
                )
            # A provided runtime's bootstrap must be executable, which zips made on Windows or
            # with Python's zipfile do not record: such a zip works here as its author meant.
            executable = bool(mode & 0o111) or info.filename == BOOTSTRAP
            files.append((info.filename, content, executable))
    return files


def read_bundle(archive: bytes, limits: unpacking.Limits) -> list[File]:
    """The files of a bundle (symlinks left out: a Lambda zip cannot carry them)."""
    return [
        (member.name, content, bool(member.mode & 0o111))
        for member, content in unpacking.members(archive, limits, read=lambda name: True)
        if member.isfile() and content is not None
    ]


def function_table(files: Iterable[File]) -> dict[str, Any]:
    """The ``[function]`` table of the mlambda.toml among ``files`` ({} when there is none)."""
    for name, content, _ in files:
        if name == SPEC_FILE:
            try:
                document = tomllib.loads(content.decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise InvalidSpec(f"{SPEC_FILE} in the zip is not valid TOML: {exc}") from None
            table = document.get("function", {})
            if not isinstance(table, dict):
                raise InvalidSpec(f"{SPEC_FILE} in the zip: [function] must be a table")
            return table
    return {}


def spec_text(table: Mapping[str, Any]) -> str:
    """An mlambda.toml holding ``table`` as its ``[function]``."""
    return tomli_w.dumps({"function": dict(table)})


def with_table(files: Iterable[File], table: Mapping[str, Any]) -> bytes:
    """A bundle of ``files`` whose mlambda.toml is ``table``."""
    kept = [f for f in files if f[0] != SPEC_FILE]
    table = _provided_handler(table)
    return bundle.pack_files([*kept, (SPEC_FILE, spec_text(table).encode(), False)])


def to_zip(files: Iterable[File]) -> bytes:
    """A zip of a bundle's files for download; its mlambda.toml leaves the secrets out."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content, executable in sorted(files):
            if name == SPEC_FILE:
                table = function_table([(name, content, executable)])
                table = {k: v for k, v in table.items() if k != "secrets"}
                content = spec_text(table).encode()
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()


def _provided_handler(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """A provided runtime's handler in the Lambda API's own form: an UpdateFunctionConfiguration
    that named a Handler but no Runtime made 'app.handler' into 'app:handler'; undone here."""
    handler = table.get("handler")
    if not is_provided(str(table.get("runtime", ""))) or not isinstance(handler, str):
        return table
    if not HANDLER_PATTERN.fullmatch(handler):
        return table
    return {**table, "handler": handler.replace(":", ".")}
