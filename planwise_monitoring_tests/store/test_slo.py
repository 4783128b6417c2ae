"""The SLO counts (one scan for every SLO) against the same counts taken in Python, on both backends."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from planwise_monitoring.evaluation.slo import parse_slo_config
from planwise_monitoring.recording.records import FAILED, SUCCESS

from ..factories import make_record
from .backends import Backend

NOW = datetime(2026, 3, 1, 12, 0, 0)
COMPONENTS = ["stg_census", "int_hire_events", "int_termination_events", "odd'name; --", "100%_done"]


def history(n: int = 600, seed: int = 3) -> list:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        seconds = rng.uniform(1, 40)
        end = NOW - timedelta(seconds=rng.uniform(-3600, 30 * 86400))  # a few end after NOW: not counted
        status = FAILED if rng.random() < 0.05 else SUCCESS
        sla = None if status == FAILED and rng.random() < 0.5 else rng.choice(
            ["WITHIN_SLA"] * 8 + ["SLA_WARNING", "SLA_BREACH"])
        records.append(make_record(component_name=rng.choice(COMPONENTS), scenario=rng.choice(["baseline", "high"]),
                                   execution_start_time=end - timedelta(seconds=seconds),
                                   execution_time_seconds=seconds, status=status, sla_status=sla))
    return records


SLOS = parse_slo_config([
    {"name": "on-time", "indicator": "within_sla", "objective": 99, "window": "28d"},
    {"name": "int-succeeds", "indicator": "succeeded", "objective": 98, "window": "7d", "components": ["int_*"],
     "scenarios": ["baseline"]},
    {"name": "fast", "indicator": "under_duration", "threshold_seconds": 20, "objective": 90, "window": "3d",
     "components": ["stg_census", "odd'name; --", "100%_done"]},
    {"name": "percent-literal", "indicator": "succeeded", "objective": 90, "window": "28d",
     "components": ["100%*"]},  # the % of the name is a character, not a LIKE wildcard
    {"name": "nothing", "indicator": "succeeded", "objective": 90, "window": "28d", "components": ["no_such_*"]},
], "test")


def expected(records, slo) -> tuple[int, int, dict[float, int]]:
    import fnmatch

    def counted(r, seconds):
        in_scope = any(fnmatch.fnmatchcase(r.component_name, p) for p in slo.components) and (
            slo.scenarios is None or r.scenario in slo.scenarios)
        window = NOW - timedelta(seconds=seconds) < r.execution_end_time <= NOW
        event = {"within_sla": r.sla_status is not None, "succeeded": True,
                 "under_duration": r.status == SUCCESS}[slo.indicator.value]
        return in_scope and window and event

    def bad(r):
        return {"within_sla": r.sla_status == "SLA_BREACH", "succeeded": r.status == FAILED,
                "under_duration": r.execution_time_seconds > (slo.threshold_seconds or 0)}[slo.indicator.value]

    events = [r for r in records if counted(r, slo.window)]
    return (len(events), sum(bad(r) for r in events),
            {w: sum(bad(r) for r in records if counted(r, w) and counted(r, slo.window)) for w in slo.windows})


def test_slo_counts_match_python(backend: Backend):
    records = history()
    store = backend.store()
    store.write(records)
    with store.session(read_only=True) as session:
        counts = session.slo_counts(SLOS, NOW)
    for slo in SLOS:
        assert counts[slo.name] == expected(records, slo), slo.name
    assert counts["nothing"] == (0, 0, {w: 0 for w in SLOS[-1].windows})
    assert counts["on-time"][0] > 300 and counts["percent-literal"][0] > 50  # the scripted history is not empty
