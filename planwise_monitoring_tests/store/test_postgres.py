"""What is PostgreSQL's own in the store, on a real server: the migrations (a fresh database,
processes racing to create it, a schema of its own), a user's query confined to one read, and
direct writes from many processes, with the spool only while the server cannot take them."""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from planwise_monitoring.cli import main
from planwise_monitoring.reporting.queries import DEFAULT_LIMIT, QueryError, run_query
from planwise_monitoring.store import MonitoringStore, StoreLockedError
from planwise_monitoring.store.schema import SCHEMA_VERSION
from planwise_monitoring.store.writer import writer_for

from ..factories import make_record
from .backends import Backend

TABLES = {"mon_multi_year_performance", "mon_phase_timings", "mon_multi_year_regression", "mon_sla_definitions",
          "mon_alerts", "mon_run_failures", "mon_schema_version", "mon_daily_steps", "mon_duration_histogram",
          "mon_parameter_changes", "mon_optimization_runs", "mon_optimization_parameters",
          "mon_optimization_iterations", "mon_baselines"}
VIEWS = {"mon_steps", "mon_simulation_memory_growth"}
INDEXES = {"mon_performance_history", "mon_performance_simulation", "mon_performance_ended", "mon_performance_run",
           "mon_regression_detected", "mon_alerts_fingerprint", "mon_alerts_pending", "mon_daily_steps_day",
           "mon_performance_durations", "mon_performance_daily_durations", "mon_performance_failed",
           "mon_baselines_version", "mon_baselines_version_no_year"}


# -- migrations ---------------------------------------------------------------------------------

def test_a_fresh_database_is_migrated_to_the_current_version(postgres: Backend):
    store = postgres.store()
    record = make_record()
    assert store.write([record]) == 1
    assert store.schema_version() == SCHEMA_VERSION == 9
    with postgres.raw() as conn:
        assert set(postgres.tables(conn)) == TABLES
        assert {v for (v,) in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'").fetchall()} == VIEWS
        primary_key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'mon_multi_year_performance'::regclass "
            "AND i.indisprimary").fetchall()
        assert primary_key == [("performance_id",)]
        indexes = {i for (i,) in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'").fetchall()}
        assert indexes >= INDEXES
        assert conn.execute("SELECT version FROM mon_schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]
        # the views and the summary tables read the stored row
        assert conn.execute("SELECT performance_date, met_sla FROM mon_steps").fetchall() == [
            (datetime(2026, 1, 1).date(), True)]
        assert conn.execute("SELECT growth_since_first_year_mb FROM mon_simulation_memory_growth").fetchall() == [
            (0.0,)]
        assert conn.execute("SELECT runs, within_sla, succeeded_seconds FROM mon_daily_steps").fetchall() == [
            (1, 1, record.execution_time_seconds)]
        assert conn.execute("SELECT sum(steps) FROM mon_duration_histogram").fetchone() == (1,)
        with pytest.raises(psycopg.errors.UniqueViolation):  # the key is real, not a convention
            conn.execute("INSERT INTO mon_multi_year_performance SELECT * FROM mon_multi_year_performance")


def _open_at_once(url: str, schema: str | None, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = MonitoringStore(url, lock_timeout_seconds=60, schema=schema)
    record = make_record()
    barrier.wait(timeout=120)
    store.write([record])


@pytest.mark.parametrize("schema", [None, "planwise"], ids=["public", "planwise"])
def test_processes_opening_a_fresh_database_at_once_migrate_it_once(postgres: Backend, schema: str | None):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_at_once, args=(postgres.target, schema, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    with postgres.raw() as conn:
        namespace = schema or "public"
        assert conn.execute(f"SELECT version FROM {namespace}.mon_schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert conn.execute(f"SELECT count(*) FROM {namespace}.mon_multi_year_performance").fetchone() == (4,)


def test_a_schema_of_its_own_holds_the_tables(postgres: Backend, capsys: pytest.CaptureFixture[str]):
    store = postgres.store(schema="planwise")
    record = make_record()
    store.write([record])
    with postgres.raw() as conn:
        placed = set(conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                  "WHERE table_name LIKE 'mon%'").fetchall())
    assert placed == {("planwise", name) for name in TABLES | VIEWS}
    assert store.read_performance()["performance_id"].astype(str).tolist() == [record.performance_id]
    assert store.target.endswith("(schema planwise)")
    assert not postgres.store().exists()  # the connection's default schema holds nothing of ours
    assert main(["--db", postgres.target, "--schema", "planwise", "query",
                 "SELECT count(*) AS n FROM mon_multi_year_performance", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]


# -- a user's query ------------------------------------------------------------------------------

@pytest.fixture
def seeded(postgres: Backend) -> Backend:
    """A database with a row in the tables a write would change."""
    store = postgres.store()
    store.write([make_record(), make_record(simulation_year=2026)])
    with store.session() as s:
        s.insert_alerts([{"alert_id": str(uuid.uuid4()), "channel": "log", "fingerprint": "f", "alert_type": "SLA_BREACH",
                          "severity": "ERROR", "title": "t", "message": "m", "status": "sent", "attempts": 1,
                          "created_at": datetime(2026, 1, 1)}])
        s.insert_run_failure({"dagster_run_id": "run-1", "job_name": "j", "failed_at": datetime(2026, 1, 1)})
    return postgres


REFUSED = {
    "insert": ("INSERT INTO mon_run_failures (dagster_run_id, job_name, failed_at) VALUES ('r', 'j', now())",
               r"only SELECT queries are allowed \(got INSERT\)"),
    "update": ("UPDATE mon_alerts SET status = 'pending'", r"only SELECT queries are allowed \(got UPDATE\)"),
    "delete": ("DELETE FROM mon_multi_year_performance", r"only SELECT queries are allowed \(got DELETE\)"),
    "drop": ("DROP TABLE mon_alerts", r"only SELECT queries are allowed \(got DROP\)"),
    "copy": ("COPY mon_multi_year_performance TO '{tmp}/out.csv'", r"only SELECT queries are allowed \(got COPY\)"),
    "pg_read_file": ("SELECT pg_read_file('/etc/passwd')", r"function pg_read_file\(\) is not allowed"),
    "for-update": ("SELECT * FROM mon_alerts FOR UPDATE", r"FOR UPDATE/SHARE \(row locks\) is not allowed"),
    "set_config": ("SELECT set_config('statement_timeout', '0', false)", r"function set_config\(\) is not allowed"),
    "two-statements": ("SELECT 1; DROP TABLE mon_alerts", r"only a single SELECT query is allowed \(got 2 statements\)"),
    "write-in-a-cte": ("WITH x AS (DELETE FROM mon_alerts RETURNING *) SELECT * FROM x",
                       r"only SELECT queries are allowed \(got DELETE in a WITH query\)"),
    "explain-analyze": ("EXPLAIN ANALYZE DELETE FROM mon_alerts", r"EXPLAIN ANALYZE runs its statement"),
    # The check reads the SQL as PostgreSQL does: an escaped quote in an E'' string, a name in U&"".
    "e-string-hiding-a-file-read": ("SELECT E'\\'', pg_read_file('/etc/passwd') --'",
                                    r"function pg_read_file\(\) is not allowed"),
    "e-string-hiding-a-session-lock": ("SELECT E'\\'', pg_advisory_lock(42) --'",
                                       r"function pg_advisory_lock\(\) is not allowed"),
    "escaped-name": ("SELECT U&\"pg_read_fil\\0065\"('/etc/passwd')", r"Unicode-escaped names .* are not allowed"),
}


@pytest.mark.parametrize("sql, message", REFUSED.values(), ids=REFUSED.keys())
def test_anything_but_one_read_is_refused_in_one_line_and_nothing_changes(
        seeded: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str], sql: str, message: str):
    sql = sql.format(tmp=tmp_path)
    store = seeded.store()
    before = seeded.row_counts()
    assert all(before[t] for t in ("mon_multi_year_performance", "mon_alerts", "mon_run_failures"))
    for limit in (DEFAULT_LIMIT, None):  # wrapped in a LIMIT, and as it is
        with pytest.raises(QueryError, match=message) as caught:
            run_query(store, sql, limit=limit)
        assert "\n" not in str(caught.value)
    assert main(["--db", seeded.target, "query", sql]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("planwise-monitoring: ") and captured.err.count("\n") == 1
    assert re.search(message, captured.err)
    assert seeded.row_counts() == before
    assert not (tmp_path / "out.csv").exists()
    with seeded.raw() as conn:  # and no session lock was left on a pooled connection
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)


@pytest.mark.parametrize("case", ["write-in-a-cte", "e-string-hiding-a-file-read"])
def test_the_command_refuses_with_exit_status_2_and_no_traceback(seeded: Backend, case: str):
    sql, message = REFUSED[case]
    result = subprocess.run([sys.executable, "-m", "planwise_monitoring.cli", "--db", seeded.target, "query", "-"],
                            input=sql, capture_output=True, text=True, timeout=120, env=seeded.env())
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(rf"planwise-monitoring: [^\n]*{message}[^\n]*\n", result.stderr), result.stderr


def test_literals_comments_limits_and_parameters(seeded: Backend, capsys: pytest.CaptureFixture[str]):
    store = seeded.store()
    assert run_query(store, "SELECT ';' AS s -- ;").rows == [(";",)]
    assert run_query(store, "SELECT '%' AS p, '50%%' AS q /* 100% ; */").rows == [("%", "50%%")]
    assert run_query(store, "SELECT E'it\\'s; 100%' AS s").rows == [("it's; 100%",)]
    # ? binds; a ? (or $name, or %) in a literal or a comment is text
    assert run_query(store, "SELECT count(*) AS n FROM mon_multi_year_performance WHERE simulation_year = ? "
                            "AND component_name = ? -- really?", params=[2026, "scd_workforce_state"]).rows == [(1,)]
    assert run_query(store, "SELECT '?; 5%' AS s, ? AS x", params=[7]).rows == [("?; 5%", 7)]
    assert run_query(store, "SELECT '$HOME' AS s, $q$ ?; $x $q$ AS d, ? AS x", params=[7]).rows == [
        ("$HOME", " ?; $x ", 7)]
    truncated = run_query(store, "SELECT i FROM generate_series(1, 25) AS g(i) ORDER BY i DESC -- last", limit=10)
    assert truncated.column("i") == list(range(25, 15, -1)) and truncated.truncated
    assert not run_query(store, "SELECT i FROM generate_series(1, 10) AS g(i)", limit=10).truncated
    assert len(run_query(store, "SELECT i FROM generate_series(1, 20000) AS g(i)")) == DEFAULT_LIMIT
    assert len(run_query(store, "SELECT i FROM generate_series(1, 20000) AS g(i)", limit=None)) == 20_000
    assert len(run_query(store, "EXPLAIN SELECT * FROM mon_alerts")) >= 1
    assert main(["--db", seeded.target, "query", "SELECT ';' AS s -- ;", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"s": ";"}]
    assert main(["--db", seeded.target, "query", "SELECT i FROM generate_series(1, 5) AS g(i)", "--limit", "3",
                 "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "i\n1\n2\n3\n" and "showing first 3 rows" in captured.err


def test_bad_sql_is_the_servers_first_line(seeded: Backend, capsys: pytest.CaptureFixture[str]):
    assert main(["--db", seeded.target, "query", "SELECT * FROM mon_nothing"]) == 2
    assert capsys.readouterr().err == 'planwise-monitoring: relation "mon_nothing" does not exist\n'
    with pytest.raises(QueryError, match=r'^syntax error at or near "FORM"$'):
        run_query(seeded.store(), "SELECT * FORM mon_alerts")


# -- direct writes -------------------------------------------------------------------------------

def test_a_direct_write_is_readable_at_once_and_spools_nothing(postgres: Backend):
    store = postgres.store()
    store.write([])
    writer = writer_for(store)
    record = make_record()
    writer.submit(record)
    assert store.spool.count() == 0 and not writer.pending_ids()
    assert postgres.performance_ids() == [record.performance_id]  # on another connection, no flush
    assert writer.take_warnings() == []


@pytest.mark.parametrize("recover", ["replay_spool", "flush"])
def test_while_the_server_refuses_connections_records_wait_in_the_spool(
        postgres: Backend, caplog: pytest.LogCaptureFixture, recover: str):
    store = postgres.store()
    store.write([])  # a pooled connection now exists: the server ends it
    writer = writer_for(store)
    record = make_record()
    assert postgres.server is not None
    postgres.server.refuse_connections(postgres.database)
    try:
        with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
            writer.submit(record)  # returns, bounded by the lock timeout
        assert store.spool.has(record.performance_id)
        assert postgres.database in caplog.text and "1 record(s) of this step are spooled in" in caplog.text
        assert any("spooled in" in w for w in writer.take_warnings())
    finally:
        postgres.server.allow_connections(postgres.database)
    if recover == "replay_spool":
        store.replay_spool()  # the background writer may be at it too: either stores it
    else:
        assert writer.flush(timeout_seconds=30)
    assert postgres.performance_ids() == [record.performance_id]
    assert store.replay_spool() == 0 and store.spool.count() == 0 and not writer.pending_ids()


def test_a_table_locked_by_another_session_is_waited_for_at_most_the_lock_timeout(postgres: Backend):
    store = postgres.store(lock_timeout_seconds=0.5)
    store.write([])
    writer = writer_for(store)
    record = make_record()
    with psycopg.connect(postgres.target) as other:  # a transaction holding the table
        other.execute("LOCK TABLE mon_multi_year_performance IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreLockedError, match=r"is locked by another process; gave up after 0\.5s"):
            store.write([make_record()])
        writer.submit(record)
        assert store.spool.has(record.performance_id)
        other.rollback()
    assert writer.flush(timeout_seconds=30)
    assert postgres.performance_ids() == [record.performance_id]
