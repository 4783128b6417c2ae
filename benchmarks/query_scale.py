"""How fast the command line's aggregations and the sensor's history lookup are, and how many bytes
a row of ``mon_multi_year_performance`` takes on disk, at 1 M and 10 M stored rows.

Each history is built with one SQL statement: 20 components x 5 simulation years, 20 steps per Dagster
run (one year partition), 5 runs per multi-year simulation, start times spread over 90 days, 1 % failed
steps, durations and resources with noise (as measured values are), SLA statuses from the defaults.
Then, on a read-only connection as the CLI uses (first run, then the median of the next three):

  - trend, all components: the trend figure (per component x year x scenario x UTC day ended: runs,
    failed, breaches, avg/min/max/p95 seconds), every component
  - trend COMPONENT: the same figure for one component, as the CLI's ``trend COMPONENT``
  - sla-compliance: the SLA compliance figure (per component), as the CLI's ``sla-compliance``
  - sensor history: ``StoreSession.baseline`` for one component, year and scenario

Targets: each at most 1 s at 10 M rows, at most 100 bytes per stored row (file size after CHECKPOINT).

    .venv/bin/python benchmarks/query_scale.py [--rows 1000000 10000000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from planwise_monitoring.reporting.queries import run_named
from planwise_monitoring.store import MonitoringStore, StoreSession
from planwise_monitoring.store.figures import sla_compliance, trend

SECONDS_TARGET = 1.0
BYTES_TARGET = 100

def build_history(path: Path, rows: int) -> float:
    store = MonitoringStore(path)
    store.write([])  # the schema, as the plugin creates it
    started = time.perf_counter()
    with store.connect() as conn:
        # i -> component i % 20; run i // 20 is one year partition of simulation i // 100.
        conn.execute(f"""
            INSERT INTO mon_multi_year_performance (performance_id, simulation_run_id, simulation_id, simulation_year,
                scenario, component_name, component_type, asset_key, partition_key, status, execution_start_time,
                execution_end_time, execution_time_seconds, cpu_seconds, memory_usage_mb, memory_start_mb,
                output_record_count, records_per_second, sla_threshold_seconds, warning_threshold_seconds,
                sla_status, performance_category, error_class, error_message, monitoring_overhead_seconds)
            WITH base AS (
                SELECT i, i % 20 AS c, 2025 + (i // 20) % 5 AS year,
                       CASE WHEN i % 20 = 0 THEN 'scd_workforce_state' ELSE 'component_' || (i % 20) END AS name,
                       TIMESTAMP '2026-01-01' + to_microseconds(CAST(i * (90 * 86400e6 / {rows}) AS BIGINT)) AS start,
                       (5 + 10 * (i % 20)) * (1 + 0.05 * ((i // 20) % 5)) * (0.9 + 0.2 * random()) AS seconds,
                       random() < 0.01 AS failed
                FROM range({rows}) t(i)
            )
            SELECT uuid(), md5(CAST(i // 20 AS VARCHAR)), md5(CAST(i // 100 AS VARCHAR)), year,
                   CASE WHEN (i // 100) % 4 = 0 THEN 'high_growth' ELSE 'baseline' END, name,
                   CASE WHEN c < 5 THEN 'SCD' WHEN c < 10 THEN 'EVENT_GENERATION' ELSE 'TRANSFORMATION' END,
                   name, CAST(year AS VARCHAR), CASE WHEN failed THEN 'FAILED' ELSE 'SUCCESS' END,
                   start, start + to_microseconds(CAST(seconds * 1e6 AS BIGINT)), seconds,
                   seconds * (0.5 + 0.4 * random()), 200 + 800 * random(), 150 + 50 * random(),
                   10000 + (i // 20) % 5 * 500, (10000 + (i // 20) % 5 * 500) / seconds, 300.0, 240.0,
                   CASE WHEN failed AND seconds <= 300 THEN NULL WHEN seconds > 300 THEN 'SLA_BREACH'
                        WHEN seconds > 240 THEN 'SLA_WARNING' ELSE 'WITHIN_SLA' END,
                   CASE WHEN failed AND seconds <= 300 THEN NULL WHEN seconds > 300 THEN 'CRITICAL'
                        WHEN seconds > 240 THEN 'POOR' WHEN seconds > 150 THEN 'GOOD' ELSE 'EXCELLENT' END,
                   CASE WHEN failed THEN 'DbtRuntimeError' END,
                   CASE WHEN failed THEN 'Runtime Error in model ' || name END,
                   0.002 + 0.001 * random()
            FROM base
        """)
        conn.execute("CHECKPOINT")
    return time.perf_counter() - started


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(first run, median of the next three) in seconds."""
    times = []
    for _ in range(4):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], statistics.median(times[1:])


def measure(path: Path, rows: int) -> list[tuple[str, float, float]]:
    store = MonitoringStore(path, lock_timeout_seconds=5.0)
    results = []
    with store.connect(read_only=True) as conn:
        session = StoreSession(conn)
        results.append(("trend, all components", *timed(lambda: trend(conn))))
        results.append(("trend COMPONENT (CLI)", *timed(lambda: trend(conn, component="component_7"))))
        results.append(("sla-compliance (CLI)", *timed(lambda: sla_compliance(conn))))
        results.append(("sensor history lookup", *timed(
            lambda: session.baseline("component_7", "baseline", 2027, datetime(2026, 3, 15)))))
        assert len(session.baseline("component_7", "baseline", 2027, datetime(2026, 3, 15))) == 20
    # What the scheduled monitoring assets run: rebuild their tables over a 90-day window.
    since = datetime(2025, 12, 1)
    with store.session() as session:
        results.append(("mon_performance_trends build (asset)", *timed(
            lambda: session.build_report("mon_performance_trends", since))))
        results.append(("mon_sla_compliance build (asset)", *timed(
            lambda: session.build_report("mon_sla_compliance", since))))
    # The whole CLI path once: connection with lock retry, the figure's query, its rows.
    t = time.perf_counter()
    run_named(store, "sla-compliance")
    results.append(("sla-compliance via run_named (incl. connect)", time.perf_counter() - t, float("nan")))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    verdicts = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="planwise-query-") as tmp:
            path = Path(tmp) / "monitoring.duckdb"
            build = build_history(path, rows)
            size = path.stat().st_size
            print(f"\n{rows:,} rows: built in {build:.1f}s; file {size / 1e6:,.0f} MB = {size / rows:.1f} bytes/row "
                  "(after CHECKPOINT)")
            print(f"  {'query':<46}{'first s':>9}{'median s':>10}")
            for name, first, median in measure(path, rows):
                print(f"  {name:<46}{first:>9.3f}{median:>10.3f}")
                if rows >= 10_000_000 and median == median:
                    verdicts.append((f"{name} at {rows:,} rows: {median:.3f}s (first {first:.3f}s)",
                                     max(first, median) <= SECONDS_TARGET, f"<= {SECONDS_TARGET:g} s"))
            if rows >= 10_000_000:
                verdicts.append((f"bytes per row at {rows:,} rows: {size / rows:.1f}", size / rows <= BYTES_TARGET,
                                 f"<= {BYTES_TARGET}"))
    print()
    for what, ok, target in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {what}  (target {target})")


if __name__ == "__main__":
    main()
