"""A trigger's settings, as ``[[triggers]]`` in mlambda.toml and the triggers API take them, with
Lambda's event source mapping as the model (checked when given; pure).

``type = "queue"``: at-least-once and unordered, SQS's semantics (a batch, partial failures,
a dead letter after ``max_receive_count`` deliveries). ``type = "stream"``: in order per
partition key, Kinesis's (a starting position, bisect on error, retries and a record age, an
``on_failure`` destination). ``type = "object"`` (objects created or removed in a bucket or a
folder), ``type = "schedule"`` (EventBridge's rate and cron) and ``type = "rule"`` (an
EventBridge event pattern over the platform's event bus) each turn an event into one
asynchronous invocation, with its retries, destinations and dead letters.
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec

from mlambda.errors import InvalidSpec
from mlambda.events import cron, patterns
from mlambda.events.triggers.sources import OBJECT, QUEUE, STREAM, Source, parse_source

SCHEDULE, RULE = "schedule", "rule"
TYPES = (QUEUE, STREAM, OBJECT, SCHEDULE, RULE)
STARTING_POSITIONS = ("latest", "trim_horizon", "at_timestamp")
DESTINATION_HINT = "'mlambda://QUEUE' or 'function:NAME'"
OBJECT_EVENTS = ("created", "removed")
OBJECT_MODES = ("watch", "notify")
CATCH_UP = ("none", "latest")


class TriggerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str
    source: str = ""
    enabled: bool = True
    batch_size: int | None = None  # queue: 10, stream: 100 (Lambda's defaults)
    max_batching_window_s: float = 0.0
    report_batch_item_failures: bool = False
    # queue only
    max_receive_count: int | None = None  # 5 when dead_letter is set
    dead_letter: str = ""
    max_concurrency: int | None = None  # the function's max_instances when unset
    # stream only
    starting_position: str = "latest"
    starting_position_timestamp: float | None = None
    parallelization_factor: int = 1
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1  # -1: until the record is older than maximum_record_age_s
    maximum_record_age_s: int = -1  # -1: no limit
    on_failure: str = ""
    # object only
    suffix: str = ""
    events: tuple[str, ...] = ("created",)
    mode: str = "watch"
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""  # sealed with the source; shown as ***
    poll_interval_s: float | None = None  # a bucket's listing: 5 s; a folder without inotify: 1 s
    # schedule only
    schedule: str = ""
    timezone: str = "UTC"
    input: Any = None  # replaces the Scheduled Event as the payload
    catch_up: str = "none"
    # rule only
    pattern: dict[str, Any] | None = None

    @property
    def identity(self) -> str:
        """What names the trigger among its function's [[triggers]]: a deploy that keeps it
        keeps its id (and its checkpoint)."""
        if self.type == SCHEDULE:
            given = msgspec.json.encode(self.input).decode()
            return f"{self.type}:{self.schedule}:{self.timezone}:{given}"
        if self.type == RULE:
            return f"{self.type}:{msgspec.json.encode(self.pattern, order='sorted').decode()}"
        return f"{self.type}:{self.source}"

    @property
    def size(self) -> int:
        return self.batch_size or (10 if self.type == QUEUE else 100)

    @property
    def receive_limit(self) -> int | None:
        """Deliveries after which a queue message goes to the dead letter (None: no limit)."""
        if self.max_receive_count is not None:
            return self.max_receive_count
        return 5 if self.dead_letter else None


BATCHES = ("source", "batch_size", "max_batching_window_s", "report_batch_item_failures")
# The settings each type takes (besides type and enabled).
FIELDS: dict[str, tuple[str, ...]] = {
    QUEUE: (*BATCHES, "max_receive_count", "dead_letter", "max_concurrency"),
    STREAM: (
        *BATCHES,
        "starting_position",
        "starting_position_timestamp",
        "parallelization_factor",
        "bisect_batch_on_function_error",
        "maximum_retry_attempts",
        "maximum_record_age_s",
        "on_failure",
    ),
    OBJECT: (
        "source",
        "suffix",
        "events",
        "mode",
        "endpoint_url",
        "region",
        "access_key_id",
        "secret_access_key",
        "poll_interval_s",
    ),
    SCHEDULE: ("schedule", "timezone", "input", "catch_up"),
    RULE: ("pattern",),
}
REQUIRED = {
    QUEUE: "source",
    STREAM: "source",
    OBJECT: "source",
    SCHEDULE: "schedule",
    RULE: "pattern",
}
WHAT_IS_REQUIRED = {
    "source": "the queue, stream, bucket or folder's URL",
    "schedule": "rate(5 minutes) or cron(0 2 * * ? *)",
    "pattern": "an EventBridge event pattern",
}
RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (1, 10000),
    "max_batching_window_s": (0, 300),
    "max_receive_count": (1, 1000),
    "max_concurrency": (1, 1000),
    "parallelization_factor": (1, 10),
    "maximum_retry_attempts": (-1, 10000),
    "poll_interval_s": (0.1, 3600),
}


def parse_trigger(table: Any, where: str) -> tuple[TriggerSpec, Source]:
    """Check one trigger's table; ``where`` names it in errors ("mlambda.toml: triggers[0]")."""
    if not isinstance(table, dict):
        raise InvalidSpec(f"{where} must be a table of settings")
    fields = TriggerSpec.__struct_fields__
    for key in table:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidSpec(f"{where}: unknown field {key}{hint}")
    kind = table.get("type")
    if kind not in TYPES:
        raise InvalidSpec(f"{where}.type must be one of {', '.join(TYPES)}, got {kind!r}")
    for key in table:
        if key not in ("type", "enabled", *FIELDS[kind]):
            takers = " or ".join(repr(t) for t in TYPES if key in FIELDS[t])
            raise InvalidSpec(
                f"{where}.{key} applies to type = {takers} triggers only, not {kind!r}"
            )
    required = REQUIRED[kind]
    if required not in table:
        raise InvalidSpec(f"{where}.{required} is required ({WHAT_IS_REQUIRED[required]})")
    if kind == RULE:
        pattern = table["pattern"]
        if isinstance(pattern, str):  # as EventBridge's EventPattern is given: JSON text
            pattern = _pattern_text(pattern, where)
        table = {**table, "pattern": patterns.check_pattern(pattern, where=f"{where}.pattern")}
    try:
        spec = msgspec.convert(table, TriggerSpec)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(f"{where}: {_field(str(exc))}") from None
    _check_ranges(spec, where)
    if kind == SCHEDULE:
        _check_schedule(spec, where)
        return spec, Source("", SCHEDULE, "", {})
    if kind == RULE:
        return spec, Source("", RULE, "", {})
    source = parse_source(spec.source, kind, where)
    if kind == OBJECT:
        _check_object(spec, source, where)
    else:
        _check(spec, where)
    return spec, source


def _pattern_text(text: str, where: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidSpec(
            f"{where}.pattern: a pattern given as text must be JSON ({exc}); in mlambda.toml "
            "write it as a table"
        ) from None


def _field(message: str) -> str:
    # msgspec: "Expected `int`, got `str` - at `$.batch_size`" -> "batch_size: expected int..."
    text, _, path = message.partition(" - at `$.")
    return f"{path.rstrip('`')}: {text[0].lower()}{text[1:]}".replace("`", "") if path else text


def _check_ranges(spec: TriggerSpec, where: str) -> None:
    for field, (low, high) in RANGES.items():
        value = getattr(spec, field)
        if value is not None and not low <= value <= high:
            raise InvalidSpec(
                f"{where}.{field} must be between {low:g} and {high:g}, got {value!r}"
            )


def _check_schedule(spec: TriggerSpec, where: str) -> None:
    cron.parse_schedule(spec.schedule, where=f"{where}.schedule")
    cron.check_timezone(spec.timezone, where=f"{where}.timezone")
    if spec.catch_up not in CATCH_UP:
        raise InvalidSpec(
            f"{where}.catch_up must be 'none' (skip fires missed while the platform was down) "
            f"or 'latest' (run the last one missed), got {spec.catch_up!r}"
        )


def _check_object(spec: TriggerSpec, source: Source, where: str) -> None:
    if not spec.events or any(e not in OBJECT_EVENTS for e in spec.events):
        raise InvalidSpec(
            f"{where}.events must list one or both of created, removed, got {list(spec.events)!r}"
        )
    if len(set(spec.events)) != len(spec.events):
        raise InvalidSpec(f"{where}.events names an event twice: {list(spec.events)!r}")
    if spec.mode not in OBJECT_MODES:
        raise InvalidSpec(
            f"{where}.mode must be 'watch' (the platform lists the bucket or watches the "
            f"folder) or 'notify' (POST /v1/events/s3 only), got {spec.mode!r}"
        )
    if source.broker == "file" and (
        spec.mode == "notify" or spec.endpoint_url or spec.access_key_id or spec.region
    ):
        raise InvalidSpec(
            f"{where}: a folder (file://) is watched: mode = 'notify', endpoint_url, region "
            "and credentials are for s3:// sources"
        )
    if bool(spec.access_key_id) != bool(spec.secret_access_key):
        raise InvalidSpec(f"{where}: access_key_id and secret_access_key go together")
    if spec.endpoint_url and not spec.endpoint_url.startswith(("http://", "https://")):
        raise InvalidSpec(
            f"{where}.endpoint_url must be an http:// or https:// URL, got {spec.endpoint_url!r}"
        )


def _check(spec: TriggerSpec, where: str) -> None:
    if spec.type == QUEUE:
        if spec.max_receive_count is not None and not spec.dead_letter:
            raise InvalidSpec(
                f"{where}.max_receive_count needs a dead_letter: without one, a message that "
                "failed that many times would be dropped"
            )
        _destination(spec.dead_letter, f"{where}.dead_letter", queue_only=True)
        return
    if spec.starting_position not in STARTING_POSITIONS:
        raise InvalidSpec(
            f"{where}.starting_position must be one of {', '.join(STARTING_POSITIONS)}, "
            f"got {spec.starting_position!r}"
        )
    if (spec.starting_position == "at_timestamp") != (spec.starting_position_timestamp is not None):
        raise InvalidSpec(
            f"{where}.starting_position_timestamp goes with starting_position = 'at_timestamp' "
            "(epoch seconds), and only with it"
        )
    age = spec.maximum_record_age_s
    if age != -1 and not 60 <= age <= 604800:
        raise InvalidSpec(
            f"{where}.maximum_record_age_s must be -1 (no limit) or between 60 and 604800, "
            f"got {age!r}"
        )
    _destination(spec.on_failure, f"{where}.on_failure", queue_only=False)


def _destination(target: str, where: str, queue_only: bool) -> None:
    if not target:
        return
    if target.startswith("mlambda://"):
        parse_source(target, QUEUE, where.rpartition(".")[0])  # its name's rules
        return
    if not queue_only and target.startswith("function:") and len(target) > len("function:"):
        return
    expected = "'mlambda://QUEUE'" if queue_only else DESTINATION_HINT
    raise InvalidSpec(f"{where} must be {expected}, got {target!r}")


def parse_triggers(tables: Any, source: str) -> list[tuple[TriggerSpec, Source]]:
    """mlambda.toml's ``[[triggers]]`` array, each table checked; ``source`` names the file."""
    if not isinstance(tables, list):
        raise InvalidSpec(f"{source}: triggers must be [[triggers]] tables, one per trigger")
    parsed = [parse_trigger(table, f"{source}: triggers[{i}]") for i, table in enumerate(tables)]
    seen: set[str] = set()
    for i, (spec, _) in enumerate(parsed):
        if spec.identity in seen:
            raise InvalidSpec(f"{source}: triggers[{i}] repeats an earlier trigger")
        seen.add(spec.identity)
    return parsed
