"""Batch jobs, run in the platform: a job is planned whole (its items stored), then its pending
items are invoked ``concurrency`` at a time as background items of the function's pool (a sync
call waiting for an instance goes ahead of them), each result written before its item is marked
done. A job still running when the platform stopped (``kill -9`` included) resumes when it
starts, with the items not done. At the end the per-line outputs are assembled in input order
and ``_manifest.json`` is written.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from mlambda.errors import (
    Conflict,
    FunctionError,
    FunctionNotFound,
    InvalidRequest,
    ServiceUnavailable,
    Throttled,
)
from mlambda.events import job_plan
from mlambda.events.job_io import Files, files_for
from mlambda.events.job_plan import Item, JobSpec, check_spec, parse_location
from mlambda.events.jobs import CANCELLED, FAILED, FINISHED, RUNNING, SUCCEEDED, Job, JobStore
from mlambda.pool.invocation import Invocation
from mlambda.registry.model import FunctionRecord

log = logging.getLogger("mlambda.jobs")
ATTEMPTS = 3  # a function error: the item is tried this many times before it fails
# Items finished are marked in the registry together, at most this long after the first of
# them: one commit for many (an item finished but not yet marked at a kill runs again).
MARK_EVERY_S = 0.05
BUSY_WAIT_S = (0.05, 2.0)  # throttled or no instance to be had: wait, doubling, and call again


class ItemFailed(Exception):
    pass


def plan(spec: JobSpec) -> list[Item]:
    """The job's items, from a listing of its input (blocking: run in a thread)."""
    source = parse_location(spec.input, "input")
    try:
        return _plan(spec, source)
    except FileNotFoundError as exc:
        raise InvalidRequest(f"input {spec.input!r}: {exc}") from None
    except InvalidRequest:
        raise
    except Exception as exc:  # the store refused (credentials, no such bucket, unreachable)
        raise InvalidRequest(
            f"input {spec.input!r} cannot be read: {type(exc).__name__}: {exc}"
        ) from None


def _plan(spec: JobSpec, source: job_plan.Location) -> list[Item]:
    files = files_for(source, spec)
    keys = [k for k in files.listing(source) if job_plan.wanted(k, spec.per)]
    items: list[Item] = []
    for key in keys:
        relative = job_plan.relative_key(source, key)
        if spec.per == "object":
            items.append(Item(relative, key, relative))
            continue
        lines = job_plan.non_empty(files.read(key).decode().splitlines())
        items.extend(job_plan.chunks(key, relative, len(lines), spec.rows_per_call))
    if not items:
        what = "objects" if spec.per == "object" else ".jsonl or .csv files with lines"
        raise InvalidRequest(f"input {spec.input!r} holds no {what}")
    return items


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        invoke: Callable[[str, bytes], Awaitable[Invocation]],
        lookup: Callable[[str], FunctionRecord],
    ) -> None:
        self.store = store
        self._invoke = invoke  # a background call of the function's pool
        self._lookup = lookup
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        for job in self.store.list(limit=1000, states=("queued", RUNNING)):
            self._run(job)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def submit(self, body: Any) -> Job:
        spec = check_spec(body)
        self._lookup(spec.function)  # FunctionNotFound: a 404 before any listing
        items = await asyncio.to_thread(plan, spec)
        job = await asyncio.to_thread(self.store.create, spec, items)
        self._run(job)
        return job

    async def cancel(self, id: str) -> Job:
        job = self.store.get(id)
        if job.state in FINISHED:
            raise Conflict(f"job {id} is {job.state} already")
        task = self._tasks.pop(id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.store.get(id).state in FINISHED:  # it ended while it was being stopped
            raise Conflict(f"job {id} is {self.store.get(id).state} already")
        await self._end(job, CANCELLED, "cancelled")
        return self.store.get(id)

    def view(self, job: Job) -> dict[str, Any]:
        counts = self.store.counts(job.id)
        total = sum(counts.values())
        finished = counts["done"] + counts["failed"]
        elapsed = ((job.finished_at or time.time()) - job.started_at) if job.started_at else 0.0
        rate = finished / elapsed if elapsed > 0 else None
        eta = counts["pending"] / rate if rate and job.state == RUNNING else None
        return {**job.to_dict(), "items": total, **counts, "rate": rate, "etaSeconds": eta}

    def _run(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(job))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))

    async def _execute(self, job: Job) -> None:
        try:
            record = self._lookup(job.spec.function)
            self.store.set_state(job.id, RUNNING)
            execution = await asyncio.to_thread(Execution, job, self, record)  # makes clients
            await execution.run()
            await self._finish(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("job %s failed: %s", job.id, exc)
            await self._end(job, FAILED, f"{type(exc).__name__}: {exc}")

    async def _finish(self, job: Job) -> None:
        if job.spec.per == "line":
            await asyncio.to_thread(self._assemble, job)
        failed = self.store.counts(job.id)["failed"]
        error = f"{failed} items failed: see _manifest.json" if failed else ""
        await self._end(job, FAILED if failed else SUCCEEDED, error)

    async def _end(self, job: Job, state: str, error: str) -> None:
        """The manifest written as the job ends, then its state: a reader that sees the job
        finished finds its manifest (one that cannot be written does not keep it running)."""
        current = self.store.get(job.id)
        ended = dataclasses.replace(current, state=state, error=error, finished_at=time.time())
        try:
            await self._manifest(ended)
        except Exception as exc:
            log.warning("job %s: the manifest could not be written: %s", job.id, exc)
            error = error or f"the manifest could not be written: {exc}"
        self.store.set_state(job.id, state, error)

    def _assemble(self, job: Job) -> None:
        """Each input file's result lines, in input order, as OUTPUT/<file>.out (a file with a
        failed mini-batch gets none: its items are in the manifest)."""
        target = parse_location(job.spec.output, "output")
        files = files_for(target, job.spec)
        relatives = dict.fromkeys(item.relative for item, _, _ in self.store.outcomes(job.id))
        for relative in relatives:
            parts = self.store.results(job.id, relative)
            if parts and all(part is not None for part in parts):
                whole = b"".join(part or b"" for part in parts)
                files.write(job_plan.output_key(target, relative), whole)

    async def _manifest(self, job: Job) -> None:
        outcomes = await asyncio.to_thread(self.store.outcomes, job.id)
        manifest = {
            **self.view(job),
            "succeeded": [item.id for item, state, _ in outcomes if state == "done"],
            "failed": [
                {"item": item.id, "error": error}
                for item, state, error in outcomes
                if state == "failed"
            ],
            "notRun": [item.id for item, state, _ in outcomes if state == "pending"],
        }
        target = parse_location(job.spec.output, "output")
        body = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
        key = job_plan.output_key(target, "", job_plan.MANIFEST)
        await asyncio.to_thread(files_for(target, job.spec).write, key, body)


class Execution:
    """One run of a job's pending items, ``concurrency`` at a time."""

    def __init__(self, job: Job, runner: JobRunner, record: FunctionRecord) -> None:
        self.job, self.spec, self.runner = job, job.spec, runner
        self.source = parse_location(self.spec.input, "input")
        self.target = parse_location(self.spec.output, "output")
        self.inputs: Files = files_for(self.source, self.spec)
        self.outputs: Files = files_for(self.target, self.spec)
        # Twice the instances by default: a call waits in the pool while the one before it
        # writes its result, so no instance idles between items (sync calls still go first).
        self.concurrency = self.spec.concurrency or 2 * record.spec.max_instances
        self._lines: collections.OrderedDict[str, list[str]] = collections.OrderedDict()
        self._finished: list[tuple[str, bytes | None, str]] = []
        self._marking = asyncio.Event()
        self._writing: asyncio.Future[None] | None = None

    async def run(self) -> None:
        pending = collections.deque(await asyncio.to_thread(self.runner.store.pending, self.job.id))

        async def worker() -> None:
            while pending:
                await self.item(pending.popleft())

        marker = asyncio.get_running_loop().create_task(self._mark())
        try:
            # A task group: a failure that ends the job (its function removed) stops them all.
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(pending))):
                    group.create_task(worker())
        finally:
            marker.cancel()
            await asyncio.gather(marker, return_exceptions=True)
            if self._writing is not None:  # a write the cancel did not stop: done first
                await asyncio.gather(self._writing, return_exceptions=True)
            await self._flush()

    async def _mark(self) -> None:
        while True:
            await self._marking.wait()
            await asyncio.sleep(MARK_EVERY_S)
            await self._flush()

    async def _flush(self) -> None:
        self._marking.clear()
        finished, self._finished = self._finished, []
        if finished:
            store = self.runner.store
            self._writing = asyncio.ensure_future(
                asyncio.to_thread(store.finish_items, self.job.id, finished)
            )
            await asyncio.shield(self._writing)

    def _finish(self, item: Item, result: bytes | None, error: str = "") -> None:
        self._finished.append((item.id, result, error))
        self._marking.set()

    async def item(self, item: Item) -> None:
        try:
            payload = await asyncio.to_thread(self._payload, item)
            body = await self._call(payload)
            result = await asyncio.to_thread(self._result, item, body)
        except (ItemFailed, ValueError, OSError) as exc:
            self._finish(item, None, str(exc))
            return
        except FunctionNotFound:
            raise
        except Exception as exc:  # the store (S3) refused: the item fails, the job goes on
            self._finish(item, None, f"{type(exc).__name__}: {exc}")
            return
        self._finish(item, result)

    def _payload(self, item: Item) -> bytes:
        if self.spec.per == "object":
            return job_plan.object_payload(item.relative, self.inputs.read(item.key))
        lines = self._file_lines(item.key)[item.first : item.first + item.count]
        return job_plan.lines_payload(lines, item.relative, item.first)

    def _file_lines(self, key: str) -> list[str]:
        """A file's lines, kept for its next mini-batches (the last four files read)."""
        if key not in self._lines:
            self._lines[key] = job_plan.non_empty(self.inputs.read(key).decode().splitlines())
            while len(self._lines) > 4:
                self._lines.popitem(last=False)
        self._lines.move_to_end(key)
        return self._lines[key]

    async def _call(self, payload: bytes) -> bytes:
        wait, attempts = BUSY_WAIT_S[0], 0
        while True:
            try:
                invocation = await self.runner._invoke(self.spec.function, payload)
            except (Throttled, ServiceUnavailable):
                await asyncio.sleep(wait)
                wait = min(wait * 2, BUSY_WAIT_S[1])
                continue
            if invocation.error is None:
                return invocation.body
            attempts += 1
            if attempts >= ATTEMPTS:
                raise ItemFailed(_described(invocation.error))

    def _result(self, item: Item, body: bytes) -> bytes | None:
        """Per object: the result written now; per line: the lines kept for the file's .out."""
        if self.spec.per == "line":
            return b"".join(line + b"\n" for line in job_plan.line_results(body, item.count))
        self.outputs.write(job_plan.output_key(self.target, item.relative), body)
        return None


def _described(error: FunctionError) -> str:
    payload = error.payload
    return f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"[:2000]
