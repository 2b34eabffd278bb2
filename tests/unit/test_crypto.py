"""Envelope encryption: round trips, associated data, tampering, rotation, the key format."""

from __future__ import annotations

import base64
import json

import pytest

from mlambda.security.crypto import DecryptionError, Envelope, MasterKeyError, MasterKeys

MARKER = b"PLAINTEXT-MARKER-do-not-leak"
FIXED_KEY = bytes(range(32))
# Bytes whose standard base64 holds '+' and '/', so the urlsafe spelling differs.
SLASHY_KEY = bytes([0xFB, 0xEF, 0xFF] * 10 + [0xFB, 0xEF])


@pytest.fixture
def envelope() -> Envelope:
    return Envelope(MasterKeys.generate())


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _flip_char(token: str, bit: int) -> str:
    return _flip(token.encode(), bit).decode("latin-1")


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024], ids=["empty", "one-byte", "one-mib"])
def test_sealed_bytes_open_to_the_same_bytes(envelope, size):
    plaintext = (MARKER * (size // len(MARKER) + 1))[:size]
    ciphertext, wrapped = envelope.seal(plaintext, aad=b"sha256:abc")
    assert len(ciphertext) == 12 + size + 16
    assert envelope.open(ciphertext, wrapped, aad=b"sha256:abc") == plaintext


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024], ids=["empty", "one-byte", "one-mib"])
def test_sealed_values_open_to_the_same_bytes(envelope, size):
    plaintext = (MARKER * (size // len(MARKER) + 1))[:size]
    token = envelope.seal_value(plaintext, aad=b"secret:db")
    assert token.startswith("mlenc1:")
    assert token.isascii()
    assert envelope.open_value(token, aad=b"secret:db") == plaintext


def test_the_plaintext_appears_nowhere_in_what_is_stored(envelope):
    ciphertext, wrapped = envelope.seal(MARKER * 4)
    token = envelope.seal_value(MARKER * 4)
    assert MARKER not in ciphertext
    assert MARKER not in wrapped
    assert MARKER not in base64.urlsafe_b64decode(token.removeprefix("mlenc1:") + "==")


def test_two_seals_of_the_same_plaintext_differ(envelope):
    first, first_wrapped = envelope.seal(MARKER)
    second, second_wrapped = envelope.seal(MARKER)
    assert first[:12] != second[:12]  # a fresh nonce
    assert first != second
    assert first_wrapped != second_wrapped  # a fresh data key
    assert envelope.seal_value(MARKER) != envelope.seal_value(MARKER)


@pytest.mark.parametrize(
    ("sealed_with", "opened_with"),
    [(b"model:a", b"model:b"), (b"model:a", b""), (b"", b"model:a")],
)
def test_opening_with_other_associated_data_fails(envelope, sealed_with, opened_with):
    ciphertext, wrapped = envelope.seal(MARKER, aad=sealed_with)
    with pytest.raises(DecryptionError, match="associated data"):
        envelope.open(ciphertext, wrapped, aad=opened_with)
    with pytest.raises(DecryptionError):
        envelope.open_value(envelope.seal_value(MARKER, aad=sealed_with), aad=opened_with)


def test_a_flipped_bit_anywhere_in_the_ciphertext_fails(envelope):
    ciphertext, wrapped = envelope.seal(MARKER)
    for bit in range(len(ciphertext) * 8):
        with pytest.raises(DecryptionError):
            envelope.open(_flip(ciphertext, bit), wrapped)


def test_a_flipped_bit_anywhere_in_the_wrapped_key_fails(envelope):
    ciphertext, wrapped = envelope.seal(MARKER)
    master_id = envelope.keys.primary_id.encode()
    id_start = wrapped.index(master_id)
    for bit in range(len(wrapped) * 8):
        # A flip inside the id can spell another valid id: that reads as an unknown master key.
        in_id = id_start <= bit // 8 < id_start + len(master_id)
        expected = (DecryptionError, MasterKeyError) if in_id else DecryptionError
        with pytest.raises(expected):
            envelope.open(ciphertext, _flip(wrapped, bit))


def test_a_flipped_bit_anywhere_in_a_value_token_fails(envelope):
    token = envelope.seal_value(MARKER)
    for bit in range(len(token) * 8):
        # As above: the token embeds the master id, and a flip there names an unknown key.
        with pytest.raises((DecryptionError, MasterKeyError)):
            envelope.open_value(_flip_char(token, bit))


def test_a_truncated_ciphertext_fails_saying_so(envelope):
    ciphertext, wrapped = envelope.seal(MARKER)
    with pytest.raises(DecryptionError, match="shorter than a nonce and a tag"):
        envelope.open(ciphertext[:20], wrapped)


def test_the_wrapped_key_is_a_small_versioned_record_naming_the_primary(envelope):
    _, wrapped = envelope.seal(MARKER)
    record = json.loads(wrapped)
    assert set(record) == {"v", "master", "nonce", "key"}
    assert record["v"] == 1
    assert record["master"] == envelope.keys.primary_id == envelope.wrapped_by(wrapped)
    assert len(base64.b64decode(record["nonce"])) == 12
    assert len(base64.b64decode(record["key"])) == 32 + 16


def _record_with(envelope: Envelope, **changes: object) -> bytes:
    _, wrapped = envelope.seal(MARKER)
    record = json.loads(wrapped)
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("make_record", "message"),
    [
        pytest.param(lambda e: b"not json", "not a JSON record", id="not-json"),
        pytest.param(lambda e: b"[1, 2]", "not a JSON object", id="a-list"),
        pytest.param(lambda e: b"\xff\xfe", "not a JSON record", id="not-ascii"),
        pytest.param(lambda e: _record_with(e, v=2), "version 2", id="newer-version"),
        pytest.param(lambda e: _record_with(e, v=True), "version True", id="version-true"),
        pytest.param(lambda e: _record_with(e, master="XYZ"), "no valid master", id="bad-id"),
        pytest.param(lambda e: _record_with(e, nonce=None), "'nonce'", id="no-nonce"),
        pytest.param(lambda e: _record_with(e, key="AAAA"), "'key' is not 48", id="short-key"),
        pytest.param(lambda e: _record_with(e, key="-_-_"), "'key'", id="urlsafe-key"),
    ],
)
def test_a_malformed_record_fails_saying_what_is_wrong(envelope, make_record, message):
    ciphertext, _ = envelope.seal(MARKER)
    with pytest.raises(DecryptionError, match=message):
        envelope.open(ciphertext, make_record(envelope))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("plain-secret", "does not start with 'mlenc1:'"),
        ("mlenc1:!!!!", "not valid urlsafe base64"),
        ("mlenc1:", "not valid urlsafe base64"),
        ("mlenc1:AP8", "truncated"),
    ],
)
def test_a_malformed_token_fails_saying_what_is_wrong(envelope, token, message):
    with pytest.raises(DecryptionError, match=message):
        envelope.open_value(token)


def test_after_rotation_old_data_opens_and_rewrapped_data_needs_only_the_new_key(envelope):
    old_keys = envelope.keys
    ciphertext, wrapped = envelope.seal(MARKER, aad=b"a")
    token = envelope.seal_value(MARKER, aad=b"t")

    envelope.keys = old_keys.with_new_primary()
    assert envelope.open(ciphertext, wrapped, aad=b"a") == MARKER
    rewrapped, retokened = envelope.rewrap(wrapped), envelope.rewrap_value(token)
    assert envelope.wrapped_by(rewrapped) == envelope.keys.primary_id != old_keys.primary_id

    envelope.keys = envelope.keys.only_primary()
    assert envelope.open(ciphertext, rewrapped, aad=b"a") == MARKER
    assert envelope.open_value(retokened, aad=b"t") == MARKER
    with pytest.raises(MasterKeyError, match=old_keys.primary_id) as raised:
        envelope.open(ciphertext, wrapped, aad=b"a")
    assert "must be in the keyring" in str(raised.value)
    assert "after the new primary" in str(raised.value)
    with pytest.raises(MasterKeyError, match=old_keys.primary_id):
        envelope.open_value(token, aad=b"t")


def test_rewrapping_what_the_primary_already_wraps_changes_nothing(envelope):
    _, wrapped = envelope.seal(MARKER)
    token = envelope.seal_value(MARKER)
    assert envelope.rewrap(wrapped) == wrapped
    assert envelope.rewrap_value(token) == token


def test_rewrapping_a_tampered_record_fails_even_under_the_primary(envelope):
    _, wrapped = envelope.seal(MARKER)
    record = json.loads(wrapped)
    record["nonce"] = base64.b64encode(bytes(12)).decode()
    with pytest.raises(DecryptionError, match="failed authentication"):
        envelope.rewrap(json.dumps(record).encode())


def test_a_key_id_is_stable_for_a_fixed_key():
    assert MasterKeys([FIXED_KEY]).primary_id == "e0902fcf5a1c94ea"


def test_the_keyring_never_shows_key_material_in_its_repr():
    keys = MasterKeys([FIXED_KEY])
    shown = repr(keys)
    assert keys.primary_id in shown
    assert base64.b64encode(FIXED_KEY).decode() not in shown
    assert str(FIXED_KEY) not in shown


def test_a_key_not_in_the_ring_is_refused_naming_it():
    with pytest.raises(MasterKeyError, match="0123456789abcdef"):
        MasterKeys([FIXED_KEY]).key("0123456789abcdef")


def test_a_new_primary_goes_first_and_the_old_keys_stay():
    keys = MasterKeys([FIXED_KEY])
    rotated = keys.with_new_primary()
    assert rotated.ids[1:] == keys.ids
    assert rotated.primary_id != keys.primary_id
    assert rotated.only_primary().ids == [rotated.primary_id]


def test_primary_first_puts_the_given_keys_first_and_drops_duplicates():
    ours = MasterKeys([FIXED_KEY, SLASHY_KEY])
    theirs = MasterKeys([SLASHY_KEY])
    assert ours.with_primary_first(theirs).ids == [theirs.primary_id, ours.primary_id]


def test_key_text_round_trips_primary_first():
    keys = MasterKeys.generate().with_new_primary()
    text = keys.to_text()
    assert text.startswith("#")
    assert MasterKeys.parse(text, "test") == keys


def test_keys_parse_in_standard_or_urlsafe_base64_with_or_without_padding():
    standard = base64.b64encode(SLASHY_KEY).decode()
    urlsafe = base64.urlsafe_b64encode(SLASHY_KEY).decode()
    assert "+" in standard or "/" in standard
    for spelling in [standard, urlsafe, standard.rstrip("="), urlsafe.rstrip("=")]:
        assert MasterKeys.parse(spelling, "test").key(MasterKeys([SLASHY_KEY]).primary_id)


def test_parsing_skips_comments_and_blanks_and_drops_duplicates_in_order():
    fixed, slashy = (base64.b64encode(key).decode() for key in (FIXED_KEY, SLASHY_KEY))
    text = f"# keyring\n\n  {slashy}  # the new one\n{fixed}\n{slashy}\n"
    keys = MasterKeys.parse(text, "test")
    assert keys.ids == [MasterKeys([SLASHY_KEY]).primary_id, MasterKeys([FIXED_KEY]).primary_id]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("# a comment\nsecret-ish!value\n", "line 2: not base64", id="not-base64"),
        pytest.param(
            base64.b64encode(b"sixteen byte key").decode(),
            "line 1: decodes to 16 bytes",
            id="too-short",
        ),
        pytest.param("\n# only comments\n", "no master key in /etc/m.key", id="empty"),
    ],
)
def test_parse_errors_name_the_source_and_line_but_never_echo_it(text, message):
    with pytest.raises(MasterKeyError, match=message) as raised:
        MasterKeys.parse(text, "/etc/m.key")
    assert "/etc/m.key" in str(raised.value)
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            assert line not in str(raised.value)


@pytest.mark.parametrize("keys", [[], [b"short"]], ids=["none", "wrong-size"])
def test_a_keyring_needs_at_least_one_key_of_32_bytes(keys):
    with pytest.raises(MasterKeyError, match="openssl rand -base64 32"):
        MasterKeys(keys)
