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

from .rows import Rows, select

# Portable SQL (explicit GROUP BY, FILTER, CAST, percentile_cont ... WITHIN GROUP): DuckDB and
# PostgreSQL run the same text; the backend connection translates the ``$name`` parameters.

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

SLA_COMPLIANCE = f"""
SELECT component_name, component_type,{_COMPLIANCE}
FROM mon_steps {_WHERE}
GROUP BY component_name, component_type
ORDER BY sla_compliance_pct ASC NULLS LAST, sla_breaches DESC, component_name, component_type
"""

OVERALL_COMPLIANCE = f"SELECT {_COMPLIANCE} FROM mon_steps {_WHERE}"

TREND = f"""
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
"""

SLOWEST_COMPONENTS = f"""
SELECT component_name, component_type, count(*) AS runs,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_seconds) AS p50_execution_time,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_seconds) AS p95_execution_time,
       max(execution_time_seconds) AS max_execution_time
FROM mon_steps {_WHERE} AND succeeded
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

MEMORY_GROWTH = "SELECT * FROM mon_memory_growth ORDER BY growth_since_first_year_mb DESC NULLS LAST, component_name"

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


def filters(since: datetime | None = None, run_id: str | None = None, component: str | None = None) -> dict[str, Any]:
    return {"since": since, "run_id": run_id, "component": component}


def sla_compliance(conn: Any, since: datetime | None = None, run_id: str | None = None,
                   limit: int | None = None) -> Rows:
    """Per component: judged runs, within / warning / breach, not judged, and compliance %.

        rows = sla_compliance(conn)
        assert rows.columns[-1] == "sla_compliance_pct"
    """
    return select(conn, SLA_COMPLIANCE, filters(since, run_id), limit)


def overall_compliance(conn: Any, since: datetime | None = None, run_id: str | None = None) -> Rows:
    """The same counts and compliance % over every component at once (one row)."""
    return select(conn, OVERALL_COMPLIANCE, filters(since, run_id))


def trend(conn: Any, component: str | None = None, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Per component, type, simulation year, scenario and UTC day ended: runs, failed runs, SLA
    breaches, and avg/min/max/p95 seconds of the succeeded steps.

        days = trend(conn, component="scd_workforce_state").column("performance_date")
    """
    return select(conn, TREND, filters(since, component=component), limit)


def slowest_components(conn: Any, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Per component: succeeded runs and p50/p95/max seconds, slowest (p95) first."""
    return select(conn, SLOWEST_COMPONENTS, filters(since), limit)


def failed_runs(conn: Any, since: datetime | None = None, limit: int | None = None) -> Rows:
    """Failed Dagster runs and failed monitored steps, newest first."""
    return select(conn, FAILED_RUNS, filters(since), limit)


def regressions(conn: Any, since: datetime | None = None, run_id: str | None = None,
                limit: int | None = None) -> Rows:
    """Detected regressions, worst severity and largest degradation first."""
    return select(conn, REGRESSIONS, {"since": since, "run_id": run_id}, limit)


def memory_growth(conn: Any, limit: int | None = None) -> Rows:
    """Each simulation's peak memory per component and year, and its growth since its first year."""
    return select(conn, MEMORY_GROWTH, None, limit)


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
    "trend": Figure(trend, ("component",),
                    "one component per simulation year, scenario and UTC day: runs, avg/min/max/p95 seconds"),
}
