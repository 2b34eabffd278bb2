"""Frames between the pool and an instance: typed msgpack messages, each with a length prefix.

A frame is a 4-byte big-endian length followed by one msgpack-encoded message. The session:

    pool -> worker   Configure            (once, first)
    worker -> pool   Ready | InitFailed   (after the handler module was imported)
    pool -> worker   Invoke | Batch ...   (up to ``concurrency`` outstanding)
    worker -> pool   Result | Failure     (one per Invoke, and one per item of a Batch,
                                           matched by request_id)
    pool -> worker   Shutdown             (the worker exits 0); EOF means the same
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">I")
# An invoke payload is at most 6 MB; this bound only stops a corrupt length from allocating GBs.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ModelConfig(msgspec.Struct, kw_only=True):
    """A model function: the built-in runtime loads ``path`` instead of importing a handler."""

    path: str
    framework: str
    trust_pickle: bool = False
    # A module (in the task root) with optional preprocess(inputs) / postprocess(outputs).
    hooks: str = ""
    # Threads for the framework's own pools (ONNX Runtime, TFLite, XGBoost, LightGBM).
    threads: int = 1


class Sandbox(msgspec.Struct, kw_only=True, frozen=True):
    """How an instance is confined; ``runtime/sandbox.py`` applies it before any user code runs.

    The platform fills in only what it found to work on this machine (backends/sandbox.py)."""

    # The function's own uid and gid (-1: stay the platform's user, when it is not root).
    uid: int = -1
    gid: int = -1
    # Pivot into a root of read-only binds: ``read_only`` host paths, ``devices``, the task
    # root; a private /proc (hidepid), /tmp (tmpfs of ``tmp_mb``) and /dev. ``staging`` is an
    # empty directory of the platform's where that root is put together.
    view: bool = False
    read_only: list[str] = []
    devices: list[str] = []
    staging: str = ""
    task_root: str = ""
    # Directories shown empty inside the view (the data dir, where a bind would expose it).
    mask: list[str] = []
    # Not root: build the view inside a user namespace of the platform's user.
    userns: bool = False
    tmp_mb: int = 512
    # Instances forked from a template each get their own /tmp (over the template's).
    instance_tmp: bool = False
    # "any"; "none": a network namespace of its own with loopback only; "platform": that, and
    # the gateway at 127.0.0.1:platform_port, forwarded to its Unix socket platform_socket.
    network: str = "any"
    platform_socket: str = ""
    platform_port: int = 0
    # Resource limits (setrlimit); 0 leaves one as it is.
    nofile: int = 1024
    fsize_mb: int = 0
    nproc: int = 0


class Configure(msgspec.Struct, tag="configure", kw_only=True):
    v: int = PROTOCOL_VERSION
    instance_id: str
    function_name: str
    function_version: str
    handler: str
    task_root: str
    memory_mb: int
    concurrency: int
    max_response_bytes: int
    preload: list[str] = []
    env: dict[str, str] = {}
    # Threads for native pools (OpenMP/BLAS/torch) in this instance.
    threads: int = 1
    model: ModelConfig | None = None
    # The handler takes a list of events and returns one result per event ([function.batch]).
    batched: bool = False
    # Applied before the handler module is imported (None: no sandbox).
    sandbox: Sandbox | None = None
    # A template's warm-up before it serves forks (runtime/priming.py); never set for instances.
    prime: bool = False


class Ready(msgspec.Struct, tag="ready", kw_only=True):
    v: int = PROTOCOL_VERSION
    pid: int
    import_ms: float
    init_ms: float
    # Where the instance came from: "process" (a fresh interpreter), or forked from a zygote
    # tier: "base", "runtime" (init ran after the fork) or "template" (init ran before it).
    tier: str = "process"
    fork_ms: float = 0.0
    # Threads of the instance's native pools (a spare's were chosen when it was prepared).
    threads: int = 1


class InitFailed(msgspec.Struct, tag="init_failed", kw_only=True):
    v: int = PROTOCOL_VERSION
    error: dict[str, Any]
    logs: str = ""


class Invoke(msgspec.Struct, tag="invoke", kw_only=True):
    v: int = PROTOCOL_VERSION
    request_id: str
    payload: bytes
    # Wall-clock deadline (epoch ms): context.get_remaining_time_in_millis() counts down to it.
    deadline_ms: int
    client_context: str | None = None
    # The version or alias the caller named ("" for none): context.invoked_function_arn ends so.
    qualifier: str = ""
    # How to read ``payload``: "" a Lambda event (JSON); for model functions also "v2" (an
    # Open Inference Protocol request) and "v2-metadata" (the model's signature, no payload).
    protocol: str = ""
    # Request options: "proba" for predict_proba, "header_length" for v2 binary payloads.
    params: dict[str, str] = {}
    # Threads for the native pools that can be resized per call (torch, OpenMP, BLAS), from how
    # many other instances of the function are busy now (0: leave them as they are).
    threads: int = 0
    # The X-Ray trace header naming the handler's span (_X_AMZN_TRACE_ID); "" for none.
    trace: str = ""


class Batch(msgspec.Struct, tag="batch", kw_only=True):
    """Several invocations for one call of the model or batch handler; answered item by item."""

    v: int = PROTOCOL_VERSION
    items: list[Invoke]


class Result(msgspec.Struct, tag="result", kw_only=True):
    v: int = PROTOCOL_VERSION
    request_id: str
    body: bytes
    logs: str
    duration_ms: float
    max_memory_mb: int
    # Response headers a protocol needs (Inference-Header-Content-Length for v2 binary data).
    headers: dict[str, str] = {}
    # How many invocations shared the call that produced this result.
    batch_size: int = 1
    # CPU time the instance used for it (a shared call's, split evenly), and the rows (model
    # predictions) it answered: 1 for a handler's event.
    cpu_ms: float = 0.0
    rows: int = 1
    # Spans user code made with OpenTelemetry (runtime/user_spans.py), with the first result
    # of a shared call.
    spans: list[dict[str, Any]] = []


class Failure(msgspec.Struct, tag="failure", kw_only=True):
    v: int = PROTOCOL_VERSION
    request_id: str
    error: dict[str, Any]
    logs: str
    duration_ms: float
    max_memory_mb: int
    batch_size: int = 1
    cpu_ms: float = 0.0
    rows: int = 1
    spans: list[dict[str, Any]] = []


class Shutdown(msgspec.Struct, tag="shutdown", kw_only=True):
    v: int = PROTOCOL_VERSION


# -- fork servers (zygotes and templates), over a SOCK_SEQPACKET control socket ------------------
# One message per packet, no length prefix; Spawn carries two descriptors (SCM_RIGHTS): the
# child's own socket and the write end of its output pipe.


class Spawn(msgspec.Struct, tag="spawn", kw_only=True):
    v: int = PROTOCOL_VERSION
    # "zygote": a runtime zygote importing ``preload``; "template": wait for a Configure on its
    # own socket, import the handler, then serve forks; "instance": a serving instance (init
    # after the fork unless the server is a template).
    kind: str
    preload: list[str] = []


class Prepare(msgspec.Struct, tag="prepare", kw_only=True):
    """To an instance forked ahead of need from a template, before its Configure: size the
    native thread pools and build now what the template could not build before the fork (an
    ONNX Runtime session), so that taking the spare costs a dispatch."""

    v: int = PROTOCOL_VERSION
    threads: int = 1


class Spawned(msgspec.Struct, tag="spawned", kw_only=True):
    v: int = PROTOCOL_VERSION
    pid: int
    fork_ms: float


class ZygoteReady(msgspec.Struct, tag="zygote_ready", kw_only=True):
    v: int = PROTOCOL_VERSION
    pid: int
    import_ms: float


class TemplateReady(msgspec.Struct, tag="template_ready", kw_only=True):
    v: int = PROTOCOL_VERSION
    pid: int
    import_ms: float
    init_ms: float
    # Empty when the template may be forked; otherwise why not (init left threads running).
    unforkable: str = ""
    # What warmed the template up after init ("prime(context)", "model sample"; "" for nothing)
    # and how long it took: its instances inherit that work.
    primed: str = ""
    prime_ms: float = 0.0


class Exited(msgspec.Struct, tag="exited", kw_only=True):
    v: int = PROTOCOL_VERSION
    pid: int
    status: int


Message = (
    Configure
    | Ready
    | InitFailed
    | Invoke
    | Batch
    | Result
    | Failure
    | Shutdown
    | Spawn
    | Spawned
    | Prepare
    | ZygoteReady
    | TemplateReady
    | Exited
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def encode(message: Message) -> bytes:
    body = _encoder.encode(message)
    return HEADER.pack(len(body)) + body


def encode_packet(message: Message) -> bytes:
    """A control-socket packet: the message alone (SOCK_SEQPACKET keeps the boundaries)."""
    return _encoder.encode(message)


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    return int(length)


def decode(body: bytes) -> Message:
    try:
        message = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(str(exc)) from None
    if message.v != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {message.v}, expected {PROTOCOL_VERSION}")
    return message
