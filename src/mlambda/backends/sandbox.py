"""The platform's side of the instance sandbox: what this machine allows (found by a probe at
start), and each function's configuration, which ``runtime/sandbox.py`` applies inside its
processes before any of the function's code runs.

Modes (``--sandbox``): "auto" isolates as far as this machine allows and says what it cannot;
"require" refuses to start unless every protection is in force; "off" runs instances as the
platform's own user, with no namespaces (for debugging only).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from mlambda.backends.limits import ResourceLimits
from mlambda.runtime import linux
from mlambda.runtime.protocol import Sandbox
from mlambda.settings import Settings
from mlambda.spec import FunctionSpec

MODES = ("auto", "require", "off")
# Host paths every view shows (read-only), besides what the interpreter itself reads.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
# Devices a model may need (GPUs), bound into the view when the host has them.
DEVICE_PATTERNS = ("/dev/nvidia*", "/dev/dri/*")
PROBE_TIMEOUT_S = 20

# What each protection keeps out, as /healthz and the start banner name it when it is missing.
PROTECTIONS = {
    "uid": "a uid of its own per function: without it instances run as the platform's user and "
    "can signal the platform and each other",
    "view": "a private root with read-only binds: without it instances see the whole file "
    "system the platform's user can read, the data directory included",
    "instance_tmp": "a private /tmp per instance: without it the instances of a function share "
    "their template's /tmp",
    "network": 'a network namespace for network = "none": such functions are refused',
    "pids": "a pids cgroup per instance: without it a fork bomb is bounded by RLIMIT_NPROC only, "
    "and a process an instance detached (setsid) can outlive it",
}


def parse_uid_range(text: str) -> range:
    """``"100000-199999"`` -> that range (both ends included); errors name the setting."""
    low, sep, high = text.partition("-")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()):
        raise ValueError(
            f"MLAMBDA_SANDBOX_UIDS must be 'FIRST-LAST' (like 100000-199999), got {text!r}"
        )
    first, last = int(low), int(high)
    if not 1000 <= first <= last < 2**32 - 1:
        raise ValueError(
            f"MLAMBDA_SANDBOX_UIDS {text!r}: the range must lie between 1000 and 4294967294 "
            "and start at or below its end (uids below 1000 belong to the system)"
        )
    return range(first, last + 1)


def missing(wanted: Sandbox, working: Sandbox, pids: bool, root: bool) -> list[str]:
    """The protections not in force: what the probe turned off, and the uid when not root."""
    gone = []
    if not root or (wanted.uid >= 0 and working.uid < 0):
        gone.append("uid")
    for name in ("view", "instance_tmp"):
        if getattr(wanted, name) and not getattr(working, name):
            gone.append(name)
    if wanted.network == "none" and working.network != "none":
        gone.append("network")
    if not pids:
        gone.append("pids")
    return gone


@dataclasses.dataclass(frozen=True)
class SandboxReport:
    """What is in force on this machine: shown at start, in /healthz and by the docs."""

    mode: str  # "root", "user" (serve is not root) or "off"
    working: Sandbox
    missing: list[str]
    reasons: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "isolated": not self.missing and self.mode == "root",
            "uid": self.working.uid >= 0,
            "view": self.working.view,
            "instanceTmp": self.working.instance_tmp,
            "networkNone": self.working.network == "none",
            "notIsolated": {name: PROTECTIONS[name] for name in self.missing},
            "reasons": self.reasons,
        }

    def warnings(self) -> list[str]:
        lines = []
        if self.mode == "off":
            lines.append("sandbox is OFF (--sandbox off): instances run as the platform's user")
        elif self.mode == "user":
            lines.append(
                "serve is not running as root: instances cannot get uids of their own, so they "
                "run as the platform's user and can signal its processes"
            )
        for name in self.missing:
            if name != "uid" or self.mode == "root":
                reason = self.reasons.get(name, "")
                suffix = f" ({reason})" if reason else ""
                lines.append(f"not isolated: {PROTECTIONS[name]}{suffix}")
        return lines


class Sandboxing:
    """Builds each function's ``Sandbox`` from what the probe found."""

    def __init__(
        self,
        report: SandboxReport,
        uids: range,
        data_dir: Path,
        pids: bool,
        pids_max: int,
        port: int = 0,
        scheme: str = "http",
    ) -> None:
        self.report = report
        self.uids = uids
        self.data_dir = data_dir
        self.pids = pids
        self.pids_max = pids_max
        # network = "platform": the gateway's port, and the Unix socket it also listens on.
        self.port = port
        self.scheme = scheme
        self.platform_socket = data_dir / "sandbox" / "gateway.sock"

    @property
    def enabled(self) -> bool:
        return self.report.mode != "off"

    @property
    def needs_traversal(self) -> bool:
        """Own uids but no private root: instances reach their bundle through the data dir."""
        working = self.report.working
        return self.enabled and working.uid >= 0 and not working.view

    def refusal(self, spec: FunctionSpec) -> str:
        """Why ``spec`` cannot run here ("" when it can): never with less than it asked for."""
        if spec.network == "none" and self.enabled and self.report.working.network != "none":
            reason = self.report.reasons.get("network", "network namespaces are not available")
            return (
                f'function.network = "none" needs a network namespace, which this machine '
                f'refuses ({reason}); use network = "any" or run serve as root'
            )
        return ""

    def config_for(self, spec: FunctionSpec, uid: int, task_root: str) -> Sandbox | None:
        if not self.enabled:
            return None
        base = self.report.working
        own_uid = uid if base.uid >= 0 else -1
        nproc = 0
        if own_uid >= 0 and not self.pids:
            # No pids cgroup: the function's own uid bounds all its instances together.
            nproc = self.pids_max * (spec.max_instances + 2)
        return msgspec.structs.replace(
            base,
            uid=own_uid,
            gid=own_uid,
            task_root=task_root,
            tmp_mb=spec.ephemeral_storage_mb,
            fsize_mb=spec.ephemeral_storage_mb,
            network=spec.network if spec.network in ("none", "platform") else "any",
            platform_socket=str(self.platform_socket) if spec.network == "platform" else "",
            platform_port=self.port if spec.network == "platform" else 0,
            nproc=nproc,
        )

    def environment(self, spec: FunctionSpec | None = None) -> dict[str, str]:
        """What instances' environment must say inside the view (their own /tmp as home), and
        where the gateway is for a function that may reach it."""
        env = {}
        if self.enabled and self.report.working.view:
            env = {"HOME": "/tmp", "TMPDIR": "/tmp"}
        if spec is not None and spec.network == "platform":
            env["MLAMBDA_URL"] = f"{self.scheme}://127.0.0.1:{self.port}"
        return env


def wanted(settings_paths: str, data_dir: Path, staging: Path, uid: int, nofile: int) -> Sandbox:
    """The strongest sandbox to try on this machine (the probe keeps what works)."""
    extra = [p for p in settings_paths.split(":") if p]
    resolv = os.path.realpath("/etc/resolv.conf")  # often a link into /run
    paths = [*SYSTEM_PATHS, *extra, os.path.dirname(resolv)]
    devices = sorted(p for pattern in DEVICE_PATTERNS for p in glob.glob(pattern))
    root = os.geteuid() == 0
    return Sandbox(
        uid=uid if root else -1,
        gid=uid if root else -1,
        view=True,
        read_only=[p for p in paths if os.path.lexists(p)],
        devices=devices,
        staging=str(staging),
        task_root=str(staging.parent / "probe-task"),
        mask=[str(data_dir)],
        userns=not root,
        tmp_mb=16,
        instance_tmp=True,
        network="none",
        nofile=nofile,
        fsize_mb=16,
    )


def probe(
    want: Sandbox, python: str = sys.executable, env: dict[str, str] | None = None
) -> tuple[Sandbox, dict[str, str]]:
    """Run the probe (``python -m mlambda.runtime.sandbox``) with the instances' interpreter."""
    Path(want.staging).mkdir(parents=True, exist_ok=True)
    Path(want.task_root).mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [python, "-P", "-m", "mlambda.runtime.sandbox"],
            input=msgspec.json.encode(want),
            capture_output=True,
            env=env,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Sandbox(nofile=want.nofile), {"probe": str(exc)}
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Sandbox(nofile=want.nofile), {"probe": f"exit {done.returncode}: {tail[0]}"}
    reply = msgspec.json.decode(done.stdout)
    return msgspec.convert(reply["config"], Sandbox), dict(reply["dropped"])


def _gateway(settings: Settings) -> tuple[int, str]:
    return settings.port, "https" if settings.tls_cert else "http"


def make_sandboxing(settings: Settings, data_dir: Path, limits: ResourceLimits) -> Sandboxing:
    """Probe this machine and say what each function's instances will get."""
    if settings.sandbox not in MODES:
        raise ValueError(
            f"MLAMBDA_SANDBOX must be one of {', '.join(MODES)}, got {settings.sandbox!r}"
        )
    uids = parse_uid_range(settings.sandbox_uids)
    pids = limits.contains_processes
    if settings.sandbox == "off":
        report = SandboxReport("off", Sandbox(), [], {})
        return Sandboxing(
            report, uids, data_dir, pids, settings.instance_pids_max, *_gateway(settings)
        )
    root = os.geteuid() == 0
    staging = data_dir / "sandbox" / "root"
    want = wanted(settings.sandbox_paths, data_dir, staging, uids.start, settings.instance_nofile)
    working, reasons = probe(want, env=dict(settings.instance_env))
    report = SandboxReport(
        "root" if root else "user", working, missing(want, working, pids, root), reasons
    )
    if not root:
        # Instances share our uid: made non-dumpable, serve cannot be traced or have its
        # memory or environment read by them (only a capable process may).
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
    if settings.sandbox == "require" and report.missing:
        raise RuntimeError(
            "--sandbox require: instances cannot be fully isolated here: "
            + "; ".join(report.warnings())
        )
    return Sandboxing(report, uids, data_dir, pids, settings.instance_pids_max, *_gateway(settings))
