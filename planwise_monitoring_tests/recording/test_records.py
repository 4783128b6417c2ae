"""Reading a record back is strict (a clear ValueError for anything malformed), and building one
turns each bad figure into None with a warning."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime

import pytest

from planwise_monitoring.recording.measure import PhaseTiming
from planwise_monitoring.recording.records import PerformanceRecord, storable
from planwise_monitoring_tests.factories import make_record


def _payload(**changes) -> bytes:
    data = json.loads(make_record(phases=(PhaseTiming("load", datetime(2026, 1, 1), 1.5),)).to_json())
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


_DROP = object()


def test_a_record_survives_the_round_trip_exactly():
    record = make_record(phases=(PhaseTiming("load", datetime(2026, 1, 1), 1.5),), error_message="ünïcode ✓")
    assert PerformanceRecord.from_json(record.to_json()) == record
    assert PerformanceRecord.from_json(record.to_json().encode()) == record  # the spool hands over bytes


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b'{"scenario": "\xff\xfe"}', "Invalid JSON"),  # invalid UTF-8
        (b"\xff\xfe\x00", "Invalid JSON"),
        (b"{not json", "Invalid JSON"),
        (b"", "Invalid JSON"),
        (b"[1, 2]", "Input should be an object"),
        (_payload(status=_DROP), "status: Field required"),
        (_payload(surprise=1), "surprise: Unexpected keyword argument"),
        (_payload(execution_time_seconds="10.0"), "execution_time_seconds: Input should be a valid number"),
        (_payload(output_record_count=10.0), "output_record_count: Input should be a valid integer"),
        (_payload(cpu_seconds=None, memory_usage_mb="big"), "memory_usage_mb: Input should be a valid number"),
        (_payload(execution_start_time="yesterday"), "execution_start_time: Input should be a valid datetime"),
        (_payload(performance_id="not-a-uuid"), "performance_id 'not-a-uuid' is not a UUID"),
        (_payload(performance_id=12), "performance_id: Input should be a valid string"),
        (_payload(status="MAYBE"), "status 'MAYBE' is not one of SUCCESS, FAILED"),
        (_payload(execution_time_seconds=-1.0), "execution_time_seconds -1.0 is not a duration"),
        (_payload(output_record_count=10**20), "output_record_count 100000000000000000000 is not a record count"),
        (_payload(simulation_year=2**40), "simulation_year 1099511627776 is not a year"),
        (_payload(memory_usage_mb=-3.0), "memory_usage_mb -3.0 is not a finite, non-negative number"),
        (_payload(phases=[{"name": "load", "started_at": "2026-01-01T00:00:00", "duration_seconds": "1"}]),
         "phases.0.duration_seconds: Input should be a valid number"),
        (_payload(phases=[{"name": "load", "started_at": "2026-01-01T00:00:00", "duration_seconds": -1}]),
         "phase 'load'"),
    ],
)
def test_malformed_payloads_are_a_clear_value_error(payload, reason):
    with pytest.raises(ValueError) as excinfo:
        PerformanceRecord.from_json(payload)
    assert reason in str(excinfo.value)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_figures_in_a_payload_are_refused(token):
    # Python's json writes these for float('nan') / inf; they are not JSON and not figures
    text = _payload().decode().replace('"cpu_seconds": 1.0', f'"cpu_seconds": {token}')
    assert token in text
    with pytest.raises(ValueError, match="cpu_seconds: Input should be a finite number"):
        PerformanceRecord.from_json(text)


def test_a_payload_value_never_appears_in_the_reason():
    with pytest.raises(ValueError) as excinfo:
        PerformanceRecord.from_json(_payload(execution_time_seconds="hunter2-secret"))
    assert "hunter2" not in str(excinfo.value)


def test_an_aware_timestamp_is_read_as_naive_utc():
    record = PerformanceRecord.from_json(_payload(execution_start_time="2026-01-01T14:00:00+02:00"))
    assert record.execution_start_time == datetime(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    "changes, nulled",
    [
        ({"output_record_count": 10**20}, ["output_record_count", "records_per_second"]),
        ({"output_record_count": -1}, ["output_record_count", "records_per_second"]),
        ({"input_record_count": math.nan}, ["input_record_count"]),
        ({"cpu_seconds": math.inf}, ["cpu_seconds"]),
        ({"memory_usage_mb": math.nan, "memory_start_mb": -1.0}, ["memory_usage_mb", "memory_start_mb"]),
        ({"records_per_second": math.inf}, ["records_per_second"]),
        ({"simulation_year": 123456}, ["simulation_year"]),
        ({"monitoring_overhead_seconds": math.nan}, ["monitoring_overhead_seconds"]),
    ],
)
def test_storable_nulls_each_bad_figure_with_a_warning(changes, nulled):
    record = make_record(**changes)
    cleaned, warnings = storable(record)
    assert cleaned is not None
    for field in nulled:
        assert getattr(cleaned, field) is None, field
    assert len(warnings) == len(changes)
    assert all("stored as NULL" in w for w in warnings)
    # what storable returns always reads back: it can no longer block the spool
    assert PerformanceRecord.from_json(cleaned.to_json()) == cleaned


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"execution_time_seconds": math.nan}, "execution_time_seconds nan is not a duration"),
        ({"execution_time_seconds": math.inf}, "execution_time_seconds inf is not a duration"),
        ({"execution_time_seconds": -2.0}, "execution_time_seconds -2.0 is not a duration"),
        ({"performance_id": "x"}, "is not a UUID"),
        ({"status": "OK"}, "status 'OK'"),
        ({"execution_end_time": None}, "start and end times are required"),
    ],
)
def test_storable_refuses_a_record_whose_required_figures_are_bad(changes, reason):
    record, warnings = storable(dataclasses.replace(make_record(), **changes))
    assert record is None
    assert any(reason in w for w in warnings) and warnings[-1].endswith("is not stored")


def test_storable_leaves_a_good_record_as_it_is():
    record = make_record()
    assert storable(record) == (record, [])
    assert storable(record)[0] is record


def test_storable_drops_a_bad_phase_and_keeps_the_good_ones():
    t = datetime(2026, 1, 1)
    record, warnings = storable(make_record(phases=(PhaseTiming("a", t, 1.0), PhaseTiming("b", t, math.nan))))
    assert [p.name for p in record.phases] == ["a"]
    assert any("phase 'b' is left out" in w for w in warnings)
