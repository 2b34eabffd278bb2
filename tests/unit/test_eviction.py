"""LRU eviction of idle zygotes and templates under a memory budget."""

from __future__ import annotations

import pytest

from mlambda.backends.eviction import Resident, choose_evictions


def _r(key: int, pss: int, used: float, evictable: bool = True) -> Resident:
    return Resident(key, pss, used, evictable)


@pytest.mark.parametrize(
    ("residents", "budget", "expected"),
    [
        ([], 100, []),
        ([_r(1, 50, 1.0), _r(2, 40, 2.0)], 100, []),  # fits: nothing to do
        ([_r(1, 50, 1.0), _r(2, 60, 2.0)], 100, [1]),  # least recently used goes first
        ([_r(1, 50, 3.0), _r(2, 60, 2.0)], 100, [2]),
        ([_r(1, 50, 1.0), _r(2, 60, 2.0), _r(3, 70, 3.0)], 100, [1, 2]),  # until it fits
        ([_r(1, 50, 1.0, evictable=False), _r(2, 60, 2.0)], 100, [2]),  # in use: kept
        ([_r(1, 500, 1.0, evictable=False)], 100, []),  # over budget, nothing evictable
        ([_r(1, 10, 1.0), _r(2, 500, 2.0, evictable=False)], 100, [1]),  # frees what it can
    ],
)
def test_choose_evictions(residents, budget, expected):
    assert choose_evictions(residents, budget) == expected
