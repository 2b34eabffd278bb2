"""A trigger's settings, as ``[[triggers]]`` in mlambda.toml and the triggers API take them, with
Lambda's event source mapping as the model (checked when given; pure).

``type = "queue"``: at-least-once and unordered, SQS's semantics (a batch, partial failures,
a dead letter after ``max_receive_count`` deliveries). ``type = "stream"``: in order per
partition key, Kinesis's (a starting position, bisect on error, retries and a record age, an
``on_failure`` destination).
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec

from mlambda.errors import InvalidSpec
from mlambda.events.triggers.sources import QUEUE, STREAM, Source, parse_source

STARTING_POSITIONS = ("latest", "trim_horizon", "at_timestamp")
DESTINATION_HINT = "'mlambda://QUEUE' or 'function:NAME'"


class TriggerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: str
    source: str
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

    @property
    def size(self) -> int:
        return self.batch_size or (10 if self.type == QUEUE else 100)

    @property
    def receive_limit(self) -> int | None:
        """Deliveries after which a queue message goes to the dead letter (None: no limit)."""
        if self.max_receive_count is not None:
            return self.max_receive_count
        return 5 if self.dead_letter else None


ONLY = {
    QUEUE: ("max_receive_count", "dead_letter", "max_concurrency"),
    STREAM: (
        "starting_position",
        "starting_position_timestamp",
        "parallelization_factor",
        "bisect_batch_on_function_error",
        "maximum_retry_attempts",
        "maximum_record_age_s",
        "on_failure",
    ),
}
RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (1, 10000),
    "max_batching_window_s": (0, 300),
    "max_receive_count": (1, 1000),
    "max_concurrency": (1, 1000),
    "parallelization_factor": (1, 10),
    "maximum_retry_attempts": (-1, 10000),
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
    if kind not in (QUEUE, STREAM):
        raise InvalidSpec(f"{where}.type must be 'queue' or 'stream', got {kind!r}")
    other = STREAM if kind == QUEUE else QUEUE
    for key in ONLY[other]:
        if key in table:
            raise InvalidSpec(f"{where}.{key} applies to type = {other!r} triggers only")
    if "source" not in table:
        raise InvalidSpec(f"{where}.source is required (the queue or stream's URL)")
    try:
        spec = msgspec.convert(table, TriggerSpec)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(f"{where}: {_field(str(exc))}") from None
    source = parse_source(spec.source, kind, where)
    _check(spec, where)
    return spec, source


def _field(message: str) -> str:
    # msgspec: "Expected `int`, got `str` - at `$.batch_size`" -> "batch_size: expected int..."
    text, _, path = message.partition(" - at `$.")
    return f"{path.rstrip('`')}: {text[0].lower()}{text[1:]}".replace("`", "") if path else text


def _check(spec: TriggerSpec, where: str) -> None:
    for field, (low, high) in RANGES.items():
        value = getattr(spec, field)
        if value is not None and not low <= value <= high:
            raise InvalidSpec(
                f"{where}.{field} must be between {low:g} and {high:g}, got {value!r}"
            )
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
    seen: set[tuple[str, str]] = set()
    for i, (spec, _) in enumerate(parsed):
        if (spec.type, spec.source) in seen:
            raise InvalidSpec(f"{source}: triggers[{i}] repeats an earlier trigger's source")
        seen.add((spec.type, spec.source))
    return parsed
