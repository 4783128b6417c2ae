from planwise_monitoring.alert_delivery import AlertDispatcher
from planwise_monitoring.alert_policy import Alert, parse_alert_config
from planwise_monitoring.cli import main
from planwise_monitoring.store import MonitoringStore

from .factories import make_record


def test_alerts_list_and_ack(db_path, capsys):
    store = MonitoringStore(db_path)
    record = make_record()
    store.write([record])
    config = parse_alert_config({"channels": {"log": {"type": "log"}}}, "test")
    AlertDispatcher(store, config).dispatch([Alert(
        alert_type="SLA_BREACH", severity="ERROR", component_name="scd_workforce_state", simulation_year=2025,
        scenario="baseline", title="SLA_BREACH: scd_workforce_state 2025", message="130s against 120s",
        performance_id=record.performance_id,
    )])
    assert main(["--db", str(db_path), "alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "SLA_BREACH: scd_workforce_state 2025" in out and "sent" in out
    alert_id = str(store.alerts()["alert_id"].iloc[0])
    assert main(["--db", str(db_path), "alerts", "ack", alert_id[:8]]) == 0
    assert store.alerts()["status"].tolist() == ["acknowledged"]
    assert main(["--db", str(db_path), "alerts", "ack", alert_id[:8]]) == 2  # nothing left to acknowledge
    assert "no unacknowledged alert" in capsys.readouterr().err


def test_errors_are_one_line_without_a_traceback(tmp_path, capsys):
    assert main(["--db", str(tmp_path / "missing.duckdb"), "alerts", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("planwise-monitoring: monitoring database") and "does not exist yet" in err
    assert "Traceback" not in err


def test_flush_writes_spooled_records(db_path, capsys):
    store = MonitoringStore(db_path)
    record = make_record()
    store.spool.put(record.performance_id, record.to_json())
    assert main(["--db", str(db_path), "flush"]) == 0
    assert "1 record(s) written" in capsys.readouterr().out
    assert len(store.read_performance()) == 1
