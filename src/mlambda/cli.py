"""The ``mlambda`` command: parse arguments, call the client (or run the Platform), print."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlambda import __version__, errors
from mlambda.serve_cli import add_serve_command
from mlambda.settings import Settings

if TYPE_CHECKING:
    pass

# Settings fields that `serve` and the client commands take as flags (tests keep them in step).
SERVE_FIELDS = (
    "host",
    "port",
    "data_dir",
    "log_level",
    "log_format",
    "max_payload_bytes",
    "max_async_payload_bytes",
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
    "queue_url",
    "region",
    "access_log",
    "max_instances_total",
    "concurrency_limit",
    "max_memory_mb",
    "tls_cert",
    "tls_key",
    "price_gb_second",
    "price_per_million_requests",
    "machine_hourly_cost",
    "alarms_file",
    "log_retention_days",
    "tracing",
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


# -- client commands --------------------------------------------------------------------------


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from mlambda import bundle

    archive, spec = bundle.pack_path(
        Path(args.directory),
        name=args.name,
        framework=args.framework or "",
        trust_pickle=args.trust_pickle,
    )
    reply = _client(settings).deploy(
        spec.name,
        archive,
        publish=args.publish,
        alias=args.alias,
        description=args.description or "",
    )
    function = reply["function"]
    if reply["changed"]:
        print(f"deployed {function['name']} {function['version']} ({function['digest']})")
    else:
        print(f"{function['name']} is unchanged ({function['digest']}); nothing to do")
    if "published" in reply:
        print(f"published {function['name']}:{reply['published']['version']}")
    if "alias" in reply:
        alias = reply["alias"]
        print(f"{function['name']}:{alias['name']} -> {alias['version']}")
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
    if args.asynchronous:
        accepted = _client(settings).invoke_async(args.name, _payload(args.data))
        print(accepted["invocation_id"])
        return 0
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
    rows = [("KIND", "FUNCTION", "PID", "STATE", "TIER", "THREADS", "AGE", "RSS", "PSS")]
    for p in processes:
        rows.append(
            (
                p["kind"],
                p["function"],
                str(p["pid"]),
                p["state"],
                p["tier"] or "-",
                str(p.get("threads") or "-"),
                f"{p['ageSeconds']:.0f}s",
                f"{p['rssKiB'] / 1024:.1f} MiB",
                f"{p['pssKiB'] / 1024:.1f} MiB",
            )
        )
    print_table(rows)
    return 0


def when(stamp: float | None) -> str:
    """A timestamp as local time for a table, or "-"."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


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
    name, _, qualifier = args.name.partition(":")
    if qualifier:
        if not qualifier.isdigit():
            message = f"{args.name}: rm takes NAME or NAME:VERSION; for an alias: mlambda alias rm"
            raise errors.InvalidRequest(f"{message} {name} {qualifier}")
        reply = _client(settings).delete_version(name, qualifier)
        print(f"removed {reply['deleted']}")
        return 0
    reply = _client(settings).remove(args.name)
    print(f"removed {reply['deleted']}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    try:
        query = {
            "since": args.since or "",
            "filter": args.filter or "",
            "request_id": args.request_id or "",
            "format": args.format,
        }
        for text in _client(settings).logs(args.name, tail=args.tail, follow=args.follow, **query):
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

    add_serve_command(commands)

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
    deploy.add_argument(
        "--publish", action="store_true", help="then publish $LATEST as the next version"
    )
    deploy.add_argument(
        "--alias", metavar="ALIAS", help="then publish and point ALIAS at the new version"
    )
    deploy.add_argument("--description", help="with --publish: a note kept with the version")
    deploy.set_defaults(run=cmd_deploy)

    invoke = commands.add_parser(
        "invoke", help="invoke a function; prints its result JSON on stdout"
    )
    invoke.add_argument(
        "name",
        metavar="NAME[:QUALIFIER]",
        help="the function to invoke (as `mlambda ls` shows it); NAME:2 or NAME:ALIAS for a "
        "version or an alias",
    )
    invoke.add_argument(
        "--data", "-d", help="event JSON, @FILE to read a file, or - for stdin (default {})"
    )
    invoke.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="hand the event over and return its invocation id at once (it runs at least once; "
        "see `mlambda invocations`)",
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

    rm = commands.add_parser(
        "rm", help="remove a function with its versions and aliases, or one version (NAME:N)"
    )
    rm.add_argument("name", metavar="NAME[:VERSION]")
    rm.set_defaults(run=cmd_rm)

    logs = commands.add_parser("logs", help="print a function's logs (START/END/REPORT and output)")
    logs.add_argument("name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "--tail", type=int, default=100, help="lines of history to print first (default 100)"
    )
    logs.add_argument("--since", help="only lines of the last 30s, 10m, 2h, 7d...")
    logs.add_argument("--filter", metavar="TEXT", help="only lines that contain TEXT")
    logs.add_argument("--request-id", metavar="ID", help="only the lines of this invocation")
    logs.add_argument(
        "--format", choices=("text", "json"), default="text", help="json: one object a line"
    )
    logs.set_defaults(run=cmd_logs)

    from mlambda.admin_cli import add_commands
    from mlambda.alarm_cli import add_commands as add_alarm_commands
    from mlambda.async_cli import add_commands as add_async_commands
    from mlambda.concurrency_cli import add_commands as add_concurrency_commands
    from mlambda.cost_cli import add_commands as add_cost_commands
    from mlambda.job_cli import add_commands as add_job_commands
    from mlambda.queue_cli import add_commands as add_queue_commands
    from mlambda.trigger_cli import add_commands as add_trigger_commands
    from mlambda.versions_cli import add_commands as add_version_commands

    admin = [
        *add_commands(commands, _with_client),
        *add_async_commands(commands, _with_client),
        *add_queue_commands(commands, _with_client),
        *add_trigger_commands(commands, _with_client),
        *add_version_commands(commands, _with_client),
        *add_concurrency_commands(commands, _with_client),
        *add_job_commands(commands, _with_client),
        *add_cost_commands(commands, _with_client),
        *add_alarm_commands(commands, _with_client),
    ]
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
