"""Performance baselines: what a component's recent successful runs look like, per simulation year
and scenario, versioned so that every baseline ever used can be read again.

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("monitoring.duckdb")
    version = store.update_baselines("scd_workforce_state", runs=20)   # 1, then 2, 3 …
    store.rollback_baselines("scd_workforce_state")                    # a new version copying the one before
    rows = store.baselines("scd_workforce_state")                      # the current version's rows
    with store.session(read_only=True) as s:
        row = s.current_baseline("scd_workforce_state", 2025, "baseline")   # a dict, or None

``mon_baselines`` is append-only: an update or a rollback adds a version, a whole set of rows (one
per year and scenario the component has succeeded in), and never changes an earlier one. A
component's **current** version is its highest; ``current_baseline`` is that version's row for one
(year, scenario), or None when that version has none (its runs were pruned before it was
computed, say).

A version computed from the runs (``method`` ``'percentile'``) takes, per (year, scenario), the
last ``runs`` successful runs by when they ended (a tie goes to the larger record id), and stores
their count (``sample_size``, at most ``window_runs``), the 50th, 95th and 99th percentile of their
durations (``percentile_cont``: linear interpolation between the two nearest runs, numpy's default),
their median absolute deviation (the median of ``|seconds - median|``, unscaled), their mean,
the 50th and 95th percentile of their peak memory (``memory_usage_mb``; NULL when none was
measured) and the span of their end times. A rollback (``'rollback:vN'``) copies version N's
figures under a new version, computed at and by whom it was rolled back. By default N is the
number below the current version; a rollback being a version too, rolling back twice brings back
the figures of before the first.

Each update is one INSERT … SELECT, so the runs never leave the database; on PostgreSQL it reads
only the runs it keeps, from the history index (see ``UPDATE``): ~5 ms for a component with a
million runs, DuckDB ~0.4 s. Writers of a component's baselines take turns (PostgreSQL: an
advisory lock held to commit; DuckDB: the file's lock), so two updates at once get two versions;
on PostgreSQL a unique index on (component, version, scenario, year) refuses a duplicate anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import StoreError
from .rows import Rows, select

METHOD = "percentile"
DEFAULT_RUNS = 20

TABLES = [
    """
    CREATE TABLE mon_baselines (
        baseline_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        component_name VARCHAR(100) NOT NULL,
        simulation_year INTEGER,
        scenario VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        computed_at TIMESTAMP NOT NULL,
        method VARCHAR NOT NULL,
        window_runs INTEGER NOT NULL,
        sample_size INTEGER NOT NULL,
        p50_seconds DOUBLE NOT NULL,
        p95_seconds DOUBLE NOT NULL,
        p99_seconds DOUBLE NOT NULL,
        mad_seconds DOUBLE NOT NULL,
        mean_seconds DOUBLE NOT NULL,
        p50_peak_memory_mb DOUBLE,
        p95_peak_memory_mb DOUBLE,
        first_run_at TIMESTAMP NOT NULL,
        last_run_at TIMESTAMP NOT NULL,
        created_by VARCHAR NOT NULL
    )
    """,
]

# PostgreSQL: the current version of a component, and its row for a (year, scenario), are read
# from the first index; both refuse a version computed twice (the second for unpartitioned assets,
# whose NULL year a unique index would not compare). DuckDB's table stays small enough to scan.
POSTGRES_INDEXES = [
    "CREATE UNIQUE INDEX mon_baselines_version ON mon_baselines (component_name, version, scenario, simulation_year)",
    "CREATE UNIQUE INDEX mon_baselines_version_no_year ON mon_baselines (component_name, version, scenario) "
    "WHERE simulation_year IS NULL",
]

# What a row says, in the order it is shown (its id last: it names a row, it says nothing).
COLUMNS = ["component_name", "version", "scenario", "simulation_year", "sample_size", "p50_seconds", "p95_seconds",
           "p99_seconds", "mad_seconds", "mean_seconds", "p50_peak_memory_mb", "p95_peak_memory_mb", "first_run_at",
           "last_run_at", "method", "window_runs", "computed_at", "created_by", "baseline_id"]
_FIGURES = ["window_runs", "sample_size", "p50_seconds", "p95_seconds", "p99_seconds", "mad_seconds",
            "mean_seconds", "p50_peak_memory_mb", "p95_peak_memory_mb", "first_run_at", "last_run_at"]
_INSERTED = ["component_name", "simulation_year", "scenario", "version", "computed_at", "method", *_FIGURES,
             "created_by"]

# The sample: per (scenario, year), the component's last $runs succeeded runs. DuckDB ranks them
# all (a column scan of a million runs takes it ~0.3 s). PostgreSQL would sort every succeeded run
# of the component to rank them (~4 s at a million); it takes the (scenario, year) pairs from its
# daily summary (see .rollups) and reads each pair's latest runs from the history index, newest
# first, stopping at $runs: a few index entries per pair, however long the history.
_DUCKDB_SAMPLE = """
    SELECT scenario, simulation_year, seconds, memory_usage_mb, execution_end_time FROM (
        SELECT scenario, simulation_year, execution_time_seconds AS seconds, memory_usage_mb, execution_end_time,
               row_number() OVER (PARTITION BY scenario, simulation_year
                                  ORDER BY execution_end_time DESC, performance_id DESC) AS recency
        FROM mon_multi_year_performance
        WHERE component_name = CAST($component AS VARCHAR) AND status = 'SUCCESS'
    ) AS ranked
    WHERE recency <= CAST($runs AS INTEGER)
"""


def _pg_latest(year_is: str, same_year: str) -> str:
    """The latest runs of each (scenario, year) pair whose year ``year_is`` (``IS NULL`` or ``IS NOT NULL``),
    ``same_year`` matching a run to its pair: two branches, so that each compares the year as the index can."""
    return f"""
    SELECT k.scenario, k.simulation_year, r.seconds, r.memory_usage_mb, r.execution_end_time
    FROM (SELECT DISTINCT scenario, simulation_year FROM mon_daily_steps
          WHERE component_name = CAST($component AS VARCHAR) AND succeeded_runs > 0
            AND simulation_year {year_is}) AS k
    CROSS JOIN LATERAL (
        SELECT p.execution_time_seconds AS seconds, p.memory_usage_mb, p.execution_end_time
        FROM mon_multi_year_performance p
        WHERE p.component_name = CAST($component AS VARCHAR) AND p.scenario = k.scenario AND {same_year}
          AND p.status = 'SUCCESS'
        ORDER BY p.execution_end_time DESC, p.performance_id DESC
        LIMIT CAST($runs AS INTEGER)
    ) AS r"""


_POSTGRES_SAMPLE = (_pg_latest("IS NOT NULL", "p.simulation_year = k.simulation_year") + "\n    UNION ALL"
                    + _pg_latest("IS NULL", "p.simulation_year IS NULL"))

_UPDATE = f"""
INSERT INTO mon_baselines ({", ".join(_INSERTED)})
WITH sample AS ({{sample}}),
medians AS (
    SELECT scenario, simulation_year, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median
    FROM sample GROUP BY scenario, simulation_year
)
SELECT CAST($component AS VARCHAR), s.simulation_year, s.scenario, CAST($version AS INTEGER),
       CAST($now AS TIMESTAMP), CAST($method AS VARCHAR), CAST($runs AS INTEGER), count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.seconds),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY s.seconds),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(s.seconds - m.median)),
       avg(s.seconds),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.memory_usage_mb),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.memory_usage_mb),
       min(s.execution_end_time), max(s.execution_end_time),
       CAST($by AS VARCHAR)
FROM sample s
JOIN medians m ON m.scenario = s.scenario AND m.simulation_year IS NOT DISTINCT FROM s.simulation_year
GROUP BY s.scenario, s.simulation_year
"""
# One statement per dialect (schema's Variant is not importable here: the schema imports this module).
UPDATE = {"duckdb": _UPDATE.format(sample=_DUCKDB_SAMPLE), "postgres": _UPDATE.format(sample=_POSTGRES_SAMPLE)}

ROLLBACK = f"""
INSERT INTO mon_baselines ({", ".join(_INSERTED)})
SELECT component_name, simulation_year, scenario, CAST($version AS INTEGER), CAST($now AS TIMESTAMP),
       CAST($method AS VARCHAR), {", ".join(_FIGURES)}, CAST($by AS VARCHAR)
FROM mon_baselines
WHERE component_name = CAST($component AS VARCHAR) AND version = CAST($from_version AS INTEGER)
"""

LATEST_VERSION = "SELECT max(version) FROM mon_baselines WHERE component_name = CAST($component AS VARCHAR)"

_CURRENT = "(SELECT max(c.version) FROM mon_baselines c WHERE c.component_name = b.component_name)"

READ = f"""
SELECT {", ".join(COLUMNS)} FROM mon_baselines b
WHERE (CAST($component AS VARCHAR) IS NULL OR component_name = CAST($component AS VARCHAR))
  AND (CAST($version AS INTEGER) IS NULL OR version = CAST($version AS INTEGER))
  AND (CAST($all_versions AS BOOLEAN) OR version = {_CURRENT})
ORDER BY component_name, version DESC, scenario, simulation_year NULLS FIRST
"""

CURRENT = f"""
SELECT {", ".join(COLUMNS)} FROM mon_baselines
WHERE component_name = CAST($component AS VARCHAR) AND scenario = CAST($scenario AS VARCHAR)
  AND simulation_year IS NOT DISTINCT FROM CAST($year AS INTEGER) AND version = ({LATEST_VERSION})
"""


def update(conn: Any, component: str, runs: int, now: datetime, by: str, where: str) -> int:
    """Append the next version of ``component``'s baselines, computed from its last ``runs``
    successful runs per (year, scenario); returns the version. Inside the caller's transaction:
    writers of the component take turns until it commits. StoreError if it has no successful run
    (nothing is written)."""
    if runs < 1:
        raise ValueError(f"a baseline needs at least 1 run, got {runs}")
    version = _next_version(conn, component)
    inserted = conn.count(UPDATE[conn.dialect], {"component": component, "runs": runs, "version": version, "now": now,
                                   "method": METHOD, "by": by})
    if not inserted:
        raise StoreError(f"no successful runs of component {component!r} in {where}: nothing to compute a baseline "
                         "from")
    return version


def rollback(conn: Any, component: str, to_version: int | None, now: datetime, by: str, where: str) -> int:
    """Append a new version of ``component``'s baselines copying version ``to_version`` (default:
    the one before the current one); returns the new version. StoreError if there is none."""
    version = _next_version(conn, component)
    current = version - 1
    if not current:
        raise StoreError(f"component {component!r} has no baselines in {where} to roll back")
    if to_version is None:
        if current == 1:
            raise StoreError(f"component {component!r} has only baseline version 1: no earlier version to roll back to")
        to_version = current - 1
    if to_version == current:
        raise StoreError(f"baseline version {to_version} of component {component!r} is the current one already")
    copied = 0
    if 1 <= to_version < current:
        copied = conn.count(ROLLBACK, {"component": component, "from_version": to_version, "version": version,
                                       "now": now, "method": f"rollback:v{to_version}", "by": by})
    if not copied:
        raise StoreError(f"component {component!r} has no baseline version {to_version} "
                         f"(its versions are 1 to {current})")
    return version


def _next_version(conn: Any, component: str) -> int:
    conn.take_turns(f"baselines\x1f{component}")  # PostgreSQL: held to commit; the read below sees the last writer's
    (latest,) = conn.execute(LATEST_VERSION, {"component": component}).fetchone()
    return int(latest or 0) + 1


def read(conn: Any, component: str | None = None, all_versions: bool = False, version: int | None = None,
         limit: int | None = None) -> Rows:
    """Each component's current version's rows (or every version's, newest first; or one version's)."""
    if not conn.table_exists("mon_baselines"):  # a database no write has migrated yet
        return Rows(tuple(COLUMNS))
    return select(conn, READ, {"component": component, "version": version,
                               "all_versions": all_versions or version is not None}, limit)


def current(conn: Any, component: str, simulation_year: int | None, scenario: str) -> dict[str, Any] | None:
    """The component's current version's row for (year, scenario), or None."""
    if not conn.table_exists("mon_baselines"):
        return None
    rows = select(conn, CURRENT, {"component": component, "scenario": scenario, "year": simulation_year}).dicts()
    return rows[0] if rows else None
