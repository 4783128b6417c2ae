"""The counts the SLOs are judged by (see :mod:`planwise_monitoring.evaluation.slo`): per SLO its
events and bad events in its window, and its bad events in each alert window, every SLO in one
scan of the steps that ended in the longest window.

    counts = slo_counts(conn, slos, now)      # {slo name: (events, bad, {window seconds: bad})}

An SLO's components are names or patterns with ``*`` and ``?`` (SQL ``LIKE``, escaped); names,
patterns, scenarios and thresholds are parameters, never SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

Slo = Any  # an evaluation.slo.Slo: the store reads its fields only (the store comes before evaluation)

Counts = tuple[int, int, dict[float, int]]

# indicator -> (which steps are events, which of them are bad), over mon_steps
_INDICATORS = {
    "within_sla": ("judged", "breached"),
    "succeeded": ("true", "failed"),
    "under_duration": ("succeeded", "execution_time_seconds > $threshold_{i}"),
}


def like_pattern(pattern: str) -> str:
    """A component pattern (``*`` any run of characters, ``?`` one) as a LIKE pattern with ``\\``
    as its escape.

        assert like_pattern("int_*") == "int\\\\_%"
    """
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _scope(i: int, slo: Slo, params: dict[str, Any]) -> str:
    """The SQL condition of the steps SLO ``i`` covers (its components and scenarios)."""
    terms = []
    if "*" not in slo.components:
        names = []
        for j, pattern in enumerate(slo.components):
            params[f"component_{i}_{j}"] = like_pattern(pattern)
            names.append(f"component_name LIKE $component_{i}_{j} ESCAPE '\\'")
        terms.append(f"({' OR '.join(names)})")
    if slo.scenarios is not None:
        scenarios = []
        for j, scenario in enumerate(slo.scenarios):
            params[f"scenario_{i}_{j}"] = scenario
            scenarios.append(f"scenario = $scenario_{i}_{j}")
        terms.append(f"({' OR '.join(scenarios)})")
    return " AND ".join(terms) or "true"


def slo_counts(conn: Any, slos: Sequence[Slo], now: datetime) -> dict[str, Counts]:
    """Each SLO's counts over the steps that ended in (now - window, now] (see the module docstring)."""
    if not slos:
        return {}
    params: dict[str, Any] = {"now": now}
    columns: list[str] = []
    for i, slo in enumerate(slos):
        event, bad = (text.format(i=i) for text in _INDICATORS[slo.indicator.value])
        if slo.threshold_seconds is not None:
            params[f"threshold_{i}"] = slo.threshold_seconds
        params[f"window_{i}"] = now - timedelta(seconds=slo.window)
        counted = f"{_scope(i, slo, params)} AND {event} AND execution_end_time > $window_{i}"
        columns += [f"count(*) FILTER (WHERE {counted})", f"count(*) FILTER (WHERE {counted} AND {bad})"]
        for k, seconds in enumerate(slo.windows):
            params[f"since_{i}_{k}"] = now - timedelta(seconds=seconds)
            columns.append(f"count(*) FILTER (WHERE {counted} AND {bad} AND execution_end_time > $since_{i}_{k})")
    params["since"] = now - timedelta(seconds=max(slo.window for slo in slos))
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM mon_steps WHERE execution_end_time > $since AND execution_end_time <= $now",
        params,
    ).fetchone()
    counts: dict[str, Counts] = {}
    at = 0
    for slo in slos:
        windows = slo.windows
        counts[slo.name] = (int(row[at]), int(row[at + 1]), {w: int(row[at + 2 + k]) for k, w in enumerate(windows)})
        at += 2 + len(windows)
    return counts


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
