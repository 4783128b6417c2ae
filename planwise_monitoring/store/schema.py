"""The schema of the monitoring database, one definition for both backends: versioned migrations,
the figure views, the version check.

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("monitoring.duckdb")            # or "postgresql://app@db:5432/monitoring"
    with store.connect() as conn:                           # a write connection migrates first
        assert current_version(conn) == SCHEMA_VERSION

Every timestamp stored is naive UTC. Columns filled by the database itself default to
``timezone('UTC', current_timestamp)``, which is UTC whatever the machine's or the session's time
zone, on DuckDB and PostgreSQL alike; each backend also sets its session time zone to UTC.

The figures (SLA compliance, trends, durations) read the view ``mon_steps`` created by migration
3: it is where the day rule and the SLA judgement of a step are defined, once.

One definition, two dialects. The statements are written in the SQL both DuckDB and PostgreSQL
speak; the few places where they differ are a :class:`Variant` naming each dialect's statement
(None: nothing to do there), and DuckDB's ``DOUBLE`` is spelt ``DOUBLE PRECISION`` for
PostgreSQL. SQLAlchemy Core tables (Dagster's choice for its own storage) were weighed and not
taken: DuckDB would need the third-party ``duckdb_engine`` dialect, importing SQLAlchemy costs
the command line ~0.2 s per command, and the queries are plain SQL over DB-API connections in
any case; eight tables and one view do not need a schema compiler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import audit, baselines, optimization, rollups
from .errors import StoreError
from .facts import STEP_FACTS

SCHEMA_VERSION = 9


@dataclass(frozen=True)
class Variant:
    """A statement that differs between the dialects; None: nothing to run on that one.

        Variant(duckdb=None, postgres="CREATE INDEX ... ")   # PostgreSQL only
    """

    duckdb: str | None
    postgres: str | None

    def for_dialect(self, dialect: str) -> str | None:
        return self.duckdb if dialect == "duckdb" else self.postgres


_DOUBLE = re.compile(r"\bDOUBLE\b(?! PRECISION)")


def render(statement: str | Variant, dialect: str) -> str | None:
    """The statement as ``dialect`` ("duckdb" or "postgres") runs it, or None to skip it.

        assert render("x DOUBLE, y DOUBLE PRECISION", "postgres") == "x DOUBLE PRECISION, y DOUBLE PRECISION"
    """
    text = statement.for_dialect(dialect) if isinstance(statement, Variant) else statement
    if text is None or dialect == "duckdb":
        return text
    return _DOUBLE.sub("DOUBLE PRECISION", text)


_MEMORY_GROWTH = """
        CREATE VIEW {name} AS
        WITH per_year AS (
            SELECT simulation_id, scenario, component_name, simulation_year,
                   max(memory_usage_mb) AS peak_memory_mb
            FROM mon_steps
            WHERE succeeded AND simulation_year IS NOT NULL AND memory_usage_mb IS NOT NULL
            GROUP BY simulation_id, scenario, component_name, simulation_year
        )
        SELECT *,
               peak_memory_mb - first_value(peak_memory_mb) OVER w AS growth_since_first_year_mb,
               round({pct}, 2)
                   AS growth_since_first_year_pct
        FROM per_year
        WINDOW w AS (PARTITION BY simulation_id, component_name ORDER BY simulation_year)
        """
_GROWTH_PCT = "100.0 * (peak_memory_mb / first_value(peak_memory_mb) OVER w - 1)"


def _memory_growth_view(name: str) -> Variant:
    return Variant(duckdb=_MEMORY_GROWTH.format(name=name, pct=_GROWTH_PCT),
                   postgres=_MEMORY_GROWTH.format(name=name, pct=f"CAST({_GROWTH_PCT} AS NUMERIC)"))


MIGRATIONS: dict[int, list[str | Variant]] = {
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
        # mon_multi_year_performance must drop and create mon_steps (and mon_simulation_memory_growth) again.
        f"""
        CREATE VIEW mon_steps AS
        SELECT *,
               {STEP_FACTS}
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
        _memory_growth_view("mon_memory_growth"),
    ],
    # PostgreSQL takes many writers at once: the record id becomes a real unique key (a step's
    # write is idempotent by ON CONFLICT, not by looking ids up first), and the figures, the
    # history update, alert throttling and pruning get the indexes they read by. DuckDB keeps
    # its zone maps: an index would cost about half of a row's bytes (see migration 1).
    4: [
        Variant(None, "ALTER TABLE mon_multi_year_performance ADD PRIMARY KEY (performance_id)"),
        Variant(None, "CREATE INDEX mon_performance_history ON mon_multi_year_performance "
                      "(component_name, scenario, simulation_year, execution_end_time)"),
        Variant(None, "CREATE INDEX mon_performance_simulation ON mon_multi_year_performance "
                      "(simulation_id, component_name, simulation_year)"),
        Variant(None, "CREATE INDEX mon_performance_ended ON mon_multi_year_performance (execution_end_time)"),
        Variant(None, "CREATE INDEX mon_performance_run ON mon_multi_year_performance (simulation_run_id)"),
        Variant(None, "CREATE INDEX mon_regression_detected ON mon_multi_year_regression (detection_timestamp)"),
        Variant(None, "CREATE INDEX mon_alerts_fingerprint ON mon_alerts (fingerprint, created_at)"),
        Variant(None, "CREATE INDEX mon_alerts_pending ON mon_alerts (status, created_at)"),
    ],
    # mon_memory_growth becomes the memory report's table (per component, scenario and year: its
    # size bounded by the pipeline, not by the history); the per-simulation view keeps its rows
    # under a new name. PostgreSQL gets the daily summary its figures read (see .rollups), filled
    # from the steps stored so far, and the durations indexes of the percentiles. (Schema 5 also
    # had a duration histogram; migration 6 replaces it, so a database migrated now gets it there.)
    5: [
        "DROP VIEW IF EXISTS mon_memory_growth",
        _memory_growth_view("mon_simulation_memory_growth"),
        *(Variant(None, statement) for statement in rollups.TABLES),
        # failed-runs: the newest failed steps first, without reading the 98 % that succeeded
        Variant(None, "CREATE INDEX mon_performance_failed ON mon_multi_year_performance (execution_end_time) "
                      "WHERE status = 'FAILED'"),
    ],
    # The history lookups of a write (see .performance) read one simulation's succeeded runs of a
    # component in a year, latest first: an index in that order answers each with one probe.
    # Without it PostgreSQL took the durations index and filtered every run of the component.
    # The duration histogram gets a scenario (see .rollups).
    6: [
        Variant(None, "DROP INDEX mon_performance_simulation"),
        Variant(None, "CREATE INDEX mon_performance_simulation ON mon_multi_year_performance "
                      "(simulation_id, component_name, simulation_year, execution_end_time, performance_id) "
                      "WHERE status = 'SUCCESS'"),
        *(Variant(None, statement) for statement in rollups.HISTOGRAM),
    ],
    # The parameter audit trail (see .audit): append-only and hash-chained; on PostgreSQL keyed by its
    # order and ids, and refusing UPDATE, DELETE and TRUNCATE itself.
    7: [
        audit.TABLE,
        *(Variant(None, statement) for statement in audit.POSTGRES_GUARDS),
    ],
    # Optimization runs, their parameters and iterations (see .optimization).
    8: list(optimization.TABLES),
    # Versioned performance baselines (see .baselines); a regression says how it was detected (a
    # step change by default, as every regression stored before was).
    9: [
        *baselines.TABLES,
        *(Variant(None, statement) for statement in baselines.POSTGRES_INDEXES),
        "ALTER TABLE mon_multi_year_regression ADD COLUMN detection_type VARCHAR(10) NOT NULL DEFAULT 'STEP'",
    ],
}

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS mon_schema_version "
                 "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")


def current_version(conn: Any) -> int:
    """The schema version of an open database (0: none of our tables yet).

        with store.connect(read_only=True) as conn:
            assert current_version(conn) == SCHEMA_VERSION
    """
    if not conn.table_exists("mon_schema_version"):
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM mon_schema_version").fetchone()[0])


def ensure_schema(conn: Any, where: str, now: datetime) -> None:
    """Bring the database (open as ``conn``, a backend connection, for writing) to
    :data:`SCHEMA_VERSION` in one transaction; refuse a newer schema. ``where`` names the
    database in messages. Checked on every write connection (a fraction of a millisecond): a
    per-process "done" mark would outlive a DuckDB file removed and created again.

    Several processes may open a fresh database at once: in DuckDB the file's lock lets one
    writer in at a time; in PostgreSQL ``take_turns`` takes an advisory lock, and each
    process reads the version again once it holds it.

        ensure_schema(conn, "monitoring.duckdb", now=utcnow())   # a no-op the second time
    """
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise _newer(where, version)
    if version == SCHEMA_VERSION:
        return
    conn.begin()
    try:
        conn.take_turns("migrations")  # PostgreSQL: processes opening a fresh database take turns here
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise _newer(where, version)
        conn.execute(VERSION_TABLE)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                text = render(statement, conn.dialect)
                if text is not None:
                    conn.execute(text)
            conn.execute("INSERT INTO mon_schema_version (version, applied_at) VALUES (?, ?)", [target, now])
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _newer(where: str, version: int) -> StoreError:
    return StoreError(f"monitoring database {where} has schema version {version}, newer than this "
                      f"planwise-monitoring understands ({SCHEMA_VERSION}); upgrade the package")
