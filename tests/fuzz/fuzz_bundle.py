"""atheris on the bundle reader and unpacker: any tar (gzip'd here, so mutations reach the tar
structure) is a spec or InvalidSpec, and unpacking writes nothing outside its target.

Run: python tests/fuzz/fuzz_bundle.py CORPUS -max_total_time=30 (test_fuzzers.py does)."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from mlambda import bundle, unpacking
    from mlambda.errors import InvalidSpec

LIMITS = unpacking.Limits(max_bytes=1 << 20, max_files=64, max_ratio=200)
SCRATCH = Path(tempfile.mkdtemp(prefix="mlambda-fuzz-"))


def one_input(data: bytes) -> None:
    archive = gzip.compress(data, compresslevel=1)
    with contextlib.suppress(InvalidSpec):
        bundle.read_spec(archive, limits=LIMITS)
    target = SCRATCH / "inside" / "task"
    with contextlib.suppress(InvalidSpec):
        bundle.unpack(archive, target, LIMITS)
    escaped = [p for p in SCRATCH.iterdir() if p.name != "inside"]
    assert not escaped, escaped  # nothing lands beside the target's parent
    for path in target.rglob("*") if target.exists() else []:
        real = os.path.realpath(path)
        assert real.startswith(str(SCRATCH / "inside")), (path, real)
    if target.exists():
        bundle.make_removable(target)
        shutil.rmtree(target)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
