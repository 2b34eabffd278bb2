"""The console's pages: each checks the session (``viewer``) for the scope it needs, gathers
what it shows (views.py) and renders its template; forms are POSTs with a CSRF token."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from mlambda.errors import InvalidRequest, MlambdaError, NotFound
from mlambda.events.queue import FINAL
from mlambda.gateway.console import signin, views
from mlambda.gateway.console.session import Session
from mlambda.security.keys import Need, Principal

HERE = Path(__file__).parent
# Only what the console's own files need: no inline script, no other origin, no framing.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Page = Callable[[Request, Principal, Session], Awaitable[Response]]


@functools.cache
def _static_files() -> dict[str, Path]:
    """The files /console/static/{file} serves, by name (nothing else can be named)."""
    return {path.name: path for path in (HERE / "static").rglob("*") if path.is_file()}


@functools.cache
def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = lambda t: (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"
    )
    templates.env.filters["ms"] = lambda v: "-" if v is None else f"{v:,.1f}"
    return templates


def render(request: Request, name: str, values: dict[str, Any], status: int = 200) -> Response:
    response = _templates().TemplateResponse(request, name, values, status_code=status)
    response.headers.update(HEADERS)
    return response


def guarded(
    need: Callable[[Request], Need],
) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A page for whoever is signed in with ``need``; the sign-in page for nobody."""

    def wrap(page: Page) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(page)
        async def run(request: Request) -> Response:
            try:
                principal, session = await signin.viewer(request, need(request))
                return await page(request, principal, session)
            except signin.Redirect as redirect:
                return RedirectResponse(redirect.to, 303)
            except MlambdaError as exc:
                values = {"request": request, "status": exc.status, "message": exc.message}
                return render(request, "error.html", values, exc.status)

        return run

    return wrap


def _read(request: Request) -> Need:
    name = request.path_params.get("name")
    return Need("read", name) if name else Need("read")


async def login_page(request: Request) -> Response:
    if request.app.state.platform.api_key is None:
        return RedirectResponse("/console", 303)
    values = {"request": request, "next": request.query_params.get("next", "/console"), "error": ""}
    return render(request, "login.html", values)


async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4, max_part_size=signin.MAX_FORM_BYTES)
    try:
        return await signin.sign_in(request, form)
    except MlambdaError as exc:
        values = {"request": request, "next": form.get("next", "/console"), "error": exc.message}
        return render(request, "login.html", values, exc.status)


@guarded(_read)
async def logout(request: Request, principal: Principal, session: Session) -> Response:
    await signin.checked_form(request, session)
    return signin.signed_out()


@guarded(_read)
async def home(request: Request, principal: Principal, session: Session) -> Response:
    rows = views.functions(request.app.state.platform, time.time())
    shown = [row for row in rows if principal.allows(Need("read", row["name"]))]
    return render(
        request, "functions.html", signin.context(request, principal, session, functions=shown)
    )


@guarded(_read)
async def function_page(request: Request, principal: Principal, session: Session) -> Response:
    platform, name = request.app.state.platform, request.path_params["name"]
    window = request.query_params.get("window", "hour")
    if window not in views.WINDOWS:
        raise InvalidRequest(f"window must be hour or day, got {window!r}")
    now = time.time()
    values = views.function(platform, name, now)
    values["charts"] = views.charts(platform, name, window, now)
    values["instances"] = views.instances(platform, name)
    return render(
        request,
        "function.html",
        signin.context(request, principal, session, name=name, window=window, **values),
    )


@guarded(_read)
async def instances_part(request: Request, principal: Principal, session: Session) -> Response:
    platform, name = request.app.state.platform, request.path_params["name"]
    platform.get(name)
    values = {"request": request, "instances": views.instances(platform, name)}
    return render(request, "instances.html", values)


@guarded(_read)
async def invocation_page(request: Request, principal: Principal, session: Session) -> Response:
    platform, name = request.app.state.platform, request.path_params["name"]
    found = views.invocation(platform, name, request.path_params["id"])
    if found is None:
        raise NotFound(
            f"no recent invocation {request.path_params['id']!r} of {name!r} "
            "(the console keeps each function's last 50)"
        )
    return render(
        request,
        "invocation.html",
        signin.context(request, principal, session, name=name, invocation=found),
    )


@guarded(_read)
async def async_page(request: Request, principal: Principal, session: Session) -> Response:
    letters, waiting = await views.dead_letters(request.app.state.platform)
    shown = [r for r in letters if principal.allows(Need("read", r["function"]))]
    values = signin.context(
        request,
        principal,
        session,
        dead_letters=shown,
        waiting=waiting,
        replayed=request.query_params.get("replayed", ""),
    )
    return render(request, "async.html", values)


@guarded(_read)
async def replay(request: Request, principal: Principal, session: Session) -> Response:
    platform = request.app.state.platform
    await signin.checked_form(request, session)
    record = await platform.async_invoker.queue.get(request.path_params["id"])
    if record is None:
        raise NotFound(f"no asynchronous invocation {request.path_params['id']!r}")
    await signin.viewer(request, Need("invoke", record.function))
    if record.state not in FINAL:
        raise InvalidRequest(f"invocation {record.id} is {record.state}: it has not finished")
    event = await platform.async_invoker.accept(record.function, record.payload)
    return RedirectResponse(f"/console/async?replayed={event.id}", 303)


@guarded(_read)
async def triggers_page(request: Request, principal: Principal, session: Session) -> Response:
    platform = request.app.state.platform
    shown = [platform.triggers.view(t) for t in platform.triggers.store.list()]
    shown = [t for t in shown if principal.allows(Need("read", t["function"]))]
    return render(
        request, "triggers.html", signin.context(request, principal, session, triggers=shown)
    )


@guarded(_read)
async def cost_page(request: Request, principal: Principal, session: Session) -> Response:
    rows, total = views.cost(request.app.state.platform, time.time())
    return render(
        request, "cost.html", signin.context(request, principal, session, rows=rows, total=total)
    )


@guarded(_read)
async def alarms_page(request: Request, principal: Principal, session: Session) -> Response:
    alarms = request.app.state.platform.observability.alarms.list()
    return render(
        request, "alarms.html", signin.context(request, principal, session, alarms=alarms)
    )


TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}


async def static(request: Request) -> Response:
    """The console's own files and the vendored libraries (versioned names: cached a day)."""
    path = _static_files().get(request.path_params["file"])
    if path is None:
        return Response("not found", 404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type=TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
