"""PostgreSQL's summary tables: what the figures read instead of every stored step.

    from planwise_monitoring.store.rollups import add_to_rollups

    add_to_rollups(conn, new_ids)      # in the transaction that inserted them (PostgreSQL only)

At 10 M stored steps a figure that reads every row takes PostgreSQL seconds (a sequential scan
of gigabytes, a sort for each percentile). Two tables, kept in the transaction that writes the
steps, make every figure read a few thousand rows plus a few index entries:

- ``mon_daily_steps``: per component, type, simulation year, scenario and UTC day a step ended
  (the ``trend`` grain), the counts every figure is made of (runs, failed, succeeded, judged,
  within SLA, warnings, breaches), the sum/min/max seconds of the succeeded steps and their
  memory. A window (``since``) takes the days after its first day from here and that first day
  from the steps themselves, so figures stay exact to the second.
- ``mon_duration_histogram``: per component and type, succeeded steps counted in 1 % buckets of
  their duration (``floor(100 ln seconds)``), with the shortest duration seen in each. A
  percentile's rank falls in one bucket; the exact value is then read from the durations index
  starting at that bucket's shortest duration, a few hundred index entries instead of half the
  component's steps.

DuckDB reads its columns far faster than it could keep such tables, and has neither: the
figures are one query over the steps there (see :mod:`.figures`).

Both tables are additive: a step added adds its counts (writers of one component and scenario
already take turns, see :func:`.performance.insert_records`; histogram rows are upserted in key
order, so concurrent writers cannot deadlock); pruning subtracts what it deletes from the
histogram (a bucket's shortest duration may then be one pruned, still a valid lower bound) and
recounts the one day it cut into.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

DAILY_GRAIN = "component_name, component_type, simulation_year, scenario, performance_date"
_DAILY_COUNTS = ["runs", "failed_runs", "succeeded_runs", "judged_runs", "within_sla", "sla_warnings",
                 "sla_breaches", "memory_steps"]
DAILY_COLUMNS = [*DAILY_GRAIN.split(", "), *_DAILY_COUNTS, "succeeded_seconds", "min_seconds", "max_seconds",
                 "memory_mb", "max_memory_mb"]

# The daily counts of some mon_steps rows (the caller adds FROM ... WHERE ...), in DAILY_COLUMNS' order.
DAILY_SELECT = f"""
SELECT {DAILY_GRAIN},
       count(*) AS runs,
       count(*) FILTER (WHERE failed) AS failed_runs,
       count(*) FILTER (WHERE succeeded) AS succeeded_runs,
       count(*) FILTER (WHERE judged) AS judged_runs,
       count(*) FILTER (WHERE sla_status = 'WITHIN_SLA') AS within_sla,
       count(*) FILTER (WHERE sla_status = 'SLA_WARNING') AS sla_warnings,
       count(*) FILTER (WHERE breached) AS sla_breaches,
       count(memory_usage_mb) FILTER (WHERE succeeded) AS memory_steps,
       sum(execution_time_seconds) FILTER (WHERE succeeded) AS succeeded_seconds,
       min(execution_time_seconds) FILTER (WHERE succeeded) AS min_seconds,
       max(execution_time_seconds) FILTER (WHERE succeeded) AS max_seconds,
       sum(memory_usage_mb) FILTER (WHERE succeeded) AS memory_mb,
       max(memory_usage_mb) FILTER (WHERE succeeded) AS max_memory_mb
"""

BUCKET = "CAST(floor(100 * ln(greatest(execution_time_seconds, 1e-9))) AS INTEGER)"

_SAME_DAY = " AND ".join(
    [f"d.{c} = n.{c}" for c in ("component_name", "component_type", "scenario", "performance_date")]
    + ["d.simulation_year IS NOT DISTINCT FROM n.simulation_year"])

_ADD_DAILY = f"""
WITH n AS ({DAILY_SELECT} FROM mon_steps WHERE performance_id = ANY(?::UUID[]) GROUP BY {DAILY_GRAIN}),
updated AS (
    UPDATE mon_daily_steps d SET
        {', '.join(f'{c} = d.{c} + n.{c}' for c in _DAILY_COUNTS)},
        succeeded_seconds = coalesce(d.succeeded_seconds + n.succeeded_seconds, d.succeeded_seconds, n.succeeded_seconds),
        memory_mb = coalesce(d.memory_mb + n.memory_mb, d.memory_mb, n.memory_mb),
        min_seconds = least(d.min_seconds, n.min_seconds),
        max_seconds = greatest(d.max_seconds, n.max_seconds),
        max_memory_mb = greatest(d.max_memory_mb, n.max_memory_mb)
    FROM n WHERE {_SAME_DAY}
    RETURNING d.*
)
INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)})
SELECT {', '.join(f'n.{c}' for c in DAILY_COLUMNS)} FROM n
WHERE NOT EXISTS (SELECT 1 FROM updated d WHERE {_SAME_DAY})
"""

_HISTOGRAM_OF = f"""
SELECT component_name, component_type, {BUCKET} AS bucket, count(*) AS steps, min(execution_time_seconds) AS min_seconds
FROM mon_multi_year_performance WHERE status = 'SUCCESS' AND {{where}}
GROUP BY component_name, component_type, bucket
"""

_ADD_HISTOGRAM = f"""
INSERT INTO mon_duration_histogram (component_name, component_type, bucket, steps, min_seconds)
SELECT * FROM ({_HISTOGRAM_OF.format(where='performance_id = ANY(?::UUID[])')}) n
ORDER BY component_name, component_type, bucket
ON CONFLICT (component_name, component_type, bucket) DO UPDATE
SET steps = mon_duration_histogram.steps + excluded.steps,
    min_seconds = least(mon_duration_histogram.min_seconds, excluded.min_seconds)
"""

# Migration 5 creates the tables and fills them from the steps already stored (so does a
# benchmark that loads steps with SQL of its own).
REBUILD = [
    "DELETE FROM mon_daily_steps",
    f"INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)}) {DAILY_SELECT} FROM mon_steps GROUP BY {DAILY_GRAIN}",
    "DELETE FROM mon_duration_histogram",
    "INSERT INTO mon_duration_histogram (component_name, component_type, bucket, steps, min_seconds) "
    + _HISTOGRAM_OF.format(where="true"),
]

TABLES = [
    f"""
    CREATE TABLE mon_daily_steps (
        component_name VARCHAR(100) NOT NULL,
        component_type VARCHAR(50) NOT NULL,
        simulation_year INTEGER,
        scenario VARCHAR NOT NULL,
        performance_date DATE NOT NULL,
        {', '.join(f'{c} BIGINT NOT NULL' for c in _DAILY_COUNTS)},
        succeeded_seconds DOUBLE PRECISION,
        min_seconds DOUBLE PRECISION,
        max_seconds DOUBLE PRECISION,
        memory_mb DOUBLE PRECISION,
        max_memory_mb DOUBLE PRECISION
    )
    """,
    "CREATE INDEX mon_daily_steps_day ON mon_daily_steps (component_name, scenario, performance_date)",
    """
    CREATE TABLE mon_duration_histogram (
        component_name VARCHAR(100) NOT NULL,
        component_type VARCHAR(50) NOT NULL,
        bucket INTEGER NOT NULL,
        steps BIGINT NOT NULL,
        min_seconds DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (component_name, component_type, bucket)
    )
    """,
    # The percentiles' reads: a component's succeeded durations in order (slowest-components), and
    # one trend group's (component, type, scenario, day, year; 0 for none: years are 1..9999).
    "CREATE INDEX mon_performance_durations ON mon_multi_year_performance "
    "(component_name, component_type, execution_time_seconds) WHERE status = 'SUCCESS'",
    "CREATE INDEX mon_performance_daily_durations ON mon_multi_year_performance "
    "(component_name, component_type, scenario, (CAST(execution_end_time AS DATE)), (coalesce(simulation_year, 0)), "
    "execution_time_seconds) INCLUDE (execution_end_time, simulation_year) WHERE status = 'SUCCESS'",
]


def add_to_rollups(conn: Any, performance_ids: Sequence[str]) -> None:
    """Count newly inserted steps into both tables, in the transaction that inserted them."""
    conn.execute(_ADD_DAILY, [list(performance_ids)])
    conn.execute(_ADD_HISTOGRAM, [list(performance_ids)])


def before_prune(conn: Any, cutoff: datetime) -> None:
    """Subtract the succeeded steps about to be pruned (ended before ``cutoff``) from the histogram."""
    conn.execute(f"""
        UPDATE mon_duration_histogram h SET steps = h.steps - gone.steps
        FROM ({_HISTOGRAM_OF.format(where='execution_end_time < ?')}) gone
        WHERE h.component_name = gone.component_name AND h.component_type = gone.component_type
          AND h.bucket = gone.bucket
        """, [cutoff])
    conn.execute("DELETE FROM mon_duration_histogram WHERE steps <= 0")


def after_prune(conn: Any, cutoff: datetime) -> None:
    """Drop the days wholly pruned and count again the day ``cutoff`` fell in (its later steps stay)."""
    day = datetime.combine(cutoff.date(), time())
    conn.execute("DELETE FROM mon_daily_steps WHERE performance_date <= ?", [day.date()])
    conn.execute(f"INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)}) {DAILY_SELECT} FROM mon_steps "
                 f"WHERE execution_end_time >= ? AND execution_end_time < ? GROUP BY {DAILY_GRAIN}",
                 [day, day + timedelta(days=1)])
