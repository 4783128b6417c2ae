from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from planwise_monitoring.cli import main
from planwise_monitoring.recording.records import FAILED
from planwise_monitoring.reporting.queries import QueryError, run_named, run_query
from planwise_monitoring.store.duckdb import MonitoringStore

from ..factories import lock_held_by_another_process, make_record
from ..store.backends import Backend


def _snapshot(db_path: Path) -> dict[str, list]:
    with duckdb.connect(str(db_path), read_only=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: sorted(map(str, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


@pytest.fixture
def store(db_path: Path) -> MonitoringStore:
    """A DuckDB file, for the tests of what DuckDB checks and refuses itself (see store/test_postgres.py)."""
    store = MonitoringStore(db_path, lock_timeout_seconds=5.0)
    store.write([make_record(), make_record(simulation_year=2026)])
    return store


@pytest.fixture
def seeded(backend: Backend) -> Backend:
    """Either backend, with two records."""
    backend.store().write([make_record(), make_record(simulation_year=2026)])
    return backend


REFUSED = [
    ("DELETE FROM mon_multi_year_performance", "got DELETE"),
    ("DROP TABLE mon_multi_year_performance", "got DROP"),
    ("ATTACH '{tmp}/other.duckdb' AS other", "got ATTACH"),
    ("COPY mon_multi_year_performance TO '{tmp}/out.csv'", "got COPY"),
    ("COPY (SELECT 1) TO '{tmp}/out.csv'", "got COPY"),
    ("INSERT INTO mon_run_failures (dagster_run_id, job_name, failed_at) VALUES ('r', 'j', now())", "got INSERT"),
    ("UPDATE mon_multi_year_performance SET execution_time_seconds = 0", "got UPDATE"),
    ("CREATE TABLE mon_extra (a INTEGER)", "got CREATE"),
    ("CREATE VIEW v AS SELECT 1", "got CREATE"),
    ("PRAGMA enable_checkpoint_on_shutdown", "got PRAGMA"),
    ("SET threads = 1", "got SET"),
    ("CHECKPOINT", "got CALL"),
    ("INSTALL httpfs", "got LOAD"),
    ("EXPORT DATABASE '{tmp}/export'", "got EXPORT"),
    ("EXPLAIN ANALYZE DELETE FROM mon_multi_year_performance", "got EXPLAIN of DELETE"),
    ("SELECT 1; DELETE FROM mon_multi_year_performance", "2 statements: SELECT, DELETE"),
    ("SELECT * FROM read_csv('{tmp}/secret.csv')", "file system operations are disabled"),
    ("SELECT * FROM '{tmp}/secret.csv'", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/passwd')", "file system operations are disabled"),
    ("", "no SQL statement given"),
]


@pytest.mark.parametrize("sql, message", REFUSED, ids=[m for _, m in REFUSED])
def test_anything_but_a_read_is_refused_and_the_database_is_unchanged(store, db_path, tmp_path, sql, message):
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    before, files = _snapshot(db_path), sorted(tmp_path.rglob("*"))
    with pytest.raises(QueryError, match=message) as caught:
        run_query(store, sql.format(tmp=tmp_path))
    assert "\n" not in str(caught.value)
    assert _snapshot(db_path) == before
    assert sorted(tmp_path.rglob("*")) == files  # nothing written (out.csv, other.duckdb, export/)


def test_a_refused_statement_names_its_type(seeded: Backend):
    with pytest.raises(QueryError, match=r"^only SELECT queries are allowed \(got DELETE\)$"):
        run_query(seeded.store(), "delete from mon_alerts")


def test_bad_sql_is_a_query_error_with_duckdbs_first_line(store):
    with pytest.raises(QueryError, match=r"^Parser Error: syntax error"):
        run_query(store, "SELEC 1")
    with pytest.raises(QueryError, match=r"^Catalog Error: Table with name mon_nothing does not exist"):
        run_query(store, "SELECT * FROM mon_nothing")


def test_select_and_other_reads_work(store):
    rows = run_query(store, "SELECT simulation_year, execution_time_seconds FROM mon_multi_year_performance "
                            "ORDER BY simulation_year -- a trailing comment")
    assert rows.rows == [(2025, 10.0), (2026, 10.0)]
    assert not rows.truncated
    assert len(run_query(store, "WITH t AS (FROM mon_multi_year_performance) SELECT * FROM t;")) == 2
    assert "mon_alerts" in run_query(store, "SHOW TABLES").column("name")
    assert len(run_query(store, "EXPLAIN SELECT * FROM mon_alerts")) >= 1


def test_limit_truncates_and_says_so(store):
    rows = run_query(store, "SELECT * FROM range(25) t(i) ORDER BY i DESC", limit=10)
    assert rows.column("i") == list(range(24, 14, -1)) and rows.truncated
    assert not run_query(store, "SELECT * FROM range(10)", limit=10).truncated
    assert len(run_query(store, "SELECT * FROM range(20000)")) == 10_000  # the default
    assert len(run_query(store, "SELECT * FROM range(20000)", limit=None)) == 20_000


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_formats_parse_back(seeded: Backend, capsys, fmt):
    sql = "SELECT performance_id, simulation_year, execution_start_time, error_message FROM mon_multi_year_performance"
    assert main(["--db", seeded.target, "query", sql, "--format", fmt]) == 0
    out = capsys.readouterr().out
    df = pd.read_csv(io.StringIO(out)) if fmt == "csv" else pd.DataFrame(json.loads(out))
    expected = seeded.store().read_performance()
    assert sorted(df["performance_id"]) == sorted(expected["performance_id"].astype(str))
    assert sorted(df["simulation_year"]) == [2025, 2026]
    assert pd.to_datetime(df["execution_start_time"]).tolist() == [datetime(2026, 1, 1, 12)] * 2
    assert df["error_message"].isna().all()


def test_sla_compliance_matches_a_hand_count(backend: Backend):
    store = backend.store()
    statuses = ["WITHIN_SLA"] * 5 + ["SLA_WARNING"] * 2 + ["SLA_BREACH"] * 3
    store.write([make_record(component_name="fct_yearly_events", sla_status=s) for s in statuses]
                + [make_record(component_name="fct_yearly_events", status=FAILED, sla_status=None)]
                + [make_record(sla_status="WITHIN_SLA")])
    df = run_named(store, "sla-compliance").df().set_index("component_name")
    row = df.loc["fct_yearly_events"]
    assert (row.judged_runs, row.within_sla, row.sla_warnings, row.sla_breaches, row.not_judged) == (10, 5, 2, 3, 1)
    assert row.sla_compliance_pct == pytest.approx(70.0)  # a warning met the SLA; the unjudged failure is out
    assert df.loc["scd_workforce_state"].sla_compliance_pct == 100.0
    assert df.index[0] == "fct_yearly_events"  # worst first


def test_slowest_components_and_trend_match_a_hand_computation(backend: Backend):
    store = backend.store()
    seconds = [3.0, 1.0, 7.0, 5.0, 2.0]
    start = datetime(2026, 3, 1, 9)
    records = [make_record(execution_time_seconds=s, execution_start_time=start + timedelta(hours=i))
               for i, s in enumerate(seconds)]
    records += [make_record(execution_time_seconds=99.0, status=FAILED, execution_start_time=start),  # ignored
                make_record(execution_time_seconds=4.0, execution_start_time=start + timedelta(days=1)),
                make_record(component_name="int_baseline_workforce", execution_time_seconds=0.5)]
    store.write(records)
    slowest = run_named(store, "slowest-components").df()
    assert slowest["component_name"].tolist() == ["scd_workforce_state", "int_baseline_workforce"]
    top = slowest.iloc[0]
    ok = pd.Series([*seconds, 4.0])
    assert (top.runs, top.p50_execution_time, top.max_execution_time) == (6, ok.quantile(0.5), 7.0)
    assert top.p95_execution_time == pytest.approx(ok.quantile(0.95))

    trend = run_named(store, "trend", component="scd_workforce_state").df()
    assert [str(d) for d in trend["performance_date"]] == ["2026-03-01", "2026-03-02"]
    first = trend.iloc[0]
    assert (first.runs, first.failed_runs, first.min_execution_time, first.max_execution_time) == (6, 1, 1.0, 7.0)
    assert first.avg_execution_time == pytest.approx(sum(seconds) / len(seconds))
    assert first.p95_execution_time == pytest.approx(pd.Series(seconds).quantile(0.95))
    assert trend.iloc[1][["runs", "avg_execution_time"]].tolist() == [1, 4.0]
    assert not run_named(store, "trend", component="no_such_component")


def test_failed_runs_newest_first_and_regressions_worst_first(backend: Backend):
    store = backend.store()
    store.write([make_record(status=FAILED, sla_status=None, error_class="KeyError",
                             execution_start_time=datetime(2026, 1, 2), simulation_run_id="run-2")])
    with store.session() as s:
        s.insert_run_failure({"dagster_run_id": "run-3", "job_name": "simulation", "failed_at": datetime(2026, 1, 3),
                              "error_class": "DagsterExecutionStepExecutionError"})
        s.insert_regressions([
            {"component_name": c, "baseline_run_id": "a", "current_run_id": "b", "performance_degradation_pct": p,
             "regression_severity": "MAJOR"} for c, p in [("older", 30.0), ("newer", 50.0)]])
    failed = run_named(store, "failed-runs").df()
    assert failed[["source", "run_id", "error_class"]].values.tolist() == [
        ["run", "run-3", "DagsterExecutionStepExecutionError"], ["step", "run-2", "KeyError"]]
    regressions = run_named(store, "regressions").df()
    assert regressions["component_name"].tolist() == ["newer", "older"]  # same severity: larger degradation first


def test_a_query_waits_out_a_brief_write_lock(store, db_path):
    released = threading.Event()

    def release() -> None:
        released.set()
        holder.stdin.close()  # the holder exits when its stdin closes

    with lock_held_by_another_process(db_path) as holder:
        threading.Timer(1.0, release).start()  # the query starts while the other process holds the lock
        rows = run_query(store, "SELECT count(*) AS n FROM mon_multi_year_performance")
        assert released.is_set()  # and answers only once it let go
    assert rows.column("n") == [2]


def test_a_long_lock_fails_the_cli_naming_the_holder(store, db_path):
    with lock_held_by_another_process(db_path) as holder:
        result = subprocess.run(
            [sys.executable, "-m", "planwise_monitoring.cli", "--db", str(db_path), "--lock-timeout", "1",
             "query", "SELECT 1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("planwise-monitoring: monitoring database")
    assert f"locked by process {holder.pid}" in result.stderr and "gave up after 1.0s" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
