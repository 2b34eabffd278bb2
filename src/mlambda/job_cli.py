"""``mlambda batch FUNCTION --input ... --output ...`` (a batch job, run by the platform, followed
with a live progress bar), ``mlambda jobs``, ``mlambda job ID`` and ``mlambda job cancel ID``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from mlambda.cli import print_table, when
from mlambda.settings import Settings

Runner = Callable[[argparse.Namespace, Settings, Any], int]
POLL_S = 0.5
BAR = 30


def _location(text: str) -> str:
    """An S3 location as given; a local path made absolute (the platform reads it)."""
    return text if text.startswith(("s3://", "file://")) else os.path.abspath(text)


def progress_line(job: dict[str, Any]) -> str:
    """Pure: ``[#####.....] 120/500 done, 2 failed, 35.1/s, ETA 11 s``."""
    total = job["items"] or 1
    finished = job["done"] + job["failed"]
    filled = int(BAR * finished / total)
    rate = job.get("rate")
    eta = job.get("etaSeconds")
    text = f"[{'#' * filled}{'.' * (BAR - filled)}] {finished}/{job['items']} done"
    text += f", {job['failed']} failed"
    text += f", {rate:.1f}/s" if rate else ""
    text += f", ETA {eta:.0f} s" if eta is not None else ""
    return text


def summary(job: dict[str, Any]) -> str:
    rate = f" at {job['rate']:.1f} items/s" if job.get("rate") else ""
    lines = [
        f"job {job['id']} {job['state']}: {job['done']} of {job['items']} items done, "
        f"{job['failed']} failed{rate}",
        f"results in {job['output']} (the manifest: _manifest.json)",
    ]
    if job.get("error"):
        lines.append(f"error: {job['error']}")
    return "\n".join(lines)


def cmd_batch(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    body: dict[str, Any] = {
        "function": args.function,
        "input": _location(args.input),
        "output": _location(args.output),
        "per": args.per,
    }
    for option in ("rows_per_call", "concurrency", "endpoint_url", "region"):
        if getattr(args, option) is not None:
            body[option] = getattr(args, option)
    job = client.create_job(body)
    if args.no_wait:
        print(job["id"])
        return 0
    print(f"job {job['id']}: {job['items']} items", file=sys.stderr)
    return follow(client, job)


def follow(client: Any, job: dict[str, Any]) -> int:
    live = sys.stderr.isatty()
    shown = 0.0
    while job["state"] in ("queued", "running"):
        if live:
            print("\r" + progress_line(job), end="", file=sys.stderr, flush=True)
        elif time.monotonic() - shown >= 5:
            print(progress_line(job), file=sys.stderr, flush=True)
            shown = time.monotonic()
        time.sleep(POLL_S)
        job = client.job(job["id"])
    if live:
        print("\r" + progress_line(job), file=sys.stderr)
    print(summary(job))
    return 0 if job["state"] == "succeeded" else 1


def cmd_jobs(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    jobs = client.jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    if not jobs:
        print("no job yet: mlambda batch FUNCTION --input ... --output ...")
        return 0
    header = ["ID", "FUNCTION", "STATE", "ITEMS", "DONE", "FAILED", "CREATED", "INPUT"]
    rows = [
        [j["id"], j["function"], j["state"], str(j["items"]), str(j["done"]), str(j["failed"]),
         when(j["createdAt"]), j["input"]]
        for j in jobs
    ]  # fmt: skip
    print_table([header, *rows])
    return 0


def cmd_job(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    job = client.job(args.id)
    if args.json:
        print(json.dumps(job, indent=2))
        return 0
    for key, value in job.items():
        shown = when(value) if key.endswith("At") else value
        print(f"{key}: {'-' if shown is None else shown}")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    job = client.cancel_job(args.id)
    print(f"job {job['id']} cancelled: {job['done']} of {job['items']} items were done")
    return 0


def add_commands(
    commands: Any, with_client: Callable[[Runner], Callable[[argparse.Namespace, Settings], int]]
) -> list[argparse.ArgumentParser]:
    """Add ``batch``, ``jobs`` and ``job``; returns the parsers that take client options."""
    batch = commands.add_parser("batch", help="run a function over a bucket, folder or file")
    batch.add_argument("function")
    batch.add_argument("--input", required=True, help="s3://BUCKET/PREFIX/, a folder or a file")
    batch.add_argument("--output", required=True, help="s3://BUCKET/PREFIX/ or a folder")
    batch.add_argument("--per", choices=("object", "line"), default="object",
                       help="one call per object (default) or per mini-batch of lines")  # fmt: skip
    batch.add_argument("--rows-per-call", type=int, help="per line: rows a call (default 100)")
    batch.add_argument("--concurrency", type=int, help="calls at once (default: 2 x max_instances)")
    batch.add_argument("--endpoint-url", help="an S3-compatible store for s3:// locations")
    batch.add_argument("--region", help="the store's region")
    batch.add_argument("--no-wait", action="store_true", help="print the job's id and return")
    batch.set_defaults(run=with_client(cmd_batch))
    listing = commands.add_parser("jobs", help="batch jobs, newest first")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=with_client(cmd_jobs))
    job = commands.add_parser("job", help="a batch job's progress, or cancel it")
    job.add_argument("id", help="the job's id, or 'cancel ID'")
    job.add_argument("target", nargs="?", help=argparse.SUPPRESS)
    job.add_argument("--json", action="store_true", help="print JSON")
    job.set_defaults(run=with_client(_job_or_cancel))
    return [batch, listing, job]


def _job_or_cancel(args: argparse.Namespace, settings: Settings, client: Any) -> int:
    """``mlambda job ID`` shows a job; ``mlambda job cancel ID`` cancels one."""
    if args.id == "cancel":
        if not args.target:
            raise SystemExit("usage: mlambda job cancel ID")
        args.id = args.target
        return cmd_cancel(args, settings, client)
    if args.target:
        raise SystemExit(f"mlambda job: unexpected {args.target!r} (mlambda job ID)")
    return cmd_job(args, settings, client)
