import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
    multi_asset,
)

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.alerting.policy import parse_alert_config
from planwise_monitoring.defs.sensors import build_performance_sensor, build_run_failure_sensor
from planwise_monitoring.recording.measure import utcnow

from ..factories import RecordingServer, lock_held_by_another_process, make_record

years = StaticPartitionsDefinition(["2025", "2026", "2027"])
SLEEP = {"seconds": 0.0}
BREACH = 0.85  # seconds, above the 0.8 s SLA below (a sleep only lengthens under load)


@asset(partitions_def=years)
@monitor_performance("SCD")
def scd_workforce_state(context: AssetExecutionContext) -> None:
    time.sleep(SLEEP["seconds"])


@pytest.fixture
def webhook():
    server = RecordingServer()
    yield server
    server.stop()


class Clock:
    """Naive-UTC time that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path: Path, webhook, monkeypatch, clock):
    monkeypatch.setenv("PLANWISE_TEST_WEBHOOK_URL", webhook.url())
    monitoring = MonitoringResource(
        database_path=str(tmp_path / "monitoring.duckdb"),
        sla_definitions=[SlaDefinitionConfig(component_name="scd_workforce_state", component_type="SCD",
                                             sla_threshold_seconds=0.8, warning_threshold_seconds=0.5)],
    )
    config = parse_alert_config({
        "channels": {"log": {"type": "log"},
                     "hook": {"type": "webhook", "url_env": "PLANWISE_TEST_WEBHOOK_URL"}},
        "routes": [{"severities": ["ERROR", "CRITICAL"], "channels": ["hook"]}],
        "retry_backoff_seconds": 0.01,
    }, "test alerts")
    sensor = build_performance_sensor([scd_workforce_state], alert_config=config, clock=clock)
    with DagsterInstance.ephemeral() as instance:
        yield monitoring, sensor, instance


def posted(server: RecordingServer) -> list[dict]:
    return [r["json"] for r in server.requests]


def materialize_year(monitoring, instance, year: str, seconds: float = 0.0):
    SLEEP["seconds"] = seconds
    result = materialize([scd_workforce_state], partition_key=year, resources={"monitoring": monitoring},
                         instance=instance)
    assert result.success
    return result


def tick(sensor, monitoring, instance, cursor=None):
    # a context manager: the resource sets itself up (and flushes) like a generator resource
    with build_sensor_context(instance=instance, cursor=cursor, resources={"monitoring": monitoring}) as context:
        data = sensor.evaluate_tick(context)
    for event in data.asset_events:  # what the daemon does with them
        instance.report_runless_asset_event(event)
    return data


def check_history(instance, name: str):
    key = AssetCheckKey(scd_workforce_state.key, name)
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=100)


def test_every_materialization_between_ticks_is_judged_and_persisted(setup):
    monitoring, sensor, instance = setup
    for year in ["2025", "2026", "2027"]:
        materialize_year(monitoring, instance, year)
    data = tick(sensor, monitoring, instance)
    judged = sorted((e.metadata["partition"].value, e.check_name) for e in data.asset_events)
    assert judged == sorted((y, c) for y in ["2025", "2026", "2027"] for c in ["sla", "regression"])
    assert all(e.passed for e in data.asset_events)
    # persisted as the daemon persists them: visible as check executions of the asset
    assert len(check_history(instance, "sla")) == 3
    assert len(check_history(instance, "regression")) == 3
    again = tick(sensor, monitoring, instance, data.cursor)
    assert again.skip_message and not again.asset_events


def test_an_sla_breach_is_an_error_check_and_one_webhook_post(setup, webhook, clock):
    monitoring, sensor, instance = setup
    materialize_year(monitoring, instance, "2025", seconds=BREACH)
    data = tick(sensor, monitoring, instance)
    sla = next(e for e in data.asset_events if e.check_name == "sla")
    assert (sla.passed, sla.severity) == (False, AssetCheckSeverity.ERROR)
    assert len(posted(webhook)) == 1
    assert posted(webhook)[0]["alert_type"] == "SLA_BREACH"
    assert posted(webhook)[0]["component_name"] == "scd_workforce_state"
    # the same breach again within the throttle window (1 h by default): persisted, not sent again
    clock.advance(timedelta(minutes=59))
    materialize_year(monitoring, instance, "2025", seconds=BREACH)
    data = tick(sensor, monitoring, instance, data.cursor)
    assert len(posted(webhook)) == 1
    alerts = monitoring.get_store().alerts()
    breach = alerts[alerts.alert_type == "SLA_BREACH"]
    assert sorted(breach[breach.channel == "hook"]["status"]) == ["sent", "suppressed"]
    # and once the window has passed, sent again
    clock.advance(timedelta(minutes=2))
    materialize_year(monitoring, instance, "2025", seconds=BREACH)
    tick(sensor, monitoring, instance, data.cursor)
    assert [p["alert_type"] for p in posted(webhook)] == ["SLA_BREACH", "SLA_BREACH"]


def test_an_unreachable_webhook_leaves_the_alert_pending_until_it_is_back(setup, webhook):
    monitoring, sensor, instance = setup
    port = webhook.port
    webhook.stop()
    materialize_year(monitoring, instance, "2026", seconds=BREACH)
    data = tick(sensor, monitoring, instance)  # the tick itself succeeds
    alerts = monitoring.get_store().alerts()
    hook = alerts[alerts.channel == "hook"].iloc[0]
    assert hook["status"] == "pending" and hook["attempts"] >= 1 and hook["last_error"]
    back = RecordingServer(port)
    try:
        tick(sensor, monitoring, instance, data.cursor)  # nothing new: still retries what is pending
        assert len(posted(back)) == 1
        alerts = monitoring.get_store().alerts()
        assert alerts[alerts.channel == "hook"].iloc[0]["status"] == "sent"
    finally:
        back.stop()


def seed_history(monitoring, seconds: float, runs: int = 10, noise: float = 0.03):
    rng = np.random.default_rng(7)
    values = seconds * rng.lognormal(0, noise, runs)
    start = utcnow() - timedelta(days=10)  # before the runs the test makes, whenever it runs
    monitoring.get_store().write([
        make_record(component_name="scd_workforce_state", simulation_year=2025, execution_time_seconds=float(v),
                    simulation_run_id=f"history-{i}", sla_status="WITHIN_SLA",
                    execution_start_time=start + timedelta(hours=i))
        for i, v in enumerate(values)
    ])


def test_noise_is_not_a_regression_but_a_40_percent_step_is_major(setup, webhook):
    monitoring, sensor, instance = setup
    monitoring = MonitoringResource(database_path=monitoring.database_path)  # default SLAs: no SLA alerts
    seed_history(monitoring, 0.5)
    first = materialize_year(monitoring, instance, "2025", seconds=0.5)
    data = tick(sensor, monitoring, instance)
    assert next(e for e in data.asset_events if e.check_name == "regression").passed
    for _ in range(2):  # a 40 % step, confirmed by its second run
        last = materialize_year(monitoring, instance, "2025", seconds=0.7)
        data = tick(sensor, monitoring, instance, data.cursor)
    regression = next(e for e in data.asset_events if e.check_name == "regression")
    assert (regression.passed, regression.severity) == (False, AssetCheckSeverity.ERROR)
    rows = monitoring.get_store().read_table("mon_multi_year_regression")
    assert rows["regression_severity"].tolist() == ["MAJOR"]
    assert 35 < rows["performance_degradation_pct"].iloc[0] < 50
    # the newest run of the baseline: the first run of the test (the one before it is the confirmation)
    assert rows["baseline_run_id"].tolist() == [first.run_id]
    assert rows["current_run_id"].tolist() == [last.run_id]
    assert [p["alert_type"] for p in posted(webhook)] == ["REGRESSION"]


def test_failed_runs_are_cataloged_with_their_error_class(setup, tmp_path):
    monitoring, _, instance = setup

    @asset
    def broken() -> None:
        raise KeyError("missing column salary")

    result = materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    sensor = build_run_failure_sensor(artifacts_dir=tmp_path / "artifacts")
    run_failure = result.get_run_failure_event()
    with build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=run_failure, dagster_instance=instance,
        dagster_run=result.dagster_run, resources={"monitoring": monitoring},
    ) as context:
        sensor(context.for_run_failure())
    failures = monitoring.get_store().read_table("mon_run_failures")
    assert failures["dagster_run_id"].tolist() == [result.run_id]
    assert failures["error_class"].tolist() == ["KeyError"]
    assert "missing column salary" in failures["error_message"].iloc[0]
    alerts = monitoring.get_store().alerts()
    assert alerts["alert_type"].tolist() == ["RUN_FAILURE"]
    # and its summary, with the error and its stack trace
    summary = json.loads((tmp_path / "artifacts" / "runs" / result.run_id / "summary.json").read_text())
    assert summary["status"] == "FAILURE"
    [error] = summary["errors"]
    assert error["error_class"] == "KeyError" and "missing column salary" in error["message"]
    assert 'raise KeyError("missing column salary")' in error["stack_trace"]
    assert "KeyError: " in (tmp_path / "artifacts" / "runs" / result.run_id / "summary.txt").read_text()


EVENT_ASSETS = ["hires", "promotions", "terminations"]


@multi_asset(specs=[AssetSpec(name) for name in EVENT_ASSETS])
@monitor_performance("EVENT_GENERATION", component_name="yearly_events")
def yearly_events(context: AssetExecutionContext):  # no return annotation: Dagster reads it as one output
    time.sleep(SLEEP["seconds"])


def test_every_output_of_a_multi_asset_is_judged_and_alerted_once(setup, webhook):
    """The issue: outputs sharing the step's record collapsed into one entry keyed by the record
    id, so 2 of these 3 materializations were never judged and the cursor moved past them."""
    monitoring, _, instance = setup
    monitoring = MonitoringResource(database_path=monitoring.database_path, sla_definitions=[SlaDefinitionConfig(
        component_name="yearly_events", sla_threshold_seconds=0.8, warning_threshold_seconds=0.5)])
    config = parse_alert_config({"channels": {"hook": {"type": "webhook", "url_env": "PLANWISE_TEST_WEBHOOK_URL"}},
                                 "routes": [{"channels": ["hook"]}]}, "test alerts")
    sensor = build_performance_sensor([yearly_events], alert_config=config)
    SLEEP["seconds"] = BREACH
    result = materialize([yearly_events], resources={"monitoring": monitoring}, instance=instance)
    record_ids = {m.asset_key.path[-1]: m.metadata["planwise/performance_id"].value
                  for m in result.asset_materializations_for_node("yearly_events")}
    assert sorted(record_ids) == EVENT_ASSETS and len(set(record_ids.values())) == 1  # one shared record
    data = tick(sensor, monitoring, instance)
    judged = sorted((e.asset_key.path[-1], e.check_name, e.passed, e.severity) for e in data.asset_events)
    assert judged == sorted((name, check, passed, severity) for name in EVENT_ASSETS for check, passed, severity in
                            [("sla", False, AssetCheckSeverity.ERROR), ("regression", True, AssetCheckSeverity.WARN)])
    assert {e.metadata["performance_id"].value for e in data.asset_events if e.check_name == "sla"} == set(
        record_ids.values())
    # persisted for each asset, as the daemon persists them
    for name in EVENT_ASSETS:
        [execution] = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey(name), "sla"), limit=10)
        assert execution.status.value == "FAILED"
    # one record, one breach: one alert, not one per output
    assert [p["alert_type"] for p in posted(webhook)] == ["SLA_BREACH"]


def test_a_locked_database_skips_the_tick_and_judges_the_same_events_next_time(setup, tmp_path):
    monitoring, sensor, instance = setup
    monitoring = MonitoringResource(database_path=monitoring.database_path, lock_timeout_seconds=0.2)
    materialize_year(monitoring, instance, "2025")
    assert monitoring.flush()
    with lock_held_by_another_process(tmp_path / "monitoring.duckdb"):
        locked = tick(sensor, monitoring, instance)
    assert locked.skip_message and "locked" in locked.skip_message
    assert not locked.asset_events and locked.cursor is None  # the cursor stays: nothing is skipped for good
    data = tick(sensor, monitoring, instance, locked.cursor)
    assert sorted((e.metadata["partition"].value, e.check_name) for e in data.asset_events) == [
        ("2025", "regression"), ("2025", "sla")]
