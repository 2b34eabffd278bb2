"""The fingerprints serve keeps of its --deploy directories: the latest few, in the data dir."""

from __future__ import annotations

from mlambda.startup import FINGERPRINTS_FILE, MAX_FINGERPRINTS, Fingerprints
from mlambda.unpacking import Limits


def test_fingerprints_keep_the_latest_and_survive_a_restart(tmp_path):
    path = tmp_path / FINGERPRINTS_FILE
    fingerprints = Fingerprints(path)
    keys = [Fingerprints.key(f"sha256:{n}", Limits()) for n in range(MAX_FINGERPRINTS + 10)]
    for n, key in enumerate(keys):
        fingerprints.put(key, f"sha256:d{n}")
    reread = Fingerprints(path).known
    assert list(reread) == keys[10:]
    assert reread[keys[-1]] == f"sha256:d{len(keys) - 1}"


def test_the_key_names_the_limits_the_bundle_was_checked_against():
    stricter = Limits(max_files=1)
    assert Fingerprints.key("sha256:f", Limits()) != Fingerprints.key("sha256:f", stricter)


def test_an_unreadable_fingerprints_file_means_packing_everything(tmp_path):
    (tmp_path / FINGERPRINTS_FILE).write_text("{not json")
    assert Fingerprints(tmp_path / FINGERPRINTS_FILE).known == {}
