"""``[function.url]``: who may call a function's URL, and its CORS settings, as Lambda's function
URL config (AuthType, Cors) has them; checked at deploy (pure)."""

from __future__ import annotations

import re

import msgspec

from mlambda.errors import InvalidSpec

# "KEY": an API key allowed to invoke the function (bearer or SigV4); "AWS_IAM" is Lambda's name
# for a signed request and means the same here. "NONE": public, as Lambda's AuthType NONE.
AUTH_TYPES = ("KEY", "AWS_IAM", "NONE")
METHODS = ("GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*")
ORIGIN = re.compile(r"\*|https?://[^/\s*]+")
HEADER = re.compile(r"\*|[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_ITEMS = 100
MAX_AGE_S = 86400


class CorsSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[function.url.cors]``: the platform answers preflights and adds these headers."""

    allow_origins: list[str] = []
    allow_methods: list[str] = []
    allow_headers: list[str] = []
    expose_headers: list[str] = []
    # Seconds a browser may cache a preflight's answer (0: not sent).
    max_age: int = 0
    allow_credentials: bool = False


class UrlSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    auth_type: str = "KEY"
    cors: CorsSpec | None = None

    @property
    def public(self) -> bool:
        return self.auth_type == "NONE"


def check_url(url: UrlSpec, source: str) -> None:
    if url.auth_type not in AUTH_TYPES:
        raise InvalidSpec(
            f"{source}: function.url.auth_type must be one of {', '.join(AUTH_TYPES)}, "
            f"got {url.auth_type!r}"
        )
    cors = url.cors
    if cors is None:
        return
    for field, pattern in (
        ("allow_origins", ORIGIN),
        ("allow_headers", HEADER),
        ("expose_headers", HEADER),
    ):
        values = getattr(cors, field)
        if len(values) > MAX_ITEMS:
            raise InvalidSpec(f"{source}: function.url.cors.{field} lists over {MAX_ITEMS} items")
        for value in values:
            if not pattern.fullmatch(value):
                raise InvalidSpec(f"{source}: function.url.cors.{field} has an invalid {value!r}")
    for method in cors.allow_methods:
        if method.upper() not in METHODS:
            raise InvalidSpec(
                f"{source}: function.url.cors.allow_methods has {method!r}; "
                f"one of {', '.join(METHODS)}"
            )
    if not 0 <= cors.max_age <= MAX_AGE_S:
        raise InvalidSpec(
            f"{source}: function.url.cors.max_age must be between 0 and {MAX_AGE_S}, "
            f"got {cors.max_age}"
        )
    if cors.allow_credentials and "*" in cors.allow_origins:
        raise InvalidSpec(
            f"{source}: function.url.cors.allow_credentials needs named origins: browsers refuse "
            "credentials with allow_origins = ['*']"
        )
