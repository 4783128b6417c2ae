"""Read-only SQL over the monitoring database, and the named queries of the command line.

    from planwise_monitoring.reporting.queries import run_named, run_query
    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("monitoring.duckdb", lock_timeout_seconds=5.0)
    rows = run_query(store, "SELECT component_name, count(*) FROM mon_multi_year_performance GROUP BY ALL")
    rows = run_named(store, "trend", component="scd_workforce_state")
    assert not rows.truncated

The named queries are the store's figures (:mod:`planwise_monitoring.store.figures`), the same
queries the monitoring assets and run summaries read. Results are plain
:class:`~planwise_monitoring.store.rows.Rows`: the command line does not import pandas.

A user's SQL is checked with DuckDB's own parser before it runs: one SELECT (or EXPLAIN of one),
nothing else. It then runs on a read-only connection with file access switched off, so even a
SELECT cannot read or write other files (``read_csv('/etc/passwd')``, ``COPY … TO``, ``ATTACH``).
The parser check gives the clear message; the connection settings are what actually guarantee it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb

from ..store.duckdb import MonitoringStore
from ..store.figures import FIGURES
from ..store.rows import Rows

DEFAULT_LIMIT = 10_000


class QueryError(ValueError):
    """The SQL was refused or failed; the message says why (one line, DuckDB's own words)."""


_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.I)


def check_read_only(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, bool]:
    """The single statement in ``sql`` without its trailing ``;``, and whether it is an EXPLAIN.
    Raises :class:`QueryError` for anything but one SELECT or one EXPLAIN of a SELECT."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise QueryError(f"only a single SELECT query is allowed (got {len(statements)} statements: {kinds})")
    statement = statements[0]
    text = statement.query.strip().rstrip(";").strip()
    if statement.type == duckdb.StatementType.SELECT:
        return text, False
    if statement.type == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement, so what is explained must pass the same check.
        inner = _EXPLAIN.match(text)
        if inner is None:
            raise QueryError("only SELECT queries are allowed (got an EXPLAIN this tool cannot check)")
        inner_type = conn.extract_statements(text[inner.end():])[0].type
        if inner_type != duckdb.StatementType.SELECT:
            raise QueryError(f"only SELECT queries are allowed (got EXPLAIN of {inner_type.name})")
        return text, True
    raise QueryError(f"only SELECT queries are allowed (got {statement.type.name})")


def run_query(store: MonitoringStore, sql: str, limit: int | None = DEFAULT_LIMIT,
              params: Sequence[Any] | None = None) -> Rows:
    """Rows of one read-only query, at most ``limit`` of them (None or 0: all).

        rows = run_query(store, "SELECT * FROM range(25) t(i)", limit=10)
        assert len(rows) == 10 and rows.truncated

    ``rows.truncated`` says whether there were more. Parameters bind to ``?``."""
    with store.connect(read_only=True) as conn:
        # Off for the whole DuckDB instance of this file in this process, and it cannot be switched
        # back on while the instance lives: fine, as store connections are short and this one is
        # read-only (a writer in the same process could not share the instance anyway).
        conn.execute("SET enable_external_access = false")
        text, explain = check_read_only(conn, sql)
        if explain or not limit:
            wrapped, limit = text, None  # EXPLAIN output is never cut
        else:
            # The database stops at one row past the limit (which only says there were more).
            # Newlines, so that a trailing "-- comment" in the user's SQL cannot swallow the LIMIT.
            wrapped = f"SELECT * FROM (\n{text}\n) LIMIT {int(limit) + 1}"
        try:
            return Rows.of(conn.execute(wrapped, list(params) if params else None), limit)
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from None


def run_named(store: MonitoringStore, name: str, limit: int | None = DEFAULT_LIMIT, **arguments: Any) -> Rows:
    """One of the named figures (``NAMED_QUERIES``), read-only, at most ``limit`` rows.

        rows = run_named(store, "sla-compliance")
        assert "sla_compliance_pct" in rows.columns
    """
    figure = FIGURES[name]
    with store.connect(read_only=True) as conn:
        try:
            return figure.run(conn, limit=limit or None, **arguments)
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# name -> (names of its arguments in order, one line of help)
NAMED_QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    name: (figure.arguments, figure.help) for name, figure in FIGURES.items()
}
