"""The instance sandbox, applied inside the process before any user code runs.

``enter(config)`` runs in a process that is still the platform's: a template before its init,
or an instance that runs init itself (the process backend, or a fork of a zygote):
1. limits: no core dumps; open files, file size and (without a pids cgroup) processes capped;
2. a mount namespace whose root holds only read-only binds of what Python needs and of the
   function's own bundle, with a private /proc (other users' processes are invisible), /tmp
   (a tmpfs of ``ephemeral_storage_mb``) and /dev: the platform's data directory and the other
   functions' bundles are not in it; a private IPC namespace;
3. with ``network = "none"``, a network namespace of its own with loopback only;
4. the function's uid and gid, no supplementary groups, no capabilities, no new privileges.

``isolate_instance(config)`` runs in an instance forked from a template (so already
unprivileged): in a user namespace of its own, a /tmp layered over the template's — what init
wrote stays visible, what the instance writes is its own and goes with it — then no capabilities.

``python -m mlambda.runtime.sandbox`` is the platform's probe: it tries a configuration (JSON
on stdin) in a forked child, drops what this machine refuses, and prints what works and why
the rest does not.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from collections.abc import Callable

import msgspec

from mlambda.runtime import forwarder, linux
from mlambda.runtime.protocol import Sandbox

MB = 1024 * 1024
# What every sandbox's /dev holds (bound from the host), besides the configured devices.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
_RO = linux.MS_NOSUID | linux.MS_NODEV
# Where the gateway's Unix socket is inside the view (network = "platform").
PLATFORM_SOCKET = "/run/mlambda/gateway.sock"
# Where a template's /tmp is seen a second time, with nothing mounted inside (see _tmp).
INIT_TMP = "/.init-tmp"


class SandboxError(Exception):
    """A sandbox step failed: ``step`` names it (the probe turns that feature off)."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"sandbox step {step!r} failed: {error}")
        self.step = step


def enter(config: Sandbox) -> None:
    parent = os.getppid()
    os.umask(0o022)  # the platform's own 077 is for its data: the view's dirs must be traversable
    _step("limits", set_limits, config)
    if config.userns:
        _step("userns", _own_user_namespace)
    flags = (linux.CLONE_NEWNS | linux.CLONE_NEWIPC) if config.view else 0
    isolated = config.network in ("none", "platform")
    if isolated:
        flags |= linux.CLONE_NEWNET
    if flags:
        _step("namespaces", linux.unshare, flags)
    if isolated:
        _step("network", linux.loopback_up)
    if config.view:
        _step("view", build_view, config)
    if config.uid >= 0:
        _step("uid", become, config.uid, config.gid)
    elif config.userns:
        _step("userns", _give_up_capabilities)
    _settle(parent)
    if config.network == "platform":
        # After the privileges went: the forwarder is as unprivileged as the function.
        _step("platform", forwarder.start, config.platform_port, PLATFORM_SOCKET)


def _step(name: str, action: Callable[..., object], *args: object) -> None:
    try:
        action(*args)
    except OSError as exc:
        raise SandboxError(name, exc) from None


def _settle(parent: int) -> None:
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)  # exec can never gain privileges (set-uid files)
    # A credential change cleared the parent-death signal: instances still die with the platform.
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # the parent died while the signal was unset


def set_limits(config: Sandbox) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash dumps no memory to disk
    if config.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (config.nofile, config.nofile))
    if config.fsize_mb:
        size = config.fsize_mb * MB
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if config.nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (config.nproc, config.nproc))


def become(uid: int, gid: int) -> None:
    """The function's own user, in no other group, able to regain nothing."""
    linux.drop_bounding_set()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root: the kernel clears every capability


def _own_user_namespace() -> None:
    """Not root: a user namespace maps our own user, so mounts become possible (in it only)."""
    uid, gid = os.getuid(), os.getgid()
    linux.prctl(linux.PR_SET_DUMPABLE, 1)  # our /proc files must be ours to write the maps
    linux.unshare(linux.CLONE_NEWUSER)
    linux.write_file("/proc/self/setgroups", "deny")
    linux.write_file("/proc/self/uid_map", f"{uid} {uid} 1")
    linux.write_file("/proc/self/gid_map", f"{gid} {gid} 1")


def _give_up_capabilities() -> None:
    linux.drop_bounding_set()
    linux.clear_capabilities()
    linux.prctl(linux.PR_SET_DUMPABLE, 0)  # nothing of our user may read or trace us


# -- the view: a root of read-only binds ---------------------------------------------------


def build_view(config: Sandbox) -> None:
    # Private: nothing mounted here shows in the platform's namespace.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    root = config.staging
    linux.mount("tmpfs", root, "tmpfs", _RO, "mode=0755,size=4m")
    for path, place in _placements(config):
        place(root + path, path, config)
    linux.pivot_root(root)
    linux.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | _RO)


Placement = Callable[[str, str, Sandbox], None]


def _placements(config: Sandbox) -> list[tuple[str, Placement]]:
    """What goes where in the new root, parents before what is mounted inside them."""
    placements: list[tuple[str, Placement]] = [("/proc", _proc), ("/dev", _dev), ("/tmp", _tmp)]
    placements += [(path, _bind) for path in config.read_only]
    placements += [(path, _mask) for path in config.mask]
    placements.append((config.task_root, _bind))
    if config.network == "platform":
        placements.append((PLATFORM_SOCKET, _platform_socket))
    return sorted(placements, key=lambda item: item[0].rstrip("/").count("/"))


def _bind(target: str, source: str, config: Sandbox) -> None:
    if os.path.islink(source):  # /bin -> usr/bin on a merged /usr: the same link
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()  # a file is bound onto a file
    # Recursive: what is mounted inside comes along (/etc/hosts in a container); a user
    # namespace refuses a bind that would uncover what a mount inside hides.
    linux.bind_read_only(source, target, recursive=source != config.task_root)


def _mask(target: str, source: str, config: Sandbox) -> None:
    """An empty, read-only directory where a bind would have shown the platform's data."""
    if not os.path.isdir(target):
        return  # nothing bound contains it: it is not in the view anyway
    linux.mount("tmpfs", target, "tmpfs", _RO, "mode=0755,size=1m")
    inner = config.task_root
    if inner.startswith(source.rstrip("/") + "/"):
        os.makedirs(target + inner[len(source.rstrip("/")) :], exist_ok=True)
    linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_RDONLY | _RO)


def _platform_socket(target: str, source: str, config: Sandbox) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    open(target, "a").close()
    # Read-only does not stop connect(): a socket is not written through its file.
    linux.bind_read_only(config.platform_socket, target)


def _proc(target: str, source: str, config: Sandbox) -> None:
    os.makedirs(target)
    if config.userns:
        # A new procfs needs a PID namespace of ours; the platform's, bound, still hides what
        # other users run, and the platform makes itself non-dumpable.
        linux.mount("/proc", target, None, linux.MS_BIND | linux.MS_REC)
        return
    # hidepid=2: a process sees only its own user's processes (ptrace-readable ones).
    flags = _RO | linux.MS_NOEXEC
    linux.mount("proc", target, "proc", flags, "hidepid=2")


def _dev(target: str, source: str, config: Sandbox) -> None:
    os.makedirs(target)
    linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID, "mode=0755,size=64k")
    for device in (*DEVICES, *config.devices):
        if os.path.exists(device):
            inside = target + device[len("/dev") :]
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            open(inside, "a").close()
            linux.mount(device, inside, None, linux.MS_BIND)
    for name, points_to in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("shm", "/tmp"),  # POSIX shared memory lives in the instance's own /tmp
    ):
        os.symlink(points_to, f"{target}/{name}")
    linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID)


def _tmp(target: str, source: str, config: Sandbox) -> None:
    os.makedirs(target)
    linux.mount("tmpfs", target, "tmpfs", _RO, f"mode=1777,size={config.tmp_mb}m")
    if config.instance_tmp:
        # The same /tmp again, before anything is bound inside it: an overlay's lower layer
        # must hold no mounts, so instances layer their /tmp over this one.
        layer = target.removesuffix(source) + INIT_TMP
        os.makedirs(layer)
        linux.bind_read_only(target, layer)


# -- instances forked from a template ------------------------------------------------------


def isolate_instance(config: Sandbox) -> None:
    if not config.instance_tmp:
        return
    parent = os.getppid()
    try:
        uid, gid = os.getuid(), os.getgid()
        linux.prctl(linux.PR_SET_DUMPABLE, 1)  # our /proc files must be ours to write the maps
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
        linux.write_file("/proc/self/setgroups", "deny")
        linux.write_file("/proc/self/uid_map", f"{uid} {uid} 1")
        linux.write_file("/proc/self/gid_map", f"{gid} {gid} 1")
        private_tmp(config.tmp_mb)
        _give_up_capabilities()
    except OSError as exc:
        raise SandboxError("instance_tmp", exc) from None
    _settle(parent)


def private_tmp(size_mb: int) -> None:
    """Layer a tmpfs of ``size_mb`` over /tmp; what the view bound inside /tmp is bound again."""
    inside = [(path, os.open(path, os.O_PATH)) for path in mounts_under("/tmp")]
    try:
        linux.mount("tmpfs", "/tmp", "tmpfs", _RO, f"mode=0700,size={size_mb}m")
        os.mkdir("/tmp/upper")
        os.chmod("/tmp/upper", 0o1777)  # the layer's root is what the instance sees as /tmp
        os.mkdir("/tmp/work")
        options = f"lowerdir={INIT_TMP},upperdir=/tmp/upper,workdir=/tmp/work,userxattr"
        linux.mount("overlay", "/tmp", "overlay", _RO, options)
        for path, fd in inside:
            linux.bind_read_only(f"/proc/self/fd/{fd}", path)
    finally:
        for _, fd in inside:
            os.close(fd)
    # The overlay holds its own reference to the lower layer: the second sight of it goes.
    linux.mount("tmpfs", INIT_TMP, "tmpfs", _RO | linux.MS_RDONLY, "size=4k")


def mounts_under(prefix: str, mountinfo: str | None = None) -> list[str]:
    """Mount points strictly below ``prefix``, parents first (from /proc/self/mountinfo)."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as handle:
            mountinfo = handle.read()
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point.startswith(prefix.rstrip("/") + "/") and point not in found:
                found.append(point)
    return sorted(found, key=lambda point: point.count("/"))


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


# -- the probe ----------------------------------------------------------------------------

FEATURES = ("userns", "namespaces", "network", "view", "uid", "instance_tmp")


def without(config: Sandbox, step: str) -> Sandbox:
    """The configuration with the feature behind a failed step turned off."""
    off: dict[str, dict[str, object]] = {
        "userns": {"userns": False, "view": False, "instance_tmp": False},
        "namespaces": {"view": False, "network": "any", "instance_tmp": False},
        "network": {"network": "any"},
        "platform": {"network": "any"},
        "view": {"view": False, "instance_tmp": False},
        "uid": {"uid": -1, "gid": -1},
        "instance_tmp": {"instance_tmp": False},
        "python": {"view": False, "instance_tmp": False},
        "limits": {"nofile": 0, "fsize_mb": 0, "nproc": 0},
    }
    return msgspec.structs.replace(config, **off.get(step, {"view": False}))


def _attempt(config: Sandbox) -> str:
    """Apply ``config`` in a forked child and fork an instance below it; '' or 'step: why'."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _report(write, _try_template, config)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        message = handle.read().decode()
    _, status = os.waitpid(pid, 0)
    return message or ("" if status == 0 else f"python: exit status {status}")


def _report(pipe: int, action: Callable[[Sandbox, int], None], config: Sandbox) -> None:
    """In a probe child: run ``action``, write what failed (if anything) and exit."""
    code = 1
    try:
        action(config, pipe)
        code = 0
    except SandboxError as exc:
        os.write(pipe, f"{exc.step}: {exc}".encode())
    except BaseException as exc:
        os.write(pipe, f"python: {type(exc).__name__}: {exc}".encode())
    os._exit(code)


def _try_template(config: Sandbox, pipe: int) -> None:
    enter(config)
    _imports_still_work()
    if config.instance_tmp:
        pid = os.fork()
        if pid == 0:
            _report(pipe, _try_instance, config)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            os._exit(1)


def _try_instance(config: Sandbox, pipe: int) -> None:
    isolate_instance(config)
    with open("/tmp/.probe", "w") as handle:
        handle.write("ok")


def _imports_still_work() -> None:
    """The interpreter's own files must be readable inside (a module not imported yet)."""
    import xml.dom.minidom  # noqa: F401


def probe(config: Sandbox) -> tuple[Sandbox, dict[str, str]]:
    """The strongest part of ``config`` this machine allows, and why the rest is off."""
    dropped: dict[str, str] = {}
    for _ in range(len(FEATURES) + 2):
        failure = _attempt(config)
        if not failure:
            return config, dropped
        step, _, reason = failure.partition(": ")
        dropped[step] = reason
        weaker = without(config, step)
        if weaker == config:
            break
        config = weaker
    return Sandbox(nofile=config.nofile, fsize_mb=config.fsize_mb), dropped


def python_paths() -> list[str]:
    """What this interpreter reads: its prefixes and every existing sys.path entry."""
    paths = [sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(sys.executable)]
    paths += [os.path.dirname(os.path.realpath(sys.executable))]
    paths += [entry for entry in sys.path if entry and os.path.exists(entry)]
    return paths


def collapse(paths: list[str], masks: list[str]) -> list[str]:
    """Absolute paths without those inside another one (bound once, with what is below),
    without "/" (that would bind everything) and without what lies inside a mask."""
    clean = sorted({os.path.normpath(p) for p in paths if os.path.isabs(p)} - {"/"})
    kept: list[str] = []
    for path in clean:
        if any(_inside(path, mask) for mask in masks):
            continue
        if not any(_inside(path, parent) for parent in kept):
            kept.append(path)
    return kept


def _inside(path: str, parent: str) -> bool:
    parent = parent.rstrip("/")
    return path == parent or path.startswith(parent + "/")


def main() -> int:
    config = msgspec.json.decode(sys.stdin.buffer.read(), type=Sandbox)
    paths = collapse([*config.read_only, *python_paths()], config.mask)
    working, dropped = probe(msgspec.structs.replace(config, read_only=paths))
    sys.stdout.buffer.write(msgspec.json.encode({"config": working, "dropped": dropped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
