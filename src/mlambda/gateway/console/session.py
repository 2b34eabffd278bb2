"""The console's sign-in (pure): a session is an HTTP-only cookie naming the API key that signed
in, until when, and a nonce, signed with HMAC-SHA256 under a secret only the platform holds; a
form carries a CSRF token bound to the session.

    cookie = issue(secret, "MLK1...", now, nonce)
    session = verify(secret, cookie, now)      # None: forged, changed or expired
    token = csrf_token(secret, session)        # in each form; checked on each POST

The key is looked up again on every page (a revoked key's sessions end with it): the cookie
names it, it does not stand in for it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

COOKIE = "mlambda_console"
LIFETIME_S = 8 * 3600


@dataclasses.dataclass(frozen=True)
class Session:
    key_id: str
    expires: int
    nonce: str


def secret_for(admin_key: str) -> bytes:
    """The signing secret: derived from the admin key, so it needs no file of its own and
    holds across restarts and across gateways sharing a data dir."""
    return hmac.new(admin_key.encode(), b"mlambda console session", hashlib.sha256).digest()


def issue(secret: bytes, key_id: str, now: float, nonce: str, lifetime_s: int = LIFETIME_S) -> str:
    payload = json.dumps({"k": key_id, "e": int(now) + lifetime_s, "n": nonce},
                         separators=(",", ":")).encode()  # fmt: skip
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(secret, body)}"


def verify(secret: bytes, cookie: str, now: float) -> Session | None:
    body, _, signature = cookie.partition(".")
    if not body or not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(str(data["k"]), int(data["e"]), str(data["n"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now and session.key_id else None


def csrf_token(secret: bytes, session: Session) -> str:
    return _sign(secret, f"csrf:{session.key_id}:{session.nonce}")


def csrf_ok(secret: bytes, session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token, csrf_token(secret, session))


def _sign(secret: bytes, text: str) -> str:
    digest = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
