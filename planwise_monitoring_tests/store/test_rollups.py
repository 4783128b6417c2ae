"""PostgreSQL's figures read summary tables (mon_daily_steps, mon_duration_histogram) and index
entries; they must equal the figures' one-query definitions (the DuckDB texts, which PostgreSQL
runs too) over the same steps: for every window, run and component filter, with late
arrivals, ties, zero durations, failed and unjudged steps, steps without a year, after a prune,
and on a database upgraded from schema 4 with steps already stored."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from planwise_monitoring.recording.records import FAILED, SUCCESS
from planwise_monitoring.store import figures
from planwise_monitoring.store.schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, render

from ..factories import make_record
from .backends import Backend

DAY = datetime(2026, 3, 1)
FIGURES = {
    "sla-compliance": figures.SLA_COMPLIANCE,
    "overall": figures.OVERALL_COMPLIANCE,
    "trend": figures.TREND,
    "memory": figures.MEMORY_GROWTH,
}


def _records(seed: int, count: int) -> list[Any]:
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        component, component_type = rng.choice([("scd_workforce_state", "SCD"), ("fct_yearly_events", "FACT"),
                                                 ("fct_yearly_events", "MODEL"), ("int_hiring", "MODEL")])
        status = FAILED if rng.random() < 0.15 else SUCCESS
        # ties, zeros, a wide spread; int_hiring's in a few 1 % buckets (about 100 s), so its
        # percentiles are read from within a bucket written by several batches
        seconds = rng.choice([0.0, round(rng.uniform(0, 20) * 2) / 2, rng.uniform(0.001, 500)])
        if component == "int_hiring":
            seconds = 100 + 3 * rng.random()
        records.append(make_record(
            component_name=component, component_type=component_type, status=status,
            simulation_year=rng.choice([None, 2025, 2026, 2027]), scenario=rng.choice(["baseline", "high_growth"]),
            simulation_id=f"sim-{rng.randrange(4)}", simulation_run_id=f"run-{rng.randrange(6)}",
            execution_time_seconds=seconds,
            execution_start_time=DAY + timedelta(days=rng.randrange(5), seconds=rng.randrange(86_000)),
            sla_status=None if status == FAILED and rng.random() < 0.7 else rng.choice(
                ["WITHIN_SLA", "SLA_WARNING", "SLA_BREACH", None]),
            memory_usage_mb=rng.choice([None, round(rng.uniform(100, 900), 1)]),
        ))
    return records


def _rows(conn: Any, sql: str, params: dict[str, Any] | None) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def _same(got: list[tuple], expected: list[tuple], what: str) -> None:
    assert len(got) == len(expected), what
    for g, e in zip(got, expected, strict=True):
        assert [type(v) for v in g] == [type(v) for v in e], what
        assert list(g) == [pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for v in e], what


def _check_against_definitions(conn: Any) -> int:
    """Every figure's PostgreSQL text equals its definition over the steps; returns rows compared."""
    windows = [None, DAY + timedelta(days=1, hours=13, minutes=7), DAY + timedelta(days=2), DAY + timedelta(days=9)]
    compared = 0
    for name, variant in FIGURES.items():
        cases = [figures.filters(since) for since in windows]
        if name != "memory":
            cases += [figures.filters(run_id="run-3"), figures.filters(component="fct_yearly_events"),
                      figures.filters(since=windows[1], component="int_hiring")]
        if name == "trend":
            cases = [{**params, **figures.row_limit(limit)} for params in cases for limit in (None, 3)]
        for params in cases:
            # PostgreSQL rounds NUMERIC only, DuckDB's NUMERIC is DECIMAL(18,3): the one difference
            definition = render(variant.duckdb, "postgres").replace("AS DOUBLE PRECISION), 2)", "AS NUMERIC), 2)")
            expected = _rows(conn, definition, params)
            _same(_rows(conn, variant.postgres, params), expected, f"{name} {params}")
            compared += len(expected)
    slowest = figures.SLOWEST_COMPONENTS
    expected = _rows(conn, slowest.duckdb, None)
    _same(_rows(conn, slowest.postgres, None), expected, "slowest-components")
    return compared + len(expected)


def test_figures_from_the_summary_tables_equal_their_definitions(postgres: Backend):
    store = postgres.store()
    records = _records(seed=7, count=600)
    late = records[:100]  # stored last: earlier days and years arriving after later ones
    for i in range(100, len(records), 50):
        store.write(records[i:i + 50])
    store.write(late)
    assert store.write(late[:10]) == 0  # a replay adds nothing to the summaries either
    with postgres.raw() as conn:
        assert _check_against_definitions(conn) > 300
        assert conn.execute("SELECT sum(steps) FROM mon_duration_histogram").fetchone()[0] == sum(
            r.status == SUCCESS for r in records)

    # a prune cuts into a day: its later steps stay, counted again
    removed = store.prune(timedelta(days=1), now=DAY + timedelta(days=3, hours=9, minutes=30))
    assert 0 < removed["mon_multi_year_performance"] < len(records)
    with postgres.raw() as conn:
        assert _check_against_definitions(conn) > 100
        left = conn.execute("SELECT count(*) FROM mon_multi_year_performance WHERE status = 'SUCCESS'").fetchone()[0]
        assert conn.execute("SELECT sum(steps) FROM mon_duration_histogram").fetchone()[0] == left
        assert conn.execute("SELECT count(*) FROM mon_duration_histogram WHERE steps <= 0").fetchone()[0] == 0


# Schema 5's histogram, one per component and type (migration 6 gives it a scenario).
_SCHEMA_5_HISTOGRAM = """
CREATE TABLE mon_duration_histogram (
    component_name VARCHAR(100) NOT NULL, component_type VARCHAR(50) NOT NULL, bucket INTEGER NOT NULL,
    steps BIGINT NOT NULL, min_seconds DOUBLE PRECISION NOT NULL, PRIMARY KEY (component_name, component_type, bucket))
"""


@pytest.mark.parametrize("version", [4, 5])
def test_a_database_of_an_earlier_schema_with_steps_gets_its_summary_tables(postgres: Backend, version: int):
    """Steps stored before the summary tables existed (schema 4), or with schema 5's histogram, are
    counted into the current tables by the migrations."""
    columns = ["performance_id", "simulation_run_id", "simulation_id", "simulation_year", "scenario",
               "component_name", "component_type", "status", "execution_start_time", "execution_end_time",
               "execution_time_seconds", "memory_usage_mb", "sla_status"]
    records = _records(seed=11, count=300)
    assert len({r.scenario for r in records}) > 1
    with postgres.raw() as conn:
        conn.execute(VERSION_TABLE)
        for v in range(1, version + 1):
            if v == 5:  # steps stored at schema 4, then migrated to 5
                conn.insert_rows("mon_multi_year_performance", columns, [[getattr(r, c) for c in columns] for r in records])
            for statement in MIGRATIONS[v]:
                if (sql := render(statement, "postgres")) is not None:
                    conn.execute(sql)
            conn.execute("INSERT INTO mon_schema_version (version, applied_at) VALUES (?, now())", [v])
        if version == 4:
            conn.insert_rows("mon_multi_year_performance", columns, [[getattr(r, c) for c in columns] for r in records])
        else:  # as schema 5 kept it, counts and all
            conn.execute(_SCHEMA_5_HISTOGRAM)
            conn.execute("INSERT INTO mon_duration_histogram SELECT component_name, component_type, "
                         "CAST(floor(100 * ln(greatest(execution_time_seconds, 1e-9))) AS INTEGER) AS b, count(*), "
                         "min(execution_time_seconds) FROM mon_multi_year_performance WHERE status = 'SUCCESS' "
                         "GROUP BY 1, 2, 3")
    store = postgres.store()
    assert store.write(_records(seed=12, count=20)) == 20  # migrates first, then adds its own
    assert store.schema_version() == SCHEMA_VERSION
    with postgres.raw() as conn:
        assert conn.execute("SELECT sum(runs) FROM mon_daily_steps").fetchone()[0] == 320
        assert conn.execute("SELECT sum(steps) FROM mon_duration_histogram").fetchone()[0] == conn.execute(
            "SELECT count(*) FROM mon_multi_year_performance WHERE status = 'SUCCESS'").fetchone()[0]
        assert conn.execute("SELECT count(DISTINCT scenario) FROM mon_duration_histogram").fetchone()[0] > 1
        assert _check_against_definitions(conn) > 100
