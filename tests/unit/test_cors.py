"""Function URL CORS, as Lambda's function URL config answers (pure decisions, by table)."""

from __future__ import annotations

import pytest

from mlambda.errors import InvalidSpec
from mlambda.gateway.cors import is_preflight, preflight, response_headers
from mlambda.spec import parse_spec, spec_from_dict
from mlambda.urlconfig import CorsSpec

SITE = CorsSpec(
    allow_origins=["https://app.example.com"],
    allow_methods=["GET", "POST"],
    allow_headers=["content-type", "x-tenant"],
    expose_headers=["x-request-id"],
    max_age=600,
    allow_credentials=True,
)
OPEN = CorsSpec(allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])


def _ask(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return asked


@pytest.mark.parametrize(
    ("cors", "asked", "expected"),
    [
        (
            SITE,
            _ask("https://app.example.com"),
            {
                "access-control-allow-origin": "https://app.example.com",
                "access-control-allow-credentials": "true",
                "vary": "Origin",
                "access-control-allow-methods": "GET, POST",
                "access-control-allow-headers": "content-type, x-tenant",
                "access-control-max-age": "600",
            },
        ),
        (SITE, _ask("https://evil.example.com"), {}),
        (SITE, _ask("https://app.example.com", "DELETE"), {}),
        (
            OPEN,
            _ask("http://localhost:3000", "PUT", "x-a, x-b"),
            {
                "access-control-allow-origin": "*",
                "access-control-allow-methods": "*",
                "access-control-allow-headers": "x-a, x-b",
            },
        ),
    ],
)
def test_preflight_answers_what_is_allowed_and_nothing_else(cors, asked, expected):
    assert dict(preflight(cors, asked)) == expected


@pytest.mark.parametrize(
    ("cors", "origin", "expected"),
    [
        (
            SITE,
            "https://app.example.com",
            {
                "access-control-allow-origin": "https://app.example.com",
                "access-control-allow-credentials": "true",
                "vary": "Origin",
                "access-control-expose-headers": "x-request-id",
            },
        ),
        (SITE, "https://evil.example.com", {}),
        (SITE, None, {}),
        (OPEN, "https://any.example", {"access-control-allow-origin": "*"}),
    ],
)
def test_a_response_carries_cors_headers_for_allowed_origins_only(cors, origin, expected):
    assert dict(response_headers(cors, origin)) == expected


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("OPTIONS", {"origin": "o", "access-control-request-method": "GET"}, True),
        ("OPTIONS", {"origin": "o"}, False),
        ("GET", {"origin": "o", "access-control-request-method": "GET"}, False),
    ],
)
def test_only_a_browsers_preflight_is_a_preflight(method, headers, expected):
    assert is_preflight(method, headers) is expected


BASE = '[function]\nname = "web"\nhandler = "app:handler"\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[function.url]\nauth_type = "PUBLIC"\n', "auth_type must be one of KEY, AWS_IAM, NONE"),
        ('[function.url]\nauth = "NONE"\n', "unknown field function.url.auth (did you mean"),
        ("[function.url.cors]\nallow_origin = ['*']\n", "did you mean function.url.cors.allow_"),
        ("[function.url.cors]\nallow_origins = ['example.com']\n", "invalid 'example.com'"),
        ("[function.url.cors]\nallow_methods = ['FETCH']\n", "allow_methods has 'FETCH'"),
        ("[function.url.cors]\nmax_age = 90000\n", "max_age must be between 0 and 86400"),
        (
            "[function.url.cors]\nallow_origins = ['*']\nallow_credentials = true\n",
            "allow_credentials needs named origins",
        ),
    ],
)
def test_a_bad_url_section_is_refused_at_deploy_naming_the_field(extra, message):
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(BASE + extra)
    assert message in str(caught.value)


def test_a_url_section_is_read_and_round_trips():
    spec = parse_spec(
        BASE + '[function.url]\nauth_type = "NONE"\n[function.url.cors]\nallow_origins = ["*"]\n'
    )
    assert spec.url is not None and spec.url.public and spec.url.cors is not None
    assert spec.url.cors.allow_origins == ["*"]
    assert spec_from_dict(spec.to_dict()) == spec
