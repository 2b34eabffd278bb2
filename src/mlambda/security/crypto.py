"""Envelope encryption at rest: one random data key per artifact or secret, wrapped by a master key.

Each sealed thing gets its own 256-bit data key and is encrypted with AES-256-GCM; the data key
is stored beside it, itself encrypted ("wrapped") by the primary master key of a keyring.
Rotating the master key re-wraps the small data-key records only; artifacts are not touched.

Formats (all versioned where they can change):

* ciphertext: ``nonce (12 bytes) || AES-GCM(data_key, plaintext, aad)`` (the GCM tag is last);
* wrapped data key: the ASCII JSON record ``{"v":1,"master":<id>,"nonce":<b64>,"key":<b64>}``,
  the wrap being AES-GCM under the master key with ``b"mlambda-data-key:" + id`` as associated
  data, so a record cannot be moved to another master id unnoticed;
* value token: ``mlenc1:`` + urlsafe base64 (no padding) of
  ``len(record) (2 bytes, big-endian) || record || ciphertext``, for secrets in a database column.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import struct
import threading
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# AES-GCM as the library implements it takes at most 2**31 - 1 bytes in one call.
MAX_PLAINTEXT_BYTES = 2**31 - 1
RECORD_VERSION = 1
TOKEN_PREFIX = "mlenc1:"

_KEY_ID_DOMAIN = b"mlambda-master-key"
_WRAP_AAD_PREFIX = b"mlambda-data-key:"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_RECORD_LENGTH = struct.Struct(">H")
_GENERATE_HINT = "generate one with: openssl rand -base64 32"


class MasterKeyError(Exception):
    """A master key is missing, malformed, or not the one data was wrapped with; the message says
    what to do (never contains key material)."""


class DecryptionError(Exception):
    """Ciphertext or wrapped key failed authentication (tampered, or wrong key / associated
    data), or a record or token is malformed."""


def key_id(key: bytes) -> str:
    """The public name of a master key: 16 hex chars of a domain-separated SHA-256."""
    return hashlib.sha256(_KEY_ID_DOMAIN + key).hexdigest()[:16]


class MasterKeys:
    """An ordered keyring of 32-byte master keys; the first is the primary (wraps new data keys),
    the others only unwrap. Each key's id is the first 16 hex chars of
    sha256(b"mlambda-master-key" + key).

    Immutable; duplicates are dropped keeping the first occurrence. ``repr`` shows ids only."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        by_id: dict[str, bytes] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise MasterKeyError(
                    f"a master key must be {KEY_BYTES} bytes, got {len(key)}; {_GENERATE_HINT}"
                )
            by_id.setdefault(key_id(key), bytes(key))
        if not by_id:
            raise MasterKeyError(f"the keyring holds no master key; {_GENERATE_HINT}")
        self._by_id = by_id

    @classmethod
    def generate(cls) -> MasterKeys:
        return cls([AESGCM.generate_key(KEY_BYTES * 8)])

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKeys:
        """One base64 key (standard or urlsafe, padding optional) of exactly 32 bytes per line;
        blank lines and ``#`` comments are ignored. Errors name ``source`` and the line number
        but never echo the line, which may be a real key with a typo."""
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            encoded = line.split("#", 1)[0].strip()
            if encoded:
                keys.append(_decode_key_line(encoded, f"{source}, line {number}"))
        if not keys:
            raise MasterKeyError(
                f"no master key in {source}: put one base64 key of {KEY_BYTES} bytes per line; "
                + _GENERATE_HINT
            )
        return cls(keys)

    def to_text(self) -> str:
        keys = "".join(
            base64.urlsafe_b64encode(key).decode() + "\n" for key in self._by_id.values()
        )
        return (
            "# mlambda master keys: the first wraps new data keys, the others only unwrap\n" + keys
        )

    @property
    def primary_id(self) -> str:
        return next(iter(self._by_id))

    @property
    def ids(self) -> list[str]:
        return list(self._by_id)

    def key(self, key_id: str) -> bytes:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise MasterKeyError(
                f"master key {key_id} is not in the keyring (it holds {', '.join(self.ids)}); "
                "the master key the data was written with must be in the keyring: "
                "put it after the new primary"
            ) from None

    def with_new_primary(self) -> MasterKeys:
        return self.with_primary_first(MasterKeys.generate())

    def with_primary_first(self, primary: MasterKeys) -> MasterKeys:
        """``primary``'s keys first, then ours that it does not already hold."""
        return MasterKeys([*primary._by_id.values(), *self._by_id.values()])

    def only_primary(self) -> MasterKeys:
        return MasterKeys([self._by_id[self.primary_id]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKeys) and self.ids == other.ids

    def __hash__(self) -> int:
        return hash(tuple(self.ids))

    def __repr__(self) -> str:
        return f"MasterKeys(ids={self.ids!r})"


def _decode_key_line(encoded: str, where: str) -> bytes:
    standard = encoded.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where}: not base64; {_GENERATE_HINT}") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            f"{where}: decodes to {len(key)} bytes, a master key is exactly {KEY_BYTES}; "
            + _GENERATE_HINT
        )
    return key


class Envelope:
    """Seals and opens data under per-item data keys wrapped by ``keys``' primary.

    ``keys`` is a plain attribute: a rotation swaps in a ring whose new primary wraps from then
    on while the older keys still open what they wrapped."""

    def __init__(self, keys: MasterKeys) -> None:
        self.keys = keys
        # Held by whoever seals and stores (so a rotation cannot miss what is being written)
        # and by a rotation while it swaps keys and re-wraps.
        self.lock = threading.RLock()

    def seal(self, plaintext: bytes, aad: bytes = b"") -> tuple[bytes, bytes]:
        """Encrypt under a fresh data key; returns ``(ciphertext, wrapped data key record)``.

        ``aad`` (say, the artifact's digest or the secret's name) must be given again to open."""
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise ValueError(
                f"cannot seal {len(plaintext)} bytes in one piece; "
                f"AES-GCM here takes at most {MAX_PLAINTEXT_BYTES} bytes"
            )
        data_key = AESGCM.generate_key(KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)
        return ciphertext, self._wrap(data_key)

    def open(self, ciphertext: bytes, wrapped: bytes, aad: bytes = b"") -> bytes:
        data_key = self._unwrap(wrapped)
        if len(ciphertext) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError(
                f"ciphertext is {len(ciphertext)} bytes, shorter than a nonce and a tag "
                f"({NONCE_BYTES + TAG_BYTES}): it is truncated or not sealed by mlambda"
            )
        # A view, not a slice: artifacts run to hundreds of MB and a slice would copy them.
        body = memoryview(ciphertext)[NONCE_BYTES:]
        try:
            return AESGCM(data_key).decrypt(ciphertext[:NONCE_BYTES], body, aad)
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication: it was altered, or it is opened with "
                "associated data or a wrapped key other than those it was sealed with"
            ) from None

    def rewrap(self, wrapped: bytes) -> bytes:
        """The same data key, wrapped by the primary. A record the primary already wraps comes
        back unchanged (after it is verified), so a repeated rotation writes nothing."""
        data_key = self._unwrap(wrapped)
        if self.wrapped_by(wrapped) == self.keys.primary_id:
            return wrapped
        return self._wrap(data_key)

    def wrapped_by(self, wrapped: bytes) -> str:
        """The master key id a record names (not verified: that needs the key)."""
        return _parse_record(wrapped)[0]

    def seal_value(self, plaintext: bytes, aad: bytes = b"") -> str:
        """A self-contained ASCII token ``mlenc1:...`` holding the wrapped key and ciphertext."""
        ciphertext, wrapped = self.seal(plaintext, aad)
        return _join_token(wrapped, ciphertext)

    def open_value(self, token: str, aad: bytes = b"") -> bytes:
        wrapped, ciphertext = _split_token(token)
        return self.open(ciphertext, wrapped, aad)

    def rewrap_value(self, token: str) -> str:
        wrapped, ciphertext = _split_token(token)
        rewrapped = self.rewrap(wrapped)
        return token if rewrapped == wrapped else _join_token(rewrapped, ciphertext)

    def _wrap(self, data_key: bytes) -> bytes:
        master_id = self.keys.primary_id
        nonce = os.urandom(NONCE_BYTES)
        sealed_key = AESGCM(self.keys.key(master_id)).encrypt(
            nonce, data_key, _WRAP_AAD_PREFIX + master_id.encode()
        )
        return _format_record(master_id, nonce, sealed_key)

    def _unwrap(self, wrapped: bytes) -> bytes:
        master_id, nonce, sealed_key = _parse_record(wrapped)
        master_key = self.keys.key(master_id)
        try:
            data_key = AESGCM(master_key).decrypt(
                nonce, sealed_key, _WRAP_AAD_PREFIX + master_id.encode()
            )
        except InvalidTag:
            raise DecryptionError(
                f"the data key wrapped by master key {master_id} failed authentication: "
                "the record was altered"
            ) from None
        return data_key


def _format_record(master_id: str, nonce: bytes, sealed_key: bytes) -> bytes:
    record = {
        "v": RECORD_VERSION,
        "master": master_id,
        "nonce": base64.b64encode(nonce).decode(),
        "key": base64.b64encode(sealed_key).decode(),
    }
    return json.dumps(record, separators=(",", ":")).encode()


def _parse_record(wrapped: bytes) -> tuple[str, bytes, bytes]:
    """``(master id, wrap nonce, wrapped key)`` of a record, or DecryptionError saying why not."""
    try:
        record = json.loads(wrapped.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecryptionError("the wrapped data key is not a JSON record: it is damaged") from None
    if not isinstance(record, dict):
        raise DecryptionError("the wrapped data key is not a JSON object: it is damaged")
    version = record.get("v")
    # `type(...) is int`: JSON true would otherwise pass as version 1.
    if type(version) is not int or version != RECORD_VERSION:
        raise DecryptionError(
            f"the wrapped data key has version {version!r}; this mlambda reads version "
            f"{RECORD_VERSION} (upgrade mlambda if the record is newer)"
        )
    master_id = record.get("master")
    if not isinstance(master_id, str) or not _KEY_ID.fullmatch(master_id):
        raise DecryptionError("the wrapped data key names no valid master key id: it is damaged")
    nonce = _b64_field(record, "nonce", NONCE_BYTES)
    sealed_key = _b64_field(record, "key", KEY_BYTES + TAG_BYTES)
    return master_id, nonce, sealed_key


def _b64_field(record: dict[str, object], name: str, size: int) -> bytes:
    value = record.get(name)
    decoded = _b64decode_canonical(value, altchars=None) if isinstance(value, str) else None
    if decoded is None or len(decoded) != size:
        raise DecryptionError(
            f"the wrapped data key's {name!r} is not {size} bytes of base64: it is damaged"
        )
    return decoded


def _b64decode_canonical(text: str, altchars: bytes | None) -> bytes | None:
    """Decoded bytes, or None unless ``text`` is exactly how they encode: the spare low bits of
    the last character are otherwise ignored, and a flipped bit there would go unnoticed."""
    try:
        decoded = base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None
    reencoded = base64.b64encode(decoded, altchars=altchars).decode()
    return decoded if reencoded == text else None


def _join_token(wrapped: bytes, ciphertext: bytes) -> str:
    payload = _RECORD_LENGTH.pack(len(wrapped)) + wrapped + ciphertext
    return TOKEN_PREFIX + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _split_token(token: str) -> tuple[bytes, bytes]:
    """``(wrapped record, ciphertext)`` of a value token, or DecryptionError saying why not."""
    if not token.startswith(TOKEN_PREFIX):
        raise DecryptionError(
            f"not an encrypted value: it does not start with {TOKEN_PREFIX!r} "
            "(was it stored before encryption at rest was enabled?)"
        )
    encoded = token[len(TOKEN_PREFIX) :]
    payload = _b64decode_canonical(encoded + "=" * (-len(encoded) % 4), altchars=b"-_")
    if payload is None or len(payload) < _RECORD_LENGTH.size:
        raise DecryptionError(
            "the encrypted value is empty or not valid urlsafe base64: it is damaged"
        )
    (record_length,) = _RECORD_LENGTH.unpack_from(payload)
    record_end = _RECORD_LENGTH.size + record_length
    if len(payload) < record_end:
        raise DecryptionError("the encrypted value is truncated: it is damaged")
    return payload[_RECORD_LENGTH.size : record_end], payload[record_end:]
