"""The console's session cookie and CSRF token (tables)."""

from __future__ import annotations

import pytest

from mlambda.gateway.console.session import (
    Session,
    csrf_ok,
    csrf_token,
    issue,
    secret_for,
    verify,
)

SECRET = secret_for("admin-key")
NOW = 1_796_000_000.0


def test_a_cookie_names_its_key_until_it_expires():
    cookie = issue(SECRET, "MLKabc", NOW, "n1", lifetime_s=60)
    assert verify(SECRET, cookie, NOW + 59) == Session("MLKabc", int(NOW) + 60, "n1")
    assert verify(SECRET, cookie, NOW + 60) is None


def _tampered(cookie: str) -> str:
    body, signature = cookie.split(".")
    return body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + signature


@pytest.mark.parametrize(
    "forged",
    [
        lambda c: _tampered(c),  # a changed body
        lambda c: c.split(".")[0] + ".",  # no signature
        lambda c: c.split(".")[0],  # no separator
        lambda c: issue(secret_for("another-key"), "MLKabc", NOW, "n1"),  # another secret
        lambda c: "",
        lambda c: "not-base64!.sig",
    ],
)
def test_a_forged_or_changed_cookie_is_refused(forged):
    assert verify(SECRET, forged(issue(SECRET, "MLKabc", NOW, "n1")), NOW) is None


def test_the_csrf_token_is_bound_to_the_session():
    one, two = Session("MLKabc", 1, "n1"), Session("MLKabc", 1, "n2")
    assert csrf_ok(SECRET, one, csrf_token(SECRET, one))
    assert not csrf_ok(SECRET, two, csrf_token(SECRET, one))
    assert not csrf_ok(SECRET, one, "")
    assert not csrf_ok(secret_for("x"), one, csrf_token(SECRET, one))
