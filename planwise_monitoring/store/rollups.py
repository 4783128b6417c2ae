"""PostgreSQL's summary tables: what the figures read instead of every stored step.

    from planwise_monitoring.store.rollups import COUNT_INSERTED

    f"WITH inserted AS (INSERT ... RETURNING *), {COUNT_INSERTED} SELECT ..."   # PostgreSQL only

At 10 M stored steps a figure that reads every row takes PostgreSQL seconds (a sequential scan
of gigabytes, a sort for each percentile). Two tables, kept in the transaction that writes the
steps, make every figure read a few thousand rows plus a few index entries:

- ``mon_daily_steps``: per component, type, simulation year, scenario and UTC day a step ended
  (the ``trend`` grain), the counts every figure is made of (runs, failed, succeeded, judged,
  within SLA, warnings, breaches), the sum/min/max seconds of the succeeded steps and their
  memory. A window (``since``) takes the days after its first day from here and that first day
  from the steps themselves, so figures stay exact to the second.
- ``mon_duration_histogram``: per component, type and scenario, succeeded steps counted in 1 % buckets of
  their duration (``floor(100 ln seconds)``), with the shortest duration seen in each. A
  percentile's rank falls in one bucket; the exact value is then read from the durations index
  starting at that bucket's shortest duration, a few hundred index entries instead of half the
  component's steps.

DuckDB reads its columns far faster than it could keep such tables, and has neither: the
figures are one query over the steps there (see :mod:`.figures`).

Both tables are additive: a step added adds its counts, in the statement that inserts it (writers
of one component and scenario already take turns, see :func:`.performance.insert_records`, and
every summary row is keyed by one of those); pruning subtracts what it deletes from the
histogram (a bucket's shortest duration may then be one pruned, still a valid lower bound) and
recounts the one day it cut into.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from .facts import STEP_FACTS

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

HISTOGRAM_KEY = "component_name, component_type, scenario, bucket"

_HISTOGRAM_OF = f"""
SELECT component_name, component_type, scenario, {BUCKET} AS bucket, count(*) AS steps,
       min(execution_time_seconds) AS min_seconds
FROM {{source}} WHERE status = 'SUCCESS' AND {{where}}
GROUP BY {HISTOGRAM_KEY}
"""

# The rows a write inserted (``inserted``: an INSERT ... RETURNING * before these) counted into both
# tables, as more common table expressions of that INSERT's statement: the rows are not read again.
# Every row written here is keyed by a component and scenario whose history lock the writer holds
# (see .performance), so concurrent writers never wait on one another's rows or deadlock.
COUNT_INSERTED = f"""
steps AS MATERIALIZED (SELECT *, {STEP_FACTS} FROM inserted),
counted AS ({DAILY_SELECT} FROM steps GROUP BY {DAILY_GRAIN}),
updated AS (
    UPDATE mon_daily_steps d SET
        {', '.join(f'{c} = d.{c} + n.{c}' for c in _DAILY_COUNTS)},
        succeeded_seconds = coalesce(d.succeeded_seconds + n.succeeded_seconds, d.succeeded_seconds, n.succeeded_seconds),
        memory_mb = coalesce(d.memory_mb + n.memory_mb, d.memory_mb, n.memory_mb),
        min_seconds = least(d.min_seconds, n.min_seconds),
        max_seconds = greatest(d.max_seconds, n.max_seconds),
        max_memory_mb = greatest(d.max_memory_mb, n.max_memory_mb)
    FROM counted n WHERE {_SAME_DAY}
    RETURNING d.*
),
added AS (
    INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)})
    SELECT {', '.join(f'n.{c}' for c in DAILY_COLUMNS)} FROM counted n
    WHERE NOT EXISTS (SELECT 1 FROM updated d WHERE {_SAME_DAY})
),
bucketed AS (
    INSERT INTO mon_duration_histogram ({HISTOGRAM_KEY}, steps, min_seconds)
    {_HISTOGRAM_OF.format(source='steps', where='true')}
    ON CONFLICT ({HISTOGRAM_KEY}) DO UPDATE
    SET steps = mon_duration_histogram.steps + excluded.steps,
        min_seconds = least(mon_duration_histogram.min_seconds, excluded.min_seconds)
)"""

_REBUILD_DAILY = [
    "DELETE FROM mon_daily_steps",
    f"INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)}) {DAILY_SELECT} FROM mon_steps GROUP BY {DAILY_GRAIN}",
]
_REBUILD_HISTOGRAM = [
    "DELETE FROM mon_duration_histogram",
    f"INSERT INTO mon_duration_histogram ({HISTOGRAM_KEY}, steps, min_seconds) "
    + _HISTOGRAM_OF.format(source="mon_multi_year_performance", where="true"),
]
# Both tables filled again from the steps stored (as the migrations fill them; so does a benchmark
# that loads steps with SQL of its own).
REBUILD = _REBUILD_DAILY + _REBUILD_HISTOGRAM

# Migration 5: the daily table, filled from the steps already stored, and the durations indexes.
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
    # The percentiles' reads: a component's succeeded durations in order (slowest-components), and
    # one trend group's (component, type, scenario, day, year; 0 for none: years are 1..9999).
    "CREATE INDEX mon_performance_durations ON mon_multi_year_performance "
    "(component_name, component_type, execution_time_seconds) WHERE status = 'SUCCESS'",
    "CREATE INDEX mon_performance_daily_durations ON mon_multi_year_performance "
    "(component_name, component_type, scenario, (CAST(execution_end_time AS DATE)), (coalesce(simulation_year, 0)), "
    "execution_time_seconds) INCLUDE (execution_end_time, simulation_year) WHERE status = 'SUCCESS'",
    *_REBUILD_DAILY,
]

# Migration 6: the histogram, per scenario too (schema 5 had one without, shared by the scenarios'
# writers, whose upserts could then deadlock), filled from the steps stored.
HISTOGRAM = [
    "DROP TABLE IF EXISTS mon_duration_histogram",
    f"""
    CREATE TABLE mon_duration_histogram (
        component_name VARCHAR(100) NOT NULL,
        component_type VARCHAR(50) NOT NULL,
        scenario VARCHAR NOT NULL,
        bucket INTEGER NOT NULL,
        steps BIGINT NOT NULL,
        min_seconds DOUBLE PRECISION NOT NULL,
        PRIMARY KEY ({HISTOGRAM_KEY})
    )
    """,
    *_REBUILD_HISTOGRAM[1:],
]


def before_prune(conn: Any, cutoff: datetime) -> None:
    """Subtract the succeeded steps about to be pruned (ended before ``cutoff``) from the histogram."""
    conn.execute(f"""
        UPDATE mon_duration_histogram h SET steps = h.steps - gone.steps
        FROM ({_HISTOGRAM_OF.format(source='mon_multi_year_performance', where='execution_end_time < ?')}) gone
        WHERE h.component_name = gone.component_name AND h.component_type = gone.component_type
          AND h.scenario = gone.scenario AND h.bucket = gone.bucket
        """, [cutoff])
    conn.execute("DELETE FROM mon_duration_histogram WHERE steps <= 0")


def after_prune(conn: Any, cutoff: datetime) -> None:
    """Drop the days wholly pruned and count again the day ``cutoff`` fell in (its later steps stay)."""
    day = datetime.combine(cutoff.date(), time())
    conn.execute("DELETE FROM mon_daily_steps WHERE performance_date <= ?", [day.date()])
    conn.execute(f"INSERT INTO mon_daily_steps ({', '.join(DAILY_COLUMNS)}) {DAILY_SELECT} FROM mon_steps "
                 f"WHERE execution_end_time >= ? AND execution_end_time < ? GROUP BY {DAILY_GRAIN}",
                 [day, day + timedelta(days=1)])
