"""Frames between the pool and an instance: typed, versioned, and refused when malformed."""

from __future__ import annotations

import msgspec
import pytest

from mlambda.runtime import protocol
from mlambda.runtime.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Configure,
    Failure,
    InitFailed,
    Invoke,
    ProtocolError,
    Ready,
    Result,
    Shutdown,
)

MESSAGES = [
    Configure(
        instance_id="i-1",
        function_name="echo",
        function_version="$LATEST",
        handler="app:handler",
        task_root="/var/task",
        memory_mb=512,
        concurrency=2,
        max_response_bytes=6 * 1024 * 1024,
        preload=["numpy"],
        env={"MODEL": "small"},
    ),
    Ready(pid=1234, import_ms=12.5, init_ms=40.25),
    InitFailed(error={"errorType": "Runtime.ImportModuleError", "errorMessage": "no app"}),
    Invoke(request_id="r-1", payload=b'{"x": 1}\x00\xff', deadline_ms=1_700_000_000_000),
    Invoke(request_id="r-2", payload=b"", deadline_ms=1, client_context='{"custom": {}}'),
    Result(request_id="r-1", body=b"\x00binary", logs="line\n", duration_ms=1.5, max_memory_mb=60),
    Failure(
        request_id="r-1",
        error={"errorType": "ValueError", "errorMessage": "bad", "stackTrace": ["a", "b"]},
        logs="",
        duration_ms=0.25,
        max_memory_mb=61,
    ),
    Shutdown(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_encode_and_decode(message):
    frame = protocol.encode(message)
    length = protocol.frame_length(frame[: protocol.HEADER.size])
    assert length == len(frame) - protocol.HEADER.size
    decoded = protocol.decode(frame[protocol.HEADER.size :])
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_carries_the_protocol_version(message):
    assert message.v == PROTOCOL_VERSION


def test_the_frame_header_is_a_four_byte_big_endian_length():
    frame = protocol.encode(Shutdown())
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 99])
def test_a_message_of_another_version_is_refused(version):
    body = protocol.encode(Shutdown(v=version))[4:]
    with pytest.raises(ProtocolError, match=f"protocol version {version}, expected"):
        protocol.decode(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-msgpack-byte"),
        pytest.param(b"not msgpack at all", id="text"),
        pytest.param(msgspec.msgpack.encode([1, 2, 3]), id="an-array"),
        pytest.param(msgspec.msgpack.encode({"type": "explode", "v": 1}), id="unknown-tag"),
        pytest.param(msgspec.msgpack.encode({"v": 1}), id="no-tag"),
        pytest.param(msgspec.msgpack.encode({"type": "invoke", "v": 1}), id="missing-fields"),
        pytest.param(
            msgspec.msgpack.encode({"type": "ready", "v": 1, "pid": "x", "import_ms": 1.0}),
            id="wrong-field-type",
        ),
        pytest.param(protocol.encode(Shutdown()), id="a-whole-frame-header-included"),
    ],
)
def test_garbage_is_a_protocol_error(body):
    with pytest.raises(ProtocolError):
        protocol.decode(body)


@pytest.mark.parametrize("length", [MAX_FRAME_BYTES + 1, 2**32 - 1])
def test_an_oversize_frame_length_is_a_protocol_error(length):
    with pytest.raises(ProtocolError, match=f"frame of {length} bytes exceeds"):
        protocol.frame_length(length.to_bytes(4, "big"))


@pytest.mark.parametrize("length", [0, 1, MAX_FRAME_BYTES])
def test_frame_lengths_up_to_the_limit_are_accepted(length):
    assert protocol.frame_length(length.to_bytes(4, "big")) == length
