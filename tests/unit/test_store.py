"""Artifact stores: the contract of store/base.py, kept by LocalStore and the MemoryStore double."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from mlambda.errors import ArtifactCorrupted
from mlambda.store import ArtifactStore, LocalStore, MemoryStore, digest_of

DATA = b"\x1f\x8b bundle bytes \x00\xff"


def _make(kind: str, root: Path) -> ArtifactStore:
    return LocalStore(root / "artifacts") if kind == "local" else MemoryStore()


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path) -> ArtifactStore:
    return _make(request.param, tmp_path)


def _corrupt(store: ArtifactStore, digest: str) -> None:
    """Flip one byte of the stored copy, as a bad disk or a stray write would."""
    if isinstance(store, MemoryStore):
        data = bytearray(store.objects[digest])
        data[0] ^= 0xFF
        store.objects[digest] = bytes(data)
        return
    assert isinstance(store, LocalStore)
    path = store.root / "sha256" / digest[7:9] / digest[7:]
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def test_digest_is_the_sha256_of_the_bytes():
    assert digest_of(DATA) == "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("data", [DATA, b"", b"x" * 100_000])
def test_put_then_get_returns_the_same_bytes(store, data):
    digest = store.put(data)
    assert digest == digest_of(data)
    assert store.get(digest) == data


def test_put_is_idempotent(store):
    assert store.put(DATA) == store.put(DATA)
    assert store.get(digest_of(DATA)) == DATA


def test_has_tells_whether_a_digest_is_stored(store):
    assert not store.has(digest_of(DATA))
    store.put(DATA)
    assert store.has(digest_of(DATA))


def test_a_missing_digest_raises_key_error(store):
    with pytest.raises(KeyError):
        store.get(digest_of(b"never stored"))


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256",
        "sha256:",
        "md5:" + "0" * 32,
        "sha512:" + "0" * 64,
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha256:../../../../etc/passwd",
        "sha256:" + "../" * 21 + "x",
    ],
)
def test_a_malformed_digest_raises_key_error(store, digest):
    store.put(DATA)
    with pytest.raises(KeyError):
        store.get(digest)
    assert not store.has(digest)


def test_a_corrupted_artifact_raises_artifact_corrupted_on_get(store):
    digest = store.put(DATA)
    _corrupt(store, digest)
    with pytest.raises(ArtifactCorrupted) as caught:
        store.get(digest)
    assert digest in str(caught.value)
    assert "redeploy" in str(caught.value)
    assert caught.value.status == 500
    assert caught.value.error_type == "ArtifactCorruptedException"


def test_delete_removes_and_is_idempotent(store):
    digest = store.put(DATA)
    other = store.put(b"other")
    store.delete(digest)
    store.delete(digest)
    assert not store.has(digest)
    assert store.get(other) == b"other"
    with pytest.raises(KeyError):
        store.get(digest)


@pytest.mark.parametrize(
    "kind",
    [
        "local",
        "memory",
    ],
)
def test_putting_good_bytes_again_repairs_a_corrupted_artifact(kind, tmp_path):
    store = _make(kind, tmp_path)
    digest = store.put(DATA)
    _corrupt(store, digest)
    assert store.put(DATA) == digest
    assert store.get(digest) == DATA


def test_local_store_keeps_artifacts_under_their_digest(tmp_path):
    store = LocalStore(tmp_path)
    digest = store.put(DATA)
    hexdigest = digest.removeprefix("sha256:")
    path = tmp_path / "sha256" / hexdigest[:2] / hexdigest
    assert path.read_bytes() == DATA


def test_local_store_files_are_read_only_to_the_platform_and_no_temporary_files_remain(tmp_path):
    store = LocalStore(tmp_path)
    store.put(DATA)
    store.put(DATA)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o400


def test_local_store_artifacts_outlive_the_store_object(tmp_path):
    digest = LocalStore(tmp_path).put(DATA)
    assert LocalStore(tmp_path).get(digest) == DATA


def test_local_store_delete_of_a_malformed_digest_touches_nothing(tmp_path):
    outside = tmp_path / "escape"
    outside.write_bytes(DATA)
    LocalStore(tmp_path / "store").delete("sha256:../../escape")
    assert outside.read_bytes() == DATA


def test_an_encrypted_local_store_keeps_no_plaintext_and_checks_what_it_reads(tmp_path):
    from mlambda.errors import ArtifactCorrupted
    from mlambda.security.crypto import Envelope, MasterKeys

    marker = b"plaintext-marker-in-the-model" * 10
    store = LocalStore(tmp_path, Envelope(MasterKeys.generate()))
    digest = store.put(marker)
    assert digest == digest_of(marker)  # addressed by the plaintext's digest
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2 and all(marker not in p.read_bytes() for p in files)
    assert store.get(digest) == marker
    artifact = next(p for p in files if not p.name.endswith(".key"))
    raw = bytearray(artifact.read_bytes())
    raw[-1] ^= 1
    artifact.chmod(0o600)
    artifact.write_bytes(bytes(raw))
    with pytest.raises(ArtifactCorrupted, match="redeploy"):
        store.get(digest)
    assert store.put(marker) == digest  # a redeploy repairs it
    assert store.get(digest) == marker


def test_plaintext_artifacts_from_before_are_encrypted_and_rewrapped(tmp_path):
    from mlambda.security.crypto import Envelope, MasterKeys

    digest = LocalStore(tmp_path).put(DATA)
    envelope = Envelope(MasterKeys.generate())
    store = LocalStore(tmp_path, envelope)
    assert store.get(digest) == DATA  # still readable as it was
    assert store.encrypt_plaintext() == 1
    assert DATA not in next(p for p in tmp_path.rglob("*") if p.name == digest[7:]).read_bytes()
    envelope.keys = envelope.keys.with_new_primary()
    assert store.rewrap() == 1 and store.rewrap() == 0
    envelope.keys = envelope.keys.only_primary()
    assert store.get(digest) == DATA
