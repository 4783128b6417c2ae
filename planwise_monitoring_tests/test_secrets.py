"""End to end: secrets reach no table, file, output or payload we write.

A webhook channel reads its URL (with a token in its path and its query) from a variable not named
like a secret, a database password of four characters sits in a secret-named variable, and a run
carries a secret-looking tag and op config. Then: an asset fails with both secrets in its
exception, another breaches its SLA (an alert to the webhook and to alerts.jsonl), the run-failure
sensor catalogs the failure, alerts on it and writes the run's summary. Nothing of the secrets may
appear in any mon_* table, alerts.jsonl, `alerts list`, the summaries, the event log or the
payloads the HTTP server received.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    EnvVar,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
    serialize_value,
)
from dagster import asset as dagster_asset
from psycopg import sql

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance
from planwise_monitoring.alerting.policy import parse_alert_config
from planwise_monitoring.cli import main as cli_main
from planwise_monitoring.defs.sensors import build_performance_sensor, build_run_failure_sensor
from planwise_monitoring.events import log_files
from planwise_monitoring.store import MonitoringStore, StoreError

from .factories import RecordingServer, make_record
from .postgres_server import PostgresServer

HOOK_PATH, HOOK_TOKEN = "/hook/SECRETPATH", "abc123tok"
DB_PASSWORD = "pw42"  # short: masked where it stands as a word
TAG_SECRET, CONFIG_SECRET = "tagsecret-987", "cfgpw-555"
NEEDLES = ["SECRETPATH", HOOK_TOKEN, DB_PASSWORD, TAG_SECRET, CONFIG_SECRET]


@dagster_asset(config_schema={"password": str, "simulation_year": int})
@monitor_performance("EVENT_GENERATION")
def load_events(context: AssetExecutionContext) -> None:
    import os

    raise ConnectionError(f"POST {os.environ['OPS_HOOK']} refused; db login with password {DB_PASSWORD} failed")


@dagster_asset
@monitor_performance("SCD")
def slow_state(context: AssetExecutionContext) -> None:
    time.sleep(0.25)


@pytest.fixture
def server():
    recording = RecordingServer()
    yield recording
    recording.stop()


def _leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def test_no_secret_reaches_any_table_file_output_or_payload(tmp_path: Path, server: RecordingServer,
                                                            monkeypatch: pytest.MonkeyPatch):
    hook = f"http://127.0.0.1:{server.port}{HOOK_PATH}?token={HOOK_TOKEN}"
    monkeypatch.setenv("OPS_HOOK", hook)  # not named like a secret
    monkeypatch.setenv("PLANWISE_TEST_DB_PASSWORD", DB_PASSWORD)
    database, alerts_file, artifacts = tmp_path / "monitoring.duckdb", tmp_path / "alerts.jsonl", tmp_path / "artifacts"
    event_log = tmp_path / "logs" / "events.jsonl"
    monitoring = MonitoringResource(
        database_path=str(database), json_log_path=str(event_log),
        sla_definitions=[SlaDefinitionConfig(component_name="slow_state", component_type="SCD",
                                             sla_threshold_seconds=0.1, warning_threshold_seconds=0.05)])
    config = parse_alert_config({
        "channels": {"hook": {"type": "webhook", "url_env": "OPS_HOOK"},
                     "audit": {"type": "file", "path": str(alerts_file)}},
        "routes": [{"channels": ["hook", "audit"]}],
        "retry_backoff_seconds": 0.01,
    }, "test alerts")
    performance_sensor = build_performance_sensor([slow_state, load_events], alert_config=config)
    failure_sensor = build_run_failure_sensor(alert_config=config, artifacts_dir=artifacts)

    with DagsterInstance.ephemeral() as instance:
        failed = materialize(
            [load_events], instance=instance, resources={"monitoring": monitoring}, raise_on_error=False,
            tags={"api_token": TAG_SECRET, "team": "workforce"},
            run_config={"ops": {"load_events": {"config": {"password": CONFIG_SECRET, "simulation_year": 2025}}}})
        assert not failed.success
        assert materialize([slow_state], instance=instance, resources={"monitoring": monitoring}).success
        assert monitoring.flush(10)
        # as context managers: the resource may be a generator (it then opens and closes its resources)
        with build_sensor_context(instance=instance, resources={"monitoring": monitoring}) as context:
            performance_sensor.evaluate_tick(context)
        with build_run_status_sensor_context(
                sensor_name=failure_sensor.name, dagster_event=failed.get_run_failure_event(),
                dagster_instance=instance, dagster_run=failed.dagster_run,
                resources={"monitoring": monitoring}) as context:
            failure_sensor(context.for_run_failure())
    assert monitoring.flush(10)
    monitoring.get_event_log().close()

    cli = subprocess.run([sys.executable, "-m", "planwise_monitoring.cli", "--db", str(database), "alerts", "list"],
                         capture_output=True, text=True, check=True)
    with duckdb.connect(str(database), read_only=True) as con:
        names = [n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
                 if n.startswith("mon_")]
        tables = {n: con.execute(f'SELECT * FROM "{n}"').df() for n in names}

    # it all happened, so the checks below can fail: the failure, the breach, both alerts, both channels
    performance = tables["mon_multi_year_performance"]
    assert sorted(performance["status"]) == ["FAILED", "SUCCESS"]
    assert "refused; db login with password *** failed" in performance["error_message"].dropna().iloc[0]
    assert len(tables["mon_run_failures"]) == 1
    assert {"SLA_BREACH", "RUN_FAILURE"} <= set(tables["mon_alerts"]["alert_type"])
    payloads = [json.dumps(r["json"]) for r in server.requests]
    assert {json.loads(p)["alert_type"] for p in payloads} == {"SLA_BREACH", "RUN_FAILURE"}
    assert "SLA_BREACH" in cli.stdout and "RUN_FAILURE" in cli.stdout
    [summary_json] = artifacts.glob("runs/*/summary.json")
    summary = json.loads(summary_json.read_text())
    assert summary["tags"]["api_token"] == "***" and summary["tags"]["team"] == "workforce"
    assert summary["config"]["ops"]["load_events"]["config"] == {"password": "***", "simulation_year": 2025}
    assert summary["errors"][0]["error_class"] == "ConnectionError"
    events_text = "".join(f.read_text(encoding="utf-8") for f in log_files(event_log))
    assert '"event":"run_summary_written"' in events_text

    leaks = {f"table {n}": _leaks(df.to_csv()) for n, df in tables.items()}
    leaks["alerts.jsonl"] = _leaks(alerts_file.read_text(encoding="utf-8"))
    leaks["alerts list"] = _leaks(cli.stdout + cli.stderr)
    leaks.update({f"summary {f.name}": _leaks(f.read_text(encoding="utf-8")) for f in artifacts.rglob("*") if f.is_file()})
    leaks["event log"] = _leaks(events_text)
    leaks["webhook payloads"] = _leaks("\n".join(payloads))
    assert {where: found for where, found in leaks.items() if found} == {}


# -- a PostgreSQL password in the database URL ---------------------------------------------------

PG_PASSWORD, WRONG_PASSWORD = "S3cretPassw0rd", "Wr0ngPassw0rd9"


@dagster_asset
@monitor_performance("SCD")
def pg_state(context: AssetExecutionContext) -> None:
    """A step whose record the PostgreSQL store takes directly, or spools while it cannot."""


def test_a_postgres_password_is_in_no_message_target_log_or_row(
        postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
    role = f"app_{secrets.token_hex(4)}"
    postgres_server.create_role(role, PG_PASSWORD)  # scram-sha-256: the password really is used
    database = urlsplit(postgres_server.create_database()).path.lstrip("/")
    with postgres_server.connect() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(role)))
    server = f"postgresql://{role}:{PG_PASSWORD}@{postgres_server.host}:{postgres_server.port}"
    url = f"{server}/{database}"
    system_tmp = tmp_path / "system-tmp"  # where the store's spool lives
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.setenv("PLANWISE_TEST_MONITORING_DB_URL", url)
    event_log = tmp_path / "logs" / "events.jsonl"
    monitoring = MonitoringResource(database_url=EnvVar("PLANWISE_TEST_MONITORING_DB_URL"),
                                    json_log_path=str(event_log))
    caplog.set_level(logging.DEBUG)

    store = MonitoringStore(url)
    seen = {"target": store.target, "location": store.location, "spool": str(store.spool.directory)}
    assert store.write([make_record()]) == 1
    errors = {}
    for name, target in {"wrong database": f"{server}/nope_{database}",
                         "wrong password": url.replace(PG_PASSWORD, WRONG_PASSWORD)}.items():
        with pytest.raises(StoreError) as caught:
            MonitoringStore(target).read_performance()
        errors[name] = str(caught.value)
        assert cli_main(["--db", target, "alerts", "list"]) == 2
    postgres_server.refuse_connections(database)
    try:
        with pytest.raises(StoreError) as caught:
            store.write([make_record()])
        errors["refused"] = str(caught.value)
        assert cli_main(["--db", url, "query", "SELECT 1"]) == 2
        with DagsterInstance.ephemeral() as instance:  # a step while the server refuses: its record is spooled
            run = materialize([pg_state], instance=instance, resources={"monitoring": monitoring})
            dagster_log = [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
        assert run.success
    finally:
        postgres_server.allow_connections(database)
    assert cli_main(["--db", url, "flush"]) == 0
    assert cli_main(["--db", url, "query", "SELECT performance_id FROM mon_multi_year_performance"]) == 0
    monitoring.get_event_log().close()
    cli = capsys.readouterr()
    with postgres_server.connect(database) as admin:
        names = [n for (n,) in admin.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'mon%'").fetchall()]
        tables = {n: admin.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(n))).fetchall() for n in names}

    # it all happened, so the checks below can fail
    assert 'database "nope_' in errors["wrong database"] and "does not exist" in errors["wrong database"]
    assert "password authentication failed" in errors["wrong password"]
    assert "not currently accepting connections" in errors["refused"]
    assert any("spooled in" in entry for entry in dagster_log)  # the step's own log says where its record is
    assert "1 record(s) written" in cli.out and len(tables["mon_multi_year_performance"]) == 2
    assert role in seen["target"] and database in seen["target"]

    texts = {**seen, **{f"error ({k})": v for k, v in errors.items()}, "command line": cli.out + cli.err,
             "python logs": caplog.text, "dagster event log": "\n".join(dagster_log),
             "json event log": "".join(f.read_text(encoding="utf-8") for f in log_files(event_log)),
             **{f"table {n}": repr(rows) for n, rows in tables.items()}}
    leaks = {where: [p for p in (PG_PASSWORD, WRONG_PASSWORD) if p in text] for where, text in texts.items()}
    assert {where: found for where, found in leaks.items() if found} == {}
