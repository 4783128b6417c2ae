from datetime import datetime, timedelta

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, build_schedule_context, materialize

from planwise_monitoring import MonitoringResource
from planwise_monitoring.reporting.assets import build_monitoring_assets, build_monitoring_schedule, markdown_table
from planwise_monitoring.store.duckdb import MonitoringStore

from ..factories import make_record
from ..store.backends import Backend


def check_reports_against_hand_computation(store: MonitoringStore) -> None:
    """The monitoring tables agree with pandas over the same performance rows."""
    rows = store.read_performance()
    rows["performance_date"] = rows["execution_end_time"].dt.normalize()  # the UTC day a step ended
    keys = ["component_name", "simulation_year", "scenario", "performance_date"]
    counts = rows.groupby(keys, dropna=False).agg(
        runs=("status", "size"), failed_runs=("status", lambda s: int((s == "FAILED").sum())),
        sla_breaches=("sla_status", lambda s: int((s == "SLA_BREACH").sum())))
    durations = rows[rows.status == "SUCCESS"].groupby(keys, dropna=False)["execution_time_seconds"].agg(
        avg_execution_time="mean", max_execution_time="max", p95_execution_time=lambda s: s.quantile(0.95))
    expected = counts.join(durations).reset_index().sort_values(keys).reset_index(drop=True)
    trends = store.read_table("mon_performance_trends")
    trends["performance_date"] = pd.to_datetime(trends["performance_date"])
    got = trends.sort_values(keys).reset_index(drop=True)
    assert got[keys].astype(str).values.tolist() == expected[keys].astype(str).values.tolist()
    for column in ["runs", "failed_runs", "sla_breaches", "avg_execution_time", "max_execution_time",
                   "p95_execution_time"]:
        assert got[column].tolist() == pytest.approx(expected[column].tolist(), nan_ok=True), column

    judged = rows[rows.sla_status.notna()]
    compliance = store.read_table("mon_sla_compliance").set_index("component_name")
    for name, group in judged.groupby("component_name"):
        assert compliance.loc[name, "judged_runs"] == len(group)
        assert compliance.loc[name, "sla_breaches"] == (group.sla_status == "SLA_BREACH").sum()
        assert compliance.loc[name, "sla_compliance_pct"] == pytest.approx(
            round(100 * (group.sla_status != "SLA_BREACH").mean(), 2))


def test_reports_match_a_hand_computation_and_carry_headline_metadata(backend: Backend):
    store = backend.store()
    now = datetime.utcnow()
    statuses = ["WITHIN_SLA", "WITHIN_SLA", "SLA_WARNING", "SLA_BREACH"]
    store.write([
        make_record(component_name=name, simulation_year=year, simulation_id=f"sim-{run}",
                    execution_time_seconds=10.0 + run + year % 10, sla_status=statuses[(run + year) % 4],
                    memory_usage_mb=100.0 + 10 * (year - 2025),
                    execution_start_time=now - timedelta(days=run, hours=year - 2024))
        for name in ["scd_workforce_state", "fct_yearly_events"] for year in [2025, 2026, 2027] for run in range(4)
    ])
    monitoring = backend.resource()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(build_monitoring_assets(), instance=instance, resources={"monitoring": monitoring})
        # built again over the same tables (CREATE OR REPLACE; on PostgreSQL: drop and create in one transaction)
        assert materialize(build_monitoring_assets(), instance=instance, resources={"monitoring": monitoring}).success
    check_reports_against_hand_computation(store)
    compliance = next(m for m in result.get_asset_materialization_events()
                      if m.asset_key.path == ["mon_sla_compliance"]).materialization.metadata
    # 24 judged rows, a breach where (run + year) % 4 == 3: a quarter of them
    assert compliance["planwise/overall_compliance_pct"].value == 75.0
    assert compliance["dagster/row_count"].value == 2
    assert "| component_name |" in compliance["preview"].value
    memory = store.read_table("mon_memory_growth")
    assert set(memory["growth_since_first_year_mb"]) == {0.0, 10.0, 20.0}


def test_the_schedule_targets_the_monitoring_assets_and_runs_them(db_path):
    reports = build_monitoring_assets()
    schedule = build_monitoring_schedule(reports, cron_schedule="0 6 * * *")
    monitoring = MonitoringResource(database_path=str(db_path))
    MonitoringStore(db_path).write([make_record(execution_start_time=datetime.utcnow())])
    defs = Definitions(assets=reports, schedules=[schedule], resources={"monitoring": monitoring})
    assert schedule.cron_schedule == "0 6 * * *"
    with DagsterInstance.ephemeral() as instance:
        data = schedule.evaluate_tick(build_schedule_context(instance=instance))
        [request] = data.run_requests
        job = defs.resolve_job_def(schedule.job_name)
        assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
            "mon_performance_trends", "mon_sla_compliance", "mon_regression_report", "mon_memory_growth",
            "mon_optimization_kpis", "mon_slo_status"}
        assert job.execute_in_process(instance=instance, tags=request.tags).success
    assert len(MonitoringStore(db_path).read_table("mon_sla_compliance")) == 1


def test_markdown_preview():
    df = pd.DataFrame({"component": ["a", "b"], "seconds": [1.234, 20.0]})
    assert markdown_table(df) == "| component | seconds |\n|---|---|\n| a | 1.23 |\n| b | 20.00 |"
    assert markdown_table(df, rows=1).endswith("_1 more rows_")
    assert markdown_table(df.iloc[0:0]) == "_no rows_"
