import time
from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    asset,
    build_sensor_context,
    materialize,
)

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.defs.checks import build_monitoring_checks
from planwise_monitoring.defs.sensors import build_performance_sensor

from ..factories import lock_held_by_another_process

SLEEP = {"seconds": 0.0}
# Wide margins: under load a 0 s step has been measured above 0.15 s; a sleep only gets longer.
WARNING, SLA = 0.5, 1.0  # seconds
BETWEEN, BREACH = 0.6, 1.05  # sleeps that land between the thresholds, and above the SLA


@asset
@monitor_performance("SCD")
def scd_workforce_state(context: AssetExecutionContext) -> int:
    time.sleep(SLEEP["seconds"])
    return 1


@asset
def workforce_report(scd_workforce_state: int) -> int:
    return scd_workforce_state + 1


def monitoring_for(tmp_path: Path, lock_timeout_seconds: float = 1.0) -> MonitoringResource:
    return MonitoringResource(
        database_path=str(tmp_path / "monitoring.duckdb"), lock_timeout_seconds=lock_timeout_seconds,
        sla_definitions=[SlaDefinitionConfig(component_name="scd_workforce_state", component_type="SCD",
                                             sla_threshold_seconds=SLA, warning_threshold_seconds=WARNING)],
    )


def run(tmp_path, seconds, checks):
    SLEEP["seconds"] = seconds
    with DagsterInstance.ephemeral() as instance:
        return materialize([scd_workforce_state, workforce_report, checks], instance=instance,
                           resources={"monitoring": monitoring_for(tmp_path)}, raise_on_error=False)


def verdicts(result):
    return {(e.check_name, e.passed, e.severity) for e in result.get_asset_check_evaluations()}


def test_checks_run_with_the_asset_and_show_the_sla_verdict(tmp_path):
    checks = build_monitoring_checks([scd_workforce_state])
    assert verdicts(run(tmp_path, 0.0, checks)) == {("sla", True, AssetCheckSeverity.WARN),
                                                    ("regression", True, AssetCheckSeverity.WARN)}
    assert ("sla", False, AssetCheckSeverity.WARN) in verdicts(run(tmp_path, BETWEEN, checks))
    breach = run(tmp_path, BREACH, checks)
    assert ("sla", False, AssetCheckSeverity.ERROR) in verdicts(breach)
    assert breach.success  # not blocking: downstream still runs
    assert breach.asset_materializations_for_node("workforce_report")


def test_a_blocking_sla_check_stops_downstream_assets(tmp_path):
    checks = build_monitoring_checks([scd_workforce_state], blocking_components={"scd_workforce_state"})
    result = run(tmp_path, BREACH, checks)
    assert ("sla", False, AssetCheckSeverity.ERROR) in verdicts(result)
    assert not result.success
    assert not result.asset_materializations_for_node("workforce_report")


def test_no_monitored_materialization_yet(tmp_path):
    checks = build_monitoring_checks([AssetKey("never_materialized")])
    with DagsterInstance.ephemeral() as instance:
        result = materialize([checks], instance=instance, resources={"monitoring": monitoring_for(tmp_path)},
                             selection=AssetSelection.all_asset_checks())
    evaluations = result.get_asset_check_evaluations()
    assert {e.description for e in evaluations} == {"no monitored materialization to judge yet"}


def not_evaluated(result) -> dict[str, tuple[bool, AssetCheckSeverity]]:
    return {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()
            if e.metadata.get("planwise/evaluated") and e.metadata["planwise/evaluated"].value is False}


def test_a_database_locked_by_another_process_does_not_fail_the_run(tmp_path):
    """The issue: the asset succeeded but the in-run checks raised StoreLockedError and failed the run."""
    checks = build_monitoring_checks([scd_workforce_state], blocking_components={"scd_workforce_state"})
    monitoring = monitoring_for(tmp_path, lock_timeout_seconds=0.2)
    with DagsterInstance.ephemeral() as instance:
        with lock_held_by_another_process(tmp_path / "monitoring.duckdb"):
            result = materialize([scd_workforce_state, workforce_report, checks], instance=instance,
                                 resources={"monitoring": monitoring}, raise_on_error=False)
        assert result.success
        # WARN and not passed: visible, never read as a breach, and a blocking check does not block on WARN
        assert not_evaluated(result) == {"sla": (False, AssetCheckSeverity.WARN),
                                         "regression": (False, AssetCheckSeverity.WARN)}
        assert all("not evaluated" in e.description and "locked" in e.description
                   for e in result.get_asset_check_evaluations())
        assert result.asset_materializations_for_node("workforce_report")
        # nothing was lost: the record waited in the spool, and the sensor judges it once the lock is gone
        sensor = build_performance_sensor([scd_workforce_state])
        with build_sensor_context(instance=instance, resources={"monitoring": monitoring}) as context:
            data = sensor.evaluate_tick(context)
        [materialization] = result.asset_materializations_for_node("scd_workforce_state")
        sla = next(e for e in data.asset_events if e.check_name == "sla")
        assert sla.metadata["performance_id"].value == materialization.metadata["planwise/performance_id"].value
        assert "s against 0.5s warning / 1s breach" in sla.description


@pytest.mark.parametrize("damage", ["not a database", "missing"])
def test_a_broken_or_missing_database_is_not_evaluated_either(tmp_path, damage):
    checks = build_monitoring_checks([scd_workforce_state])
    monitoring = monitoring_for(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        assert materialize([scd_workforce_state], instance=instance, resources={"monitoring": monitoring}).success
        assert monitoring.flush()
        path = tmp_path / "monitoring.duckdb"
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"this is not a DuckDB file" * 1000)
        result = materialize([scd_workforce_state, checks], instance=instance,
                             resources={"monitoring": monitoring}, selection=AssetSelection.all_asset_checks(),
                             raise_on_error=False)
    assert result.success
    assert not_evaluated(result) == {"sla": (False, AssetCheckSeverity.WARN),
                                     "regression": (False, AssetCheckSeverity.WARN)}
