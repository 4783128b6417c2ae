"""Bad figures become None with a warning, never an exception: tables of cases."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from planwise_monitoring.recording.figures import (
    BIGINT_MAX,
    clean_count,
    clean_duration,
    clean_measure,
    clean_timestamp,
    clean_year,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (0, 0),
        (1200, 1200),
        (BIGINT_MAX, BIGINT_MAX),
        (10.0, 10),  # an integral float, e.g. a pandas sum
        (np.int64(7), 7),
        (np.float64(8.0), 8),
        (" 12 ", 12),  # int() accepted strings before; still does
    ],
)
def test_good_counts_pass(value, expected):
    count, warning = clean_count(value, "output_records")
    assert count == expected and type(count) is type(expected) and warning is None


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, -1, BIGINT_MAX + 1, 10**20, 10.5, "ten", True, object(), np.float64("nan"), 1e300],
)
def test_bad_counts_become_none_with_a_warning(value):
    count, warning = clean_count(value, "output_records")
    assert count is None
    assert warning.startswith("output_records ") and "is not a record count" in warning


@pytest.mark.parametrize("value, expected", [(0, 0.0), (1.5, 1.5), (np.float32(2.0), 2.0), (10**6, 1e6)])
def test_good_durations_pass(value, expected):
    assert clean_duration(value, "duration") == (expected, None)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, -0.001, 1e10, "1.5", 10**400, True])
def test_bad_durations_are_refused_with_a_warning(value):
    seconds, warning = clean_duration(value, "duration of stg_people")
    assert seconds is None and "duration of stg_people" in warning and "is not a duration" in warning


@pytest.mark.parametrize("value, expected, warned", [
    (None, None, False), (3.5, 3.5, False), (0, 0.0, False),
    (math.nan, None, True), (math.inf, None, True), (-1.0, None, True), ("3", None, True),
])
def test_measures(value, expected, warned):
    number, warning = clean_measure(value, "cpu_seconds")
    assert number == expected and (warning is not None) == warned


@pytest.mark.parametrize("value, expected, warned", [
    (None, None, False), (2025, 2025, False), (9999, 9999, False),
    (0, None, True), (10_000, None, True), (2**40, None, True), (math.nan, None, True),
])
def test_years(value, expected, warned):
    year, warning = clean_year(value)
    assert year == expected and (warning is not None) == warned


def test_timestamps_become_naive_utc():
    aware = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert clean_timestamp(aware, "started_at") == (datetime(2026, 1, 1, 12, 0), None)
    assert clean_timestamp(datetime(2026, 1, 1), "started_at") == (datetime(2026, 1, 1), None)
    value, warning = clean_timestamp("2026-01-01", "started_at")
    assert value is None and "is not a datetime" in warning


def test_a_long_value_is_shortened_in_the_warning():
    _, warning = clean_count("x" * 500, "output_records")
    assert len(warning) < 200
