"""Scaling decisions as a table: state and clock in, a decision out."""

from __future__ import annotations

import pytest

from mlambda.pool.scaling import Snapshot, instances_to_start, should_stop_idle


@pytest.mark.parametrize(
    ("queued", "running", "starting", "concurrency", "min_instances", "max_instances", "start"),
    [
        pytest.param(0, 0, 0, 1, 0, 4, 0, id="nothing-queued-starts-nothing"),
        pytest.param(3, 0, 0, 1, 0, 4, 3, id="scale-from-zero-one-per-queued-request"),
        pytest.param(10, 0, 0, 1, 0, 4, 4, id="never-beyond-max-instances"),
        pytest.param(10, 2, 1, 1, 0, 4, 1, id="max-counts-running-and-starting"),
        pytest.param(5, 4, 0, 1, 0, 4, 0, id="at-max-queued-requests-wait"),
        pytest.param(5, 6, 0, 1, 0, 4, 0, id="above-max-starts-nothing"),
        pytest.param(1, 0, 1, 1, 0, 4, 0, id="a-starting-instance-covers-a-queued-request"),
        pytest.param(3, 0, 1, 1, 0, 4, 2, id="only-requests-not-covered-by-starting-ones"),
        pytest.param(5, 0, 0, 4, 0, 4, 2, id="concurrency-groups-queued-requests"),
        pytest.param(4, 0, 1, 4, 0, 4, 0, id="a-starting-instance-covers-concurrency-requests"),
        pytest.param(5, 0, 1, 4, 0, 4, 1, id="one-request-past-a-starting-instance"),
        pytest.param(0, 0, 0, 1, 2, 4, 2, id="tops-up-to-min-instances-with-no-queue"),
        pytest.param(0, 1, 1, 1, 2, 4, 0, id="min-instances-counts-starting-ones"),
        pytest.param(0, 3, 0, 1, 2, 4, 0, id="above-min-instances-starts-nothing"),
        pytest.param(1, 0, 0, 1, 3, 4, 3, id="min-and-queue-take-the-larger-not-the-sum"),
        pytest.param(3, 0, 0, 1, 1, 4, 3, id="queue-larger-than-min"),
        pytest.param(0, 0, 0, 1, 4, 4, 4, id="min-equal-to-max"),
    ],
)
def test_instances_to_start(
    queued, running, starting, concurrency, min_instances, max_instances, start
):
    snapshot = Snapshot(
        queued=queued,
        running=running,
        starting=starting,
        concurrency=concurrency,
        min_instances=min_instances,
        max_instances=max_instances,
    )
    assert instances_to_start(snapshot) == start


@pytest.mark.parametrize(
    ("idle_since", "now", "keep_alive_s", "running", "min_instances", "stop"),
    [
        pytest.param(100.0, 399.9, 300.0, 1, 0, False, id="idle-less-than-keep-alive-stays"),
        pytest.param(100.0, 400.0, 300.0, 1, 0, True, id="idle-exactly-keep-alive-stops"),
        pytest.param(100.0, 5000.0, 300.0, 1, 0, True, id="idle-longer-than-keep-alive-stops"),
        pytest.param(100.0, 5000.0, 300.0, 1, 1, False, id="the-last-of-min-instances-stays"),
        pytest.param(100.0, 5000.0, 300.0, 3, 3, False, id="at-min-instances-all-stay"),
        pytest.param(100.0, 5000.0, 300.0, 2, 1, True, id="above-min-instances-stops"),
        pytest.param(100.0, 100.0, 0.0, 1, 0, True, id="zero-keep-alive-stops-at-once"),
        pytest.param(100.0, 100.0, 300.0, 2, 0, False, id="just-idle-stays"),
    ],
)
def test_should_stop_idle(idle_since, now, keep_alive_s, running, min_instances, stop):
    assert should_stop_idle(idle_since, now, keep_alive_s, running, min_instances) is stop
