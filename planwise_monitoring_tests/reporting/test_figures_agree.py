"""One definition per figure: the monitoring assets, the command line and the run summaries give
the same SLA compliance, trend and per-year timings for the same rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, materialize

from planwise_monitoring.cli import main
from planwise_monitoring.recording.records import FAILED
from planwise_monitoring.reporting.assets import build_monitoring_assets
from planwise_monitoring.reporting.summaries import run_summary

from ..factories import make_record
from ..store.backends import Backend


@asset
def simulation() -> None:
    """Stands for the monitored run whose summary is compared."""


def _cli_json(target: str, capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["--db", target, *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_assets_cli_and_run_summary_agree(backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    midnight = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with DagsterInstance.ephemeral() as instance:
        run_id = materialize([simulation], instance=instance).run_id
        late = midnight - timedelta(minutes=2)  # 23:58 yesterday to 00:03 today (UTC)
        records = [
            make_record(simulation_run_id=run_id, execution_start_time=late, execution_time_seconds=300.0,
                        sla_status="SLA_BREACH"),
            make_record(simulation_run_id=run_id, execution_start_time=late - timedelta(hours=1),
                        sla_status="SLA_WARNING"),
            make_record(simulation_run_id=run_id, execution_start_time=midnight + timedelta(minutes=30),
                        simulation_year=2026, execution_time_seconds=20.0),
            make_record(simulation_run_id=run_id, execution_start_time=midnight + timedelta(minutes=40),
                        simulation_year=2026, execution_time_seconds=22.0),  # a retry: the year's time sums both
            make_record(simulation_run_id=run_id, component_name="fct_yearly_events", component_type="EVENT",
                        status=FAILED, sla_status=None, error_class="KeyError",
                        execution_start_time=midnight + timedelta(minutes=50), execution_time_seconds=1.0),
        ]
        store = backend.store()
        store.write(records)
        monitoring = backend.resource()
        result = materialize(build_monitoring_assets(), instance=instance, resources={"monitoring": monitoring})
        summary = run_summary(instance, instance.get_run_by_id(run_id), store)

    # SLA compliance: the asset's table and headline, the CLI, the run summary
    table = store.read_table("mon_sla_compliance").to_dict("records")
    cli = _cli_json(backend.target, capsys, "sla-compliance")
    assert [(r["component_name"], r["judged_runs"], r["sla_breaches"], r["not_judged"], r["sla_compliance_pct"])
            for r in cli] == [
        ("scd_workforce_state", 4, 1, 0, 75.0), ("fct_yearly_events", 0, 0, 1, None)]
    assert {r["component_name"]: r["sla_compliance_pct"] for r in cli} == {
        r["component_name"]: (None if r["sla_compliance_pct"] != r["sla_compliance_pct"] else r["sla_compliance_pct"])
        for r in table}
    headline = next(m for m in result.get_asset_materialization_events()
                    if m.asset_key.path == ["mon_sla_compliance"]).materialization.metadata
    assert headline["planwise/overall_compliance_pct"].value == 75.0
    assert summary["sla_compliance"]["sla_compliance_pct"] == 75.0
    assert summary["sla_compliance"]["judged_runs"] == 4

    # trend: a step counts on the UTC day it ended, in the asset and the CLI alike
    trend_cli = _cli_json(backend.target, capsys, "trend", "scd_workforce_state")
    days = {(r["simulation_year"], r["performance_date"]): (r["runs"], r["sla_breaches"]) for r in trend_cli}
    yesterday, today = str((midnight - timedelta(days=1)).date()), str(midnight.date())
    assert days == {(2025, yesterday): (1, 0), (2025, today): (1, 1), (2026, today): (2, 0)}
    trends = store.read_table("mon_performance_trends")
    trends = trends[trends.component_name == "scd_workforce_state"]
    assert {(r.simulation_year, str(r.performance_date.date())): (r.runs, r.sla_breaches)
            for r in trends.itertuples()} == days

    # per-year time of a component: the sum of its attempts, in the summary file and the CLI's summary
    assert summary["per_year"]["2026"]["scd_workforce_state"] == 42.0
    assert main(["--db", backend.target, "summary", run_id, "--artifacts", str(tmp_path / "none")]) == 0
    text = capsys.readouterr().out
    assert "SLA compliance: 75% of 4 judged step(s)" in text
    assert " 42.00" in next(line for line in text.splitlines() if line.strip().startswith("scd_workforce_state"))
