"""What a stored record's verdicts mean for the checks, judged on real rows of a DuckDB file."""

from __future__ import annotations

import uuid

import pytest
from dagster import AssetCheckSeverity

from planwise_monitoring.evaluation.verdicts import Evaluation, evaluate_records
from planwise_monitoring.store import MonitoringStore

from ..factories import make_record


@pytest.mark.parametrize("sla_status, expected", [
    ("WITHIN_SLA", (True, AssetCheckSeverity.WARN)),
    ("SLA_WARNING", (False, AssetCheckSeverity.WARN)),
    ("SLA_BREACH", (False, AssetCheckSeverity.ERROR)),
    (None, (False, AssetCheckSeverity.WARN)),  # a failed step that had not yet missed its SLA
])
def test_the_sla_check_follows_the_stored_status(sla_status, expected):
    record = {"sla_status": sla_status, "execution_time_seconds": 12.0, "warning_threshold_seconds": 9.0,
              "sla_threshold_seconds": 10.0, "performance_id": "p"}
    outcome = Evaluation(record, regression=None, baseline_run_id=None).sla_check
    assert (outcome.passed, outcome.severity) == expected
    assert outcome.description.startswith("12.00s against 9s warning / 10s breach")


def test_a_failed_step_is_not_judged_for_regressions():
    outcome = Evaluation({"status": "FAILED"}, regression=None, baseline_run_id=None).regression_check
    assert (outcome.passed, outcome.description) == (True, "not judged: the step failed")


def test_each_stored_record_is_judged_once_in_the_order_first_named(tmp_path):
    store = MonitoringStore(tmp_path / "monitoring.duckdb")
    first, second = make_record(), make_record(component_name="fct_yearly_events", sla_status="SLA_BREACH")
    store.write([first, second])
    missing = str(uuid.uuid4())
    with store.session(read_only=True) as session:
        judged = evaluate_records(session, [second.performance_id, first.performance_id, missing,
                                            second.performance_id])
    assert list(judged) == [second.performance_id, first.performance_id]
    assert judged[second.performance_id].sla_check.severity == AssetCheckSeverity.ERROR
    assert judged[first.performance_id].record["component_name"] == "scd_workforce_state"
