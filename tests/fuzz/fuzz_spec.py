"""atheris on the mlambda.toml parser: any text gives a spec or InvalidSpec, nothing else.

Run: python tests/fuzz/fuzz_spec.py -max_total_time=30 (test_fuzzers.py does, bounded)."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from mlambda.errors import InvalidSpec
    from mlambda.spec import parse_spec


def one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    try:
        spec = parse_spec(text)
    except InvalidSpec:
        return
    assert spec.name, spec  # a spec that parsed is a valid one
    parse_spec(text)  # and parsing is deterministic


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
