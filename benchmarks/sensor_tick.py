"""How long a performance-sensor tick takes, and how long it holds the monitoring database's write
lock, with a large history (default 1 M rows) in ``mon_multi_year_performance``.

Builds the history with one SQL statement (20 components x 5 years x 10 k runs), materializes
three monitored partitions, then times one real sensor tick (``evaluate_tick``): the whole tick,
the spool replay, and the single write session in which it judges the new records. Dagster's
sensor timeout is 60 s.

    .venv/bin/python benchmarks/sensor_tick.py [--rows 1000000]
"""

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    build_sensor_context,
    materialize,
)

from planwise_monitoring import MonitoringResource, build_performance_sensor, monitor_performance
from planwise_monitoring.store.duckdb import MonitoringStore

years = StaticPartitionsDefinition(["2025", "2026", "2027"])


@asset(partitions_def=years)
@monitor_performance("SCD")
def scd_workforce_state(context: AssetExecutionContext) -> None:
    time.sleep(0.05)


def build_history(path: Path, rows: int) -> None:
    store = MonitoringStore(path)
    store.write([])
    with store.connect() as conn:
        conn.execute(f"""
            INSERT INTO mon_multi_year_performance (performance_id, simulation_run_id, simulation_id, simulation_year,
                scenario, component_name, component_type, status, execution_start_time, execution_end_time,
                execution_time_seconds, sla_status)
            SELECT uuid(), 'run-' || (i // 100), 'run-' || (i // 100), 2025 + (i % 5), 'baseline',
                   CASE WHEN i % 20 = 0 THEN 'scd_workforce_state' ELSE 'component_' || (i % 20) END, 'SCD',
                   'SUCCESS', TIMESTAMP '2026-01-01' + to_seconds(i), TIMESTAMP '2026-01-01' + to_seconds(i + 1),
                   0.05 * (1 + 0.05 * sin(i)), 'WITHIN_SLA'
            FROM range({rows}) t(i)
        """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planwise-sensor-") as tmp:
        path = Path(tmp) / "monitoring.duckdb"
        t0 = time.perf_counter()
        build_history(path, args.rows)
        print(f"history: {args.rows:,} rows in {time.perf_counter() - t0:.1f}s, "
              f"{path.stat().st_size / args.rows:.0f} bytes/row on disk")
        monitoring = MonitoringResource(database_path=str(path))
        sensor = build_performance_sensor([scd_workforce_state])
        store_class = MonitoringStore
        timings: dict[str, list[float]] = {"replay": [], "session": []}

        # time the two database phases of a tick from the outside, around the store's own methods
        replay, session = store_class.replay_spool, store_class.session

        def timed_replay(self, *a, **k):
            t = time.perf_counter()
            try:
                return replay(self, *a, **k)
            finally:
                if threading.current_thread() is threading.main_thread():  # the tick's, not the writer's
                    timings["replay"].append(time.perf_counter() - t)

        @contextlib.contextmanager
        def timed_session(self, read_only=False):
            t = time.perf_counter()
            with session(self, read_only) as s:
                yield s
            if not read_only and threading.current_thread() is threading.main_thread():
                timings["session"].append(time.perf_counter() - t)

        store_class.replay_spool, store_class.session = timed_replay, timed_session
        ticks = []
        with DagsterInstance.ephemeral() as instance:
            cursor = None
            for _ in range(args.ticks):
                for year in ["2025", "2026", "2027"]:
                    materialize([scd_workforce_state], partition_key=year, instance=instance,
                                resources={"monitoring": monitoring},
                                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
                monitoring.flush()  # the steps' background writer is done: the tick's replay is its own
                timings["replay"].clear(), timings["session"].clear()
                t = time.perf_counter()
                data = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor,
                                                                 resources={"monitoring": monitoring}))
                ticks.append((time.perf_counter() - t, sum(timings["replay"]), max(timings["session"])))
                cursor = data.cursor
                assert len(data.asset_events) == 6, data.skip_message
        print(f"{'tick s':>8}{'replay s':>10}{'judging session s':>19}   (3 new materializations each; "
              "the write lock is held during the replay and the judging session)")
        for tick, rep, ses in ticks:
            print(f"{tick:>8.3f}{rep:>10.3f}{ses:>19.3f}")
        print(f"median tick {statistics.median(t for t, _, _ in ticks):.3f}s of Dagster's 60 s sensor timeout")


if __name__ == "__main__":
    main()
