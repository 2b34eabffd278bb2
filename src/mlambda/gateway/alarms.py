"""Alarms and the metric history through the API: ``GET /v1/alarms``, ``GET|PUT|DELETE
/v1/alarms/{alarm}``, and ``GET /v1/functions/{name}/metrics`` (a metric's datapoints, what an
alarm evaluates and the console charts). Changing an alarm needs ``deploy`` on its function
("*": on every function); reading, ``read``."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidRequest
from mlambda.gateway.auth import require
from mlambda.gateway.body import read_object
from mlambda.observe.alarm_rule import rule_from_dict
from mlambda.observe.alarm_store import view
from mlambda.observe.log_query import ago_seconds
from mlambda.security.keys import Need

MAX_BODY = 64 * 1024
MAX_DATAPOINTS = 1440


async def list_alarms(request: Request) -> Response:
    store = request.app.state.platform.observability.alarms
    state = request.query_params.get("state")
    alarms = [view(alarm) for alarm in store.list() if state in (None, alarm.state)]
    return JSONResponse({"alarms": alarms})


async def get_alarm(request: Request) -> Response:
    store = request.app.state.platform.observability.alarms
    name = request.path_params["alarm"]
    alarm = store.get(name)
    require(request, Need("read", alarm.rule.function))
    return JSONResponse({**view(alarm), "history": store.history(name)})


async def put_alarm(request: Request) -> Response:
    store = request.app.state.platform.observability.alarms
    name = request.path_params["alarm"]
    body = await read_object(request, MAX_BODY)
    if body.setdefault("name", name) != name:
        raise InvalidRequest(f"the body names alarm {body['name']!r}, the path {name!r}")
    rule = rule_from_dict(body)
    require(request, Need("deploy", rule.function))
    alarm, created = store.put(rule)
    return JSONResponse(view(alarm), status_code=201 if created else 200)


async def delete_alarm(request: Request) -> Response:
    store = request.app.state.platform.observability.alarms
    name = request.path_params["alarm"]
    require(request, Need("deploy", store.get(name).rule.function))
    store.delete(name)
    return Response(status_code=204)


async def function_metrics(request: Request) -> Response:
    platform = request.app.state.platform
    name = request.path_params["name"]
    if name != "*":
        platform.get(name)  # 404 for a function that does not exist
    query = request.query_params
    metric = query.get("metric", "Invocations")
    statistic = query.get("statistic", "Sum")
    period = _integer(query.get("period", "60"), "period")
    since = ago_seconds(query.get("since", "1h"))
    now = time.time()
    if since // max(period, 1) > MAX_DATAPOINTS:
        raise InvalidRequest(
            f"since / period asks for more than {MAX_DATAPOINTS} datapoints; use a longer period"
        )
    try:
        points = platform.observability.history.series(
            name, metric, statistic, period, now - since, now
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return JSONResponse(
        {
            "function": name,
            "metric": metric,
            "statistic": statistic,
            "period": period,
            "datapoints": [{"timestamp": t, "value": value} for t, value in points],
        }
    )


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{what} must be a whole number of seconds, got {text!r}") from None
