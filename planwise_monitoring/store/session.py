"""The queries of the sensors, checks and alerting, and the monitoring assets' table builds, on
one open connection.

    with store.session() as s:                 # one short connection, e.g. one sensor tick
        rows = s.performance([performance_id])
        s.insert_alerts([...])
        table = s.build_report("mon_sla_compliance", since=utcnow() - timedelta(days=30))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import baselines, figures, optimization, slo
from .performance import insert_values_sql
from .rows import Rows, select
from .schema import Variant, render

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
    """The queries of the sensors, checks and alerting, on one open backend connection (its
    ``execute`` takes ``?`` and ``$name`` parameters on either backend)."""

    def __init__(self, conn: Any):
        self.conn = conn

    def performance(self, performance_ids: Sequence[str]) -> list[dict]:
        if not performance_ids:
            return []
        cur = self.conn.execute(
            "SELECT * FROM mon_multi_year_performance WHERE performance_id IN (SELECT unnest(?::UUID[]))",
            [list(performance_ids)],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]

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

    def current_baseline(self, component_name: str, simulation_year: int | None, scenario: str) -> dict | None:
        """The current version of the component's baseline for one year and scenario (see
        :mod:`.baselines`: percentiles, MAD, sample size, version), or None if it has none.

            row = s.current_baseline("scd_workforce_state", 2025, "baseline")
            slower = row is not None and latest_seconds > row["p95_seconds"]
        """
        return baselines.current(self.conn, component_name, simulation_year, scenario)

    def optimization_runs(self, since: datetime, limit: int = 1000) -> list[dict]:
        """Runs finished since ``since``, oldest first, each with ``final_params`` (name -> value)."""
        cur = self.conn.execute(optimization.RECENT_RUNS, [since, limit])
        names = [d[0] for d in cur.description]
        runs = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        by_id: dict[str, dict[str, float | None]] = {str(r["optimization_id"]): {} for r in runs}
        if runs:
            for run_id, name, value in self.conn.execute(optimization.FINAL_PARAMETERS, [list(by_id)]).fetchall():
                by_id[str(run_id)][name] = value
        return [{**r, "final_params": by_id[str(r["optimization_id"])]} for r in runs]

    def slo_counts(self, slos: Sequence[Any], now: datetime) -> dict[str, slo.Counts]:
        """Per SLO (see :mod:`planwise_monitoring.evaluation.slo`): events, bad events, bad events per alert window."""
        return slo.slo_counts(self.conn, slos, now)

    def build_slo_status(self, rows: Sequence[Sequence[Any]]) -> Rows:
        """(Re)build ``mon_slo_status`` from one row per SLO (in ``slo.STATUS_COLUMNS``' order)."""
        self.conn.replace_table("mon_slo_status", render(slo.status_table_sql(len(rows)), self.conn.dialect),
                                [value for row in rows for value in row])
        return select(self.conn, "SELECT * FROM mon_slo_status ORDER BY slo_name")

    def insert_regressions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.conn.execute(
                f"INSERT INTO mon_multi_year_regression ({', '.join(_REGRESSION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_REGRESSION_COLUMNS))})",
                [row.get(c) for c in _REGRESSION_COLUMNS],
            )

    def insert_alerts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert_values_sql("mon_alerts", _ALERT_COLUMNS, len(rows)),
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
        return self.conn.count(insert_values_sql("mon_run_failures", columns, 1), [row.get(c) for c in columns])

    # -- reports (the monitoring assets) ---------------------------------------------------------
    def build_report(self, table: str, since: datetime) -> Rows:
        """(Re)build one monitoring asset's table from its figure over the window since ``since``,
        and return its rows."""
        sql, params = _REPORTS[table]
        self.conn.replace_table(table, figures.text(self.conn, sql), params(since))
        return select(self.conn, f"SELECT * FROM {table}")

    def build_optimization_kpis(self, now: datetime) -> Rows:
        """(Re)build ``mon_optimization_kpis``: a row per window (24h, 7d, 30d, 90d) ending at ``now``."""
        self.conn.replace_table("mon_optimization_kpis", optimization.KPIS, optimization.kpi_params(now))
        return select(self.conn, "SELECT * FROM mon_optimization_kpis ORDER BY position")

    def optimization_breakdown(self, since: datetime) -> dict[str, Rows]:
        """What the KPI asset shows beside its windows: failure reasons, algorithms, parameter drift."""
        return {"failure_reasons": optimization.failure_reasons(self.conn, since),
                "algorithms": optimization.algorithm_comparison(self.conn, since),
                "parameter_drift": optimization.parameter_trends(self.conn, since=since)}

    def run_steps(self, run_id: str) -> Rows:
        """The monitored steps of one Dagster run, for its summary."""
        return figures.run_steps(self.conn, run_id)

    def run_timings(self, run_id: str) -> Rows:
        """One run's seconds per year and component (summed over attempts), for its summary."""
        return figures.run_timings(self.conn, run_id)

    def run_compliance(self, run_id: str) -> Rows:
        """One run's SLA counts and compliance %, the same definition as everywhere."""
        return figures.overall_compliance(self.conn, run_id=run_id)

    def overall_compliance(self, since: datetime | None = None) -> Rows:
        """SLA counts and compliance % over every component since ``since`` (one row)."""
        return figures.overall_compliance(self.conn, since=since)

    def run_regressions(self, run_id: str) -> Rows:
        return figures.regressions(self.conn, run_id=run_id)

    def pending_deliveries(self, limit: int = 100) -> list[dict]:
        """Deliveries still to make (new, or failed before and due for a retry), oldest first."""
        cur = self.conn.execute(
            "SELECT * FROM mon_alerts WHERE status = 'pending' ORDER BY created_at LIMIT ?", [limit]
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]

    def alerts(self, status: str | None = None, limit: int = 100) -> Rows:
        """Alerts (every channel's delivery), newest first."""
        where = "WHERE status = ?" if status else ""
        return select(self.conn, f"SELECT * FROM mon_alerts {where} ORDER BY created_at DESC, channel LIMIT ?",
                              [status, limit] if status else [limit])

    def acknowledge_alert(self, alert_id: str, now: datetime) -> int:
        """Acknowledge every delivery of the alert whose id starts with ``alert_id``, at ``now`` (UTC)."""
        return self.conn.count(
            "UPDATE mon_alerts SET acknowledged_at = ?, status = 'acknowledged' "
            "WHERE CAST(alert_id AS VARCHAR) LIKE CAST(? AS VARCHAR) || '%' AND acknowledged_at IS NULL",
            [now, alert_id],
        )


# The asset tables, each its figure's query over a window.
_REPORTS: dict[str, tuple[str | Variant, Any]] = {
    "mon_performance_trends": (figures.TREND, lambda since: {**figures.filters(since), **figures.row_limit(None)}),
    "mon_sla_compliance": (figures.SLA_COMPLIANCE, lambda since: figures.filters(since)),
    "mon_regression_report": (figures.REGRESSIONS, lambda since: {"since": since, "run_id": None}),
    "mon_memory_growth": (figures.MEMORY_GROWTH, lambda since: figures.filters(since)),
}
