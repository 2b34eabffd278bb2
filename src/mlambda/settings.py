"""Settings: read once from the environment (the only module that touches ``os.environ``).

Each field may be given as ``MLAMBDA_<FIELD>`` in the environment; CLI flags override it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

ENV_PREFIX = "MLAMBDA_"
# Fields that hold a path but default to None.
PATH_FIELDS = frozenset({"master_key_file", "tls_cert", "tls_key", "ca_file", "alarms_file"})

# Variables an instance inherits from the platform's environment. Nothing else passes, so the
# platform's own secrets (the API key, database URLs) never reach user code or its logs.
INSTANCE_ENV_PASSTHROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "HF_HOME",
    "HF_HUB_OFFLINE",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    # Loopback by default: exposing the platform is a decision the operator makes explicitly.
    host: str = "127.0.0.1"
    port: int = 8080
    # Registry, artifacts, unpacked bundles, logs and the admin key live here.
    data_dir: Path = Path(".mlambda")
    # Off only for local experiments; `serve --no-auth` says so loudly.
    auth: bool = True
    # Where client commands find the server, and the key they present.
    url: str = "http://127.0.0.1:8080"
    api_key: str | None = None
    # HTTPS: serve with this certificate and key (PEM); the CLI trusts this CA file (a
    # self-signed certificate) beside the system's own.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None
    # Lambda's synchronous invoke limit: 6 MB request and response.
    max_payload_bytes: int = 6 * 1024 * 1024
    # An asynchronous invocation's event (Lambda's limit: 1 MB), stored until it has run.
    max_async_payload_bytes: int = 1024 * 1024
    # A bundle carries model files, so it may be far larger than an invoke payload.
    max_bundle_bytes: int = 512 * 1024 * 1024
    # What a bundle may unpack to: bytes, members, and times its compressed size (past 16 MiB),
    # checked while it is read, so an archive bomb is refused before it is inflated.
    max_unpacked_bytes: int = 4 * 1024 * 1024 * 1024
    max_bundle_files: int = 20_000
    max_bundle_ratio: int = 200
    # Log lines kept per function before the oldest file is rotated away.
    max_log_bytes: int = 16 * 1024 * 1024
    log_level: str = "info"
    # serve's own log (its terminal): "text" as uvicorn writes it, or "json" lines for shipping.
    log_format: str = "text"
    # How instances start: "zygote" (forked from a function template whose init already ran:
    # milliseconds instead of seconds) or "process" (a fresh interpreter each, init included).
    backend: str = "zygote"
    # memory_mb per instance: "auto" (a memory cgroup where one can be made, else an RSS
    # watchdog), "cgroup", "rss" (watchdog only) or "off".
    memory_limits: str = "auto"
    # Memory (PSS) that idle runtime zygotes and templates may hold together; past it the least
    # recently used idle one is evicted (a later cold start is colder, not broken).
    zygote_memory_mb: int = 4096
    # Keep one instance of each template forked ahead of need, so that a cold start costs a
    # dispatch instead of a fork (its cost: a process that shares nearly all of its memory).
    prefork_spare: bool = True
    # What the whole platform may run: instances at once (all functions together), and
    # memory in MB for one function's instance or provisioned instances (0: the machine's).
    max_instances_total: int = 256
    # Calls running at once, all functions together (Lambda's account concurrency limit):
    # reserved concurrency is carved out of it, the rest is shared.
    concurrency_limit: int = 1000
    max_memory_mb: int = 0
    # Instance isolation: "auto" (as far as this machine allows, saying what it cannot),
    # "require" (refuse to start without all of it) or "off" (debugging only).
    sandbox: str = "auto"
    # Uids (and gids) handed out one per function when serve runs as root; none of them may
    # belong to a real user of the machine.
    sandbox_uids: str = "100000-199999"
    # Extra host paths instances may read (':'-separated), beside the system and Python's own.
    sandbox_paths: str = ""
    # Processes and threads one instance may have (a fork bomb stops there), and open files.
    instance_pids_max: int = 1024
    instance_nofile: int = 1024
    # The master key that wraps the data keys of artifacts and secrets (docs/security.md): from
    # a command's output (a KMS, a vault: the seam), else this variable's value, else a key
    # file (default <data dir>/master.key, generated on first start).
    master_key_command: str = ""
    master_key: str | None = None
    master_key_file: Path | None = None
    # The region functions see (AWS_REGION, AWS_DEFAULT_REGION, their ARNs): where the AWS SDK in
    # a handler sends its calls unless the function says otherwise.
    region: str = "us-east-1"
    # `serve` prints one line per HTTP request (uvicorn's access log).
    access_log: bool = False
    # Rate limits shared by several gateways live here (redis://...); empty: in this process.
    redis_url: str = ""
    # Where accepted asynchronous events are kept (docs/async.md): "sqlite:" is a file in the
    # data dir, needing nothing else; redis://... or nats://... a broker several gateways share.
    queue_url: str = "sqlite:"
    # What `mlambda cost` prices usage at: Lambda's published x86 prices (per GB-second of
    # memory x billed duration, and per million requests), and this machine's own cost per
    # hour (0: not counted), so that a report says both what it would cost on Lambda and here.
    price_gb_second: float = 0.0000166667
    price_per_million_requests: float = 0.20
    machine_hourly_cost: float = 0.0
    # Alarms kept as code: a TOML file of [[alarm]] tables, put in place at each start (alarms
    # made with the API live in the registry beside them). None: only those.
    alarms_file: Path | None = None
    # Spans exported over OTLP (docs/observability.md#tracing): "auto" (on when the standard
    # OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT names a collector), "on" or "off".
    tracing: str = "auto"
    # The collector the OTEL_ variables name ("" none, or OTEL_SDK_DISABLED): read here, the
    # exporter reads the rest of them itself.
    otel_endpoint: str = ""
    # Days a function's log lines are kept (0: until --max-log-bytes rotates them away); older
    # lines are removed within the hour, as CloudWatch Logs' retention does.
    log_retention_days: int = 0
    # The part of the platform's environment that instances inherit (see INSTANCE_ENV_PASSTHROUGH).
    instance_env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None and field.name not in ("instance_env", "otel_endpoint"):
                values[field.name] = _parse(field.name, raw, cls._default(field.name))
        values["otel_endpoint"] = (
            ""
            if env.get("OTEL_SDK_DISABLED", "").lower() == "true"
            else env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        )
        values["instance_env"] = tuple(
            (key, env[key]) for key in INSTANCE_ENV_PASSTHROUGH if key in env
        )
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["data_dir"] = Path(values.get("data_dir", cls.data_dir))
        for name in PATH_FIELDS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)

    @classmethod
    def _default(cls, name: str) -> Any:
        return {f.name: f.default for f in dataclasses.fields(cls)}[name]

    @property
    def key_file(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()} must be true or false, got {raw!r}")
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"{ENV_PREFIX}{name.upper()} must be an integer, got {raw!r}"
            ) from None
    if isinstance(default, Path) or name in PATH_FIELDS:
        return Path(raw)
    return raw
