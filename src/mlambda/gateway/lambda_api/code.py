"""GetFunction's ``Code.Location``: a link to the function's code as a zip that works without
a key for ten minutes, as Lambda's presigned S3 URL does. The link is signed (HMAC-SHA256 over
the digest and expiry with a key this gateway process made at start), so it opens that one
artifact only, until it expires."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from mlambda.errors import Forbidden, NotFound
from mlambda.gateway.lambda_api.common import platform_of
from mlambda.packaging import lambda_zip

VALID_S = 600
_KEY = secrets.token_bytes(32)
PATH = "/v1/code/{digest}"


def _signature(digest: str, expires: int) -> str:
    return hmac.new(_KEY, f"{digest}\0{expires}".encode(), hashlib.sha256).hexdigest()


def link(base_url: str, digest: str, now: float) -> str:
    expires = int(now) + VALID_S
    sig = _signature(digest, expires)
    return f"{base_url.rstrip('/')}/v1/code/{digest}?expires={expires}&signature={sig}"


def valid(digest: str, expires: str, signature: str, now: float) -> bool:
    """Pure: a link opens its artifact while it has not expired and its signature holds."""
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(_signature(digest, int(expires)), signature)


async def download(request: Request) -> Response:
    """The zip a Code.Location link names (open route: the signature is the key)."""
    digest = request.path_params["digest"]
    params = request.query_params
    if not valid(digest, params.get("expires", ""), params.get("signature", ""), time.time()):
        raise Forbidden("this code link is not valid or has expired: call GetFunction again")
    platform = platform_of(request)
    if digest not in platform.registry.digests_in_use():
        raise NotFound("the function's code was deleted since this link was made")
    archive = await asyncio.to_thread(platform.store.get, digest)
    files = await asyncio.to_thread(lambda_zip.read_bundle, archive, platform.unpack_limits)
    data = await asyncio.to_thread(lambda_zip.to_zip, files)
    return Response(data, media_type="application/zip")
