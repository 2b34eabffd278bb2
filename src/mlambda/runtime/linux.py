"""Thin wrappers of the Linux calls the sandbox needs that Python's ``os`` does not offer.

Each raises ``OSError`` with the call and the path it was given, so a failed step says what
failed. Imported only where the sandbox is applied (inside instance processes).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import socket
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

# pivot_root has no libc wrapper; its number differs between architectures.
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_CAPABILITY_VERSION_3 = 0x20080522
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = libc().mount(
        _bytes(source), target.encode(), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data or None)
    )
    _check(result, f"mount {fstype or source or ''} on {target}")


def bind_read_only(source: str, target: str, recursive: bool = False) -> None:
    """Show ``source`` at ``target``, read-only, with set-uid bits and devices ignored;
    ``recursive`` takes the mounts inside it along (read-only too, where the kernel can)."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if recursive and _set_attributes_recursively(target, _ATTR_RDONLY | _ATTR_NOSUID | _ATTR_NODEV):
        return
    # A bind mount takes its flags only on a remount (the kernel ignores them on the first
    # call); flags the source has (noexec, atime) are kept: one cannot drop them in a user ns.
    kept = _kept_flags(os.statvfs(target).f_flag)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)


# statvfs flag -> the mount flag that keeps it
_STATVFS_KEPT = {8: MS_NOEXEC, 1024: 1024, 2048: 2048, 4096: 1 << 21}
_ATTR_RDONLY, _ATTR_NOSUID, _ATTR_NODEV = 0x1, 0x2, 0x4
_AT_RECURSIVE = 0x8000
_MOUNT_SETATTR = 442  # the same number on every architecture (a newer, unified call)


def _kept_flags(statvfs_flags: int) -> int:
    return sum(flag for bit, flag in _STATVFS_KEPT.items() if statvfs_flags & bit)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _set_attributes_recursively(target: str, attributes: int) -> bool:
    """mount_setattr(2) (Linux 5.12): set ``attributes`` on a whole tree of mounts at once.
    False where the kernel has no such call (the caller falls back to a remount)."""
    attr = _MountAttr(attributes, 0, 0, 0)
    at_fdcwd = -100
    result = libc().syscall(
        _MOUNT_SETATTR,
        at_fdcwd,
        target.encode(),
        _AT_RECURSIVE,
        ctypes.byref(attr),
        ctypes.sizeof(attr),
    )
    return result == 0


def unmount(target: str) -> None:
    _check(libc().umount2(target.encode(), MNT_DETACH), f"umount {target}")


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def pivot_root(new_root: str) -> None:
    """Make ``new_root`` this mount namespace's root and detach the old one entirely."""
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {os.uname().machine}")
    os.chdir(new_root)
    # pivot_root(".", "."): the old root ends up stacked under the new one, then goes.
    _check(libc().syscall(number, b".", b"."), f"pivot_root {new_root}")
    unmount(".")
    os.chdir("/")


def prctl(option: int, value: int) -> None:
    _check(libc().prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def drop_bounding_set() -> None:
    """No later exec can gain a capability back (file capabilities, set-uid root)."""
    cap = 0
    while libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def clear_capabilities() -> None:
    """Give up every capability this process holds (in its own user namespace, too)."""
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc().capset(ctypes.byref(header), data), "capset")


def loopback_up() -> None:
    """A new network namespace starts with ``lo`` down: bring it up (127.0.0.1 works)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def write_file(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
