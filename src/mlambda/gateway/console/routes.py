"""The console's routes, mounted by gateway/app.py. The access check lets them through (rules
"open" in security/permissions.py): each page checks the session cookie itself."""

from __future__ import annotations

from starlette.routing import Route

from mlambda.gateway.console import pages

PATHS = (
    ("/console", pages.home, "GET"),
    ("/console/login", pages.login_page, "GET"),
    ("/console/login", pages.login, "POST"),
    ("/console/logout", pages.logout, "POST"),
    ("/console/functions/{name}", pages.function_page, "GET"),
    ("/console/functions/{name}/instances", pages.instances_part, "GET"),
    ("/console/functions/{name}/invocations/{id}", pages.invocation_page, "GET"),
    ("/console/async", pages.async_page, "GET"),
    ("/console/dead-letters/{id}/replay", pages.replay, "POST"),
    ("/console/triggers", pages.triggers_page, "GET"),
    ("/console/cost", pages.cost_page, "GET"),
    ("/console/alarms", pages.alarms_page, "GET"),
    ("/console/static/{file}", pages.static, "GET"),
)


def routes() -> list[Route]:
    return [Route(path, endpoint, methods=[method]) for path, endpoint, method in PATHS]
