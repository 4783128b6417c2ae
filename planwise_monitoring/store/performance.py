"""Writing performance records: their rows, their phases, and the history columns they change.

    from planwise_monitoring.store.performance import insert_records

    inserted = insert_records(conn, [record])   # inside the caller's transaction

Ids already stored are skipped, so replaying a spooled record twice stores it once.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .rollups import COUNT_INSERTED

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
_performance_values = operator.attrgetter(*_PERFORMANCE_COLUMNS)
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
# Ties on the end time go to the larger id. Each figure is a top-1 lookup per row (ORDER BY ...
# LIMIT 1), which PostgreSQL answers from one index probe, not a join against the whole history;
# portable SQL, the same text on both backends (no DISTINCT ON, no arg_max).
#
# A row's figures only read its component's earlier years. PostgreSQL inserts new rows in waves, a
# component's earlier year in an earlier wave, each with its figures computed in its INSERT from
# what is stored by then (which includes the earlier waves): no row is written twice (each write
# costs it a heap tuple and 8 index entries). DuckDB inserts them all, then computes their figures
# in one UPDATE: one statement's lookups rather than one per wave, the cost that counts there.
# What a late (replayed) row changes is the later-year rows of its component and scenario that
# ended when or after it did; those are computed again by an UPDATE with the same lookups.

_LATEST_SUCCESS = "p.status = 'SUCCESS' AND p.execution_end_time <= t.execution_end_time " \
                  "ORDER BY p.execution_end_time DESC, p.performance_id DESC LIMIT 1"

# The rows of ``{rows}`` (aliased t, with at least the columns named here) with their history lookups.
# OFFSET 0: each row's lookups once, where PostgreSQL would inline them into each use of a figure.
_LOOKUPS = f"""
    SELECT t.*,
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
    FROM {{rows}}
    OFFSET 0
"""
_HISTORY_COLUMNS = ["year_over_year_change_pct", "cumulative_execution_time_seconds"]
_YEAR_OVER_YEAR = "CASE WHEN d.status = 'SUCCESS' AND d.previous > 0 " \
                  "THEN (d.execution_time_seconds - d.previous) / d.previous * 100 END"
_CUMULATIVE = "d.execution_time_seconds + coalesce(d.earlier, 0)"

# INSERT's SELECT: the new rows' columns, then their history columns.
_INSERT_SELECT = (f"SELECT {', '.join(f'd.{c}' for c in _PERFORMANCE_COLUMNS)}, {_YEAR_OVER_YEAR}, {_CUMULATIVE} "
                  f"FROM ({_LOOKUPS}) AS d")

# The stored later-year rows a new row can change: given the new rows' component, scenario, year and
# end (arrays), and a bound on their earliest end (the last ?), implied by the join, which lets
# PostgreSQL read the few rows that ended since through the end-time index, not every later
# year's rows of each component.
_LATER_ROWS = """
    SELECT DISTINCT t.performance_id
    FROM mon_multi_year_performance t
    JOIN (SELECT unnest(?::VARCHAR[]) AS component_name, unnest(?::VARCHAR[]) AS scenario,
                 unnest(?::INTEGER[]) AS simulation_year, unnest(?::TIMESTAMP[]) AS execution_end_time) AS n
      ON t.component_name = n.component_name AND t.scenario = n.scenario
     AND t.simulation_year > n.simulation_year AND t.execution_end_time >= n.execution_end_time
    WHERE t.execution_end_time >= ?
"""

_UPDATE_HISTORY_COLUMNS = f"""
    UPDATE mon_multi_year_performance AS upd
    SET year_over_year_change_pct = {_YEAR_OVER_YEAR}, cumulative_execution_time_seconds = {_CUMULATIVE}
    FROM ({_LOOKUPS.format(rows="mon_multi_year_performance t WHERE t.performance_id IN (SELECT unnest(?::UUID[]))")}
    ) AS d
    WHERE upd.performance_id = d.performance_id
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
    # Two writers of the same component's history take turns (a no-op where one writer is all there
    # is): the second one's lookups see the first one's rows committed. The lock is taken before
    # inserting because PostgreSQL computes the figures as the rows are inserted.
    conn.lock_histories(sorted({(r.component_name, r.scenario) for r in unique}))
    if conn.derives_in_insert:
        inserted: set[str] = set()
        for wave in _waves(unique):
            # PostgreSQL's summary tables count the rows in the statement that inserts them
            inserted |= conn.insert_new(
                "mon_multi_year_performance", _PERFORMANCE_COLUMNS, [list(_performance_values(r)) for r in wave],
                key="performance_id", select=(_HISTORY_COLUMNS, _INSERT_SELECT),
                then=COUNT_INSERTED if conn.keeps_rollups else None)
    else:
        inserted = conn.insert_new("mon_multi_year_performance", _PERFORMANCE_COLUMNS,
                                   [list(_performance_values(r)) for r in unique], key="performance_id")
    new = [r for r in unique if r.performance_id in inserted]
    if not new:
        return 0
    phases = [[r.performance_id, i, p.name, p.started_at, p.duration_seconds]
              for r in new for i, p in enumerate(r.phases)]
    if phases:
        conn.insert_rows("mon_phase_timings", _PHASE_COLUMNS, phases)
    later: set[str] = set()
    dated = [r for r in new if r.simulation_year is not None]
    if dated:
        params = [[getattr(r, c) for r in dated] for c in ("component_name", "scenario", "simulation_year",
                                                            "execution_end_time")]
        later = {str(k) for (k,) in conn.execute(_LATER_ROWS, [*params, min(params[3])]).fetchall()}
    # Inserted with their figures, a new row needs nothing more (it counted the batch's earlier
    # years); inserted without, every new row is computed here, in one statement.
    again = later - inserted if conn.derives_in_insert else later | inserted
    if again:
        conn.execute(_UPDATE_HISTORY_COLUMNS, [sorted(again)])
    return len(new)


def _waves(records: list[PerformanceRecord]) -> list[list[PerformanceRecord]]:
    """The records in as few INSERTs as their histories allow: a record's figures read its
    component's earlier years only, so each goes in the wave after the one holding its component's
    previous year in the batch (rows without a year have no history: the first wave)."""
    years: dict[str, list[int]] = {}
    for r in records:
        if r.simulation_year is not None:
            years.setdefault(r.component_name, []).append(r.simulation_year)
    rank = {c: {y: i for i, y in enumerate(sorted(set(ys)))} for c, ys in years.items()}
    waves: dict[int, list[PerformanceRecord]] = {}
    for r in records:
        wave = 0 if r.simulation_year is None else rank[r.component_name][r.simulation_year]
        waves.setdefault(wave, []).append(r)
    return [waves[w] for w in sorted(waves)]
