"""Writing performance records: their rows, their phases, and the history columns they change.

    from planwise_monitoring.store.performance import insert_records

    inserted = insert_records(conn, [record])   # inside the caller's transaction

Ids already stored are skipped, so replaying a spooled record twice stores it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..recording.records import PerformanceRecord

_PERFORMANCE_COLUMNS = [
    "performance_id", "simulation_run_id", "simulation_id", "simulation_year", "scenario",
    "component_name", "component_type", "asset_key", "partition_key", "status",
    "execution_start_time", "execution_end_time", "execution_time_seconds", "cpu_seconds",
    "memory_usage_mb", "memory_start_mb", "input_record_count", "output_record_count",
    "records_per_second", "sla_threshold_seconds", "warning_threshold_seconds", "sla_status",
    "performance_category", "error_class", "error_message", "monitoring_overhead_seconds",
]
_PHASE_COLUMNS = ["performance_id", "phase_index", "phase_name", "started_at", "duration_seconds"]


def insert_values_sql(table: str, columns: list[str], rows: int, on_conflict: bool = True) -> str:
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
# Portable SQL (window functions, not DuckDB's arg_max); ties on the end time go to the larger id.
_UPDATE_HISTORY_COLUMNS = """
    UPDATE mon_multi_year_performance AS upd
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
        SELECT performance_id, seconds FROM (
            SELECT t.performance_id, p.execution_time_seconds AS seconds,
                   row_number() OVER (PARTITION BY t.performance_id
                                      ORDER BY CASE WHEN p.simulation_id = t.simulation_id THEN 1 ELSE 0 END DESC,
                                               p.execution_end_time DESC, p.performance_id DESC) AS pick
            FROM target t JOIN mon_multi_year_performance p
              ON p.component_name = t.component_name AND p.scenario = t.scenario
             AND p.simulation_year = t.simulation_year - 1 AND p.status = 'SUCCESS'
             AND p.execution_end_time <= t.execution_end_time
        ) ranked WHERE pick = 1
    ),
    earlier AS (
        SELECT performance_id, sum(seconds) AS seconds FROM (
            SELECT t.performance_id, p.execution_time_seconds AS seconds,
                   row_number() OVER (PARTITION BY t.performance_id, p.simulation_year
                                      ORDER BY p.execution_end_time DESC, p.performance_id DESC) AS pick
            FROM target t JOIN mon_multi_year_performance p
              ON p.component_name = t.component_name AND p.simulation_id = t.simulation_id
             AND p.simulation_year < t.simulation_year AND p.status = 'SUCCESS'
             AND p.execution_end_time <= t.execution_end_time
        ) ranked WHERE pick = 1 GROUP BY performance_id
    )
    SELECT t.performance_id,
           CASE WHEN t.status = 'SUCCESS' AND previous.seconds > 0
                THEN (t.execution_time_seconds - previous.seconds) / previous.seconds * 100 END AS yoy,
           t.execution_time_seconds + coalesce(earlier.seconds, 0) AS cumulative
    FROM target t
    LEFT JOIN previous USING (performance_id)
    LEFT JOIN earlier USING (performance_id)
    ) AS derived
    WHERE upd.performance_id = derived.performance_id
"""


def insert_records(conn: Any, records: Sequence[PerformanceRecord]) -> int:
    """Insert the records whose ids are not stored yet, with their phases; returns how many.
    ``conn`` is a backend connection (see :mod:`.duckdb`, :mod:`.postgres`): it knows how its
    dialect skips stored ids, and serialises writers of the same histories.

        assert insert_records(conn, [record, record]) == 1
    """
    unique = list({r.performance_id: r for r in records}.values())
    if not unique:
        return 0
    # Two writers of the same component's history must take turns, or each derives its rows'
    # history without the other's uncommitted rows (a no-op where one writer is all there is).
    conn.lock_histories(sorted({(r.component_name, r.scenario) for r in unique}))
    rows = [[getattr(r, c) for c in _PERFORMANCE_COLUMNS] for r in unique]
    inserted = conn.insert_new("mon_multi_year_performance", _PERFORMANCE_COLUMNS, rows, key="performance_id")
    new = [r for r in unique if r.performance_id in inserted]
    if not new:
        return 0
    phases = [[r.performance_id, i, p.name, p.started_at, p.duration_seconds]
              for r in new for i, p in enumerate(r.phases)]
    if phases:
        conn.insert_rows("mon_phase_timings", _PHASE_COLUMNS, phases)
    conn.execute(_UPDATE_HISTORY_COLUMNS, [[r.performance_id for r in new]])
    return len(new)
