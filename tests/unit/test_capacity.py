"""The platform's caps: deploys that could never fit are refused naming the field; pools share
the instance places and are called back when one frees."""

from __future__ import annotations

import pytest

from mlambda.errors import InvalidSpec
from mlambda.pool.capacity import Capacity, check_spec
from mlambda.spec import FunctionSpec


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"memory_mb": 4096}, "function.memory_mb"),
        ({"memory_mb": 1024, "min_instances": 3}, "function.min_instances"),
        ({"max_instances": 9}, "function.max_instances"),
    ],
)
def test_a_function_asking_for_more_than_the_platform_has_is_refused(fields, field):
    spec = FunctionSpec(name="f", handler="app:h", **fields)
    with pytest.raises(InvalidSpec, match=field):
        check_spec(spec, max_instances=8, max_memory_mb=2048)


def test_a_function_within_the_caps_passes():
    check_spec(
        FunctionSpec(name="f", handler="app:h", memory_mb=1024, min_instances=2, max_instances=8),
        max_instances=8,
        max_memory_mb=2048,
    )


class _Pool:
    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self.called = 0

    def scale(self) -> None:
        self.called += 1


def test_places_are_shared_and_a_short_pool_is_called_back_once_when_one_frees():
    capacity = Capacity(3)
    first, second = _Pool(capacity), _Pool(capacity)
    assert capacity.take(2, first.scale) == 2
    assert capacity.take(2, second.scale) == 1
    assert capacity.take(1, second.scale) == 0  # still short: one call back, not two
    assert capacity.full
    capacity.give_back()
    assert (first.called, second.called) == (0, 1)
    capacity.give_back()
    assert second.called == 1  # it did not ask again, so it is not waiting
    assert capacity.used == 1
