import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from planwise_monitoring.alerting.delivery import AlertDispatcher
from planwise_monitoring.alerting.policy import Alert, parse_alert_config
from planwise_monitoring.cli import main, parse_age
from planwise_monitoring.recording.records import FAILED
from planwise_monitoring.store.duckdb import MonitoringStore

from .factories import make_record
from .store.backends import BACKENDS, Backend, open_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    """The monitoring database, once a DuckDB file and once a fresh PostgreSQL database."""
    with open_backend(request, tmp_path) as b:
        yield b


def test_alerts_list_and_ack(backend, capsys):
    store = backend.store()
    record = make_record()
    store.write([record])
    config = parse_alert_config({"channels": {"log": {"type": "log"}}}, "test")
    AlertDispatcher(store, config).dispatch([Alert(
        alert_type="SLA_BREACH", severity="ERROR", component_name="scd_workforce_state", simulation_year=2025,
        scenario="baseline", title="SLA_BREACH: scd_workforce_state 2025", message="130s against 120s",
        performance_id=record.performance_id,
    )])
    assert main(["--db", backend.target, "alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "SLA_BREACH: scd_workforce_state 2025" in out and "sent" in out
    alert_id = str(store.alerts()["alert_id"].iloc[0])
    assert main(["--db", backend.target, "alerts", "ack", alert_id[:8]]) == 0
    assert store.alerts()["status"].tolist() == ["acknowledged"]
    assert main(["--db", backend.target, "alerts", "ack", alert_id[:8]]) == 2  # nothing left to acknowledge
    assert "no unacknowledged alert" in capsys.readouterr().err


def test_errors_are_one_line_without_a_traceback(backend, capsys):
    """DuckDB: no file yet; PostgreSQL: a database without our tables."""
    assert main(["--db", backend.target, "alerts", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("planwise-monitoring: monitoring database") and "does not exist yet" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_flush_writes_spooled_records(backend, capsys):
    store = backend.store()
    record = make_record()
    store.spool.put(record.performance_id, record.to_json())
    assert main(["--db", backend.target, "flush"]) == 0
    assert "1 record(s) written" in capsys.readouterr().out
    assert backend.performance_ids() == [record.performance_id] and store.spool.count() == 0
    assert main(["--db", backend.target, "flush"]) == 0
    assert "0 record(s) written" in capsys.readouterr().out


# -- query, named queries, summary, prune -------------------------------------------------------

def _cli(target, *argv) -> int:
    return main(["--db", str(target), *argv])


def test_query_formats(backend, capsys):
    target = backend.target
    backend.store().write([make_record(), make_record(simulation_year=2026, execution_time_seconds=20.0)])
    sql = "SELECT simulation_year, execution_time_seconds FROM mon_multi_year_performance ORDER BY 1"
    assert _cli(target, "query", sql) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["simulation_year", "execution_time_seconds"] and table[2].split() == ["2026", "20.0"]
    assert _cli(target, "query", sql, "--format", "csv") == 0
    assert capsys.readouterr().out == "simulation_year,execution_time_seconds\n2025,10.0\n2026,20.0\n"
    assert _cli(target, "query", sql, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == [{"simulation_year": 2025, "execution_time_seconds": 10.0},
                                                   {"simulation_year": 2026, "execution_time_seconds": 20.0}]


def test_query_truncation_is_reported_on_stderr(backend, capsys):
    backend.store().write([])
    sql = "SELECT i FROM (VALUES (0), (1), (2), (3), (4)) AS t(i) ORDER BY i"
    assert _cli(backend.target, "query", sql, "--limit", "3", "--format", "csv") == 0
    captured = capsys.readouterr()
    assert captured.out == "i\n0\n1\n2\n"
    assert captured.err == "planwise-monitoring: showing first 3 rows; use --limit to see more (0 for all)\n"


def test_a_named_query(backend, capsys):
    target = backend.target
    backend.store().write([make_record(sla_status=s) for s in ["WITHIN_SLA", "SLA_WARNING", "SLA_BREACH",
                                                                         "SLA_BREACH"]])
    assert _cli(target, "sla-compliance", "--format", "json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["component_name"] == "scd_workforce_state" and row["sla_compliance_pct"] == 50.0
    assert _cli(target, "trend", "scd_workforce_state") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:8] == [
        "scd_workforce_state", "SCD", "2025", "baseline", "2026-01-01", "4", "0", "2"]


@pytest.mark.parametrize("sql, message", [
    ("SELEC 1", "planwise-monitoring: Parser Error: syntax error at or near \"SELEC\"\n"),
    ("SELECT * FROM mon_nothing", "planwise-monitoring: Catalog Error: Table with name mon_nothing does not exist!\n"),
    ("DROP TABLE mon_alerts", "planwise-monitoring: only SELECT queries are allowed (got DROP)\n"),
])
def test_bad_sql_is_one_line_without_a_traceback(db_path, capsys, sql, message):
    MonitoringStore(db_path).write([])
    assert _cli(db_path, "query", sql) == 2
    captured = capsys.readouterr()
    assert captured.err == message and captured.out == ""


def test_query_of_a_missing_database(backend, capsys):
    assert main(["--db", backend.target, "failed-runs"]) == 2
    assert main(["--db", backend.target, "query", "SELECT 1"]) == 2
    assert capsys.readouterr().err.count("does not exist yet") == 2
    assert not backend.store().exists()  # a read created nothing


def test_summary_prints_the_runs_summary_file(db_path, tmp_path, capsys):
    summary = tmp_path / "artifacts" / "runs" / "run-7" / "summary.txt"
    summary.parent.mkdir(parents=True)
    summary.write_text("simulation run-7: 3 years, 42 s\n")
    assert _cli(db_path, "summary", "run-7", "--artifacts", str(tmp_path / "artifacts")) == 0
    assert capsys.readouterr().out == "simulation run-7: 3 years, 42 s\n"


def test_summary_computed_from_the_runs_rows(backend, tmp_path, capsys):
    target = backend.target
    backend.store().write([
        make_record(simulation_run_id="run-9", execution_time_seconds=12.0),
        make_record(simulation_run_id="run-9", simulation_year=2026, execution_time_seconds=130.0,
                    sla_status="SLA_BREACH"),
        make_record(simulation_run_id="run-9", component_name="fct_yearly_events", status=FAILED, sla_status=None,
                    error_class="KeyError", execution_time_seconds=1.0),
        make_record(simulation_run_id="other-run", execution_time_seconds=500.0),
    ])
    assert _cli(target, "summary", "run-9", "--artifacts", str(tmp_path / "none")) == 0
    out = capsys.readouterr().out
    assert "steps: 3 (2 succeeded, 1 failed)" in out and "143.0s of step time" in out
    assert re.search(r"scd_workforce_state\s+SCD\s+12\.00\s+130\.00\s+142\.00", out)
    assert "SLA compliance: 50% of 2 judged step(s)" in out
    assert "SLA_BREACH   scd_workforce_state 2026: 130.00s against 120s" in out
    assert "fct_yearly_events 2025: KeyError" in out and "500" not in out
    assert _cli(target, "summary", "no-such-run") == 2
    assert capsys.readouterr().err == "planwise-monitoring: no monitored steps recorded for run 'no-such-run'\n"
    assert _cli(target, "summary", "../etc") == 2
    assert "not a run id" in capsys.readouterr().err


def test_prune_keeps_the_window_and_reports_what_it_removed(backend, capsys):
    target = backend.target
    store = backend.store()
    now = datetime.now(UTC).replace(tzinfo=None)
    old, recent = now - timedelta(days=120), now - timedelta(days=10)
    store.write([make_record(execution_start_time=old), make_record(execution_start_time=old),
                 make_record(execution_start_time=recent)])
    with store.session() as s:
        s.insert_run_failure({"dagster_run_id": "old", "job_name": "j", "failed_at": old})
        s.insert_run_failure({"dagster_run_id": "new", "job_name": "j", "failed_at": recent})
    assert _cli(target, "prune", "--older-than", "90d") == 0
    out = capsys.readouterr().out
    assert out.startswith("removed rows older than 90 days (before ")
    counts = dict(line.split() for line in out.splitlines()[1:])
    assert counts == {"mon_phase_timings": "0", "mon_multi_year_performance": "2", "mon_multi_year_regression": "0",
                      "mon_alerts": "0", "mon_run_failures": "1", "total": "3"}
    assert len(store.read_performance()) == 1 and store.read_table("mon_run_failures")["dagster_run_id"].tolist() == ["new"]


@pytest.mark.parametrize("age, expected", [("90d", timedelta(days=90)), ("36h", timedelta(hours=36)),
                                           ("2w", timedelta(weeks=2))])
def test_prune_ages(age, expected):
    assert parse_age(age) == expected


@pytest.mark.parametrize("argv", [["prune", "--older-than", "90"], ["prune", "--older-than", "0d"],
                                  ["prune", "--older-than", "3m"]])
def test_a_bad_prune_age_is_a_usage_error(db_path, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        _cli(db_path, *argv)
    assert exited.value.code == 2 and "expected a positive age like 90d" in capsys.readouterr().err


def test_prune_of_a_missing_database_does_not_create_it(backend, capsys):
    assert main(["--db", backend.target, "prune", "--older-than", "90d"]) == 2
    assert "does not exist yet" in capsys.readouterr().err and not backend.store().exists()


def test_audit_verify_and_approve(backend, capsys):
    from planwise_monitoring.store.audit import ChangeEntry

    store = backend.store()
    change = ChangeEntry.change(parameter_name="cola_rate", old_value=0.02, new_value=0.025, user_name="ana",
                                change_source="manual", recorded_at=datetime(2026, 3, 1, 9))
    store.log_changes([change])
    assert main(["--db", backend.target, "audit", "approve", change.entry_id, "--by", "controller"]) == 0
    assert f"of change {change.entry_id} by controller appended" in capsys.readouterr().out
    assert main(["--db", backend.target, "audit", "verify"]) == 0
    assert "audit trail intact: 2 entries" in capsys.readouterr().out
    assert main(["--db", backend.target, "audit", "approve", "not-a-change", "--by", "controller"]) == 2
    assert "no parameter change 'not-a-change'" in capsys.readouterr().err
    with backend.raw() as conn:  # the database's owner edits the value
        if backend.is_postgres:
            conn.execute("ALTER TABLE mon_parameter_changes DISABLE TRIGGER USER")
        conn.execute("UPDATE mon_parameter_changes SET new_value = 0.07 WHERE entry_seq = 1")
    assert main(["--db", backend.target, "audit", "verify"]) == 1
    assert "audit trail broken at entry 1: its content does not match its hash" in capsys.readouterr().err


def test_audit_report_lists_changes_with_their_approvals(backend, capsys):
    from planwise_monitoring.store.audit import ChangeEntry

    store = backend.store()
    changes = [ChangeEntry.change(parameter_name=name, old_value=0.02, new_value=0.03, user_name="ana",
                                  change_source="optimization", recorded_at=datetime(2026, 3, day, 9))
               for name, day in [("cola_rate", 1), ("merit_rate", 2), ("hire_rate", 9)]]
    store.log_changes(changes)
    store.approve_change(changes[0].entry_id, by="controller", now=datetime(2026, 3, 1, 15, 30))
    store.approve_change(changes[0].entry_id, by="cfo", now=datetime(2026, 3, 2, 9))
    assert main(["--db", backend.target, "audit", "report", "--from", "2026-03-01", "--to", "2026-03-02",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["parameter_name"], r["approvals"], r["approved_by"], r["hours_to_approval"]) for r in rows] == [
        ("cola_rate", 2, "controller, cfo", 6.5), ("merit_rate", 0, None, None)]
    with pytest.raises(SystemExit) as exited:  # a usage error, as argparse reports it
        main(["--db", backend.target, "audit", "report", "--from", "2026-03-01", "--to", "march"])
    assert exited.value.code == 2 and "not a date (YYYY-MM-DD): 'march'" in capsys.readouterr().err


def test_audit_of_a_missing_database_does_not_create_it(backend, capsys):
    assert main(["--db", backend.target, "audit", "verify"]) == 2
    assert main(["--db", backend.target, "audit", "approve", "x", "--by", "me"]) == 2
    assert "does not exist yet" in capsys.readouterr().err and not backend.store().exists()


# -- baselines ------------------------------------------------------------------------------------

def _runs(component: str = "scd_workforce_state", seconds: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0, 100.0)):
    """Successful runs of a component in 2025 (one every hour, in this order) and a failed one last."""
    start = datetime(2026, 1, 1)
    return [*(make_record(component_name=component, execution_start_time=start + timedelta(hours=i),
                          execution_time_seconds=s) for i, s in enumerate(seconds)),
            make_record(component_name=component, execution_start_time=start + timedelta(hours=9), status=FAILED,
                        sla_status=None, error_class="KeyError", execution_time_seconds=999.0)]


def test_baseline_update_show_and_rollback(backend, capsys):
    backend.store().write(_runs())
    assert _cli(backend.target, "baseline", "update", "scd_workforce_state", "--runs", "3", "--by", "ana") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("baseline version 1 of 'scd_workforce_state': 1 row(s), from the last 3 successful runs of "
                      "each simulation year and scenario")
    assert out[1].split()[:8] == ["scenario", "simulation_year", "sample_size", "p50_seconds", "p95_seconds",
                                  "p99_seconds", "mad_seconds", "p50_peak_memory_mb"]
    assert out[2].split()[:7] == ["baseline", "2025", "3", "40.0", "94.0", "98.8", "10.0"]  # of 30, 40, 100
    assert _cli(backend.target, "baseline", "show", "--format", "json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["component_name"], row["version"], row["sample_size"], row["window_runs"], row["p50_seconds"],
            row["method"], row["created_by"]) == ("scd_workforce_state", 1, 3, 3, 40.0, "percentile", "ana")

    assert _cli(backend.target, "baseline", "update", "scd_workforce_state") == 0  # all 5: median 30
    assert "baseline version 2 of 'scd_workforce_state': 1 row(s), from the last 20" in capsys.readouterr().out
    assert _cli(backend.target, "baseline", "rollback", "scd_workforce_state", "--by", "ben") == 0
    out = capsys.readouterr().out
    assert out.startswith("baseline version 3 of 'scd_workforce_state': 1 row(s), a copy of version 1\n")
    assert out.splitlines()[2].split()[3] == "40.0"
    assert _cli(backend.target, "baseline", "rollback", "scd_workforce_state", "--to", "2") == 0
    assert "version 4 of 'scd_workforce_state': 1 row(s), a copy of version 2" in capsys.readouterr().out
    assert _cli(backend.target, "baseline", "show", "scd_workforce_state", "--all-versions", "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["method"], r["p50_seconds"]) for r in rows] == [
        (4, "rollback:v2", 30.0), (3, "rollback:v1", 40.0), (2, "percentile", 30.0), (1, "percentile", 40.0)]
    assert rows[1]["created_by"] == "ben"
    assert _cli(backend.target, "baseline", "show", "--all-versions", "--limit", "1", "--format", "csv") == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "showing first 1 rows" in captured.err
    assert _cli(backend.target, "baseline", "show", "fct_yearly_events") == 0
    assert capsys.readouterr().out == "(no rows)\n"


@pytest.mark.parametrize("argv, message", [
    (["update", "never_ran"], "no successful runs of component 'never_ran' in "),
    (["rollback", "never_ran"], "component 'never_ran' has no baselines in "),
    (["rollback", "scd_workforce_state"], "has only baseline version 1: no earlier version to roll back to"),
    (["rollback", "scd_workforce_state", "--to", "7"],
     "component 'scd_workforce_state' has no baseline version 7 (its versions are 1 to 1)"),
], ids=["update-unknown", "rollback-none", "rollback-only-one", "rollback-unknown-version"])
def test_baseline_errors_are_one_line(backend, capsys, argv, message):
    store = backend.store()
    store.write(_runs())
    store.update_baselines("scd_workforce_state")
    assert _cli(backend.target, "baseline", *argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("planwise-monitoring: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert len(store.baselines(all_versions=True)) == 1


def test_a_hostile_component_name_is_only_ever_a_value(backend, capsys):
    hostile = "x'; DROP TABLE mon_baselines; --"
    store = backend.store()
    store.write(_runs() + _runs(hostile, (1.0, 2.0, 4.0)))
    store.update_baselines("scd_workforce_state")
    assert _cli(backend.target, "baseline", "update", "y'); DELETE FROM mon_baselines; --") == 2
    assert "no successful runs of component \"y'); DELETE FROM mon_baselines; --\"" in capsys.readouterr().err
    assert _cli(backend.target, "baseline", "update", hostile, "--by", "'; TRUNCATE mon_baselines; --") == 0
    assert f"baseline version 1 of {hostile!r}: 1 row(s)" in capsys.readouterr().out
    assert _cli(backend.target, "baseline", "rollback", hostile) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _cli(backend.target, "baseline", "show", "--format", "json") == 0
    rows = {r["component_name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {name: r["p50_seconds"] for name, r in rows.items()} == {"scd_workforce_state": 30.0, hostile: 2.0}
    assert rows[hostile]["created_by"] == "'; TRUNCATE mon_baselines; --"


def test_baseline_of_a_missing_database_does_not_create_it(backend, capsys):
    assert _cli(backend.target, "baseline", "show") == 2
    assert _cli(backend.target, "baseline", "update", "scd_workforce_state") == 2
    assert _cli(backend.target, "baseline", "rollback", "scd_workforce_state") == 2
    assert capsys.readouterr().err.count("does not exist yet") == 3 and not backend.store().exists()


@pytest.mark.parametrize("argv", [["update", "c", "--runs", "0"], ["update", "c", "--runs", "many"],
                                  ["rollback", "c", "--to", "-1"]])
def test_a_bad_baseline_argument_is_a_usage_error(db_path, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        _cli(db_path, "baseline", *argv)
    assert exited.value.code == 2 and "expected a" in capsys.readouterr().err
    assert not db_path.exists()


@pytest.mark.parametrize("argv", [[], ["query"], ["sla-compliance"], ["trend"], ["summary"], ["prune"], ["audit"],
                                  ["audit", "verify"], ["audit", "approve"], ["audit", "report"], ["baseline"],
                                  ["baseline", "show"], ["baseline", "update"], ["baseline", "rollback"]])
def test_help_of_every_command(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0 and "usage: planwise-monitoring" in capsys.readouterr().out


def test_the_command_line_imports_neither_dagster_nor_pandas():
    """Importing Dagster costs every command ~1.5 s, pandas ~0.4 s, pydantic (for records) ~30 ms; a read
    needs none of them."""
    code = ("import sys, planwise_monitoring.cli\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'dagster_dbt', 'pandas', 'numpy', 'pydantic'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_read_command_runs_without_importing_dagster_or_pandas(backend):
    backend.store().write([make_record(sla_status="SLA_BREACH")])
    code = ("import sys\nfrom planwise_monitoring.cli import main\n"
            f"assert main(['--db', {backend.target!r}, 'sla-compliance']) == 0\n"
            f"assert main(['--db', {backend.target!r}, 'trend', 'scd_workforce_state', '--format', 'csv']) == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pandas', 'numpy'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=backend.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]" and "scd_workforce_state" in result.stdout
