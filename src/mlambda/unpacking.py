"""Reading an uploaded archive safely: limits enforced while it is read, members checked.

A bundle is a gzip'd tar from anyone holding a deploy key, so before a byte of it lands on
disk every member is checked: regular files, directories and symlinks that stay inside the
tree only (no absolute or ``..`` paths, hard links, devices or fifos), at most ``max_files``
members and ``max_bytes`` unpacked, and no more than ``max_ratio`` times its compressed size
once past ``RATIO_FLOOR`` (a small gzip that inflates to gigabytes is refused on its headers,
before it is inflated).
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from mlambda.errors import InvalidSpec

# Below this many unpacked bytes the ratio is not checked: tiny bundles compress well.
RATIO_FLOOR = 16 * 1024 * 1024
ALLOWED_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE)


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int = 4 * 1024**3
    max_files: int = 20_000
    max_ratio: int = 200


class Budget:
    """Counts members and bytes against the limits as an archive is read."""

    def __init__(self, limits: Limits, compressed: int) -> None:
        self.limits = limits
        self.compressed = compressed
        self.files = 0
        self.bytes = 0

    def take(self, member: tarfile.TarInfo) -> None:
        check_member(member)
        self.files += 1
        self.bytes += member.size
        limits = self.limits
        if self.files > limits.max_files:
            raise InvalidSpec(
                f"bundle has more than {limits.max_files} files (max_bundle_files); "
                "leave caches and data out of it, or raise the limit"
            )
        if self.bytes > limits.max_bytes:
            raise InvalidSpec(
                f"bundle unpacks to more than {limits.max_bytes} bytes (max_unpacked_bytes)"
            )
        ratio = self.bytes / max(1, self.compressed)
        if self.bytes > RATIO_FLOOR and ratio > limits.max_ratio:
            raise InvalidSpec(
                f"bundle unpacks to more than {limits.max_ratio} times its compressed size "
                f"({self.bytes} bytes from {self.compressed}): refused as a decompression bomb "
                "(max_bundle_ratio)"
            )


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse what could write outside the tree or make something other than files."""
    name = member.name
    if member.type not in ALLOWED_TYPES:
        kind = "hard link" if member.islnk() else "device or fifo"
        raise InvalidSpec(f"bundle member {name!r} is a {kind}; only files, dirs and symlinks")
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidSpec(f"bundle member {name!r} leaves the bundle (absolute path or '..')")
    if posixpath.normpath(name) in ("", ".") and not member.isdir():
        raise InvalidSpec(f"bundle member {name!r} names the bundle's root, not a file in it")
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise InvalidSpec(
                f"bundle member {name!r} links to {member.linkname!r}, outside the bundle"
            )


def members(
    archive: bytes, limits: Limits, read: Callable[[str], bool] = lambda name: False
) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Each member in order, checked and counted; its content when ``read(name)`` says so.
    The archive is inflated as it is read: a bomb stops at the first member past a limit."""
    budget = Budget(limits, len(archive))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r|gz") as tar:
            for member in tar:
                budget.take(member)
                content = None
                if member.isfile() and read(member.name):
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted is not None else b""
                yield member, content
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidSpec(f"bundle is not a gzip'd tar archive: {exc}") from None


def extract(archive: bytes, target: Path, limits: Limits) -> None:
    """Unpack into ``target`` (made here), every member checked again as it is written."""
    budget = Budget(limits, len(archive))

    def guarded(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        budget.take(member)
        # The "data" filter also refuses what would land outside ``path``, as a second line.
        checked = tarfile.data_filter(member, path)
        if checked is not None and checked.isfile():
            mode = checked.mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
            checked = checked.replace(mode=mode & ~0o222, deep=False)
        return checked

    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(target, filter=guarded)
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise InvalidSpec(f"bundle cannot be unpacked safely: {exc}") from None
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        # Members that contradict each other (a file where a directory is, twice the same...).
        raise InvalidSpec(
            f"bundle cannot be unpacked: its members contradict each other ({exc.strerror})"
        ) from None
