from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from planwise_monitoring.recording.measure import ComponentTiming, StepMeter, current_meter, phase

# Memory is measured in a fresh process, as in a Dagster step process: other tests' threads and
# children would blur a process-wide figure such as the peak RSS of reaped children.
_MEASURE = """
import json, subprocess, sys, time
from planwise_monitoring.recording.measure import StepMeter
with StepMeter(sample_interval_seconds=float(sys.argv[1])) as meter:
{body}
m = meter.measurement
print(json.dumps({{"growth_mb": m.peak_memory_mb - m.start_memory_mb, "cpu": m.cpu_seconds, "duration": m.duration_seconds}}))
"""


def measure_in_fresh_process(body: str, sample_interval_seconds: float = 0.1) -> dict:
    code = _MEASURE.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    out = subprocess.run([sys.executable, "-c", code, str(sample_interval_seconds)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_peak_memory_counts_memory_freed_before_the_end():
    m = measure_in_fresh_process("block = b'x' * (200 * 2**20)\ndel block")
    assert m["growth_mb"] >= 199  # the seed's end-of-step RSS would show ~0


def test_peak_memory_counts_a_live_child_process():
    m = measure_in_fresh_process(
        "child = subprocess.Popen([sys.executable, '-c', \"b = b'x' * (200 * 2**20); import time; time.sleep(0.6)\"])\n"
        "time.sleep(0.4)\n"  # sampled while the child is alive and holds its memory
        "child.wait()",
        sample_interval_seconds=0.05,
    )
    assert m["growth_mb"] >= 199


def test_peak_memory_counts_a_short_lived_child_between_samples():
    # sampling far too slow to see the child: only the reaped child's maximum RSS can show it
    m = measure_in_fresh_process(
        "subprocess.run([sys.executable, '-c', \"b = b'x' * (200 * 2**20)\"], check=True)",
        sample_interval_seconds=60,
    )
    assert m["growth_mb"] >= 199


def test_cpu_seconds_include_children_and_exclude_sleep():
    with StepMeter() as meter:
        subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
        time.sleep(0.3)
    m = meter.measurement
    assert m.duration_seconds >= 0.3
    assert m.cpu_seconds > 0.05  # the child's work
    assert m.cpu_seconds < m.duration_seconds  # sleeping costs no CPU


def test_phases_and_record_counts():
    with StepMeter() as meter:
        from planwise_monitoring.recording.measure import active_meter

        with active_meter(meter):
            assert current_meter() is meter
            with phase("load"):
                time.sleep(0.05)
            with phase("transform"):
                pass
            meter.set_record_counts(input_records=10, output_records=7)
        assert current_meter() is None
    m = meter.measurement
    assert [p.name for p in m.phases] == ["load", "transform"]
    assert m.phases[0].duration_seconds >= 0.05
    assert (meter.input_records, meter.output_records) == (10, 7)


def test_phase_outside_a_monitored_step_is_a_no_op():
    with phase("anything"):
        pass
    assert current_meter() is None


# -- bad figures from the step's own code: dropped with a warning, never an exception ----------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5, 10**20, "many", 2.5])
def test_a_bad_record_count_is_dropped_with_a_warning(bad):
    meter = StepMeter()
    meter.set_record_counts(input_records=bad, output_records=bad)
    assert (meter.input_records, meter.output_records) == (None, None)
    assert len(meter.warnings) == 2
    assert "set_record_counts: input_records" in meter.warnings[0] and "not a record count" in meter.warnings[0]


def test_a_good_count_survives_a_bad_one_beside_it():
    meter = StepMeter()
    meter.set_record_counts(input_records=100, output_records=float("nan"))
    assert (meter.input_records, meter.output_records) == (100, None)
    assert len(meter.warnings) == 1


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0, None, "3s"])
def test_a_component_with_a_bad_duration_is_refused_alone(duration):
    meter = StepMeter()
    meter.add_component(ComponentTiming("good", "DBT_MODEL", duration_seconds=2.0))
    meter.add_component(ComponentTiming("bad", "DBT_MODEL", duration_seconds=duration))
    meter.add_component(ComponentTiming("also_good", "DBT_MODEL", duration_seconds=0.0))
    assert [c.component_name for c in meter.components] == ["good", "also_good"]
    [warning] = meter.warnings
    assert "component 'bad'" in warning and "not recorded" in warning


@pytest.mark.parametrize(
    "changes, expected, warned",
    [
        ({"output_records": 10**20}, {"output_records": None}, True),
        ({"output_records": float("nan")}, {"output_records": None}, True),
        ({"output_records": 12.0}, {"output_records": 12}, False),
        ({"status": "success"}, {"status": "SUCCESS"}, False),
        ({"status": "exploded"}, {"status": "FAILED"}, True),
        ({"started_at": "yesterday"}, {"started_at": None}, True),
        ({"started_at": datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))},
         {"started_at": datetime(2026, 1, 1, 12)}, False),
        ({"duration_seconds": 3}, {"duration_seconds": 3.0}, False),
    ],
)
def test_a_component_keeps_what_it_can(changes, expected, warned):
    meter = StepMeter()
    meter.add_component(ComponentTiming(**{"component_name": "m", "component_type": "DBT_MODEL",
                                           "duration_seconds": 1.0, **changes}))
    [component] = meter.components
    for field, value in expected.items():
        assert getattr(component, field) == value
    assert bool(meter.warnings) == warned


@pytest.mark.parametrize("thing", [None, "stg_people", {"component_name": "x"}])
def test_add_component_refuses_what_is_not_a_component(thing):
    meter = StepMeter()
    meter.add_component(thing)
    assert meter.components == [] and "takes a ComponentTiming" in meter.warnings[0]


def test_a_component_without_a_name_is_refused():
    meter = StepMeter()
    meter.add_component(ComponentTiming("  ", "DBT_MODEL", duration_seconds=1.0))
    assert meter.components == [] and "has no name" in meter.warnings[0]
