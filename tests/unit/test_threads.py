"""How many threads an instance's native pools get: the function's cpu, the cores, who else runs."""

from __future__ import annotations

import pytest

from mlambda.pool.threads import cpu_cores, instance_threads, machine_cores, pinned_threads

CASES = [
    # cpu, cores, live besides it -> threads
    (None, 2, 0, 2),  # a lone instance (a call from zero) uses every core
    (None, 2, 1, 1),  # the second shares them
    (None, 2, 5, 1),  # never fewer than one
    (None, 16, 0, 16),
    (None, 16, 1, 8),
    (None, 16, 3, 4),
    (None, 16, 4, 3),
    (1, 16, 0, 1),  # the quota caps it
    (0.5, 16, 0, 1),  # a fraction of a core is still one thread
    (1.5, 16, 0, 2),  # rounded up: the quota is spread over two cores
    (4, 16, 0, 4),
    (4, 16, 7, 2),  # the share is smaller than the quota
    (8, 4, 0, 4),  # never more than the machine has
    (None, 1, 0, 1),
    (2, 2, -1, 2),  # a count that went below zero counts as none
]


@pytest.mark.parametrize(("cpu", "cores", "live", "expected"), CASES)
def test_threads_follow_the_quota_the_cores_and_the_live_instances(cpu, cores, live, expected):
    assert instance_threads(cpu, cores, live) == expected


def test_a_count_the_function_pinned_in_its_env_wins():
    assert instance_threads(None, 16, 0, pinned=3) == 3
    assert instance_threads(1, 16, 7, pinned=3) == 3


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OMP_NUM_THREADS": "4"}, 4),
        ({"OMP_NUM_THREADS": "0"}, None),
        ({"OMP_NUM_THREADS": "many"}, None),
        ({"MKL_NUM_THREADS": "2"}, None),
    ],
)
def test_only_a_positive_omp_num_threads_pins_the_count(env, expected):
    assert pinned_threads(env) == expected


def test_the_machine_has_at_least_one_core():
    assert machine_cores() >= 1


@pytest.mark.parametrize(
    ("cpu", "memory_mb", "cores", "expected"),
    [
        ("proportional", 1769, 8, 1.0),  # one vCPU at 1,769 MB, as Lambda
        ("proportional", 128, 8, 128 / 1769),
        ("proportional", 3538, 8, 2.0),
        ("proportional", 10240, 8, 10240 / 1769),  # Lambda's largest size: 5.8 (it says 6)
        ("proportional", 16384, 8, 6.0),  # never past Lambda's most
        ("proportional", 10240, 2, 2.0),  # no more than the machine has
        (0.5, 10240, 8, 0.5),  # a number is a fixed quota, whatever the memory
        (None, 10240, 8, None),  # unset: no quota
    ],
)
def test_proportional_cpu_follows_memory_as_lambda_gives_it(cpu, memory_mb, cores, expected):
    found = cpu_cores(cpu, memory_mb, cores)
    assert found == (pytest.approx(expected) if expected is not None else None)
