"""Read-only SQL over the monitoring database, and the named queries of the command line.

    from planwise_monitoring.reporting.queries import run_named, run_query
    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("monitoring.duckdb", lock_timeout_seconds=5.0)   # or a postgresql:// URL
    rows = run_query(store, "SELECT component_name, count(*) FROM mon_multi_year_performance GROUP BY 1")
    rows = run_named(store, "trend", component="scd_workforce_state")
    assert not rows.truncated

The named queries are the store's figures (:mod:`planwise_monitoring.store.figures`), the same
queries the monitoring assets and run summaries read. Results are plain
:class:`~planwise_monitoring.store.rows.Rows`: the command line does not import pandas.

A user's SQL is one SELECT and nothing else, checked and confined by the backend
(:meth:`MonitoringStore.query`): on DuckDB, DuckDB's own parser and a read-only connection with
file access off; on PostgreSQL, a READ ONLY transaction, always rolled back, after a check that
refuses row locks and the functions that read server files, write, or change settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..store import MonitoringStore
from ..store.base import first_line
from ..store.errors import QueryError
from ..store.figures import FIGURES
from ..store.rows import Rows

__all__ = ["DEFAULT_LIMIT", "NAMED_QUERIES", "QueryError", "run_named", "run_query"]

DEFAULT_LIMIT = 10_000


def run_query(store: MonitoringStore, sql: str, limit: int | None = DEFAULT_LIMIT,
              params: Sequence[Any] | None = None) -> Rows:
    """Rows of one read-only query, at most ``limit`` of them (None or 0: all).

        rows = run_query(store, "SELECT * FROM range(25) t(i)", limit=10)
        assert len(rows) == 10 and rows.truncated

    ``rows.truncated`` says whether there were more. Parameters bind to ``?``."""
    return store.query(sql, limit, params)


def run_named(store: MonitoringStore, name: str, limit: int | None = DEFAULT_LIMIT, **arguments: Any) -> Rows:
    """One of the named figures (``NAMED_QUERIES``), read-only, at most ``limit`` rows.

        rows = run_named(store, "sla-compliance")
        assert "sla_compliance_pct" in rows.columns
    """
    figure = FIGURES[name]
    with store.connect(read_only=True) as conn:
        try:
            return figure.run(conn, limit=limit or None, **arguments)
        except store.database_errors as exc:
            raise QueryError(first_line(exc)) from None


# name -> (names of its arguments in order, one line of help)
NAMED_QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    name: (figure.arguments, figure.help) for name, figure in FIGURES.items()
}
