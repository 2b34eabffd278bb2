"""The platform's queues (``mlambda://NAME``) over the SQS JSON protocol, at the platform's
address: ``POST /`` with ``X-Amz-Target: AmazonSQS.<Operation>``, signed with SigV4 as the Lambda
API is. boto3's ``sqs`` client and the AWS CLI pointed at the platform (``endpoint_url``) create,
find, send to, receive from, delete from, measure and purge a queue; a producer written for SQS
feeds a queue trigger by changing its endpoint only.

A queue's URL is ``<the address it was asked at>/<account>/<name>``: a call names its queue by
the URL's last part. Reading (GetQueueUrl, ListQueues, GetQueueAttributes) needs a ``read``
key; the rest an ``invoke`` key covering the queue's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import Forbidden, MlambdaError, NotFound, PayloadTooLarge, Unauthorized
from mlambda.events.queues import MAX_MESSAGES, MAX_VISIBILITY_S, PlatformQueues, check_name
from mlambda.events.shapes import queue_arn
from mlambda.gateway import events
from mlambda.gateway.auth import require
from mlambda.gateway.body import read_object
from mlambda.runtime.context import ACCOUNT
from mlambda.security.keys import Need

TARGET = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_BODY = 1024 * 1024
MAX_WAIT_S = 20
DEFAULT_VISIBILITY_S = 30
MAX_BATCH = 10
# error code -> (the Query API's code botocore maps it to, HTTP status, sender or receiver)
ERRORS = {
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "InvalidParameterValue": ("InvalidParameterValue", 400),
    "MissingParameter": ("MissingParameter", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
    "InvalidAction": ("InvalidAction", 400),
    "AccessDenied": ("AccessDenied", 403),
    "RequestTooLarge": ("RequestTooLarge", 413),
}


class SqsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def error_response(code: str, message: str) -> Response:
    query_code, status = ERRORS.get(code, (code, 400))
    return JSONResponse(
        {"__type": f"com.amazonaws.sqs#{code}", "message": message},
        status_code=status,
        headers={"x-amzn-query-error": f"{query_code};Sender", "x-amzn-ErrorType": code},
        media_type=CONTENT_TYPE,
    )


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class Call:
    """One SQS call: its JSON body, the queue it names, and the platform's queues."""

    def __init__(self, request: Request, body: dict[str, Any]) -> None:
        self.request, self.body = request, body
        self.platform = request.app.state.platform
        self.queues: PlatformQueues = self.platform.queues

    def param(self, name: str, kind: type = str, default: Any = None) -> Any:
        value = self.body.get(name, default)
        if value is None:
            raise SqsError("MissingParameter", f"The request must contain the parameter {name}.")
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise SqsError("InvalidParameterValue", f"{name} must be a {kind.__name__}")
        return value

    def url(self, name: str) -> str:
        base = str(self.request.base_url).rstrip("/")
        return f"{base}/{ACCOUNT}/{name}"

    def name(self, key: str = "QueueName") -> str:
        try:
            return check_name(self.param(key))
        except MlambdaError as exc:
            raise SqsError("InvalidParameterValue", exc.message) from None

    def named(self, action: str) -> str:
        """The queue the QueueUrl names, checked against the key: it must exist."""
        raw = self.param("QueueUrl")
        try:
            name = check_name(raw.rstrip("/").rsplit("/", 1)[-1])
        except MlambdaError:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.") from None
        require(self.request, Need(action, name))
        return name

    async def exists(self, name: str) -> bool:
        """Made by name (one row read), else holding messages (the queue's depths: read only
        for a queue that was not made, so a producer's sends do not count every queue)."""
        return self.platform.queue_names.made(name) or name in await self.queues.depths()

    async def existing(self, action: str) -> str:
        name = self.named(action)
        if not await self.exists(name):
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return name


def _text_body(entry: dict[str, Any], where: str) -> str:
    body = entry.get("MessageBody")
    if not isinstance(body, str) or not body:
        raise SqsError("MissingParameter", f"{where}: MessageBody must be 1 byte or more")
    if entry.get("MessageAttributes") or entry.get("MessageSystemAttributes"):
        raise SqsError(
            "UnsupportedOperation",
            f"{where}: message attributes are not kept by the platform's queues; put what "
            "they say in the body",
        )
    if int(entry.get("DelaySeconds") or 0) != 0:
        raise SqsError("UnsupportedOperation", f"{where}: DelaySeconds must be 0 here")
    return body


async def create_queue(call: Call) -> dict[str, Any]:
    asked = call.param("QueueName")
    if asked.endswith(".fifo") or (call.body.get("Attributes") or {}).get("FifoQueue"):
        raise SqsError("UnsupportedOperation", "FIFO queues are not supported")
    name = call.name()
    require(call.request, Need("invoke", name))
    call.platform.queue_names.create(name)
    return {"QueueUrl": call.url(name)}


async def get_queue_url(call: Call) -> dict[str, Any]:
    name = call.name()
    if not await call.exists(name):
        raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
    return {"QueueUrl": call.url(name)}


async def list_queues(call: Call) -> dict[str, Any]:
    prefix = call.body.get("QueueNamePrefix") or ""
    names = set(call.platform.queue_names.created()) | set(await call.queues.depths())
    return {"QueueUrls": [call.url(n) for n in sorted(names) if n.startswith(prefix)]}


async def delete_queue(call: Call) -> dict[str, Any]:
    name = await call.existing("invoke")
    await call.queues.purge(name)
    call.platform.queue_names.delete(name)
    return {}


async def send_message(call: Call) -> dict[str, Any]:
    name = await call.existing("invoke")
    body = _text_body(call.body, "SendMessage")
    message_id = await call.queues.send(name, body.encode())
    return {"MessageId": message_id, "MD5OfMessageBody": md5(body)}


async def send_message_batch(call: Call) -> dict[str, Any]:
    name = await call.existing("invoke")
    entries = call.param("Entries", list)
    if not entries:
        raise SqsError("EmptyBatchRequest", "There should be at least one entry in the request.")
    if len(entries) > MAX_BATCH:
        raise SqsError("TooManyEntriesInBatchRequest", f"Maximum number of entries is {MAX_BATCH}.")
    ids = [entry.get("Id") if isinstance(entry, dict) else None for entry in entries]
    if len(set(ids)) != len(ids):
        raise SqsError("BatchEntryIdsNotDistinct", "Two or more entries have the same Id.")
    sent, failed = [], []
    for entry_id, entry in zip(ids, entries, strict=True):
        try:
            if not isinstance(entry, dict) or not isinstance(entry_id, str):
                raise SqsError("MissingParameter", "each entry needs an Id")
            body = _text_body(entry, f"entry {entry_id}")
        except SqsError as exc:
            failed.append(
                {"Id": entry_id, "SenderFault": True, "Code": exc.code, "Message": exc.message}
            )
            continue
        message_id = await call.queues.send(name, body.encode())
        sent.append({"Id": entry_id, "MessageId": message_id, "MD5OfMessageBody": md5(body)})
    return {"Successful": sent, "Failed": failed}


def _number(call: Call, key: str, default: int, low: int, high: int) -> int:
    value = call.param(key, int, default)
    if not low <= value <= high:
        raise SqsError("InvalidParameterValue", f"{key} must be {low} to {high}, got {value}")
    return value


async def receive_message(call: Call) -> dict[str, Any]:
    name = await call.existing("invoke")
    most = _number(call, "MaxNumberOfMessages", 1, 1, MAX_MESSAGES)
    visibility = _number(call, "VisibilityTimeout", DEFAULT_VISIBILITY_S, 0, MAX_VISIBILITY_S)
    wait = _number(call, "WaitTimeSeconds", 0, 0, MAX_WAIT_S)
    wanted = set(call.body.get("AttributeNames") or []) | set(
        call.body.get("MessageSystemAttributeNames") or []
    )
    messages = await call.queues.receive(name, most, visibility)
    if not messages and wait:
        await call.queues.wait(name, wait)
        messages = await call.queues.receive(name, most, visibility)
    shown = []
    for message in messages:
        record = message.record
        body = record.payload.decode("utf-8", errors="replace")
        entry: dict[str, Any] = {
            "MessageId": record.id,
            "ReceiptHandle": message.receipt,
            "MD5OfBody": md5(body),
            "Body": body,
        }
        attributes = {
            "ApproximateReceiveCount": str(record.attempts),
            "SentTimestamp": str(int(record.enqueued_at * 1000)),
            "ApproximateFirstReceiveTimestamp": str(int(record.updated_at * 1000)),
            "SenderId": ACCOUNT,
        }
        if wanted:
            every = "All" in wanted
            entry["Attributes"] = {k: v for k, v in attributes.items() if every or k in wanted}
        shown.append(entry)
    return {"Messages": shown} if shown else {}


async def delete_message(call: Call) -> dict[str, Any]:
    name = await call.existing("invoke")
    receipt = call.param("ReceiptHandle")
    try:
        await call.queues.delete(name, receipt)
    except NotFound as exc:
        raise SqsError("ReceiptHandleIsInvalid", exc.message) from None
    return {}


async def get_queue_attributes(call: Call) -> dict[str, Any]:
    name = await call.existing("read")
    depth = (await call.queues.depths()).get(name, {})
    created = call.platform.queue_names.created().get(name) or depth.get("oldestSentAt", 0)
    attributes = {
        "ApproximateNumberOfMessages": str(int(depth.get("messages", 0))),
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "QueueArn": queue_arn(call.platform.settings.region, name),
        "CreatedTimestamp": str(int(created)),
        "VisibilityTimeout": str(DEFAULT_VISIBILITY_S),
        "DelaySeconds": "0",
    }
    wanted = set(call.body.get("AttributeNames") or ["All"])
    if "All" not in wanted:
        attributes = {k: v for k, v in attributes.items() if k in wanted}
    return {"Attributes": attributes}


async def purge_queue(call: Call) -> dict[str, Any]:
    await call.queues.purge(await call.existing("invoke"))
    return {}


OPERATIONS: dict[str, Callable[[Call], Awaitable[dict[str, Any]]]] = {
    "CreateQueue": create_queue,
    "GetQueueUrl": get_queue_url,
    "ListQueues": list_queues,
    "DeleteQueue": delete_queue,
    "SendMessage": send_message,
    "SendMessageBatch": send_message_batch,
    "ReceiveMessage": receive_message,
    "DeleteMessage": delete_message,
    "GetQueueAttributes": get_queue_attributes,
    "PurgeQueue": purge_queue,
}


async def sqs(request: Request) -> Response:
    target = request.headers.get("x-amz-target", "")
    if target.startswith(events.TARGET):  # EventBridge's protocol shares the address
        return await events.aws_events(request)
    operation = OPERATIONS.get(target.removeprefix(TARGET)) if target.startswith(TARGET) else None
    if operation is None:
        known = ", ".join(OPERATIONS)
        return error_response(
            "InvalidAction",
            f"{target or 'no X-Amz-Target'}: this endpoint serves the SQS operations {known}",
        )
    try:
        call = Call(request, await read_object(request, MAX_BODY))
        return JSONResponse(await operation(call), media_type=CONTENT_TYPE)
    except SqsError as exc:
        return error_response(exc.code, exc.message)
    except (Forbidden, Unauthorized) as exc:
        return error_response("AccessDenied", exc.message)
    except PayloadTooLarge as exc:
        return error_response("RequestTooLarge", exc.message)
    except MlambdaError as exc:
        if exc.status >= 500:
            raise
        return error_response("InvalidParameterValue", exc.message)
