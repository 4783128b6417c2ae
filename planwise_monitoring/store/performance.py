"""Writing performance records: their rows, their phases, and the history columns they change.

    from planwise_monitoring.store.performance import insert_records

    inserted = insert_records(conn, [record])   # inside the caller's transaction

Ids already stored are skipped, so replaying a spooled record twice stores it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .rollups import add_to_rollups

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
#    previous year that ended before this row did (or when it did), preferring a run of the same
#    simulation: the same simulation's is looked up first, any simulation's only if it has none;
#  - cumulative: this row plus, for each earlier year of the same simulation (and component), its
#    latest successful run that ended before this row did (a re-run year counts once).
# Ties on the end time go to the larger id. Recomputed for the new rows and for the later-year rows
# of the same component and scenario that ended when or after one did, which a late (replayed) row
# can change. Each figure is a top-1 lookup per row (ORDER BY ... LIMIT 1), which PostgreSQL answers
# from one index probe, not a join against the whole history; portable SQL, the same text on both
# backends (no DISTINCT ON, no arg_max).

# The later-year rows a new row can change. The new rows are read once (MATERIALIZED), and the bound
# on their earliest end (the second ?) is implied by the join: it lets PostgreSQL read the few rows
# that ended since through the end-time index, not every later year's rows of each component.
_LATER_ROWS = """
    WITH new AS MATERIALIZED (
        SELECT component_name, scenario, simulation_year, execution_end_time
        FROM mon_multi_year_performance WHERE performance_id IN (SELECT unnest(?::UUID[]))
    )
    SELECT DISTINCT t.performance_id
    FROM mon_multi_year_performance t
    JOIN new n ON t.component_name = n.component_name AND t.scenario = n.scenario
     AND t.simulation_year > n.simulation_year AND t.execution_end_time >= n.execution_end_time
    WHERE t.execution_end_time >= ?
"""

_LATEST_SUCCESS = "p.status = 'SUCCESS' AND p.execution_end_time <= t.execution_end_time " \
                  "ORDER BY p.execution_end_time DESC, p.performance_id DESC LIMIT 1"

_UPDATE_HISTORY_COLUMNS = f"""
    UPDATE mon_multi_year_performance AS upd
    SET year_over_year_change_pct = CASE WHEN derived.status = 'SUCCESS' AND derived.previous > 0
            THEN (derived.execution_time_seconds - derived.previous) / derived.previous * 100 END,
        cumulative_execution_time_seconds = derived.execution_time_seconds + coalesce(derived.earlier, 0)
    FROM (
        SELECT t.performance_id, t.status, t.execution_time_seconds,
               coalesce(
                   (SELECT p.execution_time_seconds FROM mon_multi_year_performance p
                    WHERE p.simulation_id = t.simulation_id AND p.component_name = t.component_name
                      AND p.scenario = t.scenario AND p.simulation_year = t.simulation_year - 1
                      AND {_LATEST_SUCCESS}),
                   (SELECT p.execution_time_seconds FROM mon_multi_year_performance p
                    WHERE p.component_name = t.component_name AND p.scenario = t.scenario
                      AND p.simulation_year = t.simulation_year - 1
                      AND {_LATEST_SUCCESS})) AS previous,
               (SELECT sum((SELECT p.execution_time_seconds FROM mon_multi_year_performance p
                            WHERE p.simulation_id = t.simulation_id AND p.component_name = t.component_name
                              AND p.simulation_year = earlier_year.simulation_year
                              AND {_LATEST_SUCCESS}))
                FROM (SELECT DISTINCT e.simulation_year FROM mon_multi_year_performance e
                      WHERE e.simulation_id = t.simulation_id AND e.component_name = t.component_name
                        AND e.simulation_year < t.simulation_year AND e.status = 'SUCCESS'
                        AND e.execution_end_time <= t.execution_end_time) AS earlier_year) AS earlier
        FROM mon_multi_year_performance t
        WHERE t.performance_id IN (SELECT unnest(?::UUID[]))
        OFFSET 0  -- each row's lookups once: PostgreSQL would inline them into each use in SET
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
    rows = [[getattr(r, c) for c in _PERFORMANCE_COLUMNS] for r in unique]
    inserted = conn.insert_new("mon_multi_year_performance", _PERFORMANCE_COLUMNS, rows, key="performance_id")
    new = [r for r in unique if r.performance_id in inserted]
    if not new:
        return 0
    phases = [[r.performance_id, i, p.name, p.started_at, p.duration_seconds]
              for r in new for i, p in enumerate(r.phases)]
    if phases:
        conn.insert_rows("mon_phase_timings", _PHASE_COLUMNS, phases)
    # Two writers of the same component's history take turns deriving it (a no-op where one writer
    # is all there is), after inserting: the second one's statements see the first one's rows
    # committed, and recompute those of them its own rows change, as for a late row. Deriving
    # without taking turns, each would miss the other's uncommitted rows.
    conn.lock_histories(sorted({(r.component_name, r.scenario) for r in new}))
    ids = [r.performance_id for r in new]
    later = conn.execute(_LATER_ROWS, [ids, min(r.execution_end_time for r in new)]).fetchall()
    conn.execute(_UPDATE_HISTORY_COLUMNS, [ids + [str(k) for (k,) in later]])
    if conn.keeps_rollups:  # PostgreSQL's summary tables, still under the histories' locks
        add_to_rollups(conn, ids)
    return len(new)
