"""Real dbt builds of a small project with three seeds and two models (``dbt_seeds_project/``):
every node a build materializes is a component with its own record, every materialization is
judged by the performance sensor, and a build that fails part-way still labels what it built."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, AssetExecutionContext, DagsterInstance, StaticPartitionsDefinition, materialize
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from planwise_monitoring import MonitoringResource, monitor_performance, monitored_dbt_build
from planwise_monitoring.defs.sensors import build_performance_sensor

PROJECT = Path(__file__).with_name("dbt_seeds_project")
SEEDS = {"departments": 3, "job_levels": 2, "locations": 4}  # rows of each seed file
MODELS = {"headcount_by_department", "yearly_summary"}
FAILING_YEAR = {"year": 0}  # the year var('fail_year') names; 0: none fails


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project copied and parsed under a temporary directory, its DuckDB file beside it."""
    tmp = tmp_path_factory.mktemp("dbt_seeds")
    shutil.copytree(PROJECT, tmp / "project")
    saved = os.environ.get("PLANWISE_SEEDS_DB")
    os.environ["PLANWISE_SEEDS_DB"] = str(tmp / "seeds.duckdb")  # profiles.yml reads it, in dbt's process too
    dbt_project = DbtProject(project_dir=tmp / "project")
    dbt = DbtCliResource(project_dir=dbt_project, dbt_executable=str(Path(sys.executable).parent / "dbt"))
    dbt.cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
    yield dbt_project, dbt, tmp
    if saved is None:
        os.environ.pop("PLANWISE_SEEDS_DB", None)
    else:
        os.environ["PLANWISE_SEEDS_DB"] = saved


@pytest.fixture(scope="module")
def build(project):
    dbt_project, _, _ = project

    @dbt_assets(manifest=dbt_project.manifest_path, partitions_def=StaticPartitionsDefinition(["2025", "2026"]))
    @monitor_performance("FULL_SIMULATION", component_name="seeds_build")
    def seeds_build(context: AssetExecutionContext, dbt: DbtCliResource, monitoring: MonitoringResource):
        yield from monitored_dbt_build(
            context, dbt, monitoring, database_path=os.environ["PLANWISE_SEEDS_DB"],
            dbt_vars={"simulation_year": int(context.partition_key), "fail_year": FAILING_YEAR["year"]},
        )

    return seeds_build


def run_year(build, project, instance, monitoring, year: str, failing_year: int = 0):
    _, dbt, _ = project
    FAILING_YEAR["year"] = failing_year
    return materialize([build], partition_key=year, instance=instance, raise_on_error=False,
                       resources={"dbt": dbt, "monitoring": monitoring})


def figures(result) -> dict[str, dict[str, object]]:
    return {m.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node("seeds_build")}


def test_each_seed_and_model_is_judged_on_its_own_record(project, build):
    _, _, tmp = project
    monitoring = MonitoringResource(database_path=str(tmp / "monitoring-judged.duckdb"))
    with DagsterInstance.ephemeral() as instance:
        result = run_year(build, project, instance, monitoring, "2025")
        assert result.success
        md = figures(result)
        assert set(md) == set(SEEDS) | MODELS
        # one record per node: a seed no longer shares the step's record with the other seeds
        assert len({m["planwise/performance_id"] for m in md.values()}) == len(md)
        for seed, rows in SEEDS.items():
            assert md[seed]["planwise/output_records"] == rows
            assert md[seed]["dagster/row_count"] == rows
        assert monitoring.flush()
        stored = monitoring.get_store().read_performance().set_index("component_name")
        assert stored.loc[list(SEEDS), "component_type"].tolist() == ["DBT_SEED"] * 3
        assert stored.loc["headcount_by_department", "component_type"] == "WORKFORCE_PREPARATION"  # its meta
        assert stored.loc["seeds_build", "component_type"] == "FULL_SIMULATION"

        sensor = build_performance_sensor([build])
        with _sensor_context(instance, monitoring) as context:
            data = sensor.evaluate_tick(context)
        judged = {(e.asset_key.path[-1], e.check_name): e for e in data.asset_events}
        assert set(judged) == {(name, check) for name in md for check in ("sla", "regression")}
        for name, metadata in md.items():  # each against its own figures
            assert judged[name, "sla"].metadata["performance_id"].value == metadata["planwise/performance_id"]
            assert judged[name, "sla"].severity == AssetCheckSeverity.WARN


def test_a_failing_build_still_labels_the_nodes_it_built(project, build):
    """The issue: when a dbt build failed, the models that did build carried no planwise/*
    metadata (their rows were recorded all the same), so the sensor could not judge them."""
    _, _, tmp = project
    monitoring = MonitoringResource(database_path=str(tmp / "monitoring-failing.duckdb"))
    with DagsterInstance.ephemeral() as instance:
        result = run_year(build, project, instance, monitoring, "2026", failing_year=2026)
        assert not result.success
        md = figures(result)
        assert set(md) == set(SEEDS) | {"headcount_by_department"}  # yearly_summary failed
        for name, metadata in md.items():
            assert "planwise/performance_id" in metadata, f"{name} was built but carries no planwise/* metadata"
            assert metadata["planwise/sla_status"] == "WITHIN_SLA", name
            assert metadata["planwise/duration_seconds"] > 0, name
        assert monitoring.flush()
        stored = monitoring.get_store().read_performance().set_index("component_name")
        assert stored.loc["yearly_summary", "status"] == "FAILED"
        assert stored.loc["seeds_build", "status"] == "FAILED"
        names = {str(pid): name for pid, name in zip(stored["performance_id"], stored.index, strict=True)}
        # the metadata names the node's own stored record
        assert {name: names[m["planwise/performance_id"]] for name, m in md.items()} == {name: name for name in md}


def _sensor_context(instance, monitoring):
    from dagster import build_sensor_context

    return build_sensor_context(instance=instance, resources={"monitoring": monitoring})


def test_with_monitoring_turned_off_the_build_only_gets_its_row_counts(project, build, caplog):
    _, _, tmp = project
    monitoring = MonitoringResource(database_path=str(tmp / "monitoring-off.duckdb"), enabled=False)
    with DagsterInstance.ephemeral() as instance:
        result = run_year(build, project, instance, monitoring, "2025")
        assert result.success
        md = figures(result)
        assert {name: m["dagster/row_count"] for name, m in md.items() if name in SEEDS} == SEEDS
        assert not [k for m in md.values() for k in m if k.startswith("planwise/")]
        messages = [e.user_message for e in instance.all_logs(result.run_id)] + caplog.messages
        assert not [m for m in messages if "planwise-monitoring" in m], "a warning although monitoring is off"
    assert not (tmp / "monitoring-off.duckdb").exists()
