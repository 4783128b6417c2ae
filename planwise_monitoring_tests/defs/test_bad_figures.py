"""Bad figures reported by a step never change the asset's outcome: the figure is left out (NULL)
or the one component refused, with a warning in the step's Dagster log, and the rest is recorded."""

import time
from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.recording.measure import ComponentTiming

from .test_decorator import logged


def run(assets_def, db_path: Path, instance: DagsterInstance, **resource_config):
    monitoring = MonitoringResource(database_path=str(db_path), **resource_config)
    result = materialize([assets_def], instance=instance, resources={"monitoring": monitoring})
    assert result.success  # the asset's outcome never changes
    return result, monitoring.get_store().read_performance().set_index("component_name")


@pytest.mark.parametrize("counts", [{"input_records": float("nan")}, {"output_records": float("inf")},
                                    {"output_records": 10**20}, {"input_records": -5}])
def test_a_count_that_cannot_be_stored_is_null_with_a_warning(db_path, instance, counts):
    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext, monitoring: MonitoringResource) -> int:
        monitoring.set_record_counts(**counts)
        return 1

    result, stored = run(scd_workforce_state, db_path, instance)
    [what] = counts
    column = "input_record_count" if what == "input_records" else "output_record_count"
    assert stored.loc["scd_workforce_state", "status"] == "SUCCESS"
    assert stored[column].isna().all()
    assert f"set_record_counts: {what}" in logged(instance, result.run_id)


def test_a_count_beyond_bigint_does_not_block_the_records_after_it(db_path, instance):
    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext, monitoring: MonitoringResource) -> int:
        monitoring.set_record_counts(output_records=10**20)
        return 1

    run(scd_workforce_state, db_path, instance)
    _, stored = run(scd_workforce_state, db_path, instance)
    assert len(stored) == 2


def test_the_sla_verdict_is_not_computed_from_a_refused_count(db_path, instance):
    """Thresholds scale with the output count: 10**20 rows would excuse any duration."""
    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext, monitoring: MonitoringResource) -> int:
        time.sleep(0.05)  # a real duration above the 0.01 s threshold below
        monitoring.set_record_counts(output_records=10**20)
        return 1

    _, stored = run(scd_workforce_state, db_path, instance, sla_definitions=[SlaDefinitionConfig(
        component_name="scd_workforce_state", sla_threshold_seconds=0.01, warning_threshold_seconds=0.005,
        record_count_threshold=1)])
    assert stored.loc["scd_workforce_state", "sla_status"] == "SLA_BREACH"
    assert stored.loc["scd_workforce_state", "sla_threshold_seconds"] == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_component_with_an_unusable_duration_is_refused_alone(db_path, instance, bad):
    @asset
    @monitor_performance("DBT_BUILD")
    def dbt_models(context: AssetExecutionContext, monitoring: MonitoringResource) -> int:
        monitoring.record_component(ComponentTiming("stg_people", "DBT_MODEL", duration_seconds=0.2))
        monitoring.record_component(ComponentTiming("broken_model", "DBT_MODEL", duration_seconds=bad))
        monitoring.record_component("not a component")  # type: ignore[arg-type]
        monitoring.record_component(ComponentTiming("fct_events", "DBT_MODEL", duration_seconds=0.3))
        return 1

    result, stored = run(dbt_models, db_path, instance)
    # the step and its good components keep their records; the bad one is not stored as WITHIN_SLA
    assert sorted(stored.index) == ["dbt_models", "fct_events", "stg_people"]
    assert set(stored["status"]) == {"SUCCESS"}
    text = logged(instance, result.run_id)
    assert "broken_model" in text and "takes a ComponentTiming" in text


def test_record_component_outside_a_monitored_step_does_not_fail_the_asset(db_path, instance, caplog):
    @asset
    def plain(context: AssetExecutionContext, monitoring: MonitoringResource) -> int:
        monitoring.record_component(ComponentTiming("x", "DBT_MODEL", duration_seconds=1.0))
        monitoring.set_record_counts(output_records=float("nan"))
        return 1

    assert materialize([plain], instance=instance,
                       resources={"monitoring": MonitoringResource(database_path=str(db_path))}).success
    assert "outside a @monitor_performance step" in caplog.text
