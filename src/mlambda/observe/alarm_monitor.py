"""Evaluates every alarm as its periods end, over the metric history, and notifies each state
change: webhooks (JSON as CloudWatch sends it to SNS, or Slack's form) and a function (an
asynchronous invocation with the event Lambda gets from a CloudWatch alarm).

A transition into a state the rule's ``notify_on`` names is notified, except INSUFFICIENT_DATA
to OK: that is an alarm's first data, not a recovery. A webhook gets three tries; what fails is
logged by host only (a webhook URL is a credential)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx

from mlambda.observe.alarm_notices import alarm_event, notification, slack_message
from mlambda.observe.alarm_rule import AlarmRule
from mlambda.observe.alarm_store import Alarm, AlarmStore, shown_webhook
from mlambda.observe.alarms import LOOKBACK, Evaluation, evaluate
from mlambda.observe.history import MetricHistory

log = logging.getLogger("mlambda.alarms")

TICK_S = 0.5
WEBHOOK_TRIES = 3
WEBHOOK_TIMEOUT_S = 5.0

NotifyFunction = Callable[[str, bytes], Awaitable[Any]]


def window(rule: AlarmRule, now: float) -> tuple[float, float]:
    """The complete periods an evaluation at ``now`` looks at, [start, end): N and, as
    CloudWatch's evaluation range, a few before them for its look-back over missing data."""
    end = (now // rule.period_s) * rule.period_s
    return end - (rule.evaluation_periods + LOOKBACK) * rule.period_s, end


def notifies(rule: AlarmRule, old: str, new: str) -> bool:
    if new not in rule.notify_on:
        return False
    return not (old == "INSUFFICIENT_DATA" and new == "OK")


class AlarmMonitor:
    def __init__(
        self,
        store: AlarmStore,
        history: MetricHistory,
        notify_function: NotifyFunction | None = None,
        *,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.history = history
        self.notify_function = notify_function
        self.region = region
        self.clock = clock
        self._evaluated: dict[str, float] = {}  # alarm -> the end of the window it last saw
        self._loop: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S)
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._sends:  # notifications on their way get a moment to arrive
            await asyncio.wait(self._sends, timeout=WEBHOOK_TIMEOUT_S)
        if self._http is not None:
            await self._http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.check(self.clock())
            except Exception:  # the registry away for a moment: the next tick tries again
                log.exception("alarm evaluation failed")
            await asyncio.sleep(TICK_S)

    async def check(self, now: float) -> None:
        """Evaluate each alarm whose window moved since its last evaluation."""
        alarms = await asyncio.to_thread(self.store.list)
        names = {alarm.rule.name for alarm in alarms}
        self._evaluated = {k: v for k, v in self._evaluated.items() if k in names}
        for alarm in alarms:
            start, end = window(alarm.rule, now)
            if self._evaluated.get(alarm.rule.name) == end:
                continue
            self._evaluated[alarm.rule.name] = end
            await self._evaluate(alarm, start, end, now)

    async def _evaluate(self, alarm: Alarm, start: float, end: float, now: float) -> None:
        rule = alarm.rule
        points = self.history.series(
            rule.function, rule.metric, rule.statistic, rule.period_s, start, end
        )
        result = evaluate(rule, [value for _, value in points], alarm.state, end=end)
        if result.state == alarm.state:
            return
        await asyncio.to_thread(
            self.store.settle, rule.name, alarm.state, result.state, result.reason, now
        )
        log.warning("alarm %s: %s -> %s: %s", rule.name, alarm.state, result.state, result.reason)
        if notifies(rule, alarm.state, result.state):
            self._notify(rule, alarm.state, result, now)

    def _notify(self, rule: AlarmRule, old: str, new: Evaluation, now: float) -> None:
        body = notification(rule, old, new, now, self.region)
        for url in rule.webhooks:
            sent = slack_message(rule, body) if rule.webhook_format == "slack" else body
            self._send(self._post(url, sent))
        if rule.notify_function and self.notify_function is not None:
            event = alarm_event(rule, old, new, now, self.region)
            self._send(self._invoke(rule.notify_function, json.dumps(event).encode()))

    def _send(self, sending: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(sending)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        assert self._http is not None
        problem = ""
        for attempt in range(WEBHOOK_TRIES):
            try:
                answer = await self._http.post(url, json=body)
                if answer.status_code < 300:
                    return
                problem = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            await asyncio.sleep(2**attempt)
        log.warning(
            "alarm webhook %s failed %d times: %s", shown_webhook(url), WEBHOOK_TRIES, problem
        )

    async def _invoke(self, function: str, event: bytes) -> None:
        assert self.notify_function is not None
        try:
            await self.notify_function(function, event)
        except Exception as exc:  # the function removed since, the queue full...
            log.warning("alarm notification to function %s was not accepted: %s", function, exc)
