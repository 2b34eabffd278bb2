"""The key store: a key's secret is shown once, kept hashed and sealed, and refused once it is
expired or revoked."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlambda.errors import InvalidRequest, NotFound, Unauthorized
from mlambda.security.crypto import Envelope, MasterKeys
from mlambda.security.keys import KeyStore, Need, parse_token
from mlambda.security.ratelimit import Rate


@pytest.fixture
def store(tmp_path) -> KeyStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/keys.db")
    return KeyStore(engine, Envelope(MasterKeys.generate()))


def test_a_created_key_authenticates_with_its_scopes(store):
    key, token = store.create("bot", ["invoke:fraud*", "read"], now=100.0)
    key_id, secret = parse_token(token)  # type: ignore[misc]
    assert key_id == key.id and key.id.startswith("MLK") and len(key.id) == 20
    principal = store.authenticate(key_id, secret, now=101.0)
    assert principal.allows(Need("invoke", "fraud-eu"))
    assert not principal.allows(Need("deploy", "fraud"))


def test_the_secret_is_kept_only_hashed_and_sealed(store, tmp_path):
    _, token = store.create("bot", ["read"])
    _, secret = parse_token(token)  # type: ignore[misc]
    assert secret.encode() not in (tmp_path / "keys.db").read_bytes()


def test_the_signing_secret_is_unsealed_for_sigv4(store):
    key, token = store.create("bot", ["invoke"], rate=Rate(5, 10))
    secret, principal = store.signing_secret(key.id)
    assert token.endswith(secret)
    assert principal.rate == Rate(5, 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, k: None, "expired"),
        (lambda s, k: s.revoke(k.id, now=150.0), "revoked"),
    ],
)
def test_expired_or_revoked_keys_are_refused_saying_so(store, change, message):
    key, token = store.create("bot", ["read"], expires_in_s=100, now=100.0)
    change(store, key)
    key_id, secret = parse_token(token)  # type: ignore[misc]
    with pytest.raises(Unauthorized, match=message):
        store.authenticate(key_id, secret, now=250.0)
    with pytest.raises(Unauthorized, match=message):
        store.signing_secret(key_id, now=250.0)


def test_a_wrong_secret_or_unknown_id_is_refused_alike(store):
    key, _ = store.create("bot", ["read"])
    for key_id, secret in ((key.id, "wrong"), ("MLKAAAAAAAAAAAAAAAAA", "x")):
        with pytest.raises(Unauthorized, match="Invalid API key"):
            store.authenticate(key_id, secret)


@pytest.mark.parametrize(
    ("name", "scopes", "expires", "message"),
    [
        ("bot", [], None, "at least one scope"),
        ("bad name", ["read"], None, "key name"),
        ("bot", ["superuser"], None, "scope"),
        ("bot", ["read"], -5, "future"),
    ],
)
def test_bad_key_requests_are_400(store, name, scopes, expires, message):
    with pytest.raises(InvalidRequest, match=message):
        store.create(name, scopes, expires_in_s=expires)


def test_revoking_an_unknown_key_is_404(store):
    with pytest.raises(NotFound, match="keys list"):
        store.revoke("MLKNOPE")


def test_rewrap_reseals_every_secret_under_the_new_primary(store):
    key, token = store.create("bot", ["read"])
    store.envelope.keys = store.envelope.keys.with_new_primary()
    assert store.rewrap() == 1
    store.envelope.keys = store.envelope.keys.only_primary()
    secret, _ = store.signing_secret(key.id)
    assert token.endswith(secret)
