"""The counts the SLOs are judged by (see :mod:`planwise_monitoring.evaluation.slo`): per SLO its
events and bad events in its window, and its bad events in each alert window.

    counts = slo_counts(conn, slos, now)      # {slo name: (events, bad, {window seconds: bad})}

One scan for every SLO: the steps that ended in the longest window are counted per component,
scenario and *slot* (the shortest of all the windows a step ended in), a few hundred rows
however many steps; each SLO then adds up the slots of its windows and the components and
scenarios it covers. Its components are names or patterns with ``*`` and ``?``, matched here,
never SQL text (so ``%`` or a quote in a name is just a character).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

Slo = Any  # an evaluation.slo.Slo: the store reads its fields only (the store comes before evaluation)
Counts = tuple[int, int, dict[float, int]]

# indicator -> (the column counting its events, the column counting its bad events)
_COLUMNS = {"within_sla": ("judged", "breached"), "succeeded": ("steps", "failed"),
            "under_duration": ("succeeded", "over_{threshold}")}


def slo_counts(conn: Any, slos: Sequence[Slo], now: datetime) -> dict[str, Counts]:
    """Each SLO's counts over the steps that ended in (now - window, now] (see the module docstring)."""
    if not slos:
        return {}
    windows = sorted({w for slo in slos for w in (slo.window, *slo.windows)})  # shortest first
    thresholds = sorted({slo.threshold_seconds for slo in slos if slo.threshold_seconds is not None})
    params: dict[str, Any] = {"now": now, **{f"since_{k}": now - timedelta(seconds=w) for k, w in enumerate(windows)},
                              **{f"threshold_{k}": t for k, t in enumerate(thresholds)}}
    slot = " ".join(f"WHEN execution_end_time > $since_{k} THEN {k}" for k in range(len(windows)))
    over = "".join(f", count(*) FILTER (WHERE succeeded AND execution_time_seconds > $threshold_{k}) AS over_{k}"
                   for k in range(len(thresholds)))
    cur = conn.execute(f"""
        SELECT component_name, scenario, CASE {slot} END AS slot, count(*) AS steps,
               count(*) FILTER (WHERE failed) AS failed, count(*) FILTER (WHERE succeeded) AS succeeded,
               count(*) FILTER (WHERE judged) AS judged, count(*) FILTER (WHERE breached) AS breached{over}
        FROM mon_steps
        WHERE execution_end_time > $since_{len(windows) - 1} AND execution_end_time <= $now
        GROUP BY component_name, scenario, slot
        """, params)
    names = [d[0] for d in cur.description]
    groups = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    counts: dict[str, Counts] = {}
    for slo in slos:
        event, bad = _COLUMNS[slo.indicator.value]
        if slo.threshold_seconds is not None:
            bad = bad.format(threshold=thresholds.index(slo.threshold_seconds))
        mine = [g for g in groups if _covers(slo, g["component_name"], g["scenario"])]

        def total(column: str, window: float, mine: list[dict[str, Any]] = mine) -> int:
            return sum(int(g[column]) for g in mine if g["slot"] <= windows.index(window))

        counts[slo.name] = (total(event, slo.window), total(bad, slo.window),
                            {w: total(bad, w) for w in slo.windows})
    return counts


def _covers(slo: Slo, component_name: str, scenario: str) -> bool:
    return (any(fnmatch.fnmatchcase(component_name, pattern) for pattern in slo.components)
            and (slo.scenarios is None or scenario in slo.scenarios))


# mon_slo_status, the SLO asset's table: a row per SLO as last evaluated
STATUS_COLUMNS = [
    ("slo_name", "VARCHAR"), ("indicator", "VARCHAR"), ("objective_pct", "DOUBLE"), ("window_days", "DOUBLE"),
    ("events", "BIGINT"), ("bad_events", "BIGINT"), ("attainment_pct", "DOUBLE"),
    ("budget_remaining_pct", "DOUBLE"), ("max_burn_rate", "DOUBLE"), ("level", "VARCHAR"),
    ("firing", "VARCHAR"), ("evaluated_at", "TIMESTAMP"),
]


def status_table_sql(rows: int) -> str:
    """A SELECT of ``rows`` rows of STATUS_COLUMNS from ``?`` parameters (no rows: an empty table
    with those columns), for ``replace_table``."""
    cells = ", ".join(f"CAST(? AS {kind}) AS {name}" for name, kind in STATUS_COLUMNS)
    if not rows:
        return f"SELECT {cells.replace('?', 'NULL')} WHERE false"
    return " UNION ALL ".join([f"SELECT {cells}"] * rows)
