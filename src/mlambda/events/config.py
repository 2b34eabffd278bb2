"""``[function.async]``: how an asynchronous invocation is retried and how long it may wait, as
Lambda's event invoke config has it (checked at deploy; pure)."""

from __future__ import annotations

import re

import msgspec

from mlambda.errors import InvalidSpec

# A destination: another function ("function:NAME", invoked asynchronously with the record as
# its event), a platform queue ("mlambda://NAME", sent as a message) or a webhook (an http(s)
# URL that the record is POSTed to).
DESTINATION = re.compile(r"function:[A-Za-z0-9_-]{1,64}|mlambda://[A-Za-z0-9_-]{1,80}|https?://\S+")

RANGES = {
    "maximum_retry_attempts": (0, 2),
    "maximum_event_age_s": (60, 21600),
    "retry_delay_s": (0.05, 900),
}


class AsyncSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Attempts after the first that fails (Lambda's MaximumRetryAttempts).
    maximum_retry_attempts: int = 2
    # An event older than this is not run again (Lambda's MaximumEventAgeInSeconds).
    maximum_event_age_s: float = 21600.0
    # The wait before the first retry; it doubles for the next, each +-20% (Lambda waits about
    # a minute, then two).
    retry_delay_s: float = 1.0
    # Where the outcome goes, in Lambda's destination record shape (docs/async.md).
    on_success: str = ""
    on_failure: str = ""


def check_async(config: AsyncSpec, source: str, function: str = "") -> None:
    for field in ("on_success", "on_failure"):
        target = getattr(config, field)
        if target and not DESTINATION.fullmatch(target):
            raise InvalidSpec(
                f"{source}: function.async.{field} must be 'function:NAME', 'mlambda://QUEUE' "
                f"or an http(s) URL, got {target!r}"
            )
        if target == f"function:{function}":
            raise InvalidSpec(
                f"{source}: function.async.{field} names the function itself, which would "
                "invoke itself for ever"
            )
    for field, (low, high) in RANGES.items():
        value = getattr(config, field)
        if not low <= value <= high:
            raise InvalidSpec(
                f"{source}: function.async.{field} must be between {low:g} and {high:g}, "
                f"got {value!r}"
            )
