"""The monitoring database: the only module that writes SQL against the ``mon_*`` tables.

    from planwise_monitoring.store.duckdb import MonitoringStore

    store = MonitoringStore(tmp_path / "monitoring.duckdb")
    store.write([record])            # or spool records and store.replay_spool()
    df = store.read_performance()

DuckDB lets one process at a time open a file for writing, and the plugin's writers are many
short-lived step processes, dbt, and perhaps a user's notebook. So every connection is short,
opening it retries on the lock for at most ``lock_timeout_seconds``, and a write that still cannot
get the lock leaves its record in the spool (see :mod:`planwise_monitoring.store.writer`), from where
the next successful write replays it. Record ids make replay idempotent.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..recording.measure import utcnow
from ..recording.records import PerformanceRecord
from ..evaluation.sla import ANY, SlaRules
from .spool import Spool

SCHEMA_VERSION = 2

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
}

_PERFORMANCE_COLUMNS = [
    "performance_id", "simulation_run_id", "simulation_id", "simulation_year", "scenario",
    "component_name", "component_type", "asset_key", "partition_key", "status",
    "execution_start_time", "execution_end_time", "execution_time_seconds", "cpu_seconds",
    "memory_usage_mb", "memory_start_mb", "input_record_count", "output_record_count",
    "records_per_second", "sla_threshold_seconds", "warning_threshold_seconds", "sla_status",
    "performance_category", "error_class", "error_message", "monitoring_overhead_seconds",
]
_PHASE_COLUMNS = ["performance_id", "phase_index", "phase_name", "started_at", "duration_seconds"]


def _insert_values_sql(table: str, columns: list[str], rows: int, on_conflict: bool = True) -> str:
    """One INSERT for all rows: far cheaper in DuckDB than executemany."""
    one = f"({', '.join('?' * len(columns))})"
    conflict = " ON CONFLICT DO NOTHING" if on_conflict else ""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}{conflict}"


# Year-over-year change and cumulative time are a function of the history as of each row's end:
#  - year over year: against the latest successful run of the same component and scenario in the
#    previous year that ended before this row did, preferring a run of the same simulation;
#  - cumulative: this row plus, for each earlier year of the same simulation, its latest successful
#    run that ended before this row did (a re-run year counts once).
# Recomputed for the new rows and for the later-year rows a late (replayed) row can change.
_UPDATE_HISTORY_COLUMNS = """
    UPDATE mon_multi_year_performance AS row
    SET year_over_year_change_pct = derived.yoy, cumulative_execution_time_seconds = derived.cumulative
    FROM (
    WITH new AS (
        SELECT * FROM mon_multi_year_performance WHERE performance_id IN (SELECT unnest(?::UUID[]))
    ),
    target AS (
        SELECT performance_id, component_name, scenario, simulation_id, simulation_year, status,
               execution_time_seconds, execution_end_time
        FROM new
        UNION
        SELECT t.performance_id, t.component_name, t.scenario, t.simulation_id, t.simulation_year, t.status,
               t.execution_time_seconds, t.execution_end_time
        FROM mon_multi_year_performance t
        JOIN new n ON t.component_name = n.component_name AND t.scenario = n.scenario
             AND t.simulation_year > n.simulation_year AND t.execution_end_time >= n.execution_end_time
    ),
    previous AS (
        SELECT t.performance_id,
               arg_max(p.execution_time_seconds, (p.simulation_id = t.simulation_id, p.execution_end_time)) AS seconds
        FROM target t JOIN mon_multi_year_performance p
          ON p.component_name = t.component_name AND p.scenario = t.scenario
         AND p.simulation_year = t.simulation_year - 1 AND p.status = 'SUCCESS'
         AND p.execution_end_time <= t.execution_end_time
        GROUP BY t.performance_id
    ),
    earlier AS (
        SELECT performance_id, sum(seconds) AS seconds FROM (
            SELECT t.performance_id, arg_max(p.execution_time_seconds, p.execution_end_time) AS seconds
            FROM target t JOIN mon_multi_year_performance p
              ON p.component_name = t.component_name AND p.simulation_id = t.simulation_id
             AND p.simulation_year < t.simulation_year AND p.status = 'SUCCESS'
             AND p.execution_end_time <= t.execution_end_time
            GROUP BY t.performance_id, p.simulation_year
        ) GROUP BY performance_id
    )
    SELECT t.performance_id,
           CASE WHEN t.status = 'SUCCESS' AND previous.seconds > 0
                THEN (t.execution_time_seconds - previous.seconds) / previous.seconds * 100 END AS yoy,
           t.execution_time_seconds + coalesce(earlier.seconds, 0) AS cumulative
    FROM target t
    LEFT JOIN previous USING (performance_id)
    LEFT JOIN earlier USING (performance_id)
    ) AS derived
    WHERE row.performance_id = derived.performance_id
"""

# Another process holds the file, or (same process) another thread has it open another way.
_LOCK_MESSAGE = re.compile(r"lock|different configuration|already attached|file handle conflict", re.I)
_LOCK_HOLDER = re.compile(r"held in (.+?) \(PID (\d+)\)")


class StoreError(RuntimeError):
    """The monitoring database cannot be used; the message says why."""


class StoreLockedError(StoreError):
    """Another process held the monitoring database's lock for longer than we wait."""

    def __init__(self, path: Path, waited: float, detail: str):
        holder = _LOCK_HOLDER.search(detail)
        self.holder_pid = int(holder.group(2)) if holder else None
        who = f"process {holder.group(2)} ({holder.group(1)})" if holder else "another process"
        super().__init__(f"monitoring database {path} is locked by {who}; gave up after {waited:.1f}s")


class MonitoringStore:
    """Reads and writes the ``mon_*`` tables of one DuckDB file. See the module docstring."""

    def __init__(self, path: str | Path, *, lock_timeout_seconds: float = 1.0, spool_dir: str | Path | None = None):
        self.path = Path(path)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.spool = Spool(spool_dir or f"{self.path}.spool")

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection, opened with bounded waiting on the lock and always closed.

        Within a process, writers take turns: threads share one DuckDB instance, where two
        transactions replaying the same spooled record would conflict at commit."""
        if read_only and not self.path.exists():
            raise StoreError(f"monitoring database {self.path} does not exist yet (nothing was recorded)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if read_only else _process_write_lock(self.path):
            conn = self._open(read_only)
            try:
                if not read_only:
                    _ensure_schema(conn, self.path)
                yield conn
            finally:
                conn.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if not _LOCK_MESSAGE.search(str(exc)):
                    raise StoreError(f"cannot open monitoring database {self.path}: {exc}") from None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreLockedError(self.path, self.lock_timeout_seconds, str(exc)) from None
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
                delay = min(delay * 2, 0.2)

    # -- writing --------------------------------------------------------------------------------
    def write(self, records: Sequence[PerformanceRecord], sla_rules: SlaRules | None = None) -> int:
        """Insert records (ignoring ids already stored) and replay the spool; returns rows inserted."""
        with self.connect() as conn:
            return self._write(conn, records, sla_rules)

    def replay_spool(self, sla_rules: SlaRules | None = None, limit: int | None = None) -> int:
        """Insert spooled records into the database and drop them from the spool."""
        with self.connect() as conn:
            return self._write(conn, [], sla_rules, limit)

    def _write(self, conn: duckdb.DuckDBPyConnection, records: Sequence[PerformanceRecord],
               sla_rules: SlaRules | None, limit: int | None = None) -> int:
        spooled, paths = [], []
        for path, payload in self.spool.pending(limit):
            try:
                spooled.append(PerformanceRecord.from_json(payload))
                paths.append(path)
            except (ValueError, TypeError, KeyError) as exc:
                self.spool.quarantine(path, f"{type(exc).__name__}: {exc}")
        conn.execute("BEGIN")
        try:
            synced = sla_rules is not None and _sync_sla_definitions(conn, self.path, sla_rules)
            inserted = _insert_records(conn, [*spooled, *records])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has rolled back already
                conn.execute("ROLLBACK")
            raise
        if synced:
            _synced[str(self.path.resolve())] = sla_rules
        self.spool.remove(paths)  # only after the commit: a crash in between replays harmlessly
        return inserted

    # -- reading --------------------------------------------------------------------------------
    def read_performance(self) -> pd.DataFrame:
        with self.connect(read_only=True) as conn:
            return conn.execute(
                "SELECT * FROM mon_multi_year_performance ORDER BY execution_start_time, component_name"
            ).df()

    def read_table(self, table: str) -> pd.DataFrame:
        if not re.fullmatch(r"mon_[a-z_]+", table):
            raise ValueError(f"not a monitoring table: {table!r}")
        with self.connect(read_only=True) as conn:
            return conn.execute(f"SELECT * FROM {table}").df()

    @contextlib.contextmanager
    def session(self, read_only: bool = False) -> Iterator[StoreSession]:
        """Several reads and writes on one short connection (e.g. one sensor tick)."""
        with self.connect(read_only=read_only) as conn:
            yield StoreSession(conn)

    def alerts(self, status: str | None = None, limit: int = 100) -> pd.DataFrame:
        with self.session(read_only=True) as s:
            return s.alerts(status, limit)

    def acknowledge_alert(self, alert_id: str) -> int:
        """Mark every delivery of the alert acknowledged; returns how many were."""
        with self.session() as s:
            return s.acknowledge_alert(alert_id)

    def prune(self, older_than: timedelta, now: datetime | None = None) -> dict[str, int]:
        """Delete history older than ``older_than`` (by each table's own timestamp); keep the rest.
        Returns the rows removed per table. SLA definitions and the schema version are kept."""
        cutoff = (now or utcnow()) - older_than
        removed = {}
        with self.session() as s:
            s.conn.execute("BEGIN")
            for table, column in _PRUNABLE.items():
                if table == "mon_phase_timings":
                    sql = ("DELETE FROM mon_phase_timings WHERE performance_id IN (SELECT performance_id FROM "
                           "mon_multi_year_performance WHERE execution_end_time < ?)")
                else:
                    sql = f"DELETE FROM {table} WHERE {column} < ?"
                removed[table] = s.conn.execute(sql, [cutoff]).fetchone()[0]
            s.conn.execute("COMMIT")
        return removed

    def schema_version(self) -> int:
        with self.connect(read_only=True) as conn:
            return _current_version(conn)


def _insert_records(conn: duckdb.DuckDBPyConnection, records: Sequence[PerformanceRecord]) -> int:
    ids = list({r.performance_id: None for r in records})
    if not ids:
        return 0
    stored = {str(row[0]) for row in conn.execute(
        "SELECT performance_id FROM mon_multi_year_performance WHERE performance_id IN (SELECT unnest(?::UUID[]))",
        [ids],
    ).fetchall()}
    new = list({r.performance_id: r for r in records if r.performance_id not in stored}.values())
    if not new:
        return 0
    rows = [[getattr(r, c) for c in _PERFORMANCE_COLUMNS] for r in new]
    conn.execute(_insert_values_sql("mon_multi_year_performance", _PERFORMANCE_COLUMNS, len(rows), on_conflict=False),
                 [v for row in rows for v in row])
    phases = [[r.performance_id, i, p.name, p.started_at, p.duration_seconds]
              for r in new for i, p in enumerate(r.phases)]
    if phases:
        conn.execute(_insert_values_sql("mon_phase_timings", _PHASE_COLUMNS, len(phases)),
                     [v for row in phases for v in row])
    conn.execute(_UPDATE_HISTORY_COLUMNS, [[r.performance_id for r in new]])
    return len(new)


# -- schema -------------------------------------------------------------------------------------
_migrated: set[str] = set()  # databases this process has already brought up to date
_write_locks: dict[str, threading.Lock] = {}


def _process_write_lock(path: Path) -> threading.Lock:
    with _schema_lock:
        return _write_locks.setdefault(os.path.abspath(path), threading.Lock())


_synced: dict[str, SlaRules] = {}
_schema_lock = threading.Lock()


def _current_version(conn: duckdb.DuckDBPyConnection) -> int:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'mon_schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM mon_schema_version").fetchone()[0]


def _ensure_schema(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    key = str(path.resolve())
    if key in _migrated:
        return
    with _schema_lock:
        version = _current_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"monitoring database {path} has schema version {version}, newer than this "
                f"planwise-monitoring understands ({SCHEMA_VERSION}); upgrade the package"
            )
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS mon_schema_version "
                    "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
                )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[target]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO mon_schema_version (version) VALUES (?)", [target])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        _migrated.add(key)


def _sync_sla_definitions(conn: duckdb.DuckDBPyConnection, path: Path, rules: SlaRules) -> bool:
    """Mirror the active SLA rules into ``mon_sla_definitions`` (once per process and rule set)."""
    if _synced.get(str(path.resolve())) is rules:
        return False
    wanted = {
        (d.component_name or ANY, d.component_type or ANY): d for d in rules.table_rows()
    }
    existing = conn.execute(
        "SELECT sla_id, component_name, component_type, sla_threshold_seconds, warning_threshold_seconds, "
        "record_count_threshold, is_active FROM mon_sla_definitions"
    ).fetchall()
    seen = set()
    for sla_id, name, ctype, breach, warning, records, active in existing:
        d = wanted.get((name, ctype))
        if d is None or (name, ctype) in seen:
            if active:
                conn.execute("UPDATE mon_sla_definitions SET is_active = false WHERE sla_id = ?", [sla_id])
            continue
        seen.add((name, ctype))
        if (breach, warning, records, active) != (d.sla_threshold_seconds, d.warning_threshold_seconds,
                                                  d.record_count_threshold, True):
            conn.execute(
                "UPDATE mon_sla_definitions SET sla_threshold_seconds = ?, warning_threshold_seconds = ?, "
                "record_count_threshold = ?, is_active = true WHERE sla_id = ?",
                [d.sla_threshold_seconds, d.warning_threshold_seconds, d.record_count_threshold, sla_id],
            )
    for (name, ctype), d in wanted.items():
        if (name, ctype) not in seen:
            conn.execute(
                "INSERT INTO mon_sla_definitions (sla_id, component_name, component_type, sla_threshold_seconds, "
                "warning_threshold_seconds, record_count_threshold, is_active) VALUES (?, ?, ?, ?, ?, ?, true)",
                [str(uuid.uuid4()), name, ctype, d.sla_threshold_seconds, d.warning_threshold_seconds,
                 d.record_count_threshold],
            )
    return True


# table -> the timestamp that dates a row; phases go with their record (so before it)
_PRUNABLE = {
    "mon_phase_timings": None,
    "mon_multi_year_performance": "execution_end_time",
    "mon_multi_year_regression": "detection_timestamp",
    "mon_alerts": "created_at",
    "mon_run_failures": "failed_at",
}

_ALERT_COLUMNS = [
    "alert_id", "channel", "fingerprint", "alert_type", "severity", "component_name", "simulation_year",
    "scenario", "simulation_run_id", "performance_id", "title", "message", "status", "attempts",
    "last_error", "created_at", "sent_at", "acknowledged_at",
]
_REGRESSION_COLUMNS = [
    "component_name", "component_type", "simulation_year", "scenario", "performance_id", "baseline_run_id",
    "current_run_id", "baseline_execution_time", "current_execution_time", "performance_degradation_pct",
    "regression_severity", "regression_threshold_pct", "robust_z", "baseline_samples",
]


class StoreSession:
    """The queries of the sensors, checks and alerting, on one open connection."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn

    def performance(self, performance_ids: Sequence[str]) -> list[dict]:
        if not performance_ids:
            return []
        cur = self.conn.execute(
            "SELECT * FROM mon_multi_year_performance WHERE performance_id IN (SELECT unnest(?::UUID[]))",
            [list(performance_ids)],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def baseline(self, component_name: str, scenario: str, simulation_year: int | None, before: datetime,
                 limit: int = 20) -> list[tuple[str, float]]:
        """(run id, seconds) of the latest successful earlier runs of the same component, year
        and scenario, oldest first: the history a regression is judged against."""
        rows = self.conn.execute(
            """
            SELECT simulation_run_id, execution_time_seconds FROM mon_multi_year_performance
            WHERE component_name = ? AND scenario = ? AND simulation_year IS NOT DISTINCT FROM ?
              AND status = 'SUCCESS' AND execution_end_time < ?
            ORDER BY execution_end_time DESC LIMIT ?
            """,
            [component_name, scenario, simulation_year, before, limit],
        ).fetchall()
        return [(run_id, seconds) for run_id, seconds in reversed(rows)]

    def insert_regressions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.conn.execute(
                f"INSERT INTO mon_multi_year_regression ({', '.join(_REGRESSION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_REGRESSION_COLUMNS))})",
                [row.get(c) for c in _REGRESSION_COLUMNS],
            )

    def insert_alerts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(_insert_values_sql("mon_alerts", _ALERT_COLUMNS, len(rows)),
                              [row.get(c) for row in rows for c in _ALERT_COLUMNS])

    def update_alert(self, alert_id: str, channel: str, status: str, attempts: int,
                     last_error: str | None, sent_at: datetime | None) -> None:
        self.conn.execute(
            "UPDATE mon_alerts SET status = ?, attempts = ?, last_error = ?, sent_at = ? "
            "WHERE alert_id = ? AND channel = ?",
            [status, attempts, last_error, sent_at, alert_id, channel],
        )

    def last_alerts(self, fingerprints: Sequence[str]) -> dict[str, datetime]:
        """When each fingerprint last produced an alert that was not suppressed (the notification log)."""
        if not fingerprints:
            return {}
        return dict(self.conn.execute(
            "SELECT fingerprint, max(created_at) FROM mon_alerts "
            "WHERE fingerprint IN (SELECT unnest(?::VARCHAR[])) AND status <> 'suppressed' GROUP BY fingerprint",
            [list(fingerprints)],
        ).fetchall())

    def insert_run_failure(self, row: Mapping[str, Any]) -> int:
        columns = ["dagster_run_id", "job_name", "failed_at", "partition_key", "failed_steps", "error_class",
                   "error_message"]
        return self.conn.execute(_insert_values_sql("mon_run_failures", columns, 1),
                                 [row.get(c) for c in columns]).fetchone()[0]

    # -- reports (the monitoring assets) ---------------------------------------------------------
    def build_performance_trends(self, since: datetime) -> pd.DataFrame:
        """Per component, year, scenario and day: runs, avg/min/max/p95 duration, SLA breaches."""
        self.conn.execute("""
            CREATE OR REPLACE TABLE mon_performance_trends AS
            SELECT component_name, component_type, simulation_year, scenario,
                   CAST(date_trunc('day', execution_end_time) AS DATE) AS performance_date,
                   count(*) AS run_count,
                   avg(execution_time_seconds) AS avg_execution_time,
                   min(execution_time_seconds) AS min_execution_time,
                   max(execution_time_seconds) AS max_execution_time,
                   quantile_cont(execution_time_seconds, 0.95) AS p95_execution_time,
                   count(*) FILTER (WHERE sla_status = 'SLA_BREACH') AS sla_breaches
            FROM mon_multi_year_performance
            WHERE status = 'SUCCESS' AND execution_end_time >= ?
            GROUP BY ALL
        """, [since])
        return self.conn.execute(
            "SELECT * FROM mon_performance_trends ORDER BY p95_execution_time DESC, component_name").df()

    def build_sla_compliance(self, since: datetime) -> pd.DataFrame:
        """Per component: judged runs, within / warning / breach, and compliance %: the share of
        judged runs that did not breach (a warning is a near miss, still within the SLA)."""
        self.conn.execute("""
            CREATE OR REPLACE TABLE mon_sla_compliance AS
            SELECT component_name, component_type,
                   count(*) AS total_runs,
                   count(*) FILTER (WHERE sla_status = 'WITHIN_SLA') AS within_sla,
                   count(*) FILTER (WHERE sla_status = 'SLA_WARNING') AS sla_warnings,
                   count(*) FILTER (WHERE sla_status = 'SLA_BREACH') AS sla_breaches,
                   round(100.0 * count(*) FILTER (WHERE sla_status <> 'SLA_BREACH') / count(*), 2) AS sla_compliance_pct
            FROM mon_multi_year_performance
            WHERE sla_status IS NOT NULL AND execution_end_time >= ?
            GROUP BY ALL
        """, [since])
        return self.conn.execute(
            "SELECT * FROM mon_sla_compliance ORDER BY sla_compliance_pct, component_name").df()

    def build_regression_report(self, since: datetime) -> pd.DataFrame:
        """Regressions detected since ``since``, worst severity and largest degradation first."""
        self.conn.execute("""
            CREATE OR REPLACE TABLE mon_regression_report AS
            SELECT component_name, component_type, simulation_year, scenario, regression_severity,
                   performance_degradation_pct, baseline_execution_time, current_execution_time,
                   current_run_id, baseline_run_id, detection_timestamp, investigation_status
            FROM mon_multi_year_regression
            WHERE detection_timestamp >= ?
        """, [since])
        return self.conn.execute("""
            SELECT * FROM mon_regression_report
            ORDER BY CASE regression_severity WHEN 'CRITICAL' THEN 0 WHEN 'MAJOR' THEN 1 ELSE 2 END,
                     performance_degradation_pct DESC
        """).df()

    def build_memory_growth(self) -> pd.DataFrame:
        """A view: each simulation's peak memory per component and year, and its growth since the
        simulation's first year."""
        self.conn.execute("""
            CREATE OR REPLACE VIEW mon_memory_growth AS
            WITH per_year AS (
                SELECT simulation_id, scenario, component_name, simulation_year,
                       max(memory_usage_mb) AS peak_memory_mb
                FROM mon_multi_year_performance
                WHERE status = 'SUCCESS' AND simulation_year IS NOT NULL AND memory_usage_mb IS NOT NULL
                GROUP BY ALL
            )
            SELECT *,
                   peak_memory_mb - first_value(peak_memory_mb) OVER w AS growth_since_first_year_mb,
                   round(100.0 * (peak_memory_mb / first_value(peak_memory_mb) OVER w - 1), 2)
                       AS growth_since_first_year_pct
            FROM per_year
            WINDOW w AS (PARTITION BY simulation_id, component_name ORDER BY simulation_year)
        """)
        return self.conn.execute(
            "SELECT * FROM mon_memory_growth ORDER BY growth_since_first_year_mb DESC NULLS LAST").df()

    def run_rows(self, run_id: str) -> pd.DataFrame:
        """The records of one Dagster run, for its summary."""
        return self.conn.execute(
            "SELECT * FROM mon_multi_year_performance WHERE simulation_run_id = ? "
            "ORDER BY simulation_year, execution_start_time", [run_id]).df()

    def run_regressions(self, run_id: str) -> pd.DataFrame:
        return self.conn.execute(
            "SELECT * FROM mon_multi_year_regression WHERE current_run_id = ? ORDER BY detection_timestamp",
            [run_id]).df()

    def pending_deliveries(self, limit: int = 100) -> list[dict]:
        """Deliveries still to make (new, or failed before and due for a retry), oldest first."""
        cur = self.conn.execute(
            "SELECT * FROM mon_alerts WHERE status = 'pending' ORDER BY created_at LIMIT ?", [limit]
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def alerts(self, status: str | None = None, limit: int = 100) -> pd.DataFrame:
        where = "WHERE status = ?" if status else ""
        return self.conn.execute(
            f"SELECT * FROM mon_alerts {where} ORDER BY created_at DESC, channel LIMIT ?",
            [status, limit] if status else [limit],
        ).df()

    def acknowledge_alert(self, alert_id: str) -> int:
        return self.conn.execute(
            "UPDATE mon_alerts SET acknowledged_at = now(), status = 'acknowledged' "
            "WHERE CAST(alert_id AS VARCHAR) LIKE ? || '%' AND acknowledged_at IS NULL",
            [alert_id],
        ).fetchone()[0]
