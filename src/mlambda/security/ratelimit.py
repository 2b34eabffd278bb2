"""Rate limits per key, and the price of failed authentication per address.

Requests are limited by a token bucket per key (`take`, a pure function of the bucket and
``now``); `MemoryLimiter` keeps the buckets in this process, `RedisLimiter` in Redis so that
several gateways share one limit. Failed authentications are counted per source address
(`FailureCounter`) and priced by `failure_policy`: free at first, then slowed, then refused.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from mlambda.errors import ServiceUnavailable, Throttled

if TYPE_CHECKING:
    from mlambda.spec import FunctionSpec

__all__ = [
    "FIRST_DELAY_S",
    "FREE_FAILURES",
    "MAX_DELAY_S",
    "REFUSE_AFTER",
    "Bucket",
    "FailureCounter",
    "Limiter",
    "MemoryLimiter",
    "Rate",
    "RedisLimiter",
    "failure_policy",
    "redacted_url",
    "take",
]

# A typo or a client that lost its key gets a few free tries before anything slows it down.
FREE_FAILURES = 5
# Long enough to make guessing keys slow, short enough not to hold many connections open.
MAX_DELAY_S = 2.0
# Past this many failures in a window nobody is still mistyping: stop checking their keys.
REFUSE_AFTER = 20
# The delay of the first priced failure; each later one doubles it up to MAX_DELAY_S.
FIRST_DELAY_S = 0.1


@dataclasses.dataclass(frozen=True)
class Rate:
    """A sustained rate and the burst a full bucket allows on top of it."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        # Infinite values are refused too: they turn the arithmetic into NaN.
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError(f"rate per_second must be finite and > 0, got {self.per_second!r}")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"rate burst must be finite and >= 1, got {self.burst!r}")


@dataclasses.dataclass(frozen=True)
class Bucket:
    """The tokens left, as of ``updated``: the clock reading of the last refill."""

    tokens: float
    updated: float


def take(bucket: Bucket | None, rate: Rate, now: float, cost: float = 1.0) -> tuple[Bucket, float]:
    """Pure token bucket: (the bucket after this request, retry_after seconds; 0.0 = allowed).

    A new bucket (None) starts full; tokens refill at ``rate.per_second`` up to ``rate.burst``;
    a request takes ``cost`` tokens when there are enough, else it is refused (taking nothing)
    and retry_after says when there will be; a clock that went backwards refills nothing.
    ``cost`` must lie in 0..burst, since a bigger one could never be allowed (ValueError).
    """
    _check_cost(rate, cost)
    tokens = rate.burst if bucket is None else _refilled(bucket, rate, now)
    if tokens >= cost:
        return Bucket(tokens - cost, now), 0.0
    return Bucket(tokens, now), (cost - tokens) / rate.per_second


def _refilled(bucket: Bucket, rate: Rate, now: float) -> float:
    # After a backwards step `now` becomes the new reference: the next refill counts only
    # time that really passed, rather than waiting for the clock to catch up.
    elapsed = max(0.0, now - bucket.updated)
    return min(rate.burst, bucket.tokens + elapsed * rate.per_second)


def _check_cost(rate: Rate, cost: float) -> None:
    if not 0 <= cost <= rate.burst:
        raise ValueError(f"request cost must lie in 0..burst ({rate.burst}), got {cost!r}")


class Limiter(Protocol):
    """Where the gateway's token buckets live; `MemoryLimiter` is the double of `RedisLimiter`.

    Invariants of every implementation:

    * ``allow`` returns 0.0 when the request is allowed (its cost is then taken), else the
      seconds (> 0) until it would be; a refused request takes nothing.
    * Each key has its own bucket, which starts full. Callers pass the same rate for a key
      on every call; a changed rate applies from that call on.
    * A cost outside 0..rate.burst raises ValueError.
    * ``ServiceUnavailable`` means the buckets could not be reached; whether to let the
      request through (fail open) or answer 503 is the caller's decision.
    * ``close`` is idempotent; ``allow`` after ``close`` raises RuntimeError.
    """

    async def allow(self, key: str, rate: Rate, cost: float = 1.0) -> float: ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Buckets in this process (one gateway).

    Keeps at most ``max_keys`` buckets; the least recently used go. A forgotten key starts
    full again, which lets it burst once more: the price of bounded memory. Meant for one
    event loop; it never awaits, so each call is atomic there.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._closed = False

    async def allow(self, key: str, rate: Rate, cost: float = 1.0) -> float:
        if self._closed:
            raise RuntimeError("allow() on a closed MemoryLimiter")
        bucket, retry_after = take(self._buckets.pop(key, None), rate, self._clock(), cost)
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return retry_after

    async def close(self) -> None:
        self._closed = True
        self._buckets.clear()


# The same arithmetic as `take`, on Redis's clock. Numbers go back and forth as strings: a Lua
# number returned to Redis would be truncated to an integer.
_TAKE_SCRIPT = """
local per_second = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = burst
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
if state[1] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    tokens = math.min(burst, tonumber(state[1]) + elapsed * per_second)
end
local retry_after = 0
if tokens >= cost then
    tokens = tokens - cost
else
    retry_after = (cost - tokens) / per_second
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'updated', string.format('%.17g', now))
local refill_ms = math.ceil((burst - tokens) / per_second * 1000)
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, refill_ms)))
return string.format('%.17g', retry_after)
"""

# The gateway waits on every call: a Redis that does not answer within a second is down.
_TIMEOUT_S = 1.0


class RedisLimiter:
    """Buckets in Redis, so several gateways share one limit per key.

    One Lua script per call (atomic; uses Redis's own TIME so gateways' clocks need not agree).
    Keys expire once a full bucket would have refilled, so idle keys cost nothing. Timeouts
    default to one second (``socket_timeout`` in the URL's query overrides them).
    """

    def __init__(self, url: str, prefix: str = "mlambda:rl:") -> None:
        # Imported here: only --redis-url needs it, and serve starts faster without it.
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._failure: type[Exception] = RedisError
        self._url = url
        self._prefix = prefix
        # One immediate retry reconnects a connection Redis closed while idle; more would only
        # stretch the wait when Redis is really down.
        self._redis = redis.asyncio.from_url(
            url,
            socket_timeout=_TIMEOUT_S,
            socket_connect_timeout=_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
        )
        self._take = self._redis.register_script(_TAKE_SCRIPT)
        self._closed = False

    async def allow(self, key: str, rate: Rate, cost: float = 1.0) -> float:
        if self._closed:
            raise RuntimeError("allow() on a closed RedisLimiter")
        _check_cost(rate, cost)
        args = [repr(rate.per_second), repr(rate.burst), repr(float(cost))]
        try:
            retry_after = await self._take(keys=[self._prefix + key], args=args)
        except self._failure as error:
            raise ServiceUnavailable(
                f"rate limits unavailable: Redis at {redacted_url(self._url)} failed "
                f"({type(error).__name__}: {error}); check that it runs and the URL is right"
            ) from error
        return float(retry_after)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._redis.aclose()


async def function_rate(limiter: Limiter, spec: FunctionSpec) -> None:
    """A function's ``rate_limit`` (all its callers together): Throttled once it is spent."""
    if spec.rate is None:
        return
    rate = Rate(*spec.rate)
    wait = await limiter.allow(f"function:{spec.name}", rate)
    if wait > 0:
        raise Throttled(
            f"Rate exceeded: {spec.name!r} accepts {rate.per_second:g} requests/s "
            f"(burst {rate.burst:g}; function.rate_limit)",
            retry_after=wait,
        )


def redacted_url(url: str) -> str:
    """``url`` with its password (in the user part or the query) replaced by ``***``."""
    parts = urlsplit(url)
    shown = url
    # Pieces are replaced in place: urlunsplit would turn ``unix:///path`` into ``unix:/path``.
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        shown = shown.replace(parts.netloc, f"{userinfo.partition(':')[0]}:***@{host}", 1)
    if parts.query:
        query = [
            (name, "***" if name == "password" else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        shown = shown.replace("?" + parts.query, "?" + urlencode(query, safe="*"), 1)
    return shown


def failure_policy(failures: int) -> tuple[float, bool]:
    """What the n-th failed authentication from one address in the current window costs.

    Returns (delay in seconds before answering, refuse with 429). The first FREE_FAILURES
    cost nothing; after that the delay doubles from FIRST_DELAY_S up to MAX_DELAY_S; from
    REFUSE_AFTER on, the address is refused outright until the window passes. A refusal is
    answered at once: no key is checked any more, so there is nothing left to slow down.
    """
    if failures >= REFUSE_AFTER:
        return 0.0, True
    if failures <= FREE_FAILURES:
        return 0.0, False
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (failures - FREE_FAILURES - 1)), False


@dataclasses.dataclass(frozen=True)
class _Window:
    started: float
    failures: int


class FailureCounter:
    """Failed authentications per source address, in a fixed window per address.

    An address's window opens at its first failure and lasts ``window_s`` seconds.
    ``record(address)`` returns the failures so far in the window (this one included);
    ``count`` reads that without recording; ``retry_after`` is the seconds until the window
    resets (0 if none). At most ``max_addresses`` are kept; the least recently failing go.
    """

    def __init__(
        self,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 100_000,
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._max_addresses = max_addresses
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def record(self, address: str) -> int:
        now = self._clock()
        window = self._live(self._windows.pop(address, None), now) or _Window(now, 0)
        self._windows[address] = dataclasses.replace(window, failures=window.failures + 1)
        if len(self._windows) > self._max_addresses:
            self._windows.popitem(last=False)
        return window.failures + 1

    def count(self, address: str) -> int:
        window = self._live(self._windows.get(address), self._clock())
        return 0 if window is None else window.failures

    def retry_after(self, address: str) -> float:
        now = self._clock()
        window = self._live(self._windows.get(address), now)
        return 0.0 if window is None else window.started + self._window_s - now

    def _live(self, window: _Window | None, now: float) -> _Window | None:
        # A window whose start lies in the future (the clock went back) counts as passed,
        # so no address can be locked out for longer than one window.
        if window is None or not 0 <= now - window.started < self._window_s:
            return None
        return window
