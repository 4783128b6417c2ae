"""The schema: upgrading a version-2 file loses nothing, and every timestamp the database fills
in is UTC whatever the machine's time zone."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from planwise_monitoring.store import MonitoringStore
from planwise_monitoring.store.figures import sla_compliance, trend
from planwise_monitoring.store.schema import MIGRATIONS, SCHEMA_VERSION

from ..factories import make_record
from .backends import Backend


def _version_2_file(path: Path) -> None:
    """A database as 0.1 (schema version 2) left it, with a row in every table and the tables and
    view its monitoring assets created."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE mon_schema_version (version INTEGER NOT NULL, "
                     "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
        for version in (1, 2):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO mon_schema_version (version) VALUES (?)", [version])
        pid = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO mon_multi_year_performance (performance_id, simulation_run_id, simulation_id, simulation_year, "
            "scenario, component_name, component_type, status, execution_start_time, execution_end_time, "
            "execution_time_seconds, sla_status) VALUES (?, 'run-1', 'sim-1', 2025, 'baseline', 'c', 'T', 'SUCCESS', "
            "TIMESTAMP '2026-01-01 23:58:00', TIMESTAMP '2026-01-02 00:03:00', 300.0, 'SLA_BREACH')", [pid])
        conn.execute("INSERT INTO mon_phase_timings VALUES (?, 0, 'load', TIMESTAMP '2026-01-01 23:58:00', 1.0)", [pid])
        conn.execute("INSERT INTO mon_multi_year_regression (component_name, baseline_run_id, current_run_id, "
                     "robust_z) VALUES ('c', 'run-0', 'run-1', 4.5)")
        conn.execute("INSERT INTO mon_sla_definitions (component_name, component_type, sla_threshold_seconds, "
                     "warning_threshold_seconds) VALUES ('*', '*', 300, 240)")
        conn.execute("INSERT INTO mon_alerts (alert_id, channel, fingerprint, alert_type, severity, title, message, "
                     "status, created_at) VALUES (?, 'log', 'f', 'SLA_BREACH', 'ERROR', 't', 'm', 'sent', now())",
                     [str(uuid.uuid4())])
        conn.execute("INSERT INTO mon_run_failures (dagster_run_id, job_name, failed_at) VALUES ('r', 'j', now())")
        # what the 0.1 monitoring assets left behind
        conn.execute("CREATE TABLE mon_performance_trends AS SELECT 1 AS run_count")
        conn.execute("CREATE VIEW mon_memory_growth AS SELECT 1 AS peak_memory_mb")


def _columns(path: Path) -> dict[str, list[str]]:
    """Each table's columns (but mon_schema_version's)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        columns: dict[str, list[str]] = {}
        for table, column in conn.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
                "AND c.table_name <> 'mon_schema_version' ORDER BY c.table_name, c.ordinal_position").fetchall():
            columns.setdefault(table, []).append(column)
        return columns


def _snapshot(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Each table's rows as text, sorted; of the tables in ``columns``, only those columns (the ones
    they had before an upgrade added more)."""
    every = _columns(path)
    with duckdb.connect(str(path), read_only=True) as conn:
        return {t: sorted(map(str, conn.execute(f"SELECT {', '.join((columns or every).get(t, cols))} FROM {t}"
                                                ).fetchall())) for t, cols in every.items()}


def test_a_version_2_file_is_upgraded_with_nothing_lost(db_path: Path):
    _version_2_file(db_path)
    before, columns = _snapshot(db_path), _columns(db_path)
    assert sum(len(rows) for rows in before.values()) == 7

    store = MonitoringStore(db_path)
    store.write([make_record()])
    assert store.schema_version() == SCHEMA_VERSION == 9
    after = _snapshot(db_path, columns)
    assert {t: after[t] for t in before if t != "mon_multi_year_performance"} == {
        t: rows for t, rows in before.items() if t != "mon_multi_year_performance"}
    assert {t: rows for t, rows in after.items() if t not in before} == {  # new, empty
        t: [] for t in ("mon_parameter_changes", "mon_optimization_runs", "mon_optimization_parameters",
                        "mon_optimization_iterations", "mon_baselines")}
    assert set(before["mon_multi_year_performance"]) < set(after["mon_multi_year_performance"])
    with store.connect(read_only=True) as conn:
        # the regression detected before says how: a step change, as every one was then
        assert conn.execute("SELECT detection_type FROM mon_multi_year_regression").fetchall() == [("STEP",)]
        # the old row is read through the new definitions: the day it ended, its breach
        [old] = [r for r in trend(conn, component="c").dicts()]
        assert (str(old["performance_date"]), old["runs"], old["sla_breaches"]) == ("2026-01-02", 1, 1)
        assert {r["component_name"]: r["sla_compliance_pct"] for r in sla_compliance(conn).dicts()}["c"] == 0.0
        growth = conn.execute("SELECT * FROM mon_simulation_memory_growth")  # the schema's view, not 0.1's
        assert "growth_since_first_year_mb" in [d[0] for d in growth.description] and len(growth.fetchall()) == 1
        # 0.1's view is gone: the name is the memory report's table now
        assert conn.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'mon_memory_growth'").fetchone() == (0,)
        assert conn.execute("SELECT version FROM mon_schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]


_IN_LOS_ANGELES = """
import json, sys, time
from datetime import UTC, datetime, timedelta
from planwise_monitoring.evaluation.sla import SlaRules
from planwise_monitoring.store import MonitoringStore
from planwise_monitoring_tests.factories import make_record

assert time.localtime().tm_gmtoff != 0, "the test needs a zone other than UTC"
store = MonitoringStore(sys.argv[1])
store.write([make_record(execution_start_time=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1))])
with store.session() as s:
    s.insert_regressions([{"component_name": "c", "baseline_run_id": "a", "current_run_id": "b"}])
    s.insert_alerts([{"alert_id": "7d3c8d0e-5b8f-4e9e-9b7a-8d6c1f0a2b3c", "channel": "log", "fingerprint": "f",
                      "alert_type": "SLA_BREACH", "severity": "ERROR", "title": "t", "message": "m",
                      "status": "sent", "attempts": 1, "created_at": datetime.now(UTC).replace(tzinfo=None)}])
store.write([], SlaRules())  # mirrors the default SLA into mon_sla_definitions
store.acknowledge_alert("7d3c8d0e")
removed = store.prune(timedelta(hours=2))
with store.connect(read_only=True) as conn:
    stamps = {name: str(conn.execute(sql).fetchone()[0]) for name, sql in {
        "created_at": "SELECT max(created_at) FROM mon_multi_year_performance",
        "detection_timestamp": "SELECT max(detection_timestamp) FROM mon_multi_year_regression",
        "applied_at": "SELECT max(applied_at) FROM mon_schema_version",
        "acknowledged_at": "SELECT max(acknowledged_at) FROM mon_alerts",
        "sla_created_at": "SELECT max(created_at) FROM mon_sla_definitions",
    }.items()}
print(json.dumps({"stamps": stamps, "removed": removed}))
"""


def test_timestamps_the_database_fills_in_are_utc_in_any_time_zone(backend: Backend):
    before = datetime.now(UTC).replace(tzinfo=None)
    result = subprocess.run(
        [sys.executable, "-c", _IN_LOS_ANGELES, backend.target], capture_output=True, text=True, timeout=120,
        env={**backend.env(), "TZ": "America/Los_Angeles", "PGTZ": "America/Los_Angeles"},
        cwd=Path(__file__).parents[2])
    after = datetime.now(UTC).replace(tzinfo=None)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for name, stamp in out["stamps"].items():
        # Los Angeles is 7 or 8 hours from UTC: local time would be far outside this interval
        assert before.replace(microsecond=0) <= datetime.fromisoformat(stamp) <= after, (name, stamp)
    assert out["removed"]["mon_multi_year_regression"] == 0  # detected seconds ago: inside a 2 h window
    assert out["removed"]["mon_multi_year_performance"] == 0
