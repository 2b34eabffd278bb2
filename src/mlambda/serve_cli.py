"""``mlambda serve``: its flags, the platform under uvicorn, and what the terminal shows."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlambda import __version__
from mlambda.settings import Settings

if TYPE_CHECKING:
    from mlambda.platform import Platform


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(settings, [Path(d) for d in args.deploy or []]))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it): about 1.5x the requests a
    second of asyncio's own loop through the gateway (bench/gateway.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, deploy_dirs: list[Path]) -> int:
    # Light: the startup imports the rest on a thread while the zygotes start (startup.py).
    from mlambda.startup import Boot

    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
    boot = Boot(settings, deploy_dirs)
    platform = await boot.platform()
    try:
        deployed = []
        async for directory, record, changed in boot.deployments(platform):
            platform.audit.record("function.deploy", target=record.name, source="serve --deploy")
            deployed.append(record.name)
            state = "deployed" if changed else "unchanged"
            print(f"{state}: {record.name} ({record.digest[:19]}) from {directory}", flush=True)
        await boot.import_gateway()
        import uvicorn

        from mlambda.gateway.app import create_app

        config = uvicorn.Config(
            create_app(platform),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # The lifespan stops the platform on a signal, before uvicorn re-raises it.
            lifespan="on",
            access_log=settings.access_log or settings.log_level == "debug",
            # Open `logs --follow` streams must not hold a shutdown forever.
            timeout_graceful_shutdown=5,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        )
        server = uvicorn.Server(config)
        _terminal_log(settings.log_level)
        if settings.log_format == "json":
            from mlambda.observe.json_log import ship_as_json

            ship_as_json("mlambda", "uvicorn", "uvicorn.error", "uvicorn.access")
        _banner(settings, deployed or [r.name for r in platform.registry.list()])
        for warning in platform.sandboxing.report.warnings():
            print(f"WARNING: {warning}", file=sys.stderr, flush=True)
        config.load()  # bind_socket needs the loaded config (TLS included)
        await server.serve(sockets=[config.bind_socket(), _gateway_socket(platform)])
        return 0 if server.started else 1
    finally:
        await boot.close()
        await platform.stop()


def _terminal_log(level: str) -> None:
    """The platform's own lines in serve's terminal, in uvicorn's style (INFO:     ...)."""
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger = logging.getLogger("mlambda")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def _gateway_socket(platform: Platform) -> socket.socket:
    """The gateway on a Unix socket too: functions with network = "platform" reach it through
    it (their network namespace has no way out). Only the sandbox binds it where they see it."""
    path = platform.sandboxing.platform_socket
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    path.chmod(0o666)  # function uids connect; the 0700 data dir keeps everyone else out
    sock.listen(128)
    return sock


def _banner(settings: Settings, names: list[str]) -> None:
    scheme = "https" if settings.tls_cert else "http"
    url = f"{scheme}://{settings.host}:{settings.port}"
    lines = [f"mlambda {__version__} serving on {url} (data dir {settings.data_dir})"]
    if settings.auth:
        lines.append(f"API key: in {settings.key_file} (the CLI finds it there)")
        auth = f'-H "Authorization: Bearer $(cat {settings.key_file})" '
    else:
        auth = ""
        print(
            "WARNING: authentication is OFF (--no-auth): anyone who can reach "
            f"{url} can deploy and run code. Use this for local experiments only.",
            file=sys.stderr,
            flush=True,
        )
    # The command as this shell can run it: `make serve` runs .venv/bin/mlambda off PATH.
    prog = "mlambda" if shutil.which("mlambda") == sys.argv[0] else sys.argv[0]
    if not prog.endswith("mlambda"):
        prog = f"{sys.executable} -m mlambda"
    if names:
        name = names[0]
        lines += [
            f"Functions: {', '.join(names)}",
            "Try:",
            f"  {prog} invoke {name} --data '{{}}'",
            f"  curl {auth}-d '{{}}' {url}/v1/functions/{name}/invoke",
        ]
    else:
        lines.append("No functions yet: mlambda deploy DIR")
    print("\n".join(lines), flush=True)


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the platform (gateway, pools, instances)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--data-dir", help="registry, artifacts, logs and admin.key (default ./.mlambda)"
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="turn API-key auth off (local experiments only)"
    )
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="serve's own log: text (default) or JSON lines for shipping",
    )
    serve.add_argument("--max-payload-bytes", type=int, help="invoke request limit (default 6 MB)")
    serve.add_argument(
        "--max-async-payload-bytes", type=int, help="asynchronous event limit (default 1 MiB)"
    )
    serve.add_argument("--max-bundle-bytes", type=int, help="deploy bundle limit (default 512 MB)")
    serve.add_argument("--max-log-bytes", type=int, help="log bytes per function before rotation")
    serve.add_argument(
        "--backend",
        choices=["process", "zygote"],
        help="fork instances from zygotes and templates (default) or start fresh processes",
    )
    serve.add_argument(
        "--memory-limits",
        choices=["auto", "cgroup", "rss", "off"],
        help="enforce memory_mb with a memory cgroup (auto: where possible) or an RSS watchdog",
    )
    serve.add_argument(
        "--zygote-memory-mb",
        type=int,
        help="memory idle zygotes and templates may hold before LRU eviction (default 4096)",
    )
    serve.add_argument(
        "--prefork-spare",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep one instance of each template forked ahead of need (default on)",
    )
    serve.add_argument(
        "--max-unpacked-bytes", type=int, help="what a bundle may unpack to (default 4 GiB)"
    )
    serve.add_argument("--max-bundle-files", type=int, help="files in a bundle (default 20000)")
    serve.add_argument(
        "--max-bundle-ratio",
        type=int,
        help="unpacked/compressed size past which a bundle is a bomb (default 200)",
    )
    serve.add_argument(
        "--sandbox",
        choices=["auto", "require", "off"],
        help="isolate instances as far as this machine allows (auto, default), refuse to start "
        "without full isolation (require), or not at all (off: debugging only)",
    )
    serve.add_argument(
        "--sandbox-uids",
        metavar="FIRST-LAST",
        help="uids given one per function when serve runs as root (default 100000-199999)",
    )
    serve.add_argument(
        "--sandbox-paths",
        metavar="PATH[:PATH...]",
        help="extra host paths instances may read, beside the system's and Python's own",
    )
    serve.add_argument(
        "--instance-pids-max", type=int, help="processes and threads per instance (default 1024)"
    )
    serve.add_argument("--instance-nofile", type=int, help="open files per instance (default 1024)")
    serve.add_argument(
        "--master-key-file",
        metavar="FILE",
        help="the master key ring that wraps artifacts' and secrets' data keys "
        "(default <data dir>/master.key, made on first start)",
    )
    serve.add_argument(
        "--master-key-command",
        metavar="CMD",
        help="a command that prints the master key(s), base64, one per line (a KMS or vault); "
        "wins over MLAMBDA_MASTER_KEY and the file",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    serve.add_argument(
        "--max-instances-total",
        type=int,
        help="instances the platform runs at once, all functions together (default 256)",
    )
    serve.add_argument(
        "--concurrency-limit",
        type=int,
        help="calls running at once, all functions together (Lambda's account limit; "
        "reserved concurrency is carved out of it; default 1000)",
    )
    serve.add_argument(
        "--max-memory-mb",
        type=int,
        help="memory one function may ask for (memory_mb, and x min_instances); "
        "default the machine's",
    )
    serve.add_argument(
        "--redis-url", help="keep rate limits in Redis, shared by several gateways (redis://...)"
    )
    serve.add_argument(
        "--queue-url",
        help="keep accepted async events here: sqlite: (default, in the data dir), "
        "redis://HOST:PORT/DB or nats://HOST:PORT",
    )
    serve.add_argument(
        "--region",
        help="the AWS region functions see (AWS_REGION, their ARNs; default us-east-1)",
    )
    serve.add_argument(
        "--price-gb-second",
        type=float,
        help="mlambda cost: the price of a GB-second (default Lambda's x86, 0.0000166667)",
    )
    serve.add_argument(
        "--price-per-million-requests",
        type=float,
        help="mlambda cost: the price of a million requests (default Lambda's, 0.20)",
    )
    serve.add_argument(
        "--machine-hourly-cost",
        type=float,
        help="mlambda cost: what this machine costs an hour (default 0: not counted)",
    )
    serve.add_argument(
        "--alarms-file",
        metavar="FILE",
        help="alarms as code: a TOML file of [[alarm]] tables, put in place at start",
    )
    serve.add_argument(
        "--tracing",
        choices=["auto", "on", "off"],
        help="OTLP spans: auto (default: on when OTEL_EXPORTER_OTLP_ENDPOINT is set), on, off",
    )
    serve.add_argument(
        "--log-retention-days",
        type=int,
        help="days function log lines are kept (default 0: until --max-log-bytes rotates them)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print a line per HTTP request (default off; on with --log-level debug)",
    )
    serve.add_argument(
        "--deploy",
        action="append",
        metavar="DIR",
        help="deploy this function directory at start (repeatable)",
    )
    serve.set_defaults(run=cmd_serve)
