"""How long one SLO sensor tick's evaluation takes over a large history, on both store backends.

The history is ``store_backends.py``'s (50 components x 5 simulation years, start times spread over
90 days, 2 % failed steps, 3 % slow ones, SLA statuses from each component's thresholds). The tick
judges three SLOs at the end of the 90 days, as ``build_slo_sensor`` does (one read-only session,
one scan of the steps for every SLO, then the figures in Python):

  yearly-runs-on-time  every component, within_sla, 99 %, 28 d
  events-succeed       component_1*, succeeded, 99.5 %, 7 d
  scd-under-20s        scd_workforce_state, under_duration 20 s, 95 %, 28 d

each with the workbook's four burn-rate rules (8 alert windows). Reported: the first tick and the
median of the next three; the target is at most 1 s per tick at 10 M rows.

    .venv/bin/python benchmarks/slo_evaluation.py [--rows 1000000,10000000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from store_backends import DAYS, load_duckdb, load_postgres, start_postgres

from planwise_monitoring.evaluation.slo import evaluate_slos, parse_slo_config
from planwise_monitoring.store import MonitoringStore

TARGET_SECONDS = 1.0
SLOS = parse_slo_config([
    {"name": "yearly-runs-on-time", "indicator": "within_sla", "objective": 99.0, "window": "28d"},
    {"name": "events-succeed", "indicator": "succeeded", "objective": 99.5, "window": "7d",
     "components": ["component_1*"]},
    {"name": "scd-under-20s", "indicator": "under_duration", "threshold_seconds": 20, "objective": 95,
     "window": "28d", "components": ["scd_workforce_state"]},
], "benchmark")
NOW = datetime(2026, 1, 1) + timedelta(days=DAYS)


def tick(store: MonitoringStore) -> tuple[float, list]:
    started = time.perf_counter()
    with store.session(read_only=True) as session:
        statuses = evaluate_slos(session, SLOS, NOW)
    return time.perf_counter() - started, statuses


def measure(store: MonitoringStore) -> tuple[float, float, list]:
    first, statuses = tick(store)
    return first, statistics.median(tick(store)[0] for _ in range(3)), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="history sizes, comma-separated")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    work = Path(tempfile.mkdtemp(prefix="planwise-slo-"))
    server = None if args.skip_postgres else start_postgres({})
    results = []
    try:
        for rows in sizes:
            if not args.skip_duckdb:
                path = work / f"history_{rows}.duckdb"
                load_duckdb(path, rows)
                results.append(("DuckDB", rows, *measure(MonitoringStore(path))))
                path.unlink()
            if server is not None:
                url, _ = load_postgres(server, rows)
                results.append(("PostgreSQL 15", rows, *measure(MonitoringStore(url))))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| backend | stored rows | first tick | median of 3 | target |")
    print("|---|---|---|---|---|")
    for backend, rows, first, median, _ in results:
        verdict = "✔" if median <= TARGET_SECONDS else "✘"
        print(f"| {backend} | {rows:,} | {first:.3f} s | {median:.3f} s | ≤ {TARGET_SECONDS:g} s {verdict} |")
    print("\nWhat the last tick judged:")
    for backend, rows, _, _, statuses in results:
        for status in statuses:
            print(f"- {backend} {rows:,}: {status.summary()} [{status.level.value}]")


if __name__ == "__main__":
    main()
