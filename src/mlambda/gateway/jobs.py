"""Batch jobs through the API: ``POST /v1/jobs`` (run a function over a bucket's prefix, a folder
or a file of lines), ``GET /v1/jobs``, ``GET /v1/jobs/{id}`` (its progress) and ``POST
/v1/jobs/{id}/cancel``. Starting and cancelling a job need ``invoke`` on its function; reading,
``read``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlambda.errors import InvalidRequest
from mlambda.events.jobs import JOB_STATES
from mlambda.gateway.auth import require
from mlambda.gateway.body import read_object, state_and_limit
from mlambda.security.keys import Need

MAX_BODY = 64 * 1024


async def create_job(request: Request) -> Response:
    jobs = request.app.state.platform.jobs
    body = await read_object(request, MAX_BODY)
    function = body.get("function")
    if not isinstance(function, str) or not function:
        raise InvalidRequest("job: function is required (the function to run over the input)")
    require(request, Need("invoke", function))
    job = await jobs.submit(body)
    return JSONResponse(jobs.view(job), status_code=201)


async def list_jobs(request: Request) -> Response:
    jobs = request.app.state.platform.jobs
    state, limit = state_and_limit(request, JOB_STATES)
    found = jobs.store.list(limit, None if state is None else [state])
    return JSONResponse({"jobs": [jobs.view(job) for job in found]})


async def get_job(request: Request) -> Response:
    jobs = request.app.state.platform.jobs
    job = jobs.store.get(request.path_params["id"])
    require(request, Need("read"))
    return JSONResponse(jobs.view(job))


async def cancel_job(request: Request) -> Response:
    jobs = request.app.state.platform.jobs
    job = jobs.store.get(request.path_params["id"])
    require(request, Need("invoke", job.spec.function))
    return JSONResponse(jobs.view(await jobs.cancel(job.id)))
