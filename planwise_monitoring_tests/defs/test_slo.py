"""The SLO sensor on scripted histories, and the mon_slo_status asset, on both backends."""

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from planwise_monitoring import build_slo_sensor
from planwise_monitoring.alerting.policy import parse_alert_config
from planwise_monitoring.reporting.assets import build_slo_status

from ..factories import make_record
from ..store.backends import BACKENDS, Backend, open_backend

NOW = datetime(2026, 3, 1, 12, 0, 0)
SLA_FILE = """
default: {sla_threshold_seconds: 300, warning_threshold_seconds: 240}
slos:
  - {name: yearly-runs-on-time, components: ["*"], indicator: within_sla, objective: 99.0, window: 28d}
"""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_backend(request, tmp_path) as b:
        yield b


@pytest.fixture
def sla_file(tmp_path: Path) -> Path:
    path = tmp_path / "sla.yaml"
    path.write_text(SLA_FILE)
    return path


def runs(ends: list[datetime], breach: bool = False) -> list:
    return [make_record(execution_start_time=end - timedelta(seconds=10),
                        sla_status="SLA_BREACH" if breach else "WITHIN_SLA", component_name=f"model_{i % 7}")
            for i, end in enumerate(ends)]


def steady(n: int = 1000) -> list:
    """n good runs spread evenly over the 28 days before NOW."""
    return runs([NOW - timedelta(days=28) + timedelta(days=28) * (i + 0.5) / n for i in range(n)])


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def tick(sensor, monitoring, instance, cursor):
    with build_sensor_context(instance=instance, cursor=cursor, resources={"monitoring": monitoring}) as context:
        return sensor.evaluate_tick(context)


def sent(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def alert_config(path: Path):
    return parse_alert_config({"channels": {"file": {"type": "file", "path": str(path)}},
                               "default_channels": ["file"]}, "test alerts")


def test_a_fast_burn_pages_once_and_a_slow_burn_opens_a_ticket(backend: Backend, sla_file: Path, tmp_path: Path):
    alerts_file = tmp_path / "alerts.jsonl"
    monitoring = backend.resource(sla_file=str(sla_file))
    store = backend.store()
    store.write(steady())
    # a fast burn: 5 breaches in the last 50 minutes, the newest 2 minutes ago
    store.write(runs([NOW - timedelta(minutes=m) for m in (50, 40, 30, 10, 2)], breach=True))
    clock = Clock(NOW)
    sensor = build_slo_sensor(alert_config=alert_config(alerts_file), clock=clock)
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(sensor, monitoring, instance, None).cursor
        assert json.loads(cursor) == {"yearly-runs-on-time": "PAGE"}
        [page] = sent(alerts_file)
        assert (page["alert_type"], page["severity"]) == ("SLO_FAST_BURN", "CRITICAL")
        details = dict(page["details"]) if isinstance(page["details"], list) else page["details"]
        budget = 0.01 * 1005  # breaches the 28 days allow
        assert details["budget_remaining_pct"] == pytest.approx(100 * (1 - 5 / budget), abs=1e-3)
        assert details["burn_rate_1h"] == pytest.approx((5 / budget) / (1 / 672), abs=1e-3)
        for minutes in (1, 2, 3):  # still burning, tick after tick: said once
            clock.now = NOW + timedelta(minutes=minutes)
            cursor = tick(sensor, monitoring, instance, cursor).cursor
        assert len(sent(alerts_file)) == 1 and json.loads(cursor) == {"yearly-runs-on-time": "PAGE"}

        # the burning stops; hours later the same SLO, with breaches every 6 h for 3 days, burns slowly
        later = NOW + timedelta(hours=7)  # the page's windows (6 h at most) have passed its breaches
        store.write(runs([later - timedelta(hours=3 + 6 * k) for k in range(12) if 3 + 6 * k != 9], breach=True))
        clock.now = later
        cursor = tick(sensor, monitoring, instance, cursor).cursor
        level = json.loads(cursor)["yearly-runs-on-time"]
        assert level == "TICKET" and len(sent(alerts_file)) == 1  # calmer than the page: nothing new
    with DagsterInstance.ephemeral() as instance:  # a new deployment (no cursor) sees the ticket
        [ticket] = [a for a in (tick(sensor, monitoring, instance, None) and sent(alerts_file))
                    if a["alert_type"] == "SLO_SLOW_BURN"]
        assert ticket["severity"] == "WARNING" and "slow burn" in ticket["title"]
    stored = store.alerts(limit=10)
    assert sorted(stored["alert_type"]) == ["SLO_FAST_BURN", "SLO_SLOW_BURN"]


def test_without_slos_the_sensor_skips_and_a_bad_file_fails_clearly(backend: Backend, tmp_path: Path):
    sensor = build_slo_sensor()
    with DagsterInstance.ephemeral() as instance:
        result = tick(sensor, backend.resource(), instance, None)
        assert result.skip_message and "no SLOs" in result.skip_message
        bad = tmp_path / "bad.yaml"
        bad.write_text("slos:\n  - {name: x, indicator: within_sla, objective: 99, window: 28d, typo: 1}\n")
        with pytest.raises(Exception, match=r"bad.yaml: slos\[0\] \(name='x'\): unknown key"):
            tick(sensor, backend.resource(sla_file=str(bad)), instance, None)


def test_the_slo_status_asset_tables_and_plots_the_budget(backend: Backend, sla_file: Path):
    store = backend.store()
    now = datetime.utcnow().replace(microsecond=0)  # the asset judges at the wall clock
    store.write(runs([now - timedelta(days=27) + timedelta(days=27) * (i + 0.5) / 400 for i in range(400)]))
    store.write(runs([now - timedelta(days=2, minutes=m) for m in (1, 2)], breach=True))
    monitoring = backend.resource(sla_file=str(sla_file))
    asset = build_slo_status()
    with DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            assert materialize([asset], resources={"monitoring": monitoring}, instance=instance).success
        events = instance.fetch_materializations(asset.key, limit=10).records
        metadata = [e.asset_materialization.metadata for e in events]
    assert len(metadata) == 2  # two points of the budget's plot
    budget = 0.01 * 402
    for m in metadata:
        assert m["planwise/slo/yearly-runs-on-time/budget_remaining_pct"].value == pytest.approx(
            100 * (1 - 2 / budget), abs=1e-3)
        assert m["planwise/slo/yearly-runs-on-time/attainment_pct"].value == pytest.approx(100 * 400 / 402, abs=1e-3)
        assert m["dagster/row_count"].value == 1
    [row] = store.read_table("mon_slo_status").to_dict("records")
    assert (row["slo_name"], row["events"], row["bad_events"], row["level"]) == ("yearly-runs-on-time", 402, 2, "NONE")
    assert row["window_days"] == 28.0  # two breaches 2 days ago: overspent, but no longer burning
