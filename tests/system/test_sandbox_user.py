"""serve as an unprivileged user: what still holds, and what the platform says does not.

The test (as root) starts serve as ``nobody``; where the interpreter lives under a directory
only root may enter (``/root/.pyenv``...), a mount namespace of the test's shows that part of
the tree to it, and nothing else changes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Server
from tests.system.test_sandbox import HOSTILE, VICTIM, _refused, _try

NOBODY = 65534

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None,
    reason="starting serve as another user needs root, setpriv and unshare (util-linux)",
)


def _hidden_ancestor(path: Path) -> Path | None:
    """The topmost ancestor of ``path`` that other users may not enter (/root, say)."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def _as_nobody(workdir: Path) -> tuple[str, ...]:
    """A command prefix that runs the rest as nobody, with the interpreter reachable."""
    script = workdir / "as-nobody.sh"
    lines = ["set -e", "umask 022"]  # the test process may have the platform's 077
    prefix = Path(sys.base_prefix)
    hidden = _hidden_ancestor(prefix)
    if hidden is not None:
        inside = prefix.relative_to(hidden)
        lines += [
            f"mkdir -p {workdir}/stash",
            f"mount --bind {prefix} {workdir}/stash",
            f"mount -t tmpfs -o mode=0755 tmpfs {hidden}",
            f"mkdir -p {hidden / inside}",
            f"mount --move {workdir}/stash {hidden / inside}",
        ]
    lines.append(f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "$@"')
    script.write_text("\n".join(lines) + "\n")
    return ("unshare", "-m", "--propagation", "private", "sh", str(script))


@pytest.fixture
def user_server(make_function) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="mlambda-nobody-"))
    os.chmod(workdir, 0o755)
    data = workdir / "data"
    data.mkdir()
    os.chown(data, NOBODY, NOBODY)
    server = Server(data, cwd=workdir, prefix=_as_nobody(workdir)).start()
    try:
        server.deploy(make_function("victim", VICTIM))
        server.deploy(make_function("hostile", HOSTILE))
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_serve_says_it_is_not_root_and_what_is_not_isolated(user_server):
    details = httpx.get(f"{user_server.url}/healthz").json()["sandbox"]
    assert details["mode"] == "user" and details["isolated"] is False
    assert "uid" in details["notIsolated"]
    assert "not running as root" in user_server.log.read_text()


def test_instances_run_as_the_platforms_user(user_server):
    uid, _, _ = _try(user_server, "whoami")["value"]
    assert uid == NOBODY == os.stat(user_server.data_dir / "admin.key").st_uid


def test_the_private_root_still_hides_the_data_dir_and_the_platforms_environment(user_server):
    details = httpx.get(f"{user_server.url}/healthz").json()["sandbox"]
    if not details["view"]:
        pytest.skip(f"no unprivileged user namespaces here: {details['reasons']}")
    for path in ("admin.key", "registry.db"):
        _refused(user_server, "read", path=str(user_server.data_dir / path))
    _refused(user_server, "read", path=f"/proc/{_serve_pid(user_server)}/environ")
    victim = json.loads(user_server.client.invoke("victim", b"{}"))
    assert victim["code"] == "original"


def test_what_is_not_isolated_is_as_documented_signals_reach_the_platform(user_server):
    # Same uid: the kernel lets a function signal serve. (Probed with signal 0, not killed.)
    outcome = _try(user_server, "signal", pid=_serve_pid(user_server), signal=0)
    assert outcome["ok"] is True


def _serve_pid(server: Server) -> int:
    """serve's own pid (the test started a wrapper that exec'd it, so the pid is the same)."""
    assert server.process is not None
    return server.process.pid
