"""Optimization runs in the store: their tables, how they are inserted, and the figures read from them.

    from planwise_monitoring.store.optimization import insert_optimization

    insert_optimization(conn, [run, chunk])    # in a transaction; ids already stored are skipped

``mon_optimization_runs`` holds a run (see ``recording.optimization.OptimizationRun``),
``mon_optimization_parameters`` its parameters' initial and final values (one row each, so a
parameter's drift is a plain query on both backends), ``mon_optimization_iterations`` every
iteration the tracker saw (parameters as a JSON array in the order of the run's names).
Inserting is idempotent: a run by its id, an iteration by (run, number); a spooled file replayed
twice, or by two processes at once, stores each row once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .rows import Rows, select

if TYPE_CHECKING:
    from ..recording.optimization import IterationChunk, OptimizationRun

TABLES = [
    """
    CREATE TABLE mon_optimization_runs (
        optimization_id UUID PRIMARY KEY,
        optimization_name VARCHAR NOT NULL,
        algorithm VARCHAR NOT NULL,
        scenario VARCHAR NOT NULL,
        status VARCHAR(16) NOT NULL,
        converged BOOLEAN NOT NULL,
        failure_reason VARCHAR(32),
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP NOT NULL,
        duration_seconds DOUBLE NOT NULL,
        iterations INTEGER NOT NULL,
        function_evaluations INTEGER,
        max_iterations INTEGER,
        objective_value DOUBLE,
        tolerance DOUBLE,
        target VARCHAR,
        optimizer_message VARCHAR,
        error_class VARCHAR,
        error_message VARCHAR,
        user_name VARCHAR NOT NULL,
        dagster_run_id VARCHAR,
        asset_key VARCHAR,
        partition_key VARCHAR
    )
    """,
    """
    CREATE TABLE mon_optimization_parameters (
        optimization_id UUID NOT NULL,
        parameter_name VARCHAR NOT NULL,
        initial_value DOUBLE,
        final_value DOUBLE,
        PRIMARY KEY (optimization_id, parameter_name)
    )
    """,
    """
    CREATE TABLE mon_optimization_iterations (
        optimization_id UUID NOT NULL,
        iteration INTEGER NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        objective_value DOUBLE,
        parameter_values VARCHAR NOT NULL,
        gradient_norm DOUBLE,
        PRIMARY KEY (optimization_id, iteration)
    )
    """,
    "CREATE INDEX mon_optimization_runs_finished ON mon_optimization_runs (finished_at)",
]

_RUN_COLUMNS = ["optimization_id", "optimization_name", "algorithm", "scenario", "status", "converged",
                "failure_reason", "started_at", "finished_at", "duration_seconds", "iterations",
                "function_evaluations", "max_iterations", "objective_value", "tolerance", "target",
                "optimizer_message", "error_class", "error_message", "user_name", "dagster_run_id", "asset_key",
                "partition_key"]
_PARAMETER_COLUMNS = ["optimization_id", "parameter_name", "initial_value", "final_value"]
_ITERATION_COLUMNS = ["optimization_id", "iteration", "recorded_at", "objective_value", "parameter_values",
                      "gradient_norm"]


def insert_optimization(conn: Any, runs: Sequence[OptimizationRun], chunks: Sequence[IterationChunk]) -> int:
    """Insert runs (with their parameters) and iteration chunks not stored yet; returns the rows inserted
    (runs plus iterations)."""
    from ..recording.optimization import epoch_to_utc

    inserted = 0
    if runs:
        unique = list({r.optimization_id: r for r in runs}.values())
        new = conn.insert_new("mon_optimization_runs", _RUN_COLUMNS,
                              [[getattr(r, c) for c in _RUN_COLUMNS] for r in unique], key="optimization_id")
        parameters = [[r.optimization_id, p.name, p.initial_value, p.final_value]
                      for r in unique if r.optimization_id in new for p in r.parameters]
        if parameters:
            conn.insert_rows("mon_optimization_parameters", _PARAMETER_COLUMNS, parameters)
        inserted += len(new)
    if chunks:
        rows = [[c.optimization_id, i, epoch_to_utc(at), objective, json.dumps(params), gradient]
                for c in chunks for (i, at, objective, params, gradient) in c.iterations]
        inserted += conn.insert_rows("mon_optimization_iterations", _ITERATION_COLUMNS, rows)
    return inserted


# -- the figures ---------------------------------------------------------------------------------

FAILED_OPTIMIZATIONS = """
SELECT optimization_id, optimization_name, algorithm, finished_at, status, failure_reason, iterations,
       max_iterations, objective_value, tolerance, target, optimizer_message, error_class, user_name,
       dagster_run_id, asset_key, partition_key
FROM mon_optimization_runs
WHERE NOT converged AND finished_at >= CAST($since AS TIMESTAMP)
ORDER BY finished_at DESC, optimization_id
LIMIT CAST($row_limit AS BIGINT)
"""

# A parameter's final values per UTC day, of the runs that converged (the values that were used).
PARAMETER_TRENDS = """
SELECT CAST(r.finished_at AS DATE) AS day, r.optimization_name, p.parameter_name,
       count(*) AS runs, avg(p.final_value) AS avg_final_value, min(p.final_value) AS min_final_value,
       max(p.final_value) AS max_final_value
FROM mon_optimization_runs r
JOIN mon_optimization_parameters p ON p.optimization_id = r.optimization_id
WHERE r.converged AND r.finished_at >= CAST($since AS TIMESTAMP)
  AND (CAST($parameter AS VARCHAR) IS NULL OR p.parameter_name = CAST($parameter AS VARCHAR))
GROUP BY CAST(r.finished_at AS DATE), r.optimization_name, p.parameter_name
ORDER BY r.optimization_name, p.parameter_name, day
"""

_OUTCOMES = """
       count(*) AS runs,
       count(*) FILTER (WHERE converged) AS converged_runs,
       round(CAST(100.0 * count(*) FILTER (WHERE converged) / nullif(count(*), 0) AS NUMERIC), 2) AS success_rate_pct,
       round(CAST(avg(iterations) AS NUMERIC), 2) AS avg_iterations,
       round(CAST(avg(duration_seconds) FILTER (WHERE converged) AS NUMERIC), 3) AS avg_seconds_to_converge"""

ALGORITHM_COMPARISON = f"""
SELECT algorithm,{_OUTCOMES},
       round(CAST(avg(function_evaluations) AS NUMERIC), 2) AS avg_function_evaluations,
       min(objective_value) FILTER (WHERE converged) AS best_objective
FROM mon_optimization_runs
WHERE finished_at >= CAST($since AS TIMESTAMP)
GROUP BY algorithm
ORDER BY success_rate_pct DESC NULLS LAST, algorithm
"""

# mon_optimization_kpis: one row per window (24h, 7d, 30d, 90d before now), and the same figures
# of the window before it, for the change of the success rate (in percentage points).
KPI_WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)),
               ("90d", timedelta(days=90)))


def _rate(where: str) -> str:
    return (f"round(CAST(100.0 * count(*) FILTER (WHERE {where} AND r.converged) "
            f"/ nullif(count(*) FILTER (WHERE {where}), 0) AS NUMERIC), 2)")


_CURRENT, _PREVIOUS = "r.finished_at >= w.since", "r.finished_at < w.since"
KPIS = f"""
WITH w AS (
    SELECT window_name, CAST(since AS TIMESTAMP) AS since, CAST(previous_since AS TIMESTAMP) AS previous_since,
           CAST(until AS TIMESTAMP) AS until, position
    FROM (VALUES {", ".join(["(CAST(? AS VARCHAR), ?, ?, ?, CAST(? AS INTEGER))"] * len(KPI_WINDOWS))})
        AS v(window_name, since, previous_since, until, position)
)
SELECT w.window_name, w.since, w.until, w.position,
       count(*) FILTER (WHERE {_CURRENT}) AS runs,
       count(*) FILTER (WHERE {_CURRENT} AND r.converged) AS converged_runs,
       count(*) FILTER (WHERE {_CURRENT} AND NOT r.converged) AS failed_runs,
       {_rate(_CURRENT)} AS success_rate_pct,
       count(*) FILTER (WHERE {_PREVIOUS}) AS previous_runs,
       {_rate(_PREVIOUS)} AS previous_success_rate_pct,
       {_rate(_CURRENT)} - {_rate(_PREVIOUS)} AS success_rate_change_pts,
       round(CAST(avg(r.iterations) FILTER (WHERE {_CURRENT}) AS NUMERIC), 2) AS avg_iterations,
       round(CAST(avg(r.duration_seconds) FILTER (WHERE {_CURRENT} AND r.converged) AS NUMERIC), 3)
           AS avg_seconds_to_converge
FROM w
LEFT JOIN mon_optimization_runs r ON r.finished_at >= w.previous_since AND r.finished_at < w.until
GROUP BY w.window_name, w.since, w.until, w.position
ORDER BY w.position
"""


def kpi_params(now: datetime) -> list[Any]:
    """The windows of :data:`KPIS`, ending at ``now``."""
    return [v for i, (name, span) in enumerate(KPI_WINDOWS) for v in (name, now - span, now - 2 * span, now, i)]

FAILURE_REASONS = """
SELECT failure_reason, count(*) AS runs, max(finished_at) AS last_seen
FROM mon_optimization_runs
WHERE NOT converged AND finished_at >= CAST($since AS TIMESTAMP)
GROUP BY failure_reason
ORDER BY runs DESC, failure_reason
"""

# The sensor's reading: runs finished since a time, with their final parameter values.
RECENT_RUNS = """
SELECT * FROM mon_optimization_runs WHERE finished_at >= ? ORDER BY finished_at, optimization_id LIMIT ?
"""
FINAL_PARAMETERS = """
SELECT optimization_id, parameter_name, final_value FROM mon_optimization_parameters
WHERE optimization_id IN (SELECT unnest(?::UUID[]))
"""

EPOCH = datetime(1970, 1, 1)


def failed_optimizations(conn: Any, since: datetime | None = None, limit: int | None = None,
                         now: datetime | None = None) -> Rows:
    """Runs that did not converge (the last 7 days unless ``since``), newest first."""
    since = since or _now(now) - timedelta(days=7)
    return select(conn, FAILED_OPTIMIZATIONS, {"since": since, "row_limit": limit + 1 if limit else None}, limit)


def parameter_trends(conn: Any, parameter: str | None = None, since: datetime | None = None,
                     limit: int | None = None) -> Rows:
    """Per UTC day, optimization and parameter: the converged runs' final values (avg, min, max)."""
    return select(conn, PARAMETER_TRENDS, {"since": since or EPOCH, "parameter": parameter}, limit)


def algorithm_comparison(conn: Any, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Per algorithm: runs, success rate, average iterations and time to converge, evaluations."""
    return select(conn, ALGORITHM_COMPARISON, {"since": since or EPOCH}, limit)


def failure_reasons(conn: Any, since: datetime) -> Rows:
    """Why runs finished since ``since`` did not converge: a row per reason, most frequent first."""
    return select(conn, FAILURE_REASONS, {"since": since})


def _now(now: datetime | None) -> datetime:
    from .base import utcnow

    return now or utcnow()
