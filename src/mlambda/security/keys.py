"""API keys with scopes (least privilege): what a key may do, and where keys are kept.

A scope is ``admin`` (everything), ``read`` (list, show, logs, metrics), ``deploy[:PATTERN]``
(deploy and remove the functions whose names match), ``invoke[:PATTERN]`` or ``events`` (put
events on the bus and post S3 notifications: what feeds rule and object triggers); a pattern
is a shell-style glob (``fraud*``), absent meaning every function. The admin key in
``<data dir>/admin.key`` holds ``admin``; ``mlambda keys create`` makes the others.

A key is shown once, as ``mlk_<id>_<secret>``: the id (20 characters, ``MLK...``) is public and
is also the AWS access key id for SigV4; the secret is kept as its SHA-256 (enough for a random
secret of 240 bits) to check bearer tokens, and sealed with the master key (``crypto``), since
verifying a SigV4 signature needs the secret itself.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import sqlalchemy as sa

from mlambda.errors import InvalidRequest, NotFound, Unauthorized
from mlambda.security.crypto import Envelope
from mlambda.security.ratelimit import Rate

ACTIONS = ("admin", "deploy", "invoke", "read", "events")
TOKEN_PREFIX = "mlk_"
ID_PREFIX = "MLK"
ID_LENGTH = 20
ADMIN_ID = "admin"
_PATTERN = re.compile(r"[A-Za-z0-9_*?\[\]!-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclasses.dataclass(frozen=True)
class Scope:
    action: str
    pattern: str = "*"

    @classmethod
    def parse(cls, text: str) -> Scope:
        action, sep, pattern = text.strip().partition(":")
        if action not in ACTIONS:
            raise InvalidRequest(
                f"scope {text!r}: must be one of admin, read, deploy[:PATTERN], "
                "invoke[:PATTERN], events"
            )
        if sep and action in ("admin", "read", "events"):
            raise InvalidRequest(f"scope {text!r}: {action} takes no function pattern")
        if sep and not _PATTERN.fullmatch(pattern):
            raise InvalidRequest(
                f"scope {text!r}: the pattern is a function name or a glob of letters, digits, "
                "'-', '_', '*', '?', '[...]'"
            )
        return cls(action, pattern if sep else "*")

    def __str__(self) -> str:
        return self.action if self.pattern == "*" else f"{self.action}:{self.pattern}"


@dataclasses.dataclass(frozen=True)
class Need:
    """What one request needs: an action, on a function (for deploy and invoke)."""

    action: str
    function: str = ""


# A Need's function when the request names it in its body (CreateFunction): any scope of the
# action lets the request in, and the route checks the name it reads (gateway.auth.require).
IN_BODY = "\0named in the body"


# A route that asks for the action itself (gateway.auth.require), by what the request says:
# any key lets the request in.
ANY_ACTION = "any"


def allows(scopes: tuple[Scope, ...], need: Need) -> bool:
    """Pure: whether ``scopes`` cover ``need``. admin covers everything; deploy and invoke
    cover the functions their pattern matches (case-sensitively, as names are)."""
    if need.action == ANY_ACTION and need.function == IN_BODY:
        return bool(scopes)
    for scope in scopes:
        if scope.action == "admin":
            return True
        if scope.action == need.action and (
            need.function == IN_BODY or fnmatch.fnmatchcase(need.function, scope.pattern)
        ):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (never its secret), name, scopes and own rate limit."""

    key_id: str
    name: str
    scopes: tuple[Scope, ...]
    rate: Rate | None = None

    def allows(self, need: Need) -> bool:
        return allows(self.scopes, need)


ADMIN = Principal(ADMIN_ID, "admin key", (Scope("admin"),))
# With --no-auth every caller is treated as the admin key (the banner says so).
ANONYMOUS_ADMIN = Principal("", "no auth", (Scope("admin"),))


@dataclasses.dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[Scope, ...]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    rate: Rate | None

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": [str(s) for s in self.scopes],
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "revokedAt": self.revoked_at,
            "state": self.state(now),
            "rateLimit": self.rate.per_second if self.rate else None,
            "burst": self.rate.burst if self.rate else None,
        }


def new_id() -> str:
    """``MLK`` + 17 base32 characters: shaped like an AWS access key id."""
    random = base64.b32encode(secrets.token_bytes(15)).decode()
    return ID_PREFIX + random[: ID_LENGTH - len(ID_PREFIX)]


def token(key_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{key_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a scoped key's token; None for anything else (the admin key...)."""
    head = len(TOKEN_PREFIX)
    if not text.startswith(TOKEN_PREFIX + ID_PREFIX) or len(text) <= head + ID_LENGTH + 1:
        return None
    if text[head + ID_LENGTH] != "_":
        return None
    return text[head : head + ID_LENGTH], text[head + ID_LENGTH + 1 :]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    _metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=True),
    sa.Column("revoked_at", sa.Double, nullable=True),
    sa.Column("rate_limit", sa.Double, nullable=True),
    sa.Column("burst", sa.Double, nullable=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    # The secret sealed with the master key: SigV4 verification needs it (see the docstring).
    sa.Column("secret_sealed", sa.Text, nullable=False),
)


class KeyStore:
    def __init__(self, engine: sa.engine.Engine, envelope: Envelope) -> None:
        self.engine = engine
        self.envelope = envelope
        _metadata.create_all(engine)

    def create(
        self,
        name: str,
        scopes: list[str],
        *,
        expires_in_s: float | None = None,
        rate: Rate | None = None,
        now: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown once: only its hash and sealed form are kept)."""
        now = time.time() if now is None else now
        parsed = _parse_scopes(name, scopes)
        if expires_in_s is not None and expires_in_s <= 0:
            raise InvalidRequest(f"expires must be in the future, got {expires_in_s:g} s")
        key_id, secret = new_id(), secrets.token_urlsafe(30)
        expires = now + expires_in_s if expires_in_s is not None else None
        with self.envelope.lock, self.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    name=name,
                    scopes=[str(s) for s in parsed],
                    created_at=now,
                    expires_at=expires,
                    rate_limit=rate.per_second if rate else None,
                    burst=rate.burst if rate else None,
                    secret_sha256=_digest(secret),
                    secret_sealed=self.envelope.seal_value(secret.encode(), key_id.encode()),
                )
            )
        key = ApiKey(key_id, name, parsed, now, expires, None, rate)
        return key, token(key_id, secret)

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
            return [_key(row._mapping) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}; `mlambda keys list` lists them")
        return _key(row._mapping)

    def revoke(self, key_id: str, now: float | None = None) -> ApiKey:
        key = self.get(key_id)
        if key.revoked_at is None:
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == key_id)
                    .values(revoked_at=time.time() if now is None else now)
                )
        return self.get(key_id)

    def authenticate(self, key_id: str, secret: str, now: float | None = None) -> Principal:
        """The principal of a bearer token's (id, secret); Unauthorized says why not."""
        row = self._row(key_id)
        if row is None or not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
            raise Unauthorized("Invalid API key")
        return self._principal(row, now)

    def principal(self, key_id: str, now: float | None = None) -> Principal:
        """Who a key is now, by its id alone (a console session names it); Unauthorized
        once it is revoked, expired or gone."""
        row = self._row(key_id)
        if row is None:
            raise Unauthorized(f"API key {key_id} no longer exists")
        return self._principal(row, now)

    def signing_secret(self, key_id: str, now: float | None = None) -> tuple[str, Principal]:
        """A key's secret (to verify a SigV4 signature made with it) and its principal."""
        row = self._row(key_id)
        if row is None:
            raise Unauthorized(f"The security token included in the request is invalid ({key_id})")
        principal = self._principal(row, now)
        secret = self.envelope.open_value(row["secret_sealed"], key_id.encode()).decode()
        return secret, principal

    def rewrap(self) -> int:
        """Re-seal every key's secret under the primary master key (rotation)."""
        with self.envelope.lock, self.engine.begin() as conn:
            rows = list(conn.execute(sa.select(api_keys.c.id, api_keys.c.secret_sealed)))
            for key_id, sealed in rows:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == key_id)
                    .values(secret_sealed=self.envelope.rewrap_value(sealed))
                )
        return len(rows)

    def _row(self, key_id: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        return row._mapping if row is not None else None

    def _principal(self, row: Any, now: float | None) -> Principal:
        key = _key(row)
        state = key.state(time.time() if now is None else now)
        if state != "active":
            raise Unauthorized(f"API key {key.id} is {state}")
        return Principal(key.id, key.name, key.scopes, key.rate)


def _parse_scopes(name: str, scopes: list[str]) -> tuple[Scope, ...]:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"key name must be 1-64 letters, digits, '.', '-' or '_', got {name!r}"
        )
    if not scopes:
        raise InvalidRequest("a key needs at least one scope (--scope invoke:NAME, read...)")
    return tuple(dict.fromkeys(Scope.parse(s) for s in scopes))


def _key(row: Any) -> ApiKey:
    rate = None
    if row["rate_limit"] is not None:
        rate = Rate(row["rate_limit"], row["burst"] or max(1.0, row["rate_limit"]))
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=tuple(Scope.parse(s) for s in row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        rate=rate,
    )
