"""Signing in to the console and the session every page checks: ``viewer(request, need)`` is
who is looking (a Redirect to the sign-in page when nobody is), ``checked_form`` a POST's form
once its CSRF token and origin are right."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlambda.errors import Forbidden, Unauthorized
from mlambda.gateway.auth import key_principal, refused
from mlambda.gateway.console.session import (
    COOKIE,
    LIFETIME_S,
    Session,
    csrf_ok,
    csrf_token,
    issue,
    secret_for,
    verify,
)
from mlambda.security import keys
from mlambda.security.keys import Need, Principal
from mlambda.security.ratelimit import REFUSE_AFTER

if TYPE_CHECKING:
    from mlambda.platform import Platform

OPEN = Session("", 0, "open")  # auth off: nobody signs in, forms still carry a token
MAX_FORM_BYTES = 16 * 1024


class Redirect(Exception):
    """Nobody is signed in (or the session ended): to the sign-in page, then back."""

    def __init__(self, to: str) -> None:
        self.to = to


def new_secret(platform: Platform) -> bytes:
    """The key sessions are signed with (app.state.console_secret): the admin key's, or with
    auth off this process's own."""
    return secret_for(platform.api_key) if platform.api_key is not None else os.urandom(32)


def secret(request: Request) -> bytes:
    return request.app.state.console_secret


async def viewer(request: Request, need: Need) -> tuple[Principal, Session]:
    """Who is looking, allowed ``need``; Redirect when nobody is, Forbidden when not allowed."""
    platform: Platform = request.app.state.platform
    if platform.api_key is None:
        return keys.ANONYMOUS_ADMIN, OPEN
    cookie = request.cookies.get(COOKIE, "")
    session = verify(secret(request), cookie, time.time()) if cookie else None
    if session is None:
        raise Redirect(f"/console/login?next={request.url.path}")
    try:
        principal = (
            keys.ADMIN
            if session.key_id == keys.ADMIN_ID
            else await asyncio.to_thread(platform.keys.principal, session.key_id)
        )
    except Unauthorized:  # revoked or expired since: the session ends with the key
        raise Redirect(f"/console/login?next={request.url.path}") from None
    if not principal.allows(need):
        raise Forbidden(f"API key {principal.key_id} may not {need.action} this")
    return principal, session


def form_token(request: Request, session: Session) -> str:
    return csrf_token(secret(request), session)


async def checked_form(request: Request, session: Session) -> FormData:
    """A POST's form, refused (403) unless it carries this session's CSRF token and comes
    from this origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("the form was sent from another origin")
    form = await request.form(max_files=0, max_fields=32, max_part_size=MAX_FORM_BYTES)
    token = form.get("csrf")
    if not isinstance(token, str) or not csrf_ok(secret(request), session, token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
    return form


async def sign_in(request: Request, form: FormData) -> Response:
    """The key typed in: a session cookie when it may read; Unauthorized or Forbidden (the
    page shows the form again with why) otherwise. Failures count and are audited as a wrong
    bearer token is."""
    platform: Platform = request.app.state.platform
    source = request.client.host if request.client else ""
    if platform.auth_failures.count(source) >= REFUSE_AFTER:
        raise Unauthorized("too many failed sign-ins from this address; retry in a minute")
    try:
        principal = await key_principal(platform, str(form.get("key", "")).strip())
    except Unauthorized as exc:
        await refused(platform, exc, request.url.path, source)
        raise
    if not principal.allows(Need("read")):
        raise Forbidden(f"API key {principal.key_id} cannot read: the console needs scope read")
    await asyncio.to_thread(
        platform.audit.record,
        "console.signin",
        key_id=principal.key_id,
        source=source,
        target="/console",
    )
    cookie = issue(secret(request), principal.key_id, time.time(), os.urandom(12).hex())
    target = str(form.get("next") or "/console")
    response = RedirectResponse(target if target.startswith("/console") else "/console", 303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=LIFETIME_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def signed_out() -> Response:
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/console")
    return response


def context(
    request: Request, principal: Principal, session: Session, **values: Any
) -> dict[str, Any]:
    """What every page's template gets."""
    return {
        "request": request,
        "principal": principal,
        "csrf": form_token(request, session),
        "signed_in": request.app.state.platform.api_key is not None,
        **values,
    }
