"""The ASGI application: routes, then the middleware stack, then the error mapping."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mlambda.errors import MlambdaError, ServiceUnavailable
from mlambda.gateway import (
    admin,
    alarms,
    concurrency,
    cost,
    events,
    functions,
    invocations,
    invoke,
    jobs,
    oip,
    queues,
    sqs,
    triggers,
    versions,
)
from mlambda.gateway.auth import LAMBDA_PATH, AccessControl
from mlambda.gateway.console.routes import routes as console_routes
from mlambda.gateway.console.signin import new_secret
from mlambda.gateway.direct import DirectInvoke, target
from mlambda.gateway.lambda_api.operations import unknown_operation
from mlambda.gateway.lambda_api.retries import SyncCalls
from mlambda.gateway.lambda_api.routes import routes as lambda_routes
from mlambda.gateway.openapi import document
from mlambda.gateway.responses import error_response, unexpected_error
from mlambda.gateway.tracing import TRACE, TracedRequests
from mlambda.platform import Platform

ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def healthz(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    # What isolates instances here, and what does not (docs/security.md explains each).
    return JSONResponse({"status": "ok", "sandbox": platform.sandboxing.report.to_dict()})


async def metrics(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    # A queue that cannot be read (a broker down) leaves its gauges out, not the whole page.
    with contextlib.suppress(ServiceUnavailable):
        depth = await platform.async_invoker.queue.depth()
        platform.metrics.async_queue(depth, time.time())
    return Response(platform.metrics.render(), media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


async def _mlambda_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MlambdaError)
    return error_response(exc)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the server log (uvicorn logs the re-raised exception), not the client.
    return unexpected_error()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405) and LAMBDA_PATH.match(request.url.path):
        return unknown_operation(request.method, request.url.path)
    error_type = {404: "NotFoundException", 405: "MethodNotAllowedException"}.get(
        exc.status_code, "HTTPException"
    )
    message = exc.detail
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}; see /openapi.json"
    return JSONResponse(
        {"errorType": error_type, "errorMessage": message},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def routes() -> list[Route]:
    # Starlette tries routes in order: the invoke paths come first (none overlaps another).
    return [
        Route("/v1/functions/{name}/invoke", invoke.invoke, methods=["POST"]),
        *lambda_routes(),
        *oip.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", sqs.sqs, methods=["POST"]),
        Route("/v1/events", events.put_events, methods=["POST"]),
        Route("/v1/events/s3", events.s3_notification, methods=["POST"]),
        Route("/v1/cost", cost.cost, methods=["GET"]),
        Route("/v1/alarms", alarms.list_alarms, methods=["GET"]),
        Route("/v1/alarms/{alarm}", alarms.get_alarm, methods=["GET"]),
        Route("/v1/alarms/{alarm}", alarms.put_alarm, methods=["PUT"]),
        Route("/v1/alarms/{alarm}", alarms.delete_alarm, methods=["DELETE"]),
        Route("/v1/functions/{name}/metrics", alarms.function_metrics, methods=["GET"]),
        Route("/v1/jobs", jobs.create_job, methods=["POST"]),
        Route("/v1/jobs", jobs.list_jobs, methods=["GET"]),
        Route("/v1/jobs/{id}", jobs.get_job, methods=["GET"]),
        Route("/v1/jobs/{id}/cancel", jobs.cancel_job, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/functions", functions.list_functions, methods=["GET"]),
        Route(
            "/v1/functions/{name}",
            functions.get_function,
            methods=["GET"],
        ),
        Route("/v1/functions/{name}", functions.put_function, methods=["PUT"]),
        Route("/v1/functions/{name}", functions.delete_function, methods=["DELETE"]),
        Route("/v1/functions/{name}/logs", functions.function_logs, methods=["GET"]),
        Route("/v1/functions/{name}/versions", versions.list_versions, methods=["GET"]),
        Route("/v1/functions/{name}/versions", versions.publish, methods=["POST"]),
        Route(
            "/v1/functions/{name}/versions/{version}", versions.delete_version, methods=["DELETE"]
        ),
        Route("/v1/functions/{name}/aliases", versions.list_aliases, methods=["GET"]),
        Route("/v1/functions/{name}/aliases/{alias}", versions.get_alias, methods=["GET"]),
        Route("/v1/functions/{name}/aliases/{alias}", versions.put_alias, methods=["PUT"]),
        Route("/v1/functions/{name}/aliases/{alias}", versions.delete_alias, methods=["DELETE"]),
        Route("/v1/functions/{name}/aliases/{alias}/rollback", versions.rollback, methods=["POST"]),
        Route("/v1/functions/{name}/concurrency", concurrency.get_concurrency, methods=["GET"]),
        Route("/v1/functions/{name}/concurrency", concurrency.put_concurrency, methods=["PUT"]),
        Route(
            "/v1/functions/{name}/provisioned/{qualifier}",
            concurrency.put_provisioned,
            methods=["PUT"],
        ),
        Route(
            "/v1/functions/{name}/provisioned/{qualifier}",
            concurrency.delete_provisioned,
            methods=["DELETE"],
        ),
        Route("/v1/functions/{name}/invocations", invocations.list_invocations, methods=["GET"]),
        Route("/v1/functions/{name}/dead-letters", invocations.dead_letters, methods=["GET"]),
        Route("/v1/functions/{name}/invocations/{id}/replay", invocations.replay, methods=["POST"]),
        Route("/v1/functions/{name}/triggers", triggers.list_triggers, methods=["GET"]),
        Route("/v1/functions/{name}/triggers", triggers.create_trigger, methods=["POST"]),
        Route("/v1/triggers/{id}", triggers.get_trigger, methods=["GET"]),
        Route("/v1/triggers/{id}", triggers.delete_trigger, methods=["DELETE"]),
        Route("/v1/triggers/{id}/enable", triggers.enable_trigger, methods=["POST"]),
        Route("/v1/triggers/{id}/disable", triggers.disable_trigger, methods=["POST"]),
        Route("/v1/queues", queues.list_queues, methods=["GET"]),
        Route("/v1/queues/{name}/messages", queues.send, methods=["POST"]),
        Route("/v1/queues/{name}/messages/receive", queues.receive, methods=["POST"]),
        Route("/v1/queues/{name}/messages/{receipt}", queues.delete, methods=["DELETE"]),
        Route("/v1/invocations", invocations.list_invocations, methods=["GET"]),
        Route("/v1/invocations/{id}", invocations.get_invocation, methods=["GET"]),
        Route("/v1/instances", functions.list_processes, methods=["GET"]),
        Route("/v1/keys", admin.list_keys, methods=["GET"]),
        Route("/v1/keys", admin.create_key, methods=["POST"]),
        Route("/v1/keys/{key}", admin.revoke_key, methods=["DELETE"]),
        Route("/v1/audit", admin.audit_log, methods=["GET"]),
        Route("/v1/master-key/rotate", admin.rotate_master_key, methods=["POST"]),
        Route("/fn/{name}", invoke.function_url_request, methods=ANY_METHOD),
        Route("/fn/{name}/{path:path}", invoke.function_url_request, methods=ANY_METHOD),
        *console_routes(),
    ]


class Gateway(Starlette):
    """Starlette, with the direct route (direct.py) taken before its middleware and routes."""

    direct: DirectInvoke
    traced: TracedRequests | None = None  # with tracing on: a SERVER span per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        traced = self.traced
        # Tracing on: first the request's span, which calls this again inside it.
        if scope["type"] == "http" and traced and TRACE not in scope.setdefault("state", {}):
            await traced(scope, receive, send)
            return
        if scope["type"] == "http" and target(scope) is not None:
            await self.direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(platform: Platform) -> Starlette:
    """The gateway for ``platform``; the ASGI lifespan starts it (if need be) and stops it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    middleware = [Middleware(AccessControl, platform=platform)]
    app = Gateway(
        routes=routes(),
        middleware=middleware,
        exception_handlers={
            MlambdaError: _mlambda_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.direct = DirectInvoke(platform)
    if platform.observability.tracing.enabled:
        app.traced = TracedRequests(app, platform.observability.tracing)
    app.state.platform = platform
    app.state.console_secret = new_secret(platform)  # signs the console's sessions
    app.state.sync_calls = SyncCalls()  # retried synchronous Lambda invokes (lambda_api/retries)
    return app
