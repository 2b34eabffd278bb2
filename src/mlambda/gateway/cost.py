"""``GET /v1/cost?since=7d&by=function|version|day``: what the platform's functions used, priced
as Lambda bills it and at this machine's own cost (observe/cost.py)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.observe.cost import Rates, cost_rows, since_seconds
from mlambda.observe.usage import day_of


async def cost(request: Request) -> Response:
    platform = request.app.state.platform
    since = request.query_params.get("since", "7d")
    by = request.query_params.get("by", "function")
    seconds = since_seconds(since)
    now = time.time()
    settings = platform.settings
    rates = Rates(
        settings.price_gb_second, settings.price_per_million_requests, settings.machine_hourly_cost
    )
    # Usage is counted per day: a report covers whole days, from the one `since` falls in.
    usage = platform.usage.rows(day_of(now - seconds))
    rows, total = cost_rows(usage, rates, by, seconds / 3600)
    return JSONResponse(
        {
            "since": since,
            "from": day_of(now - seconds),
            "by": by,
            "rates": {
                "gbSecond": rates.gb_second,
                "perMillionRequests": rates.per_million_requests,
                "machineHourly": rates.machine_hourly,
            },
            "rows": rows,
            "total": total,
        }
    )
