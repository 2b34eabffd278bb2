"""The atheris fuzzers run for a bounded time and find nothing (a crash fails the test with the
input that caused it). MLAMBDA_FUZZ_SECONDS sets the time per fuzzer (default 10)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent.parent / "fuzz"
SECONDS = os.environ.get("MLAMBDA_FUZZ_SECONDS", "10")


def _seed(corpus: Path) -> None:
    """A valid bundle's tar, and one with a link, to start the mutations from."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (
            ("mlambda.toml", b'[function]\nname = "f"\nhandler = "app:handler"\n'),
            ("app.py", b"def handler(e, c):\n    return e\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("alias.py")
        link.type, link.linkname = tarfile.SYMTYPE, "app.py"
        tar.addfile(link)
    (corpus / "bundle").write_bytes(raw.getvalue())
    (corpus / "spec").write_bytes(b'[function]\nname = "f"\nhandler = "app:handler"\n')


@pytest.mark.parametrize("fuzzer", ["fuzz_spec.py", "fuzz_bundle.py"])
def test_the_fuzzer_finds_no_crash(fuzzer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _seed(corpus)
    done = subprocess.run(
        [
            sys.executable,
            str(FUZZ / fuzzer),
            str(corpus),
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=int(SECONDS) + 120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
