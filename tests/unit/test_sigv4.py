"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlambda.gateway import sigv4

URL = "http://127.0.0.1:8080/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST"


def _signed(body: bytes, secret: str = "mlk_secret") -> tuple[dict[str, str], bytes]:
    request = AWSRequest(method="POST", url=URL, data=body)
    SigV4Auth(Credentials("AKID", secret), "lambda", "us-east-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}, body


def _verify(headers: dict[str, str], body: bytes, secret: str = "mlk_secret") -> None:
    parts = urlsplit(URL)
    sigv4.verify(
        secret=secret,
        method="POST",
        raw_path=parts.path,
        query=parts.query,
        headers={**headers, "host": "127.0.0.1:8080"},
        body=body,
    )


def test_a_request_signed_with_the_key_verifies():
    _verify(*_signed(b'{"n": 1}'))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h, b: (h, b'{"n": 2}'), "does not match"),  # body changed after signing
        (lambda h, b: ({**h, "x-amz-date": "20000101T000000Z"}, b), "expired"),
        (
            lambda h, b: ({**h, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b),
            "SHA-256 of the body",
        ),
        (lambda h, b: ({**h, "authorization": "AWS4-HMAC-SHA1 x"}, b), "algorithm"),
    ],
)
def test_a_tampered_request_is_refused(tamper, message):
    headers, body = tamper(*_signed(b'{"n": 1}'))
    with pytest.raises(sigv4.SignatureError, match=message):
        _verify(headers, body)


def test_another_secret_is_refused():
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        _verify(*_signed(b"{}"), secret="mlk_other")


@pytest.mark.parametrize(
    ("skew", "accepted"), [(-240, True), (240, True), (-360, False), (360, False)]
)
def test_the_clock_skew_window_is_five_minutes(skew, accepted):
    import time

    headers, body = _signed(b"{}")
    parts = urlsplit(URL)
    verify = lambda: sigv4.verify(  # noqa: E731
        secret="mlk_secret",
        method="POST",
        raw_path=parts.path,
        query=parts.query,
        headers={**headers, "host": "127.0.0.1:8080"},
        body=body,
        now=time.time() + skew,
    )
    if accepted:
        verify()
    else:
        with pytest.raises(sigv4.SignatureError, match="5 minutes"):
            verify()


def test_a_declared_body_hash_must_be_the_body_sent():
    import hashlib

    headers, _ = _signed(b'{"n": 1}')
    headers["x-amz-content-sha256"] = hashlib.sha256(b'{"n": 1}').hexdigest()
    with pytest.raises(sigv4.SignatureError, match="SHA-256 of the body"):
        _verify(headers, b'{"n": 999}')


GET_URL = "http://127.0.0.1:8080/2015-03-31/functions/echo/configuration?Qualifier=live"


def _presigned(url: str = GET_URL, secret: str = "mlk_secret", expires: int = 60) -> str:
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials("AKID", secret), "lambda", "us-east-1", expires=expires).add_auth(
        request
    )
    return request.url


def _verify_presigned(url: str, secret: str = "mlk_secret", **kwargs) -> None:  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    sigv4.verify_presigned(
        secret=secret,
        method="GET",
        raw_path=parts.path,
        query=parts.query,
        headers={"host": "127.0.0.1:8080"},
        **kwargs,
    )


def test_a_url_presigned_by_botocore_verifies_and_names_its_key():
    url = _presigned()
    assert sigv4.is_presigned(urlsplit(url).query)
    assert sigv4.presigned_key_id(urlsplit(url).query) == "AKID"
    _verify_presigned(url)


@pytest.mark.parametrize(
    ("change", "message", "now_offset"),
    [
        (lambda u: u.replace("functions/echo", "functions/other"), "does not match", 0),
        (lambda u: u.replace("Qualifier=live", "Qualifier=prod"), "does not match", 0),
        (lambda u: u, "expired", 61),
        (lambda u: u, "future", -400),
        (lambda u: u.replace("X-Amz-Expires=60", "X-Amz-Expires=999999999"), "X-Amz-Expires", 0),
        (lambda u: u.replace("X-Amz-Date=", "X-Amz-Datum="), "presigned URL needs", 0),
    ],
)
def test_a_tampered_or_expired_presigned_url_is_refused(change, message, now_offset):
    url = _presigned()
    signed_at = sigv4.calendar.timegm(
        sigv4.time.strptime(dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    )
    with pytest.raises(sigv4.SignatureError, match=message):
        _verify_presigned(change(url), now=signed_at + now_offset)


def test_a_presigned_url_with_another_secret_is_refused():
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        _verify_presigned(_presigned(secret="mlk_other"))
