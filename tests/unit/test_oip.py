"""Inflating compressed inference requests: under the payload limit, or a clear refusal."""

from __future__ import annotations

import gzip
import zlib

import pytest

from mlambda.errors import InvalidRequest, PayloadTooLarge
from mlambda.gateway.oip import decompress


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [("gzip", gzip.compress(b'{"inputs": []}')), ("deflate", zlib.compress(b'{"inputs": []}'))],
)
def test_gzip_and_deflate_bodies_are_inflated(encoding, packed):
    assert decompress(packed, encoding, 1000) == b'{"inputs": []}'


def test_an_uncompressed_body_is_left_alone():
    assert decompress(b"{}", "", 10) == b"{}"
    assert decompress(b"{}", "identity", 10) == b"{}"


def test_a_body_that_inflates_past_the_limit_is_refused_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(PayloadTooLarge, match="once inflated"):
        decompress(bomb, "gzip", 1_000_000)


def test_an_unknown_encoding_is_a_400_naming_the_supported_ones():
    with pytest.raises(InvalidRequest, match=r"'br' is not supported \(gzip, deflate\)"):
        decompress(b"x", "br", 10)
