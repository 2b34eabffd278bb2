"""AWS Signature Version 4 verification, so that boto3 and the AWS CLI can call the Lambda API.

A key made with ``mlambda keys create`` signs with its id as the access key id and its secret;
the admin key signs with any other access key id (``aws_secret_access_key = <contents of
admin.key>``). Verification recomputes the signature from the request, as the SigV4
specification defines it, over the SHA-256 of the body actually received (a request whose
``x-amz-content-sha256`` says anything else, ``UNSIGNED-PAYLOAD`` included, is refused, so a
captured request cannot be replayed with another body), and compares in constant time.
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


def canonical_request(
    method: str, raw_path: str, query: str, headers: dict[str, str], signed: list[str], body: bytes
) -> str:
    payload_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
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
    scope = f"{date}/{region}/{service}/{terminator}"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureError("signature does not match (is the secret key the API key?)")
