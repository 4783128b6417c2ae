"""The figures: each computed by one query here, read by the monitoring assets, the command line
and the run summaries alike, so that they cannot disagree.

    from planwise_monitoring.store.figures import FIGURES, sla_compliance

    with store.connect(read_only=True) as conn:
        rows = sla_compliance(conn)                       # all time, per component
        rows = sla_compliance(conn, since=utcnow() - timedelta(days=30))
        rows = FIGURES["trend"].run(conn, component="scd_workforce_state")

Definitions (the facts come from the ``mon_steps`` view, see :mod:`.schema`):

- a step counts on the UTC day it ended (``performance_date``), and a window (``since``) selects
  steps by when they ended;
- ``runs`` counts every monitored step attempt (retries too); durations (avg, min, max, p50,
  p95, max) are of succeeded steps only;
- SLA compliance % = judged steps that met the SLA (within it, or a warning: a near miss) / judged
  steps, rounded to 2 decimals; NULL when no step was judged; a step without a verdict (it failed
  before it could be judged) is counted as ``not_judged``, outside the percentage;
- a run's per-year, per-component time is the sum over its attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .optimization import algorithm_comparison, failed_optimizations, parameter_trends
from .rollups import DAILY_COLUMNS, DAILY_GRAIN, DAILY_SELECT
from .rows import Rows, select
from .schema import Variant

# Each figure is one query over the steps on DuckDB, which scans 10 M rows of a column in
# milliseconds. PostgreSQL reads its summary tables (see :mod:`.rollups`) and, for a percentile,
# the few index entries around its rank: the same definitions, a figure's two texts being a
# :class:`~.schema.Variant`. The tests hold both to the same hand computations. Parameters are
# ``$name`` on both; the backend connection translates them.

# The one definition of compliance, over mon_steps rows; used per component, per run and in total.
_COMPLIANCE = """
       count(*) FILTER (WHERE judged) AS judged_runs,
       count(*) FILTER (WHERE sla_status = 'WITHIN_SLA') AS within_sla,
       count(*) FILTER (WHERE sla_status = 'SLA_WARNING') AS sla_warnings,
       count(*) FILTER (WHERE breached) AS sla_breaches,
       count(*) FILTER (WHERE NOT judged) AS not_judged,
       round(100.0 * count(*) FILTER (WHERE met_sla) / nullif(count(*) FILTER (WHERE judged), 0), 2)
           AS sla_compliance_pct"""

# NULL parameters select everything: one query serves the all-time CLI figure and the window of an asset.
_WHERE = """
WHERE (CAST($since AS TIMESTAMP) IS NULL OR execution_end_time >= CAST($since AS TIMESTAMP))
  AND (CAST($run_id AS VARCHAR) IS NULL OR simulation_run_id = CAST($run_id AS VARCHAR))
  AND (CAST($component AS VARCHAR) IS NULL OR component_name = CAST($component AS VARCHAR))
"""

_DUCKDB_SLA_COMPLIANCE = f"""
SELECT component_name, component_type,{_COMPLIANCE}
FROM mon_steps {_WHERE}
GROUP BY component_name, component_type
ORDER BY sla_compliance_pct ASC NULLS LAST, sla_breaches DESC, component_name, component_type
"""

_DUCKDB_OVERALL_COMPLIANCE = f"SELECT {_COMPLIANCE} FROM mon_steps {_WHERE}"

_DUCKDB_TREND = f"""
SELECT component_name, component_type, simulation_year, scenario, performance_date,
       count(*) AS runs,
       count(*) FILTER (WHERE failed) AS failed_runs,
       count(*) FILTER (WHERE breached) AS sla_breaches,
       avg(execution_time_seconds) FILTER (WHERE succeeded) AS avg_execution_time,
       min(execution_time_seconds) FILTER (WHERE succeeded) AS min_execution_time,
       max(execution_time_seconds) FILTER (WHERE succeeded) AS max_execution_time,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_seconds) FILTER (WHERE succeeded) AS p95_execution_time
FROM mon_steps {_WHERE}
GROUP BY component_name, component_type, simulation_year, scenario, performance_date
ORDER BY component_name, component_type, simulation_year NULLS FIRST, scenario, performance_date
LIMIT CAST($row_limit AS BIGINT)
"""

_DUCKDB_SLOWEST_COMPONENTS = """
SELECT component_name, component_type, count(*) AS runs,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_seconds) AS p50_execution_time,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_seconds) AS p95_execution_time,
       max(execution_time_seconds) AS max_execution_time
FROM mon_steps WHERE succeeded
GROUP BY component_name, component_type
ORDER BY p95_execution_time DESC, max_execution_time DESC, component_name
"""

FAILED_RUNS = f"""
SELECT failed_at, 'run' AS source, dagster_run_id AS run_id, job_name AS what, NULL::INTEGER AS simulation_year,
       partition_key, failed_steps, error_class, error_message
FROM mon_run_failures
WHERE CAST($since AS TIMESTAMP) IS NULL OR failed_at >= CAST($since AS TIMESTAMP)
UNION ALL
SELECT execution_end_time, 'step', simulation_run_id, component_name, simulation_year,
       partition_key, NULL, error_class, error_message
FROM mon_steps {_WHERE} AND failed
ORDER BY failed_at DESC, run_id, what
LIMIT CAST($row_limit AS BIGINT)
"""

REGRESSIONS = """
SELECT detection_timestamp, component_name, component_type, simulation_year, scenario, regression_severity,
       performance_degradation_pct, baseline_execution_time, current_execution_time, robust_z, baseline_samples,
       current_run_id, baseline_run_id, investigation_status
FROM mon_multi_year_regression
WHERE (CAST($since AS TIMESTAMP) IS NULL OR detection_timestamp >= CAST($since AS TIMESTAMP))
  AND (CAST($run_id AS VARCHAR) IS NULL OR current_run_id = CAST($run_id AS VARCHAR))
ORDER BY CASE regression_severity WHEN 'CRITICAL' THEN 0 WHEN 'MAJOR' THEN 1 ELSE 2 END,
         performance_degradation_pct DESC NULLS LAST, detection_timestamp DESC, component_name
"""

# Per component, scenario and simulation year: the steps' peak memory (the largest, and on average),
# and how much the largest grew since the component's first year in the window.
_MEMORY_TAIL = """
SELECT *, peak_memory_mb - first_value(peak_memory_mb) OVER w AS growth_since_first_year_mb,
       round(CAST(100.0 * (peak_memory_mb / nullif(first_value(peak_memory_mb) OVER w, 0) - 1) AS {numeric}), 2)
           AS growth_since_first_year_pct
FROM per_year
WINDOW w AS (PARTITION BY component_name, scenario ORDER BY simulation_year)
ORDER BY growth_since_first_year_mb DESC NULLS LAST, component_name, scenario, simulation_year
"""

_DUCKDB_MEMORY_GROWTH = f"""
WITH per_year AS (
    SELECT component_name, scenario, simulation_year, count(*) AS steps,
           avg(memory_usage_mb) AS avg_peak_memory_mb, max(memory_usage_mb) AS peak_memory_mb
    FROM mon_steps {_WHERE} AND succeeded AND simulation_year IS NOT NULL AND memory_usage_mb IS NOT NULL
    GROUP BY component_name, scenario, simulation_year
){_MEMORY_TAIL.format(numeric="DOUBLE")}"""

RUN_TIMINGS = f"""
SELECT simulation_year, component_name, component_type, count(*) AS attempts,
       sum(execution_time_seconds) AS execution_time_seconds
FROM mon_steps {_WHERE}
GROUP BY simulation_year, component_name, component_type
ORDER BY simulation_year NULLS FIRST, min(execution_start_time), component_name
"""

RUN_STEPS = f"""
SELECT simulation_year, component_name, component_type, status, execution_start_time, execution_end_time,
       execution_time_seconds, memory_usage_mb, output_record_count, sla_threshold_seconds, sla_status,
       error_class, scenario
FROM mon_steps {_WHERE}
ORDER BY simulation_year NULLS FIRST, execution_start_time, component_name
"""


# -- PostgreSQL: the same figures from the summary tables ----------------------------------------
# The day rows a figure's filters select: whole days from mon_daily_steps; the first day of a
# window (``since`` falls in it) and one run's steps counted from the steps themselves.
_PG_DAILY = f"""
daily AS (
    SELECT {', '.join(DAILY_COLUMNS)} FROM mon_daily_steps
    WHERE CAST($run_id AS VARCHAR) IS NULL
      AND (CAST($component AS VARCHAR) IS NULL OR component_name = CAST($component AS VARCHAR))
      AND (CAST($since AS TIMESTAMP) IS NULL OR performance_date > CAST(CAST($since AS TIMESTAMP) AS DATE))
    UNION ALL
    {DAILY_SELECT} FROM mon_steps {_WHERE}
      AND (CAST($run_id AS VARCHAR) IS NOT NULL
           OR execution_end_time < CAST(CAST($since AS TIMESTAMP) AS DATE) + 1)
    GROUP BY {DAILY_GRAIN}
)"""

_PG_COMPLIANCE = """
       CAST(coalesce(sum(judged_runs), 0) AS BIGINT) AS judged_runs,
       CAST(coalesce(sum(within_sla), 0) AS BIGINT) AS within_sla,
       CAST(coalesce(sum(sla_warnings), 0) AS BIGINT) AS sla_warnings,
       CAST(coalesce(sum(sla_breaches), 0) AS BIGINT) AS sla_breaches,
       CAST(coalesce(sum(runs - judged_runs), 0) AS BIGINT) AS not_judged,
       round(100.0 * sum(within_sla + sla_warnings) / nullif(sum(judged_runs), 0), 2) AS sla_compliance_pct"""


def _pg_percentile(q: float, rows: str, where: str) -> str:
    """A subquery of one value: percentile_cont(q) of the durations of ``g.n`` succeeded steps, the
    ``rows`` selected by ``where`` (index order: execution_time_seconds). Read from the top: the
    two durations around the rank, interpolated as percentile_cont does."""
    pos = f"CAST({q} AS DOUBLE PRECISION) * (g.n - 1)"
    return f"""
        SELECT CASE WHEN g.n > 0 THEN min(s) + (max(s) - min(s)) * ({pos} - floor({pos})) END AS value
        FROM (SELECT execution_time_seconds AS s FROM {rows} WHERE p.status = 'SUCCESS' AND {where}
              ORDER BY execution_time_seconds DESC
              OFFSET CAST(greatest(g.n - 2 - floor({pos}), 0) AS BIGINT) LIMIT 2) two"""


# A trend group's succeeded steps (the index mon_performance_daily_durations; no year is 0).
_PG_GROUP_STEPS = """
        p.component_name = g.component_name AND p.component_type = g.component_type AND p.scenario = g.scenario
        AND CAST(p.execution_end_time AS DATE) = g.performance_date
        AND coalesce(p.simulation_year, 0) = coalesce(g.simulation_year, 0)
        AND (CAST($since AS TIMESTAMP) IS NULL OR p.execution_end_time >= CAST($since AS TIMESTAMP))
        AND (CAST($run_id AS VARCHAR) IS NULL OR p.simulation_run_id = CAST($run_id AS VARCHAR))"""

_PG_TREND = f"""
WITH {_PG_DAILY},
groups AS (
    SELECT {DAILY_GRAIN}, sum(runs) AS runs, sum(failed_runs) AS failed_runs, sum(sla_breaches) AS sla_breaches,
           sum(succeeded_seconds) / CAST(nullif(sum(succeeded_runs), 0) AS DOUBLE PRECISION) AS avg_execution_time,
           min(min_seconds) AS min_execution_time, max(max_seconds) AS max_execution_time,
           CAST(sum(succeeded_runs) AS BIGINT) AS n
    FROM daily GROUP BY {DAILY_GRAIN}
    ORDER BY component_name, component_type, simulation_year NULLS FIRST, scenario, performance_date
    LIMIT CAST($row_limit AS BIGINT)  -- a percentile only for the groups shown
)
SELECT component_name, component_type, simulation_year, scenario, performance_date,
       CAST(runs AS BIGINT) AS runs, CAST(failed_runs AS BIGINT) AS failed_runs,
       CAST(sla_breaches AS BIGINT) AS sla_breaches, avg_execution_time, min_execution_time, max_execution_time,
       p95.value AS p95_execution_time
FROM groups g
LEFT JOIN LATERAL ({_pg_percentile(0.95, "mon_multi_year_performance p", _PG_GROUP_STEPS)}) p95 ON true
ORDER BY component_name, component_type, simulation_year NULLS FIRST, scenario, performance_date
"""

# All time, from the histogram: the bucket each rank falls in, then the durations from its shortest.
_PG_SLOWEST = """
WITH buckets AS (  -- the scenarios' buckets together
    SELECT component_name, component_type, bucket, sum(steps) AS steps, min(min_seconds) AS min_seconds
    FROM mon_duration_histogram GROUP BY component_name, component_type, bucket
),
hist AS (
    SELECT component_name, component_type, bucket, steps, min_seconds,
           sum(steps) OVER (PARTITION BY component_name, component_type ORDER BY bucket) - steps AS before,
           CAST(sum(steps) OVER (PARTITION BY component_name, component_type) AS BIGINT) AS n
    FROM buckets
),
ranks AS (
    SELECT c.component_name, c.component_type, c.n, q.q, CAST(q.q AS DOUBLE PRECISION) * (c.n - 1) AS pos
    FROM (SELECT DISTINCT component_name, component_type, n FROM hist) c CROSS JOIN (VALUES (0.5), (0.95)) q (q)
),
located AS (
    SELECT r.*, h.min_seconds, CAST(floor(r.pos) - h.before AS BIGINT) AS skip
    FROM ranks r JOIN hist h ON h.component_name = r.component_name AND h.component_type = r.component_type
     AND floor(r.pos) >= h.before AND floor(r.pos) < h.before + h.steps
),
valued AS (
    SELECT l.component_name, l.component_type, l.n, l.q, two.lo + (two.hi - two.lo) * (l.pos - floor(l.pos)) AS value
    FROM located l CROSS JOIN LATERAL (
        SELECT min(s) AS lo, max(s) AS hi FROM (
            SELECT execution_time_seconds AS s FROM mon_multi_year_performance p
            WHERE p.status = 'SUCCESS' AND p.component_name = l.component_name
              AND p.component_type = l.component_type AND p.execution_time_seconds >= l.min_seconds
            ORDER BY p.execution_time_seconds OFFSET l.skip LIMIT 2) s) two
)
SELECT component_name, component_type, n AS runs,
       max(value) FILTER (WHERE q = 0.5) AS p50_execution_time,
       max(value) FILTER (WHERE q = 0.95) AS p95_execution_time,
       (SELECT max(p.execution_time_seconds) FROM mon_multi_year_performance p
        WHERE p.status = 'SUCCESS' AND p.component_name = v.component_name AND p.component_type = v.component_type
       ) AS max_execution_time
FROM valued v
GROUP BY component_name, component_type, n
ORDER BY p95_execution_time DESC, max_execution_time DESC, component_name
"""

_PG_MEMORY_GROWTH = f"""
WITH {_PG_DAILY},
per_year AS (
    SELECT component_name, scenario, simulation_year, CAST(sum(memory_steps) AS BIGINT) AS steps,
           sum(memory_mb) / CAST(sum(memory_steps) AS DOUBLE PRECISION) AS avg_peak_memory_mb,
           max(max_memory_mb) AS peak_memory_mb
    FROM daily WHERE simulation_year IS NOT NULL
    GROUP BY component_name, scenario, simulation_year HAVING sum(memory_steps) > 0
){_MEMORY_TAIL.format(numeric="NUMERIC")}"""

SLA_COMPLIANCE = Variant(duckdb=_DUCKDB_SLA_COMPLIANCE, postgres=f"""
WITH {_PG_DAILY}
SELECT component_name, component_type,{_PG_COMPLIANCE}
FROM daily GROUP BY component_name, component_type
ORDER BY sla_compliance_pct ASC NULLS LAST, sla_breaches DESC, component_name, component_type
""")
OVERALL_COMPLIANCE = Variant(duckdb=_DUCKDB_OVERALL_COMPLIANCE, postgres=f"WITH {_PG_DAILY} SELECT {_PG_COMPLIANCE} FROM daily")
TREND = Variant(duckdb=_DUCKDB_TREND, postgres=_PG_TREND)
SLOWEST_COMPONENTS = Variant(duckdb=_DUCKDB_SLOWEST_COMPONENTS, postgres=_PG_SLOWEST)
MEMORY_GROWTH = Variant(duckdb=_DUCKDB_MEMORY_GROWTH, postgres=_PG_MEMORY_GROWTH)


def text(conn: Any, statement: str | Variant) -> str:
    """The statement as ``conn``'s dialect runs it."""
    if isinstance(statement, Variant):
        chosen = statement.for_dialect(conn.dialect)
        assert chosen is not None
        return chosen
    return statement


def _select(conn: Any, statement: str | Variant, params: Any = None, limit: int | None = None) -> Rows:
    return select(conn, text(conn, statement), params, limit)


def filters(since: datetime | None = None, run_id: str | None = None, component: str | None = None) -> dict[str, Any]:
    return {"since": since, "run_id": run_id, "component": component}


def row_limit(limit: int | None) -> dict[str, Any]:
    """The ``$row_limit`` of a figure that stops early: one row more than shown, to tell if there were more."""
    return {"row_limit": limit + 1 if limit else None}


def sla_compliance(conn: Any, since: datetime | None = None, run_id: str | None = None,
                   limit: int | None = None) -> Rows:
    """Per component: judged runs, within / warning / breach, not judged, and compliance %.

        rows = sla_compliance(conn)
        assert rows.columns[-1] == "sla_compliance_pct"
    """
    return _select(conn, SLA_COMPLIANCE, filters(since, run_id), limit)


def overall_compliance(conn: Any, since: datetime | None = None, run_id: str | None = None) -> Rows:
    """The same counts and compliance % over every component at once (one row)."""
    return _select(conn, OVERALL_COMPLIANCE, filters(since, run_id))


def trend(conn: Any, component: str | None = None, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Per component, type, simulation year, scenario and UTC day ended: runs, failed runs, SLA
    breaches, and avg/min/max/p95 seconds of the succeeded steps.

        days = trend(conn, component="scd_workforce_state").column("performance_date")
    """
    return _select(conn, TREND, {**filters(since, component=component), **row_limit(limit)}, limit)


def slowest_components(conn: Any, limit: int | None = None) -> Rows:
    """Per component, all time: succeeded runs and p50/p95/max seconds, slowest (p95) first."""
    return _select(conn, SLOWEST_COMPONENTS, None, limit)


def failed_runs(conn: Any, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Failed Dagster runs and failed monitored steps, newest first."""
    return select(conn, FAILED_RUNS, {**filters(since), **row_limit(limit)}, limit)


def regressions(conn: Any, since: datetime | None = None, run_id: str | None = None,
                limit: int | None = None) -> Rows:
    """Detected regressions, worst severity and largest degradation first."""
    return select(conn, REGRESSIONS, {"since": since, "run_id": run_id}, limit)


def memory_growth(conn: Any, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Per component, scenario and simulation year: the steps' largest and average peak memory,
    and the largest's growth since the component's first year (each simulation's own growth is
    the view ``mon_simulation_memory_growth``)."""
    return _select(conn, MEMORY_GROWTH, filters(since), limit)


def run_timings(conn: Any, run_id: str) -> Rows:
    """One run's seconds per simulation year and component, summed over its attempts."""
    return select(conn, RUN_TIMINGS, filters(run_id=run_id))


def run_steps(conn: Any, run_id: str) -> Rows:
    """One run's monitored steps, in the order they ran."""
    return select(conn, RUN_STEPS, filters(run_id=run_id))


@dataclass(frozen=True)
class Figure:
    """A figure the command line can name: its query function, its arguments, one line of help.

        rows = FIGURES["sla-compliance"].run(conn, limit=100)
    """

    query: Callable[..., Rows]
    arguments: tuple[str, ...]
    help: str

    def run(self, conn: Any, limit: int | None = None, **arguments: Any) -> Rows:
        return self.query(conn, limit=limit, **arguments)


FIGURES: dict[str, Figure] = {
    "failed-runs": Figure(failed_runs, (), "failed Dagster runs and failed monitored steps, newest first"),
    "slowest-components": Figure(slowest_components, (),
                                 "p50/p95/max seconds of succeeded steps per component, slowest first"),
    "sla-compliance": Figure(sla_compliance, (), "per component: judged runs, within/warning/breach, compliance %"),
    "regressions": Figure(regressions, (), "detected regressions, worst first"),
    "failed-optimizations": Figure(failed_optimizations, (),
                                   "optimization runs that did not converge in the last 7 days, newest first"),
    "parameter-trends": Figure(parameter_trends, (),
                               "per UTC day and parameter: the converged optimization runs' final values"),
    "algorithm-comparison": Figure(algorithm_comparison, (),
                                   "per algorithm: optimization runs, success rate, avg iterations and time"),
    "trend": Figure(trend, ("component",),
                    "one component per simulation year, scenario and UTC day: runs, avg/min/max/p95 seconds"),
}
