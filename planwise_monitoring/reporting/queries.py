"""Read-only SQL over the monitoring database, and the named queries of the command line.

    from planwise_monitoring.reporting.queries import NAMED_QUERIES, run_query
    from planwise_monitoring.store.duckdb import MonitoringStore

    store = MonitoringStore("monitoring.duckdb", lock_timeout_seconds=5.0)
    df = run_query(store, "SELECT component_name, count(*) FROM mon_multi_year_performance GROUP BY ALL")
    df = run_query(store, NAMED_QUERIES["trend"], params=["scd_workforce_state"])
    assert not df.attrs["truncated"]

A user's SQL is checked with DuckDB's own parser before it runs: one SELECT (or EXPLAIN of one),
nothing else. It then runs on a read-only connection with file access switched off, so even a
SELECT cannot read or write other files (``read_csv('/etc/passwd')``, ``COPY … TO``, ``ATTACH``).
The parser check gives the clear message; the connection settings are what actually guarantee it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from ..store.duckdb import MonitoringStore

DEFAULT_LIMIT = 10_000


class QueryError(ValueError):
    """The SQL was refused or failed; the message says why (one line, DuckDB's own words)."""


_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.I)


def check_read_only(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, bool]:
    """The single statement in ``sql`` without its trailing ``;``, and whether it is an EXPLAIN.
    Raises :class:`QueryError` for anything but one SELECT or one EXPLAIN of a SELECT."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise QueryError(f"only a single SELECT query is allowed (got {len(statements)} statements: {kinds})")
    statement = statements[0]
    text = statement.query.strip().rstrip(";").strip()
    if statement.type == duckdb.StatementType.SELECT:
        return text, False
    if statement.type == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement, so what is explained must pass the same check.
        inner = _EXPLAIN.match(text)
        if inner is None:
            raise QueryError("only SELECT queries are allowed (got an EXPLAIN this tool cannot check)")
        inner_type = conn.extract_statements(text[inner.end():])[0].type
        if inner_type != duckdb.StatementType.SELECT:
            raise QueryError(f"only SELECT queries are allowed (got EXPLAIN of {inner_type.name})")
        return text, True
    raise QueryError(f"only SELECT queries are allowed (got {statement.type.name})")


def run_query(store: MonitoringStore, sql: str, limit: int | None = DEFAULT_LIMIT,
              params: Sequence[Any] | None = None) -> pd.DataFrame:
    """Rows of one read-only query, at most ``limit`` of them (None or 0: all).

    ``df.attrs["truncated"]`` says whether there were more. Parameters bind to ``?``."""
    with store.connect(read_only=True) as conn:
        # Off for the whole DuckDB instance of this file in this process, and it cannot be switched
        # back on while the instance lives: fine, as store connections are short and this one is
        # read-only (a writer in the same process could not share the instance anyway).
        conn.execute("SET enable_external_access = false")
        text, explain = check_read_only(conn, sql)
        if explain or not limit:
            wrapped = text
        else:
            # Newlines, so that a trailing "-- comment" in the user's SQL cannot swallow the LIMIT.
            wrapped = f"SELECT * FROM (\n{text}\n) LIMIT {int(limit) + 1}"
        try:
            df = conn.execute(wrapped, list(params) if params else None).df()
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from None
    truncated = bool(limit) and not explain and len(df) > limit
    if truncated:
        df = df.iloc[:limit]
    df.attrs["truncated"] = truncated
    df.attrs["limit"] = limit
    return df


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# -- named queries --------------------------------------------------------------------------------
# Durations are of successful steps only: a failed step stopped early, so its time says little.
# A step's SLA status is NULL when it failed before it could be judged (see SlaRules.evaluate);
# compliance is over judged steps, and a warning still met the SLA (it is a near miss).

FAILED_RUNS = """
SELECT failed_at, 'run' AS source, dagster_run_id AS run_id, job_name AS what, NULL::INTEGER AS simulation_year,
       partition_key, failed_steps, error_class, error_message
FROM mon_run_failures
UNION ALL
SELECT execution_end_time, 'step', simulation_run_id, component_name, simulation_year,
       partition_key, NULL, error_class, error_message
FROM mon_multi_year_performance WHERE status = 'FAILED'
ORDER BY failed_at DESC, run_id, what
"""

SLOWEST_COMPONENTS = """
SELECT component_name, component_type, count(*) AS runs,
       round(quantile_cont(execution_time_seconds, 0.5), 3) AS p50_seconds,
       round(quantile_cont(execution_time_seconds, 0.95), 3) AS p95_seconds,
       round(max(execution_time_seconds), 3) AS max_seconds
FROM mon_multi_year_performance WHERE status = 'SUCCESS'
GROUP BY component_name, component_type
ORDER BY p95_seconds DESC, max_seconds DESC, component_name
"""

SLA_COMPLIANCE = """
SELECT component_name, component_type,
       count(sla_status) AS runs,
       count(*) FILTER (WHERE sla_status = 'WITHIN_SLA') AS within,
       count(*) FILTER (WHERE sla_status = 'SLA_WARNING') AS warning,
       count(*) FILTER (WHERE sla_status = 'SLA_BREACH') AS breach,
       count(*) - count(sla_status) AS not_judged,
       round(100.0 * count(*) FILTER (WHERE sla_status IN ('WITHIN_SLA', 'SLA_WARNING')) / nullif(count(sla_status), 0), 1)
           AS compliance_pct
FROM mon_multi_year_performance
GROUP BY component_name, component_type
ORDER BY compliance_pct ASC NULLS LAST, breach DESC, component_name
"""

REGRESSIONS = """
SELECT detection_timestamp, component_name, simulation_year, scenario, regression_severity,
       round(performance_degradation_pct, 1) AS degradation_pct,
       round(baseline_execution_time, 3) AS baseline_seconds, round(current_execution_time, 3) AS current_seconds,
       round(robust_z, 2) AS robust_z, baseline_samples, current_run_id, baseline_run_id, investigation_status
FROM mon_multi_year_regression
ORDER BY detection_timestamp DESC, component_name
"""

TREND = """
SELECT simulation_year, CAST(execution_start_time AS DATE) AS day, count(*) AS runs,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE sla_status = 'SLA_BREACH') AS breaches,
       round(avg(execution_time_seconds) FILTER (WHERE status = 'SUCCESS'), 3) AS avg_seconds,
       round(min(execution_time_seconds) FILTER (WHERE status = 'SUCCESS'), 3) AS min_seconds,
       round(max(execution_time_seconds) FILTER (WHERE status = 'SUCCESS'), 3) AS max_seconds,
       round(quantile_cont(execution_time_seconds, 0.95) FILTER (WHERE status = 'SUCCESS'), 3) AS p95_seconds
FROM mon_multi_year_performance
WHERE component_name = ?
GROUP BY simulation_year, day
ORDER BY simulation_year NULLS FIRST, day
"""

# name -> (SQL, names of its ? parameters in order, one line of help)
NAMED_QUERIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "failed-runs": (FAILED_RUNS, (), "failed Dagster runs and failed monitored steps, newest first"),
    "slowest-components": (SLOWEST_COMPONENTS, (), "p50/p95/max seconds of successful steps per component, worst first"),
    "sla-compliance": (SLA_COMPLIANCE, (), "per component: judged runs, within/warning/breach, compliance %"),
    "regressions": (REGRESSIONS, (), "detected regressions, newest first"),
    "trend": (TREND, ("component",), "one component per simulation year and day: runs, avg/min/max/p95 seconds"),
}


# -- run summary ----------------------------------------------------------------------------------
_SUMMARY_ROWS = """
SELECT simulation_year, component_name, component_type, status, execution_start_time, execution_end_time,
       execution_time_seconds, sla_threshold_seconds, sla_status, error_class, scenario
FROM mon_multi_year_performance WHERE simulation_run_id = ?
ORDER BY execution_start_time, component_name
"""


def run_summary(store: MonitoringStore, run_id: str, top: int = 5) -> str:
    """A plain-text summary of one run's monitored steps: per year and component, the slowest
    steps, SLA warnings and breaches, failures. Raises :class:`QueryError` for an unknown run."""
    df = run_query(store, _SUMMARY_ROWS, limit=None, params=[run_id])
    if df.empty:
        raise QueryError(f"no monitored steps recorded for run {run_id!r}")
    ok = df[df["status"] == "SUCCESS"]
    failed = df[df["status"] == "FAILED"]
    years = sorted(y for y in df["simulation_year"].dropna().unique())
    lines = [
        f"run {run_id}",
        f"  steps: {len(df)} ({len(ok)} succeeded, {len(failed)} failed)",
        f"  years: {', '.join(str(int(y)) for y in years) or '-'}; scenario: {', '.join(sorted(df['scenario'].unique()))}",
        f"  from {df['execution_start_time'].min():%Y-%m-%d %H:%M:%S} to {df['execution_end_time'].max():%Y-%m-%d %H:%M:%S}"
        f" UTC, {df['execution_time_seconds'].sum():.1f}s of step time",
        "",
        "seconds per year and component (all attempts):",
    ]
    # Retries make several rows per component and year; the time spent is their sum.
    grid = df.assign(year=df["simulation_year"].astype("Int64").astype(str).replace("<NA>", "-")).pivot_table(
        index=["component_name", "component_type"], columns="year", values="execution_time_seconds",
        aggfunc="sum")
    grid["total"] = grid.sum(axis=1)
    lines += ["  " + line for line in grid.round(2).reset_index().to_string(index=False, na_rep="").splitlines()]
    lines += ["", f"slowest steps (top {top}):"]
    for r in df.nlargest(top, "execution_time_seconds").itertuples():
        lines.append(f"  {r.execution_time_seconds:9.2f}s  {r.component_name} {_year(r.simulation_year)}  {r.status}")
    judged = df[df["sla_status"].isin(["SLA_WARNING", "SLA_BREACH"])]
    lines += ["", f"SLA breaches and warnings: {len(judged) or 'none'}"]
    for r in judged.sort_values(["sla_status", "execution_time_seconds"], ascending=[True, False]).itertuples():
        lines.append(f"  {r.sla_status:<11}  {r.component_name} {_year(r.simulation_year)}: "
                     f"{r.execution_time_seconds:.2f}s against {r.sla_threshold_seconds:g}s")
    if len(failed):
        lines += ["", "failed steps:"]
        for r in failed.itertuples():
            lines.append(f"  {r.component_name} {_year(r.simulation_year)}: {r.error_class or 'error'}")
    return "\n".join(lines)


def _year(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))
