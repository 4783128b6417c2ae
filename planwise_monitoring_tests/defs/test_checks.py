import time
from pathlib import Path

from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    asset,
    materialize,
)

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.defs.checks import build_monitoring_checks

SLEEP = {"seconds": 0.0}


@asset
@monitor_performance("SCD")
def scd_workforce_state(context: AssetExecutionContext) -> int:
    time.sleep(SLEEP["seconds"])
    return 1


@asset
def workforce_report(scd_workforce_state: int) -> int:
    return scd_workforce_state + 1


def monitoring_for(tmp_path: Path) -> MonitoringResource:
    return MonitoringResource(
        database_path=str(tmp_path / "monitoring.duckdb"),
        sla_definitions=[SlaDefinitionConfig(component_name="scd_workforce_state", component_type="SCD",
                                             sla_threshold_seconds=0.3, warning_threshold_seconds=0.15)],
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
    assert ("sla", False, AssetCheckSeverity.WARN) in verdicts(run(tmp_path, 0.2, checks))
    breach = run(tmp_path, 0.35, checks)
    assert ("sla", False, AssetCheckSeverity.ERROR) in verdicts(breach)
    assert breach.success  # not blocking: downstream still runs
    assert breach.asset_materializations_for_node("workforce_report")


def test_a_blocking_sla_check_stops_downstream_assets(tmp_path):
    checks = build_monitoring_checks([scd_workforce_state], blocking_components={"scd_workforce_state"})
    result = run(tmp_path, 0.35, checks)
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
