"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
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
