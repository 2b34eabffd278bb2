"""START / END / REPORT lines, byte for byte as AWS Lambda writes them."""

from __future__ import annotations

import pytest

from mlambda.observe.report import Report

REQUEST_ID = "8f5a3c2e-1b7d-4e9a-9c3f-0d2b6a1e4f70"


def _report(**fields) -> Report:
    values = {
        "request_id": REQUEST_ID,
        "version": "$LATEST",
        "duration_ms": 2.164,
        "memory_mb": 128,
        "max_memory_mb": 61,
    }
    return Report(**{**values, **fields})


def test_start_line_names_the_request_and_the_version():
    assert _report().start_line() == f"START RequestId: {REQUEST_ID} Version: $LATEST"


def test_end_line_names_the_request():
    assert _report().end_line() == f"END RequestId: {REQUEST_ID}"


def test_report_line_is_tab_separated_with_a_trailing_tab():
    assert _report().report_line() == (
        f"REPORT RequestId: {REQUEST_ID}\t"
        "Duration: 2.16 ms\t"
        "Billed Duration: 3 ms\t"
        "Memory Size: 128 MB\t"
        "Max Memory Used: 61 MB\t"
    )


def test_report_line_of_a_cold_start_adds_init_duration_last():
    line = _report(init_ms=114.456).report_line()
    assert line == (
        f"REPORT RequestId: {REQUEST_ID}\tDuration: 2.16 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 61 MB\tInit Duration: 114.46 ms\t"
    )


def test_init_duration_of_zero_is_still_reported():
    assert "\tInit Duration: 0.00 ms\t" in _report(init_ms=0.0).report_line()


def test_a_warm_invocation_has_no_init_duration():
    assert "Init Duration" not in _report().report_line()


def test_a_timed_out_invocation_reports_its_status():
    line = _report(duration_ms=3000.0, status="timeout").report_line()
    assert line.endswith("\tMax Memory Used: 61 MB\tStatus: timeout\t")
    assert "Error Type" not in line


def test_a_failed_invocation_reports_status_and_error_type_after_init_duration():
    line = _report(init_ms=5.0, status="error", error_type="Runtime.ExitError").report_line()
    assert line.endswith("\tInit Duration: 5.00 ms\tStatus: error\tError Type: Runtime.ExitError\t")


def test_a_successful_invocation_has_no_status_field():
    assert "Status" not in _report().report_line()


def test_report_line_has_no_newline():
    assert "\n" not in _report(init_ms=1.0, status="error", error_type="X").report_line()


@pytest.mark.parametrize(
    ("duration_ms", "billed_ms"),
    [
        (0.0, 1),
        (0.01, 1),
        (0.999, 1),
        (1.0, 1),
        (1.001, 2),
        (99.5, 100),
        (100.0, 100),
        (3000.0, 3000),
        (3000.0001, 3001),
    ],
)
def test_billed_duration_rounds_up_to_whole_milliseconds_at_least_one(duration_ms, billed_ms):
    report = _report(duration_ms=duration_ms)
    assert report.billed_ms == billed_ms
    assert f"\tBilled Duration: {billed_ms} ms\t" in report.report_line()


@pytest.mark.parametrize(
    ("duration_ms", "shown"),
    [(0.0, "0.00"), (2.164, "2.16"), (2.166, "2.17"), (1234.5, "1234.50")],
)
def test_duration_is_shown_with_two_decimals(duration_ms, shown):
    assert f"\tDuration: {shown} ms\t" in _report(duration_ms=duration_ms).report_line()


def test_report_line_breaks_init_down_by_tier_and_phase():
    report = Report(
        request_id="r",
        version="$LATEST",
        duration_ms=1.0,
        memory_mb=128,
        max_memory_mb=20,
        init_ms=10.0,
        init_tier="template",
        init_parts=(0.0, 3.25, 0.0, 6.75),
    )
    assert report.report_line().endswith(
        "\tInit Duration: 10.00 ms\tInit Breakdown: tier template, prepare 0.00 ms, "
        "fork 3.25 ms, import 0.00 ms, init 6.75 ms\t"
    )
