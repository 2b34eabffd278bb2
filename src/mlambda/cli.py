"""The ``mlambda`` command: parse arguments, call the client (or run the Platform), print."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlambda import __version__, errors
from mlambda.settings import Settings

if TYPE_CHECKING:
    from mlambda.platform import Platform

# Settings fields that `serve` and the client commands take as flags (tests keep them in step).
SERVE_FIELDS = (
    "host",
    "port",
    "data_dir",
    "log_level",
    "max_payload_bytes",
    "max_bundle_bytes",
    "max_log_bytes",
    "backend",
    "memory_limits",
    "zygote_memory_mb",
    "prefork_spare",
    "max_unpacked_bytes",
    "max_bundle_files",
    "max_bundle_ratio",
    "sandbox",
    "sandbox_uids",
    "sandbox_paths",
    "instance_pids_max",
    "instance_nofile",
    "master_key_command",
    "master_key_file",
    "redis_url",
    "max_instances_total",
    "max_memory_mb",
    "tls_cert",
    "tls_key",
)
CLIENT_FIELDS = ("url", "data_dir", "ca_file")
Command = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {field: getattr(args, field, None) for field in SERVE_FIELDS + CLIENT_FIELDS}
    if getattr(args, "no_auth", False):
        overrides["auth"] = False
    return Settings.from_env(**overrides)


def _client(settings: Settings):
    from mlambda.client import Client

    key = settings.api_key
    if key is None and settings.key_file.is_file():
        key = settings.key_file.read_text().strip()
    return Client(settings.url, key, ca_file=settings.ca_file)


# -- serve ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_serve(settings, [Path(d) for d in args.deploy or []]))


async def _serve(settings: Settings, deploy_dirs: list[Path]) -> int:
    import uvicorn

    from mlambda import bundle
    from mlambda.gateway.app import create_app
    from mlambda.platform import Platform

    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
    platform = Platform(settings)
    await platform.start()
    try:
        deployed = []
        for directory in deploy_dirs:
            record, changed = await platform.deploy(bundle.pack_path(directory)[0])
            platform.audit.record("function.deploy", target=record.name, source="serve --deploy")
            deployed.append(record.name)
            state = "deployed" if changed else "unchanged"
            print(f"{state}: {record.name} ({record.digest[:19]}) from {directory}", flush=True)
        config = uvicorn.Config(
            create_app(platform),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            # The lifespan stops the platform on a signal, before uvicorn re-raises it.
            lifespan="on",
            access_log=settings.log_level == "debug",
            # Open `logs --follow` streams must not hold a shutdown forever.
            timeout_graceful_shutdown=5,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        )
        server = uvicorn.Server(config)
        _banner(settings, deployed or [r.name for r in platform.registry.list()])
        for warning in platform.sandboxing.report.warnings():
            print(f"WARNING: {warning}", file=sys.stderr, flush=True)
        config.load()  # bind_socket needs the loaded config (TLS included)
        await server.serve(sockets=[config.bind_socket(), _gateway_socket(platform)])
        return 0 if server.started else 1
    finally:
        await platform.stop()


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


# -- client commands --------------------------------------------------------------------------


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from mlambda import bundle

    archive, spec = bundle.pack_path(
        Path(args.directory),
        name=args.name,
        framework=args.framework or "",
        trust_pickle=args.trust_pickle,
    )
    reply = _client(settings).deploy(spec.name, archive)
    function = reply["function"]
    if reply["changed"]:
        print(f"deployed {function['name']} {function['version']} ({function['digest']})")
    else:
        print(f"{function['name']} is unchanged ({function['digest']}); nothing to do")
    return 0


def _payload(data: str | None) -> bytes:
    if data is None:
        return b"{}"
    if data == "-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            return Path(data[1:]).read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            message = f"cannot read the event file {data[1:]!r}: {reason}"
            raise errors.InvalidRequest(message) from None
    return data.encode()


def cmd_invoke(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = _client(settings).invoke(args.name, _payload(args.data))
    except errors.FunctionError as exc:
        print(json.dumps(exc.payload, indent=2), file=sys.stderr)
        return exc.exit_code
    sys.stdout.write(body.decode("utf-8", errors="replace") + "\n")
    return 0


def cmd_ls(args: argparse.Namespace, settings: Settings) -> int:
    functions = _client(settings).list()
    if args.json:
        print(json.dumps(functions, indent=2))
        return 0
    if not functions:
        print("No functions deployed. Deploy one with: mlambda deploy DIR")
        return 0
    rows = [("NAME", "VERSION", "SERVES", "DIGEST", "MEMORY", "TIMEOUT", "INSTANCES", "UPDATED")]
    for f in functions:
        counts = f["instances"]
        config = f["config"]
        serves = f"{config['framework']} {config['model']}" if config.get("model") else ""
        rows.append(
            (
                f["name"],
                f["version"],
                serves or config["handler"],
                f["digest"][7:19],
                f"{f['config']['memory_mb']} MB",
                f"{f['config']['timeout_s']:g} s",
                str(counts["busy"] + counts["idle"]),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f["updatedAt"])),
            )
        )
    print_table(rows)
    return 0


def cmd_ps(args: argparse.Namespace, settings: Settings) -> int:
    processes = _client(settings).processes()
    if args.json:
        print(json.dumps(processes, indent=2))
        return 0
    rows = [("KIND", "FUNCTION", "PID", "STATE", "TIER", "AGE", "RSS", "PSS")]
    for p in processes:
        rows.append(
            (
                p["kind"],
                p["function"],
                str(p["pid"]),
                p["state"],
                p["tier"] or "-",
                f"{p['ageSeconds']:.0f}s",
                f"{p['rssKiB'] / 1024:.1f} MiB",
                f"{p['pssKiB'] / 1024:.1f} MiB",
            )
        )
    print_table(rows)
    return 0


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(_client(settings).get(args.name), indent=2))
    return 0


def cmd_rm(args: argparse.Namespace, settings: Settings) -> int:
    reply = _client(settings).remove(args.name)
    print(f"removed {reply['deleted']}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    try:
        for text in _client(settings).logs(args.name, tail=args.tail, follow=args.follow):
            sys.stdout.write(text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    return 0


def _with_client(run: Callable[..., int]) -> Command:
    """A command that talks to the server with the client (the admin commands' shape)."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        return run(args, settings, _client(settings))

    return command


# -- parser -----------------------------------------------------------------------------------


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server URL (env MLAMBDA_URL; default http://127.0.0.1:8080)")
    parser.add_argument(
        "--ca",
        dest="ca_file",
        metavar="FILE",
        help="trust this CA (PEM) for an https URL, e.g. a self-signed certificate "
        "(env MLAMBDA_CA_FILE)",
    )
    parser.add_argument(
        "--data-dir",
        help="dir holding admin.key if MLAMBDA_API_KEY is unset (env MLAMBDA_DATA_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlambda",
        description="Self-hosted serverless platform for ML inference.",
        epilog="Start with `mlambda serve`, then `mlambda deploy DIR` and `mlambda invoke NAME`.",
    )
    parser.add_argument("--version", action="version", version=f"mlambda {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    serve.add_argument("--max-payload-bytes", type=int, help="invoke request limit (default 6 MB)")
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
        "--max-memory-mb",
        type=int,
        help="memory one function may ask for (memory_mb, and x min_instances); "
        "default the machine's",
    )
    serve.add_argument(
        "--redis-url", help="keep rate limits in Redis, shared by several gateways (redis://...)"
    )
    serve.add_argument(
        "--deploy",
        action="append",
        metavar="DIR",
        help="deploy this function directory at start (repeatable)",
    )
    serve.set_defaults(run=cmd_serve)

    deploy = commands.add_parser(
        "deploy",
        help="deploy a function directory, a model file or a model directory as $LATEST",
    )
    deploy.add_argument(
        "directory",
        metavar="PATH",
        help="directory with mlambda.toml, or a model file (model.onnx, model.skops...) or "
        "model directory to serve with no code",
    )
    deploy.add_argument("--name", help="deploy under this name instead of function.name")
    deploy.add_argument(
        "--framework",
        help="runtime for a bare model file when its name does not tell (sklearn, xgboost, "
        "lightgbm, onnx, pytorch, tflite, sentence-transformers)",
    )
    deploy.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a joblib/pickle model file (it runs code when loaded: only your own files)",
    )
    deploy.set_defaults(run=cmd_deploy)

    invoke = commands.add_parser(
        "invoke", help="invoke a function; prints its result JSON on stdout"
    )
    invoke.add_argument(
        "name", metavar="NAME", help="the function to invoke (as `mlambda ls` shows it)"
    )
    invoke.add_argument(
        "--data", "-d", help="event JSON, @FILE to read a file, or - for stdin (default {})"
    )
    invoke.set_defaults(run=cmd_invoke)

    ls = commands.add_parser("ls", help="list deployed functions")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(run=cmd_ls)

    ps = commands.add_parser("ps", help="list zygotes, templates and instances with RSS and PSS")
    ps.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ps.set_defaults(run=cmd_ps)

    show = commands.add_parser("show", help="show a function's configuration and instances")
    show.add_argument("name")
    show.set_defaults(run=cmd_show)

    rm = commands.add_parser("rm", help="remove a function (its instances stop)")
    rm.add_argument("name")
    rm.set_defaults(run=cmd_rm)

    logs = commands.add_parser("logs", help="print a function's logs (START/END/REPORT and output)")
    logs.add_argument("name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "--tail", type=int, default=100, help="lines of history to print first (default 100)"
    )
    logs.set_defaults(run=cmd_logs)

    from mlambda.admin_cli import add_commands

    admin = add_commands(commands, _with_client)
    for sub in (deploy, invoke, ls, ps, show, rm, logs, *admin):
        _add_client_options(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        settings = _settings(args)
        run: Command = args.run
        return run(args, settings)
    except errors.MlambdaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
