"""The schema of the monitoring database: versioned migrations, the figure views, the version check.

    from planwise_monitoring.store.schema import SCHEMA_VERSION, ensure_schema

    with duckdb.connect("monitoring.duckdb") as conn:
        ensure_schema(conn, Path("monitoring.duckdb"), now=utcnow())
        assert current_version(conn) == SCHEMA_VERSION

Every timestamp stored is naive UTC. Columns filled by the database itself default to
``timezone('UTC', current_timestamp)``, which is UTC whatever the machine's or the session's time
zone (``current_timestamp`` cast to TIMESTAMP would be local time); the backend also sets the
session time zone to UTC, for any other cast.

The figures (SLA compliance, trends, durations) read the view ``mon_steps`` created by migration
3: it is where the day rule and the SLA judgement of a step are defined, once. The SQL here is
DuckDB's; a second backend brings its own copy of this module's DDL, not of the queries.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from .errors import StoreError

SCHEMA_VERSION = 3

# Each migration moves the schema from version N-1 to N; never edit one that has shipped.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """
        CREATE TABLE mon_multi_year_performance (
            -- unique by construction (one writer at a time looks ids up before inserting); a
            -- PRIMARY KEY index would cost ~50 of the ~120 bytes a row takes on disk
            performance_id UUID NOT NULL,
            simulation_run_id VARCHAR NOT NULL,
            simulation_id VARCHAR NOT NULL,
            simulation_year INTEGER,
            scenario VARCHAR NOT NULL,
            component_name VARCHAR(100) NOT NULL,
            component_type VARCHAR(50) NOT NULL,
            asset_key VARCHAR,
            partition_key VARCHAR,
            status VARCHAR(10) NOT NULL,
            execution_start_time TIMESTAMP NOT NULL,
            execution_end_time TIMESTAMP NOT NULL,
            execution_time_seconds DOUBLE NOT NULL,
            cpu_seconds DOUBLE,
            memory_usage_mb DOUBLE,
            memory_start_mb DOUBLE,
            input_record_count BIGINT,
            output_record_count BIGINT,
            records_per_second DOUBLE,
            sla_threshold_seconds DOUBLE,
            warning_threshold_seconds DOUBLE,
            sla_status VARCHAR(20),
            performance_category VARCHAR(20),
            year_over_year_change_pct DOUBLE,
            cumulative_execution_time_seconds DOUBLE,
            error_class VARCHAR,
            error_message VARCHAR,
            monitoring_overhead_seconds DOUBLE,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )
        """,
        """
        CREATE TABLE mon_phase_timings (
            performance_id UUID NOT NULL,
            phase_index INTEGER NOT NULL,
            phase_name VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,
            duration_seconds DOUBLE NOT NULL,
            PRIMARY KEY (performance_id, phase_index)
        )
        """,
        """
        CREATE TABLE mon_multi_year_regression (
            regression_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            component_name VARCHAR(100) NOT NULL,
            component_type VARCHAR(50),
            simulation_year INTEGER,
            scenario VARCHAR,
            performance_id UUID,
            baseline_run_id VARCHAR NOT NULL,
            current_run_id VARCHAR NOT NULL,
            baseline_execution_time DOUBLE,
            current_execution_time DOUBLE,
            performance_degradation_pct DOUBLE,
            regression_severity VARCHAR(20),
            regression_threshold_pct DOUBLE DEFAULT 20.0,
            detection_timestamp TIMESTAMP DEFAULT current_timestamp,
            investigation_status VARCHAR(50) DEFAULT 'PENDING'
        )
        """,
        """
        CREATE TABLE mon_sla_definitions (
            sla_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            component_name VARCHAR(100) NOT NULL,
            component_type VARCHAR(50) NOT NULL,
            sla_threshold_seconds DOUBLE NOT NULL,
            warning_threshold_seconds DOUBLE NOT NULL,
            record_count_threshold BIGINT DEFAULT 0,
            is_active BOOLEAN DEFAULT true,
            created_at TIMESTAMP DEFAULT current_timestamp
        )
        """,
    ],
    2: [
        "ALTER TABLE mon_multi_year_regression ADD COLUMN robust_z DOUBLE",
        "ALTER TABLE mon_multi_year_regression ADD COLUMN baseline_samples INTEGER",
        """
        CREATE TABLE mon_alerts (
            alert_id UUID NOT NULL,
            channel VARCHAR NOT NULL,
            fingerprint VARCHAR NOT NULL,
            alert_type VARCHAR(30) NOT NULL,
            severity VARCHAR(10) NOT NULL,
            component_name VARCHAR(100),
            simulation_year INTEGER,
            scenario VARCHAR,
            simulation_run_id VARCHAR,
            performance_id UUID,
            title VARCHAR NOT NULL,
            message VARCHAR NOT NULL,
            status VARCHAR(12) NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error VARCHAR,
            created_at TIMESTAMP NOT NULL,
            sent_at TIMESTAMP,
            acknowledged_at TIMESTAMP,
            PRIMARY KEY (alert_id, channel)
        )
        """,
        """
        CREATE TABLE mon_run_failures (
            dagster_run_id VARCHAR PRIMARY KEY,
            job_name VARCHAR NOT NULL,
            failed_at TIMESTAMP NOT NULL,
            partition_key VARCHAR,
            failed_steps VARCHAR,
            error_class VARCHAR,
            error_message VARCHAR
        )
        """,
    ],
    3: [
        # UTC whatever the time zone: current_timestamp cast to TIMESTAMP is local time.
        *(f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT timezone('UTC', current_timestamp)"
          for table, column in [("mon_multi_year_performance", "created_at"),
                                ("mon_multi_year_regression", "detection_timestamp"),
                                ("mon_sla_definitions", "created_at"),
                                ("mon_schema_version", "applied_at")]),
        # DuckDB keeps a view's column list: a later migration that adds a column to
        # mon_multi_year_performance must drop and create mon_steps (and mon_memory_growth) again.
        """
        CREATE VIEW mon_steps AS
        SELECT *,
               CAST(execution_end_time AS DATE) AS performance_date,
               status = 'SUCCESS' AS succeeded,
               status = 'FAILED' AS failed,
               sla_status IS NOT NULL AS judged,
               coalesce(sla_status IN ('WITHIN_SLA', 'SLA_WARNING'), false) AS met_sla,
               coalesce(sla_status = 'SLA_BREACH', false) AS breached
        FROM mon_multi_year_performance
        """,
        """
        COMMENT ON VIEW mon_steps IS 'One row per monitored step attempt and the facts every figure is built from. '
        'performance_date: the UTC day the step ENDED (times are stored in UTC), so a step from 23:58 to 00:03 '
        'counts on the later day, the day its result existed. succeeded/failed: its status; durations in figures '
        'are of succeeded steps only (a failed step stopped early). judged: it has an SLA verdict (a step that '
        'failed before it could be judged has none). met_sla: judged and not a breach (a warning is a near miss, '
        'still within the SLA). breached: an SLA breach.'
        """,
        # Was created by the memory-growth asset on first materialization; now part of the schema.
        "DROP VIEW IF EXISTS mon_memory_growth",
        """
        CREATE VIEW mon_memory_growth AS
        WITH per_year AS (
            SELECT simulation_id, scenario, component_name, simulation_year,
                   max(memory_usage_mb) AS peak_memory_mb
            FROM mon_steps
            WHERE succeeded AND simulation_year IS NOT NULL AND memory_usage_mb IS NOT NULL
            GROUP BY simulation_id, scenario, component_name, simulation_year
        )
        SELECT *,
               peak_memory_mb - first_value(peak_memory_mb) OVER w AS growth_since_first_year_mb,
               round(100.0 * (peak_memory_mb / first_value(peak_memory_mb) OVER w - 1), 2)
                   AS growth_since_first_year_pct
        FROM per_year
        WINDOW w AS (PARTITION BY simulation_id, component_name ORDER BY simulation_year)
        """,
    ],
}

_VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS mon_schema_version "
                  "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")

_lock = threading.Lock()


def current_version(conn: Any) -> int:
    """The schema version of an open database (0: none of our tables yet).

        assert current_version(duckdb.connect()) == 0
    """
    try:
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM mon_schema_version").fetchone()[0])
    except duckdb.CatalogException:
        return 0


def ensure_schema(conn: Any, path: Path, now: datetime) -> None:
    """Bring the database at ``path`` (open as ``conn``, for writing) to :data:`SCHEMA_VERSION`, in
    one transaction; refuse a newer schema. Checked on every write connection (a fraction of a
    millisecond): a per-process "done" mark would outlive the file if it is removed and created
    again (a user, a half-created file cleared after a full disk), and inodes are reused.

        ensure_schema(conn, path, now=utcnow())   # a no-op the second time
    """
    with _lock:
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"monitoring database {path} has schema version {version}, newer than this "
                f"planwise-monitoring understands ({SCHEMA_VERSION}); upgrade the package"
            )
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN")
            try:
                conn.execute(_VERSION_TABLE)
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[target]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO mon_schema_version (version, applied_at) VALUES (?, ?)", [target, now])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
