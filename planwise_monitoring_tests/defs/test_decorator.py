import logging
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetSpec,
    DagsterInstance,
    FloatMetadataValue,
    IntMetadataValue,
    MaterializeResult,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    Output,
    StaticPartitionsDefinition,
    TextMetadataValue,
    asset,
    execute_job,
    instance_for_test,
    materialize,
    multi_asset,
    reconstructable,
)

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.recording.measure import phase

from ..factories import lock_held_by_another_process
from ..parallel_job import get_parallel_job

years = StaticPartitionsDefinition(["2025", "2026", "2027"])


def stored(monitoring: MonitoringResource) -> pd.DataFrame:
    assert monitoring.flush(), "records still waiting in the spool"
    return monitoring.get_store().read_performance()


def logged(instance: DagsterInstance, run_id: str) -> str:
    return "\n".join(e.user_message for e in instance.all_logs(run_id))


SLEEP_BY_YEAR = {"2025": 0.0, "2026": 0.8, "2027": 1.7}


@asset(partitions_def=years)
@monitor_performance("SCD")
def scd_workforce_state(context: AssetExecutionContext) -> pd.DataFrame:
    time.sleep(SLEEP_BY_YEAR[context.partition_key])
    return pd.DataFrame({"employee_id": range(3)})


def test_each_year_is_recorded_with_its_run_duration_and_sla_status(db_path: Path, instance: DagsterInstance):
    monitoring = MonitoringResource(
        database_path=str(db_path),
        sla_definitions=[SlaDefinitionConfig(component_name="scd_workforce_state", component_type="SCD",
                                             sla_threshold_seconds=1.5, warning_threshold_seconds=0.5)],
    )
    run_ids = {}
    for year in ["2025", "2026", "2027"]:
        result = materialize([scd_workforce_state], partition_key=year, resources={"monitoring": monitoring},
                             instance=instance, tags={"planwise/simulation_id": "sim-A"})
        assert result.success
        run_ids[int(year)] = result.run_id
    df = stored(monitoring).set_index("simulation_year")
    assert sorted(df.index) == [2025, 2026, 2027]
    assert df["simulation_run_id"].to_dict() == run_ids  # the Dagster run id, not a fresh uuid
    assert set(df["simulation_id"]) == {"sim-A"}
    assert set(df["status"]) == {"SUCCESS"}
    assert set(df["component_type"]) == {"SCD"}
    assert df["partition_key"].to_dict() == {2025: "2025", 2026: "2026", 2027: "2027"}
    for year, slept in SLEEP_BY_YEAR.items():
        assert df.loc[int(year), "execution_time_seconds"] >= slept  # a real duration, whatever the machine
    # The verdict is the rules' verdict on the recorded duration (which statuses the sleeps give
    # depends on how loaded the machine is, so it is not asserted; 1.7 s is a breach on any machine).
    rules = monitoring.get_sla_rules()
    verdicts = {year: rules.evaluate("scd_workforce_state", "SCD", df.loc[year, "execution_time_seconds"], 3)
                for year in df.index}
    assert df["sla_status"].to_dict() == {y: v.sla_status.value for y, v in verdicts.items()}
    assert df["performance_category"].to_dict() == {y: v.performance_category.value for y, v in verdicts.items()}
    assert df.loc[2027, "sla_status"] == "SLA_BREACH"
    assert df["output_record_count"].tolist() == [3, 3, 3]
    assert (df["records_per_second"] == 3 / df["execution_time_seconds"]).all()
    assert list(df["cumulative_execution_time_seconds"]) == pytest.approx(list(df["execution_time_seconds"].cumsum()))
    assert (df["sla_threshold_seconds"] == 1.5).all() and (df["warning_threshold_seconds"] == 0.5).all()


def test_measurements_are_numeric_metadata_on_the_materialization(monitoring: MonitoringResource, instance):
    result = materialize([scd_workforce_state], partition_key="2025", resources={"monitoring": monitoring},
                         instance=instance)
    [event] = result.asset_materializations_for_node("scd_workforce_state")
    md = event.metadata
    for key in ["duration_seconds", "cpu_seconds", "peak_memory_mb", "memory_growth_mb", "records_per_second",
                "sla_threshold_seconds", "sla_warning_seconds", "monitoring_overhead_ms"]:
        assert isinstance(md[f"planwise/{key}"], FloatMetadataValue), key
    for key in ["output_records", "simulation_year"]:
        assert isinstance(md[f"planwise/{key}"], IntMetadataValue), key
    assert md["planwise/simulation_year"].value == 2025
    assert md["dagster/row_count"].value == 3
    assert isinstance(md["planwise/sla_status"], TextMetadataValue)
    row = stored(monitoring).iloc[0]
    assert md["planwise/sla_status"].value == row["sla_status"] == "WITHIN_SLA"
    assert md["planwise/duration_seconds"].value == pytest.approx(row["execution_time_seconds"], abs=1e-5)
    assert md["planwise/performance_id"].value == str(row["performance_id"])
    assert 0 < row["monitoring_overhead_seconds"] == pytest.approx(md["planwise/monitoring_overhead_ms"].value / 1000, abs=1e-5)


class SimulationYearError(Exception):
    pass


@asset(partitions_def=years)
@monitor_performance("EVENT_GENERATION")
def fct_yearly_events(context: AssetExecutionContext) -> None:
    raise SimulationYearError(f"no workforce for {context.partition_key}; token=s3cr3t-token-value")


def test_a_failing_asset_is_recorded_and_its_exception_propagates_unchanged(monitoring, instance, monkeypatch):
    monkeypatch.setenv("PLANWISE_WEBHOOK_TOKEN", "s3cr3t-token-value")
    with pytest.raises(SimulationYearError) as excinfo:
        materialize([fct_yearly_events], partition_key="2026", resources={"monitoring": monitoring}, instance=instance)
    assert type(excinfo.value) is SimulationYearError
    assert str(excinfo.value) == "no workforce for 2026; token=s3cr3t-token-value"
    row = stored(monitoring).iloc[0]
    assert row["status"] == "FAILED"
    assert row["simulation_year"] == 2026
    assert row["error_class"] == f"{__name__}.SimulationYearError"
    assert row["error_message"] == "no workforce for 2026; token=***"
    assert row["sla_status"] is None  # a fast failure is not "within SLA"


@asset
@monitor_performance("SCD")
def generated(context: AssetExecutionContext):
    with phase("build"):
        frame = pd.DataFrame({"x": range(7)})
    yield Output(frame, metadata={"owner": "tests"})


@multi_asset(specs=[AssetSpec("hires"), AssetSpec("terminations")])
@monitor_performance("EVENT_GENERATION")
def events(context: AssetExecutionContext):
    yield MaterializeResult(asset_key="hires", metadata={"dagster/row_count": 5})
    yield MaterializeResult(asset_key="terminations", metadata={"dagster/row_count": 2})


def test_generator_and_multi_assets_are_monitored(monitoring, instance):
    result = materialize([generated, events], resources={"monitoring": monitoring}, instance=instance)
    assert result.success
    [gen_event] = result.asset_materializations_for_node("generated")
    assert gen_event.metadata["owner"].value == "tests"  # the asset's own metadata is kept
    assert gen_event.metadata["planwise/output_records"].value == 7
    assert "planwise/phase/build_seconds" in gen_event.metadata
    by_key = {e.asset_key: e for e in result.asset_materializations_for_node("events")}
    assert by_key[AssetKey("hires")].metadata["dagster/row_count"].value == 5
    assert by_key[AssetKey("terminations")].metadata["planwise/output_records"].value == 7
    df = stored(monitoring).set_index("component_name")
    assert df.loc["events", "asset_key"] == "hires, terminations"
    assert df.loc["events", "output_record_count"] == 7
    assert df.loc["generated", "output_record_count"] == 7
    assert df.loc["generated", "simulation_year"] is pd.NA or pd.isna(df.loc["generated", "simulation_year"])


@multi_asset(specs=[AssetSpec("hires"), AssetSpec("terminations")], can_subset=False)
@monitor_performance("EVENT_GENERATION")
def half_built_events(context: AssetExecutionContext):
    yield MaterializeResult(asset_key="hires", metadata={"dagster/row_count": 5})
    raise RuntimeError("terminations failed")


def test_what_a_failing_generator_yielded_first_carries_the_failed_steps_metadata(monitoring, instance):
    """A dbt build that fails halfway has built some models: their materializations carry the
    step's figures, so the sensor can judge them (B2's patch)."""
    result = materialize([half_built_events], resources={"monitoring": monitoring}, instance=instance,
                         raise_on_error=False)
    assert not result.success
    [hires] = result.asset_materializations_for_node("half_built_events")
    assert hires.asset_key == AssetKey("hires")
    assert hires.metadata["dagster/row_count"].value == 5  # the asset's own metadata is kept
    [row] = stored(monitoring).to_dict("records")
    assert hires.metadata["planwise/performance_id"].value == str(row["performance_id"])
    assert row["status"] == "FAILED"


@multi_asset(outs={"a": AssetOut(), "b": AssetOut()})
@monitor_performance("WORKFORCE_PREPARATION", component_name="prep")
def two_frames(context: AssetExecutionContext):
    return pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1, 2]})


def test_multi_asset_returning_plain_values(monitoring, instance):
    result = materialize([two_frames], resources={"monitoring": monitoring}, instance=instance)
    events_ = result.asset_materializations_for_node("two_frames")
    assert {e.metadata["planwise/output_records"].value for e in events_} == {3}
    assert stored(monitoring)["component_name"].tolist() == ["prep"]


@asset(partitions_def=years)
def census(context: AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"employee_id": range(11)})


@asset(partitions_def=years)
@monitor_performance("WORKFORCE_PREPARATION")
def baseline(context: AssetExecutionContext, census: pd.DataFrame, monitoring: MonitoringResource) -> pd.DataFrame:
    with monitoring.phase("filter"):
        active = census[census.employee_id % 2 == 0]
    monitoring.set_record_counts(output_records=len(active) * 100)  # explicit counts win
    return active


def test_inputs_phases_and_explicit_counts(monitoring, instance):
    result = materialize([census, baseline], partition_key="2025", resources={"monitoring": monitoring},
                         instance=instance)
    assert result.success
    row = stored(monitoring).iloc[0]
    assert (row["component_name"], row["input_record_count"], row["output_record_count"]) == ("baseline", 11, 600)
    phases = monitoring.get_store().read_table("mon_phase_timings")
    assert phases["phase_name"].tolist() == ["filter"]
    assert str(phases["performance_id"].iloc[0]) == str(row["performance_id"])


@asset(partitions_def=years)
@monitor_performance("SCD")
def memory_hungry(context: AssetExecutionContext) -> None:
    block = b"x" * (250 * 2**20)
    del block  # freed before the step ends
    subprocess.run([sys.executable, "-c", "b = b'x' * (250 * 2**20); import time; time.sleep(0.5)"], check=True)


def test_peak_memory_of_the_step_and_its_children(monitoring, instance):
    materialize([memory_hungry], partition_key="2025", resources={"monitoring": monitoring}, instance=instance)
    row = stored(monitoring).iloc[0]
    # 250 MB allocated and freed: at least 200 MB must show, whatever other tests' threads free meanwhile
    assert row["memory_usage_mb"] - row["memory_start_mb"] >= 200


def test_stacking_mistakes_and_odd_names_are_clear_errors():
    with pytest.raises(TypeError, match="must be stacked under @asset"):
        monitor_performance("SCD")(scd_workforce_state)
    for bad in ["", "SCD; DROP TABLE", "x" * 51, None]:
        with pytest.raises(ValueError, match="component_type must be"):
            monitor_performance(bad)
    with pytest.raises(ValueError, match="component_name must be"):
        monitor_performance("SCD", component_name="a\nb")
    with pytest.raises(ValueError, match="resource_key must be a Python identifier"):
        monitor_performance("SCD", resource_key="my-resource")


@asset(partitions_def=StaticPartitionsDefinition(["baseline"]))
@monitor_performance("SCD")
def by_scenario(context: AssetExecutionContext) -> None:
    pass


def test_a_partition_key_that_is_not_a_year_is_recorded_without_a_year(monitoring, instance):
    result = materialize([by_scenario], partition_key="baseline", resources={"monitoring": monitoring},
                         instance=instance)
    assert result.success
    assert "partition key 'baseline' is not a simulation year" in logged(instance, result.run_id)
    row = stored(monitoring).iloc[0]
    assert pd.isna(row["simulation_year"]) and row["partition_key"] == "baseline"


@asset(partitions_def=MultiPartitionsDefinition({
    "year": StaticPartitionsDefinition(["2025", "2026"]),
    "scenario": StaticPartitionsDefinition(["baseline", "growth"]),
}))
@monitor_performance("SCD")
def multi_dim() -> None:  # no context parameter: the decorator supplies one
    pass


def test_multi_dimensional_partitions_with_a_year_dimension(monitoring, instance):
    key = MultiPartitionKey({"year": "2026", "scenario": "growth"})
    assert materialize([multi_dim], partition_key=key, resources={"monitoring": monitoring}, instance=instance).success
    assert stored(monitoring)["simulation_year"].tolist() == [2026]


@asset
@monitor_performance("FULL_SIMULATION")
def multi_year_simulation() -> None:
    pass


def test_unpartitioned_asset_takes_the_year_and_scenario_from_run_tags(monitoring, instance):
    materialize([multi_year_simulation], resources={"monitoring": monitoring}, instance=instance,
                tags={"planwise/simulation_year": "2028", "planwise/scenario": "high_growth"})
    row = stored(monitoring).iloc[0]
    assert (row["simulation_year"], row["scenario"], row["sla_threshold_seconds"]) == (2028, "high_growth", 1800)


def test_disabled_monitoring_records_nothing(db_path: Path, instance):
    monitoring = MonitoringResource(database_path=str(db_path), enabled=False)
    assert materialize([multi_year_simulation], resources={"monitoring": monitoring}, instance=instance).success
    assert not db_path.exists()


def test_a_locked_store_never_fails_the_asset_and_the_record_is_replayed_once(db_path, instance, caplog):
    monitoring = MonitoringResource(database_path=str(db_path), lock_timeout_seconds=0.2)
    monitoring.get_store().write([])
    with lock_held_by_another_process(db_path) as holder:
        result = materialize([scd_workforce_state], partition_key="2025", resources={"monitoring": monitoring},
                             instance=instance)
        assert result.success
        with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
            assert not monitoring.flush()
        assert f"locked by process {holder.pid}" in caplog.text
        assert monitoring.get_store().spool.count() == 1
        # the next monitored step tells the Dagster log what happened in the background
        second = materialize([scd_workforce_state], partition_key="2026", resources={"monitoring": monitoring},
                             instance=instance)
        assert second.success
        assert f"locked by process {holder.pid}" in logged(instance, second.run_id)
    df = stored(monitoring)
    assert sorted(df["simulation_year"]) == [2025, 2026]
    assert monitoring.get_store().replay_spool() == 0
    assert len(monitoring.get_store().read_performance()) == 2


def test_a_broken_store_never_fails_the_asset_and_keeps_the_record(db_path, instance):
    db_path.write_text("this is not a DuckDB file")
    monitoring = MonitoringResource(database_path=str(db_path))
    result = materialize([scd_workforce_state], partition_key="2025", resources={"monitoring": monitoring},
                         instance=instance)
    assert result.success
    assert not monitoring.flush()
    assert monitoring.get_store().spool.count() == 1
    db_path.unlink()
    assert stored(monitoring)["simulation_year"].tolist() == [2025]


def test_parallel_steps_in_separate_processes_lose_and_duplicate_nothing(tmp_path, monkeypatch):
    db = tmp_path / "monitoring.duckdb"
    monkeypatch.setenv("PLANWISE_TEST_DB", str(db))
    with instance_for_test() as inst:
        for year in ["2025", "2026"]:
            result = execute_job(
                reconstructable(get_parallel_job), instance=inst, tags={"dagster/partition": year},
                run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 4}}}},
            )
            assert result.success
    monitoring = MonitoringResource(database_path=str(db))
    df = stored(monitoring)  # exit flushes normally got everything in; replay what they could not
    assert len(df) == 8 and df["performance_id"].nunique() == 8
    assert sorted(df.groupby("simulation_year").size().tolist()) == [4, 4]
    # the steps of a run really ran at the same time, in different processes (how many at once
    # depends on how fast a loaded machine starts them)
    run = df[df.simulation_year == 2025]
    starts, ends = list(run["execution_start_time"]), list(run["execution_end_time"])
    assert max(sum(s <= t < e for s, e in zip(starts, ends, strict=True)) for t in starts) >= 2


def test_each_record_is_also_a_structured_json_log_line(db_path, instance):
    from planwise_monitoring.events import read_events

    log_path = db_path.parent / "events" / "monitoring.jsonl"
    monitoring = MonitoringResource(database_path=str(db_path), json_log_path=str(log_path))
    ok = materialize([scd_workforce_state], partition_key="2025", resources={"monitoring": monitoring}, instance=instance)
    with pytest.raises(SimulationYearError):
        materialize([fct_yearly_events], partition_key="2026", resources={"monitoring": monitoring}, instance=instance)
    events = {e["event"]: e for e in read_events(log_path)}
    recorded = events["step_recorded"]
    assert (recorded["run_id"], recorded["asset"], recorded["simulation_year"], recorded["component"]) == (
        ok.run_id, "scd_workforce_state", 2025, "scd_workforce_state")
    assert recorded["level"] == "INFO" and recorded["fields"]["sla_status"] == "WITHIN_SLA"
    failed = events["step_failed"]
    assert failed["level"] == "ERROR" and failed["fields"]["error_class"].endswith("SimulationYearError")
