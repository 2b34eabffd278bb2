"""AWS Signature Version 4 verification, so that boto3 and the AWS CLI can call the Lambda API.

A key made with ``mlambda keys create`` signs with its id as the access key id and its secret;
the admin key signs with any other access key id (``aws_secret_access_key = <contents of
admin.key>``). Verification recomputes the signature from the request, as the SigV4
specification defines it, over the SHA-256 of the body actually received (a request whose
``x-amz-content-sha256`` says anything else, ``UNSIGNED-PAYLOAD`` included, is refused, so a
captured request cannot be replayed with another body), and compares in constant time.

A presigned URL (the signature in the query: ``X-Amz-Signature``, ``X-Amz-Expires``, as
``generate_presigned_url`` makes it) signs no body, so it is accepted for a request without
one only, until it expires (at most 7 days).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
# A signed request older or newer than this is refused, as Lambda refuses it.
MAX_SKEW_S = 5 * 60
MAX_EXPIRES_S = 7 * 24 * 3600
UNSIGNED = "UNSIGNED-PAYLOAD"


class SignatureError(Exception):
    pass


def parse_authorization(header: str) -> dict[str, str]:
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` -> its fields."""
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported signing algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise SignatureError("Authorization needs Credential, SignedHeaders and Signature")
    return fields


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def access_key_id(headers: dict[str, str]) -> str:
    """The access key id a signed request names (its Credential's first part)."""
    fields = parse_authorization(headers.get("authorization", ""))
    return fields["Credential"].split("/", 1)[0]


def is_presigned(query: str) -> bool:
    return "X-Amz-Signature=" in query


def presigned_key_id(query: str) -> str:
    return dict(parse_qsl(query)).get("X-Amz-Credential", "").split("/", 1)[0]


def canonical_request(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
    payload_hash: str = "",
) -> str:
    declared = headers.get("x-amz-content-sha256")
    if payload_hash:
        declared = None  # a presigned URL: nothing about the body is signed
    else:
        payload_hash = hashlib.sha256(body).hexdigest()
    if declared is not None and declared != payload_hash:
        raise SignatureError(
            "x-amz-content-sha256 must be the SHA-256 of the body sent "
            f"(got {declared[:64]!r}); unsigned or streaming payloads are not accepted"
        )
    lines = [f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed]
    return "\n".join(
        [
            method,
            # Non-S3 services sign the path URI-encoded once more than it travels.
            quote(raw_path, safe="/~"),
            _canonical_query(query),
            "".join(lines),
            ";".join(signed),
            payload_hash,
        ]
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify(
    *,
    secret: str,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the request is signed with ``secret``."""
    fields = parse_authorization(headers.get("authorization", ""))
    try:
        _, date, region, service, terminator = fields["Credential"].split("/")
    except ValueError:
        raise SignatureError("malformed Credential scope") from None
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise SignatureError("missing or malformed X-Amz-Date") from None
    if abs((time.time() if now is None else now) - signed_at) > MAX_SKEW_S:
        raise SignatureError(
            "Signature expired: the request was signed more than 5 minutes from now "
            "(check the client's clock)"
        )
    signed = fields["SignedHeaders"].split(";")
    request = canonical_request(method, raw_path, query, headers, signed, body)
    _check(secret, stamp, (date, region, service, terminator), request, fields["Signature"])


def verify_presigned(
    *,
    secret: str,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the query presigns the request with ``secret``."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureError(f"X-Amz-Algorithm must be {ALGORITHM}")
    try:
        _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
        stamp, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        signed, signature = params["X-Amz-SignedHeaders"].split(";"), params["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise SignatureError(
            "a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
            "X-Amz-SignedHeaders and X-Amz-Signature"
        ) from None
    now = time.time() if now is None else now
    if not 1 <= expires <= MAX_EXPIRES_S:
        raise SignatureError(f"X-Amz-Expires must be 1 to {MAX_EXPIRES_S} seconds")
    if now > signed_at + expires:
        raise SignatureError("Signature expired: the presigned URL is past its X-Amz-Expires")
    if signed_at - now > MAX_SKEW_S:
        raise SignatureError("the presigned URL is dated in the future (check the clock)")
    unsigned = "&".join(
        part for part in query.split("&") if not part.startswith("X-Amz-Signature=")
    )
    scope = (date, region, service, terminator)
    try:  # botocore signs the (empty) body's hash; other SDKs sign UNSIGNED-PAYLOAD
        _check(
            secret,
            stamp,
            scope,
            canonical_request(method, raw_path, unsigned, headers, signed, b""),
            signature,
        )
    except SignatureError:
        request = canonical_request(
            method, raw_path, unsigned, headers, signed, b"", payload_hash=UNSIGNED
        )
        _check(secret, stamp, scope, request, signature)


def _check(
    secret: str, stamp: str, scope: tuple[str, str, str, str], request: str, signature: str
) -> None:
    date = scope[0]
    digest = hashlib.sha256(request.encode()).hexdigest()
    to_sign = "\n".join([ALGORITHM, stamp, "/".join(scope), digest])
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in scope[1:]:
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureError("signature does not match (is the secret key the API key?)")
