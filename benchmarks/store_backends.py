"""The two store backends side by side in one run: DuckDB (one file) and PostgreSQL 15 (a server this
script starts), on the same synthetic history.

1. Ingestion with 8 concurrent writer processes (records/s = all processes' records / wall time):
   - PostgreSQL: each process calls ``store.write(batch)`` itself, as a monitored step does there
     (``direct_writes``), for batches of 1, 10 and 100 records (one asset, a dbt build of 10 or 100
     models). Into an empty store, and into the store holding the first history below;
   - DuckDB, the plugin's path: each process ``RecordWriter.submit_all(batch)`` (records spooled, the
     process's background writer drains the shared spool into the file, waiting for its lock), then
     ``flush()`` as at process exit; timed until every record is stored. Also, for comparison,
     ``store.write(batch)`` from every process, each waiting for the file's lock.
   A process builds its records before the start (``factories.make_record``: 50 components, five
   simulation years per simulation, 2 % failed), starts at its own place in that walk, and stamps
   each batch with the time it writes it (as a step's record ends when the step does).
2. Every named figure through ``run_named`` (as the command line runs it: all time, limit 10,000;
   ``trend`` also for one component) and every monitoring asset's table build through
   ``StoreSession.build_report`` (30-day window, as the assets' default), median of 3 runs, at 1 M and
   10 M stored rows. The history is one SQL statement per backend, server-side (DuckDB: INSERT ...
   SELECT FROM range(); PostgreSQL: INSERT ... SELECT FROM generate_series() on two connections, with
   the table's primary key and indexes dropped first and built again after, then VACUUM ANALYZE):
   50 components x 5 simulation years, 50 steps per Dagster run, 5 runs per simulation, 90 days, 2 %
   failed steps, 3 % slow steps (SLA breaches), ~7 % SLA warnings, plus rows/1000 regressions,
   rows/1000 alerts and rows/5000 failed Dagster runs. Its pseudo-random figures are a function of the
   row number, so both backends hold the same history.
3. Bytes per stored row: DuckDB file size after CHECKPOINT / rows; PostgreSQL
   ``pg_total_relation_size(mon_multi_year_performance)`` (heap, TOAST and every index) / rows.

Targets: >= 10,000 records/s into PostgreSQL with 8 writers; each figure and build <= 1 s on DuckDB
and <= 2 s on PostgreSQL at 10 M rows.

The PostgreSQL server is ``planwise_monitoring_tests.postgres_server.PostgresServer`` (fsync off) with
the settings in PG_SETTINGS (``--pg-stock``: its own). ``--patched-tree DIR`` (repeatable) also runs
the PostgreSQL writers with ``planwise_monitoring`` imported from DIR (a copy with a proposed change),
for before/after rows: into the empty store and the first history, the last DIR also into the larger
ones (the package's own code only into the first: at 1 M rows its writes take seconds each). ``--explain`` prints EXPLAIN ANALYZE of each PostgreSQL figure over its target at
the largest history.

    .venv/bin/python benchmarks/store_backends.py [--rows 1000000,10000000] [--quick]
        [--skip-postgres] [--skip-duckdb] [--skip-reads] [--seconds 8] [--patched-tree DIR] [--explain]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Appended, not prepended: a writer started with PYTHONPATH=<patched tree> imports the package from there.
sys.path.append(str(REPO))

WRITERS = 8
BATCHES = (1, 10, 100)
COMPONENTS = 50
YEARS = 5
DAYS = 90
HISTORY_START = datetime(2026, 1, 1)
SINCE = HISTORY_START + timedelta(days=DAYS - 30)  # the assets' 30-day window at the history's end
COMPONENT = "component_7"
REPORTS = ("mon_performance_trends", "mon_sla_compliance", "mon_regression_report", "mon_memory_growth")
WRITE_TARGET = 10_000  # records/s into PostgreSQL, 8 writers
SECONDS_TARGET = {"duckdb": 1.0, "postgres": 2.0}
RUNS = 3
P = 1_000_003  # the modulus of the row-number hash

# What a small reporting server would be given (the test server keeps PostgreSQL's defaults:
# shared_buffers 128MB, work_mem 4MB); --pg-stock leaves them.
PG_SETTINGS = {
    "shared_buffers": "4GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "16GB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "30min",
    "random_page_cost": "1.1",
}


# -- the history, one statement per backend -------------------------------------------------------------
PERFORMANCE_COLUMNS = """performance_id, simulation_run_id, simulation_id, simulation_year, scenario,
    component_name, component_type, asset_key, partition_key, status, execution_start_time, execution_end_time,
    execution_time_seconds, cpu_seconds, memory_usage_mb, memory_start_mb, input_record_count,
    output_record_count, records_per_second, sla_threshold_seconds, warning_threshold_seconds, sla_status,
    performance_category, year_over_year_change_pct, cumulative_execution_time_seconds, error_class,
    error_message, monitoring_overhead_seconds"""


def uniform(a: int, b: int) -> str:
    """A pseudo-random number in [0, 1) of the row number ``i``, the same in both dialects."""
    return f"CAST((((i % {P}) * (i % {P}) % {P}) * {a} + i * {b} + {a + b}) % {P} AS DOUBLE) / {P}"


class Dialect:
    def __init__(self, name: str):
        self.name = name
        self.duck = name == "duckdb"
        self.div = "//" if self.duck else "/"
        self.uuid = "uuid()" if self.duck else "gen_random_uuid()"

    def series(self, first: int, last: int) -> str:
        if self.duck:
            return f"range({first}, {last}) t(i)"
        return f"generate_series(CAST({first} AS BIGINT), {last - 1}) t(i)"

    def plus_seconds(self, ts: str, seconds: str) -> str:
        if self.duck:
            return f"{ts} + to_microseconds(CAST(({seconds}) * 1e6 AS BIGINT))"
        return f"{ts} + ({seconds}) * INTERVAL '1 second'"

    def render(self, sql: str) -> str:
        from planwise_monitoring.store.schema import render

        return render(sql, self.name) or ""


def performance_sql(d: Dialect, rows: int, first: int, last: int) -> str:
    """Rows ``first`` .. ``last - 1`` of a ``rows``-row history: row i is component i % 50 of Dagster run
    i // 50 (one simulation year), of simulation i // 250; start times spread evenly over 90 days."""
    n, div = COMPONENTS, d.div
    return d.render(f"""
    INSERT INTO mon_multi_year_performance ({PERFORMANCE_COLUMNS})
    WITH base AS (
        SELECT i, i % {n} AS c, 2025 + (i {div} {n}) % {YEARS} AS year, i {div} {n * YEARS} AS sim,
               CASE WHEN i % {n} = 0 THEN 'scd_workforce_state' ELSE 'component_' || CAST(i % {n} AS VARCHAR) END
                   AS name,
               {uniform(7919, 104729)} < 0.02 AS failed,
               {uniform(15485863, 32452843)} < 0.03 AS slow,
               {uniform(49979687, 86028121)} AS noise,
               {uniform(67867967, 179424673)} AS spread,
               {d.plus_seconds("TIMESTAMP '2026-01-01'", f"i * {DAYS * 86400 / rows!r}")} AS start
        FROM {d.series(first, last)}
    ), timed AS (
        SELECT *, CAST(5 + 4 * c AS DOUBLE) AS typical,
               CAST(5 + 4 * c AS DOUBLE) * (1 + 0.05 * (year - 2025)) * (0.9 + 0.2 * noise)
                   * CASE WHEN slow THEN 1.8 ELSE 1 END * CASE WHEN failed THEN 0.5 ELSE 1 END AS seconds
        FROM base
    )
    SELECT {d.uuid}, md5(CAST(i {div} {n} AS VARCHAR)), md5(CAST(sim AS VARCHAR)), year,
           CASE WHEN sim % 4 = 0 THEN 'high_growth' ELSE 'baseline' END, name,
           CASE WHEN c < 10 THEN 'SCD' WHEN c < 25 THEN 'EVENT_GENERATION' ELSE 'TRANSFORMATION' END,
           name, CAST(year AS VARCHAR), CASE WHEN failed THEN 'FAILED' ELSE 'SUCCESS' END,
           start, {d.plus_seconds("start", "seconds")}, seconds,
           seconds * (0.5 + 0.4 * spread), 200 + 800 * spread, 150 + 50 * noise,
           CASE WHEN c >= 10 THEN 10000 + (i {div} {n}) % {YEARS} * 500 END,
           10000 + (i {div} {n}) % {YEARS} * 500, (10000 + (i {div} {n}) % {YEARS} * 500) / seconds,
           typical * 1.5, typical * 1.25,
           CASE WHEN failed AND seconds <= typical * 1.5 THEN NULL WHEN seconds > typical * 1.5 THEN 'SLA_BREACH'
                WHEN seconds > typical * 1.25 THEN 'SLA_WARNING' ELSE 'WITHIN_SLA' END,
           CASE WHEN failed AND seconds <= typical * 1.5 THEN NULL WHEN seconds > typical * 1.5 THEN 'CRITICAL'
                WHEN seconds > typical * 1.25 THEN 'POOR' WHEN seconds > typical THEN 'GOOD' ELSE 'EXCELLENT' END,
           CASE WHEN year > 2025 AND NOT failed THEN 5 + 20 * (noise - 0.5) END,
           seconds * (year - 2024),
           CASE WHEN failed THEN 'DbtRuntimeError' END,
           CASE WHEN failed THEN 'Runtime Error in model ' || name || ': division by zero' END,
           0.002 + 0.001 * spread
    FROM timed
    """)


def side_tables_sql(d: Dialect, rows: int) -> list[str]:
    """Regressions and alerts (rows / 1000 each) and failed Dagster runs (rows / 5000), over the same 90 days."""
    n, div = COMPONENTS, d.div
    name = f"CASE WHEN i % {n} = 0 THEN 'scd_workforce_state' ELSE 'component_' || CAST(i % {n} AS VARCHAR) END"
    regressions, alerts, failures = max(rows // 1000, 1), max(rows // 1000, 1), max(rows // 5000, 1)
    degradation = f"(20 + 130 * {uniform(7919, 104729)})"
    return [d.render(sql) for sql in (
        f"""
        INSERT INTO mon_multi_year_regression (component_name, component_type, simulation_year, scenario,
            performance_id, baseline_run_id, current_run_id, baseline_execution_time, current_execution_time,
            performance_degradation_pct, regression_severity, regression_threshold_pct, robust_z, baseline_samples,
            detection_timestamp, investigation_status)
        SELECT {name}, CASE WHEN i % {n} < 10 THEN 'SCD' ELSE 'TRANSFORMATION' END, 2025 + i % {YEARS},
               CASE WHEN i % 4 = 0 THEN 'high_growth' ELSE 'baseline' END, {d.uuid},
               md5(CAST(i AS VARCHAR)), md5(CAST(i + 1 AS VARCHAR)), 5 + 4 * (i % {n}),
               (5 + 4 * (i % {n})) * (1 + {degradation} / 100), {degradation},
               CASE WHEN {degradation} >= 100 THEN 'CRITICAL' WHEN {degradation} >= 50 THEN 'MAJOR' ELSE 'MINOR' END,
               20.0, 3 + {degradation} / 10, 20,
               {d.plus_seconds("TIMESTAMP '2026-01-01'", f"i * {DAYS * 86400 / regressions!r}")},
               CASE WHEN i % 3 = 0 THEN 'INVESTIGATING' ELSE 'PENDING' END
        FROM {d.series(0, regressions)}
        """,
        f"""
        INSERT INTO mon_alerts (alert_id, channel, fingerprint, alert_type, severity, component_name, simulation_year,
            scenario, simulation_run_id, performance_id, title, message, status, attempts, last_error, created_at,
            sent_at, acknowledged_at)
        SELECT {d.uuid}, CASE WHEN i % 2 = 0 THEN 'slack' ELSE 'email' END,
               md5({name} || CAST(i % {YEARS} AS VARCHAR)), CASE WHEN i % 3 = 0 THEN 'REGRESSION' ELSE 'SLA_BREACH' END,
               CASE WHEN i % 5 = 0 THEN 'critical' ELSE 'warning' END, {name}, 2025 + i % {YEARS}, 'baseline',
               md5(CAST(i {div} 2 AS VARCHAR)), {d.uuid}, 'SLA breach: ' || {name},
               {name} || ' took longer than its SLA', CASE WHEN i % 10 = 0 THEN 'suppressed' ELSE 'sent' END, 1, NULL,
               {d.plus_seconds("TIMESTAMP '2026-01-01'", f"i * {DAYS * 86400 / alerts!r}")},
               {d.plus_seconds("TIMESTAMP '2026-01-01'", f"i * {DAYS * 86400 / alerts!r} + 1")}, NULL
        FROM {d.series(0, alerts)}
        """,
        f"""
        INSERT INTO mon_run_failures (dagster_run_id, job_name, failed_at, partition_key, failed_steps, error_class,
            error_message)
        SELECT md5('failed' || CAST(i AS VARCHAR)), 'simulation_job',
               {d.plus_seconds("TIMESTAMP '2026-01-01'", f"i * {DAYS * 86400 / failures!r}")},
               CAST(2025 + i % {YEARS} AS VARCHAR), {name}, 'DagsterExecutionStepExecutionError',
               'Execution of step ' || {name} || ' failed.'
        FROM {d.series(0, failures)}
        """,
    )]


# -- the records a writer process writes ------------------------------------------------------------------------
def component(c: int) -> tuple[str, str]:
    name = "scd_workforce_state" if c == 0 else f"component_{c}"
    return name, "SCD" if c < 10 else "EVENT_GENERATION" if c < 25 else "TRANSFORMATION"


def walk(worker: int, tag: str, start: datetime) -> Iterator[Any]:
    """The records of one writer's simulations, in the order their steps run, from its own place."""
    from planwise_monitoring_tests.factories import make_record

    scenario = "high_growth" if worker % 4 == 0 else "baseline"
    t, k = start, 0
    skip = worker * 6  # the 8 writers do not run the same component at the same moment
    while True:
        simulation = f"bench-{tag}-{worker}-{k}"
        for year in range(2025, 2025 + YEARS):
            run_id = uuid.uuid4().hex
            for c in range(COMPONENTS):
                if skip:
                    skip -= 1
                    continue
                name, kind = component(c)
                typical = 5.0 + 4 * c
                seconds = typical * (1 + 0.05 * (year - 2025)) * (0.9 + 0.2 * ((k * 7 + c * 13 + year) % 10) / 10)
                failed = (k * 50 + c + year) % 50 == 0
                yield make_record(
                    simulation_run_id=run_id, simulation_id=simulation, simulation_year=year, scenario=scenario,
                    component_name=name, component_type=kind, asset_key=name, partition_key=str(year),
                    status="FAILED" if failed else "SUCCESS", execution_start_time=t,
                    execution_time_seconds=seconds, records_per_second=10000 / seconds,
                    sla_threshold_seconds=typical * 1.5, warning_threshold_seconds=typical * 1.25,
                    sla_status=None if failed else "SLA_WARNING" if seconds > typical * 1.25 else "WITHIN_SLA",
                    performance_category=None if failed else "GOOD" if seconds > typical else "EXCELLENT",
                    error_class="DbtRuntimeError" if failed else None,
                    error_message="Runtime Error in model" if failed else None,
                    output_record_count=10000, monitoring_overhead_seconds=0.002)
                t += timedelta(seconds=2)
        k += 1


def stamp(records: list[Any], base: datetime, started: float) -> list[Any]:
    """Records end when they are written, as a step's do (its record is made as it ends): then the 8
    writers' rows interleave in time as concurrent steps' rows do, and the history each write
    derives is that of a live store, not of late replays."""
    now = base + timedelta(seconds=time.time() - started)
    for i, record in enumerate(records):
        end = now + timedelta(microseconds=i)
        # a frozen dataclass, set in place: validating a copy would be client time a step does not spend
        object.__setattr__(record, "execution_end_time", end)
        object.__setattr__(record, "execution_start_time", end - timedelta(seconds=record.execution_time_seconds))
    return records


def worker_main(spec: dict[str, Any]) -> None:
    """One writer process (``--worker SPEC``): says "ready", waits for "go" on stdin, writes, prints its figures."""
    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore(spec["target"], lock_timeout_seconds=spec["lock_timeout"])
    base = datetime.fromisoformat(spec["start"])
    records = walk(spec["worker"], spec["tag"], base)
    batch = spec["batch"]
    batches = [[next(records) for _ in range(batch)] for _ in range(spec["records"] // batch)]
    writer = None
    if spec["mode"] == "spool":
        from planwise_monitoring.store.writer import writer_for

        writer = writer_for(store)
    store.write([])  # the schema exists, and (PostgreSQL) this process has a pooled connection
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), time.process_time()
    written, latencies = 0, []
    if writer is None:
        deadline = started + spec["seconds"]
        for records_ in batches:
            if time.time() >= deadline:
                break
            stamp(records_, base, started)
            t = time.perf_counter()
            store.write(records_)
            latencies.append(time.perf_counter() - t)
            written += len(records_)
        exhausted = written == len(batches) * batch
    else:
        for records_ in batches:
            stamp(records_, base, started)
            t = time.perf_counter()
            writer.submit_all(records_)
            latencies.append(time.perf_counter() - t)  # the step's own wait
            written += len(records_)
        exhausted = False
        deadline = time.time() + 600
        while writer.pending_ids() and time.time() < deadline:
            writer.flush(timeout_seconds=max(deadline - time.time(), 1))
    print(json.dumps({"started": started, "ended": time.time(), "records": written, "latencies": latencies,
                      "cpu": time.process_time() - cpu, "exhausted": exhausted, "unstored": len(writer.pending_ids())
                      if writer else 0}), flush=True)


def run_writers(target: str, mode: str, batch: int, seconds: float, records: int, tag: str, start: datetime,
                tree: Path | None = None) -> dict[str, Any]:
    """8 writer processes at once; their figures together."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    procs = []
    for worker in range(WRITERS):
        spec = {"target": target, "mode": mode, "batch": batch, "seconds": seconds, "records": records,
                "worker": worker, "tag": tag, "start": start.isoformat(),
                "lock_timeout": 120.0}
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=REPO, env=env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"writer process did not start: {line!r} (exit {proc.wait()})")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode:
            raise RuntimeError(f"writer process failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    total = sum(r["records"] for r in results)
    return {"records": total, "wall": wall, "rate": total / wall, "writes": len(latencies),
            "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
            "p95": latencies[int(len(latencies) * 0.95)] if latencies else float("nan"),
            "cpu": sum(r["cpu"] for r in results) / wall, "exhausted": any(r["exhausted"] for r in results),
            "unstored": sum(r["unstored"] for r in results)}


# -- PostgreSQL ---------------------------------------------------------------------------------------------------
def start_postgres(settings: dict[str, str]) -> Any:
    from planwise_monitoring_tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    if settings:
        with server.connect() as conn:
            for key, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
        restart = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(server.bin_dir / "pg_ctl"), "restart", "-D", str(server.data_dir),
             "-m", "fast", "-w", "-t", "60", "-l", str(server.log_file)],
            cwd=server.tmp_dir, capture_output=True, text=True, check=False)
        if restart.returncode:
            server.stop()
            raise RuntimeError(f"could not restart PostgreSQL with {settings}: {restart.stdout}{restart.stderr}")
    return server


def pg_count(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM mon_multi_year_performance").fetchone()[0])


def load_postgres(server: Any, rows: int) -> tuple[str, dict[str, float]]:
    """A database with the plugin's schema and a ``rows``-row history; the seconds each stage took."""
    import psycopg

    from planwise_monitoring.store import MonitoringStore, rollups

    url = server.create_database(f"history_{rows}")
    MonitoringStore(url).write([])  # the schema, as the plugin creates it (key, indexes, summary tables)
    d = Dialect("postgres")
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        (pk,) = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                             "'mon_multi_year_performance'::regclass AND contype = 'p'").fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'mon_multi_year_performance' AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'mon_multi_year_performance'::regclass)"
        ).fetchall()
        conn.execute(f"ALTER TABLE mon_multi_year_performance DROP CONSTRAINT {pk[0]}")
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        started = time.perf_counter()
        chunk = max(min(rows // 8, 1_000_000), 1)

        def insert(first: int) -> None:
            with psycopg.connect(url, autocommit=True) as c:
                c.execute(performance_sql(d, rows, first, min(first + chunk, rows)))

        with ThreadPoolExecutor(max(os.cpu_count() or 1, 1)) as pool:
            list(pool.map(insert, range(0, rows, chunk)))
        for sql in side_tables_sql(d, rows):
            conn.execute(sql)
        took["insert"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(f"ALTER TABLE mon_multi_year_performance ADD CONSTRAINT {pk[0]} {pk[1]}")
        for _, definition in indexes:
            conn.execute(definition)
        took["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        for sql in rollups.REBUILD:  # the summary tables, as the migrations fill them from stored steps
            conn.execute(sql)
        took["summary tables"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.perf_counter() - started
    return url, took


def pg_bytes(url: str, rows: int) -> tuple[float, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        total, heap, index = conn.execute(
            "SELECT pg_total_relation_size(t), pg_relation_size(t), pg_indexes_size(t) "
            "FROM CAST('mon_multi_year_performance' AS regclass) AS t").fetchone()
    return total / rows, f"heap {heap / rows:.0f} + indexes {index / rows:.0f} + TOAST/FSM/VM {(total - heap - index) / rows:.0f}"


def pg_explain(url: str, sql: str, params: Any) -> list[str]:
    from planwise_monitoring.store import MonitoringStore

    with MonitoringStore(url).connect(read_only=True) as conn:
        plan = [line for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()]
    keep = ("Scan", "Sort", "Aggregate", "Gather", "Join", "Append", "Execution Time", "JIT", "Timing:")
    return [line for line in plan if any(k in line for k in keep)]


# -- DuckDB -------------------------------------------------------------------------------------------------------
def load_duckdb(path: Path, rows: int) -> dict[str, float]:
    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore(path)
    store.write([])
    d = Dialect("duckdb")
    started = time.perf_counter()
    with store.connect() as conn:
        conn.execute(performance_sql(d, rows, 0, rows))
        for sql in side_tables_sql(d, rows):
            conn.execute(sql)
        took = {"insert": time.perf_counter() - started}
        started = time.perf_counter()
        conn.execute("CHECKPOINT")
        took["checkpoint"] = time.perf_counter() - started
    return took


def duckdb_count(path: Path) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        return int(conn.execute("SELECT count(*) FROM mon_multi_year_performance").fetchone()[0])


# -- reads --------------------------------------------------------------------------------------------------------
def reads(store: Any) -> list[tuple[str, Callable[[], Any]]]:
    from planwise_monitoring.reporting.queries import run_named
    from planwise_monitoring.store.figures import FIGURES

    def build(table: str) -> Callable[[], Any]:
        def run() -> Any:
            with store.session() as session:  # as the asset: its own connection
                return session.build_report(table, SINCE)
        return run

    out: list[tuple[str, Callable[[], Any]]] = [(name, lambda name=name: run_named(store, name)) for name in FIGURES]
    out.insert(out.index(next(o for o in out if o[0] == "trend")) + 1,
               (f"trend {COMPONENT}", lambda: run_named(store, "trend", component=COMPONENT)))
    out += [(f"build {table}", build(table)) for table in REPORTS]
    return out


def read_sql(name: str) -> tuple[str, Any]:
    """The SQL PostgreSQL runs for a read and its parameters, for EXPLAIN (a build: the query its table is created from)."""
    from planwise_monitoring.store import figures

    statement, params = {
        "failed-runs": (figures.FAILED_RUNS, {**figures.filters(), **figures.row_limit(10_000)}),
        "slowest-components": (figures.SLOWEST_COMPONENTS, None),
        "sla-compliance": (figures.SLA_COMPLIANCE, figures.filters()),
        "regressions": (figures.REGRESSIONS, {"since": None, "run_id": None}),
        "trend": (figures.TREND, {**figures.filters(), **figures.row_limit(10_000)}),
        f"trend {COMPONENT}": (figures.TREND, {**figures.filters(component=COMPONENT), **figures.row_limit(10_000)}),
        "build mon_performance_trends": (figures.TREND, {**figures.filters(SINCE), **figures.row_limit(None)}),
        "build mon_sla_compliance": (figures.SLA_COMPLIANCE, figures.filters(SINCE)),
        "build mon_regression_report": (figures.REGRESSIONS, {"since": SINCE, "run_id": None}),
        "build mon_memory_growth": (figures.MEMORY_GROWTH, figures.filters(SINCE)),
    }[name]
    return getattr(statement, "postgres", statement), params


def time_reads(store: Any) -> dict[str, tuple[float, float, int | str]]:
    """name -> (median, first, rows) of RUNS runs each."""
    out: dict[str, tuple[float, float, int | str]] = {}
    for name, fn in reads(store):
        times, rows = [], 0
        try:
            for _ in range(RUNS):
                t = time.perf_counter()
                rows = len(fn())
                times.append(time.perf_counter() - t)
            out[name] = (statistics.median(times), times[0], rows)
        except Exception as exc:  # a statement timeout: reported, the other figures still measured
            out[name] = (float("nan"), float("nan"), f"{type(exc).__name__}: {str(exc)[:60]}")
    return out


# -- the run ------------------------------------------------------------------------------------------------------
def fmt_rate(r: dict[str, Any]) -> str:
    note = " (records ran out)" if r["exhausted"] else ""
    note += f" ({r['unstored']} NOT STORED)" if r["unstored"] else ""
    return (f"{r['records']:>9,} {r['wall']:>8.1f} {r['rate']:>11,.0f} {r['p50'] * 1e3:>9.1f} {r['p95'] * 1e3:>9.1f}"
            f" {r['cpu'] * 100:>7.0f}%{note}")


RATE_HEADER = (f"  {'backend / path':<52}{'batch':>6} {'records':>9} {'wall s':>8} {'records/s':>11} {'p50 ms':>9}"
               f" {'p95 ms':>9} {'client CPU':>8}")


def ingestion(label: str, targets: list[tuple[str, str, str, Path | None]], args: argparse.Namespace, tag: str,
              start: datetime, verdicts: list[tuple[str, bool, str]]) -> None:
    """targets: (row label, target, mode, tree); every one at every batch size."""
    print(f"\n{label}", flush=True)
    print(RATE_HEADER)
    from planwise_monitoring.store import MonitoringStore

    for row, target, mode, tree in targets:
        MonitoringStore(target).write([])  # the schema, before the first count
        for batch in BATCHES:
            if mode == "spool":
                records = args.spool_records // batch * batch
            else:  # enough for the window at well above the rates seen
                records = int(min(60_000, {1: 400, 10: 2500, 100: 8000}[batch] * args.seconds) // batch * batch)
            before = pg_count(target) if target.startswith("postgresql") else duckdb_count(Path(target))
            r = run_writers(target, mode, batch, args.seconds, records, f"{tag}{batch}{row[:3]}", start, tree)
            start += timedelta(days=1)
            after = pg_count(target) if target.startswith("postgresql") else duckdb_count(Path(target))
            stored = "" if after - before == r["records"] else f"  (stored {after - before:,}!)"
            print(f"  {row:<52}{batch:>6} {fmt_rate(r)}{stored}", flush=True)
            if target.startswith("postgresql"):
                verdicts.append((f"{label.strip(':')}: {row}, batches of {batch}: {r['rate']:,.0f} records/s",
                                 r["rate"] >= WRITE_TARGET, f">= {WRITE_TARGET:,}/s"))


def print_reads(rows: int, results: dict[tuple[int, str], dict[str, tuple[float, float, int | str]]]) -> None:
    backends = [b for b in ("duckdb", "postgres") if (rows, b) in results]
    if not backends:
        return
    print(f"\nReads at {rows:,} rows: median of {RUNS} runs, s (first run), rows returned")
    print(f"  {'figure / build':<34}" + "".join(f"{b:>30}" for b in backends))
    for name in results[(rows, backends[0])]:
        cells = []
        for b in backends:
            median, first, got = results[(rows, b)][name]
            cells.append(f"{median:>9.3f} ({first:7.3f}) {got!s:>10}" if isinstance(got, int) else f"{got:>30}")
        print(f"  {name:<34}" + "".join(f"{c:>30}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="history sizes, comma-separated")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100k rows, short write windows")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--seconds", type=float, default=8.0, help="write window of each PostgreSQL/direct run")
    parser.add_argument("--spool-records", type=int, default=2000, help="records per DuckDB spooling process")
    parser.add_argument("--patched-tree", type=Path, action="append", default=[],
                        help="also run the PostgreSQL writers from this copy (repeatable)")
    parser.add_argument("--pg-stock", action="store_true", help="keep the test server's PostgreSQL settings")
    parser.add_argument("--skip-writes", action="store_true", help="reads and bytes per row only")
    parser.add_argument("--skip-reads", action="store_true", help="ingestion and bytes per row only")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE PostgreSQL reads over target")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A SIGTERM (a timeout, a kill) exits through the finally below, which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    sizes = [100_000] if args.quick else [int(x) for x in args.rows.split(",")]
    if args.quick:
        args.seconds, args.spool_records = min(args.seconds, 3.0), min(args.spool_records, 300)
    import duckdb
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="planwise-backends-"))
    free = shutil.disk_usage(work).free
    need = max(sizes) * 800  # PostgreSQL ~630 B/row, DuckDB ~90, WAL and temp files
    print(f"{os.cpu_count()} CPUs; {free / 1e9:.0f} GB free in {work.parent} (this run needs ~{need / 1e9:.0f} GB); "
          f"duckdb {duckdb.__version__}, psycopg {psycopg.__version__}")
    if free < need:
        sys.exit(f"not enough disk in {work.parent}")
    server = None
    if not args.skip_postgres:
        settings = {} if args.pg_stock else PG_SETTINGS
        server = start_postgres(settings)
        with server.connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            shown = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in (*PG_SETTINGS, "jit", "fsync",
                                                                           "synchronous_commit")}
        print(f"PostgreSQL {version} on 127.0.0.1:{server.port}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    verdicts: list[tuple[str, bool, str]] = []
    results: dict[tuple[int, str], dict[str, tuple[float, float, int | str]]] = {}
    loads: dict[tuple[int, str], str] = {}
    try:
        # 1. ingestion into empty stores
        targets: list[tuple[str, str, str, Path | None]] = []
        if server is not None:
            targets.append(("PostgreSQL, store.write(batch) in each process", server.create_database("writes"),
                            "direct", None))
            for i, tree in enumerate(args.patched_tree):
                targets.append((f"PostgreSQL, the same, code from {tree.name}", server.create_database(f"writes_{i}"),
                                "direct", tree))
        if not args.skip_duckdb:
            targets.append(("DuckDB, submit_all + RecordWriter drain (plugin's path)", str(work / "spool.duckdb"),
                            "spool", None))
            targets.append(("DuckDB, store.write(batch), waiting for the file lock", str(work / "direct.duckdb"),
                            "direct", None))
        if not args.skip_writes:
            ingestion(f"Ingestion into an empty store, {WRITERS} writer processes:", targets, args, "empty",
                      datetime(2026, 4, 2), verdicts)
        for path in work.glob("*.duckdb*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

        # 2. and 3. reads and bytes per row at each size
        for n, rows in enumerate(sizes):
            for backend in ("duckdb", "postgres"):
                if (backend == "duckdb" and args.skip_duckdb) or (backend == "postgres" and server is None):
                    continue
                from planwise_monitoring.store import MonitoringStore

                if backend == "duckdb":
                    path = work / f"history_{rows}.duckdb"
                    took = load_duckdb(path, rows)
                    target = str(path)
                    per_row = path.stat().st_size / rows
                    detail = f"file {path.stat().st_size / 1e6:,.0f} MB after CHECKPOINT"
                else:
                    target, took = load_postgres(server, rows)
                    per_row, detail = pg_bytes(target, rows)
                loads[(rows, backend)] = (f"{backend:<9} {rows:>11,} rows loaded in {sum(took.values()):6.1f} s ("
                                          + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
                                          + f"); {per_row:.1f} bytes/row ({detail})")
                print(loads[(rows, backend)], flush=True)
                store = MonitoringStore(target, lock_timeout_seconds=30.0)
                if not args.skip_reads:
                    results[(rows, backend)] = time_reads(store)
                if rows == max(sizes) and not args.skip_reads:
                    limit = SECONDS_TARGET[backend]
                    for name, (median, first, _) in results[(rows, backend)].items():
                        verdicts.append((f"{backend} {name} at {rows:,} rows: {median:.3f} s (first {first:.3f} s)",
                                         median <= limit, f"<= {limit:g} s"))
                    if args.explain and backend == "postgres":
                        timed = results[(rows, backend)]
                        slowest = max(timed, key=lambda k: timed[k][0] if timed[k][0] == timed[k][0] else 1e9)
                        for name, (median, _, _) in timed.items():
                            if not median <= limit or (args.quick and name == slowest):
                                print(f"\n  EXPLAIN ANALYZE {name} ({rows:,} rows):")
                                try:
                                    for line in pg_explain(target, *read_sql(name)):
                                        print(f"    {line[:150]}")
                                except Exception as exc:
                                    print(f"    (EXPLAIN failed: {type(exc).__name__}: {exc})")
                        print(flush=True)
                # Writers into a store that holds a history (the history update reads it): the package's
                # code at the first size only (at 1 M rows one PostgreSQL write of 10 records takes seconds).
                history_targets: list[tuple[str, str, str, Path | None]] = []
                if n == 0:
                    history_targets.append(
                        ("PostgreSQL, store.write(batch) in each process" if backend == "postgres" else
                         "DuckDB, submit_all + RecordWriter drain (plugin's path)", target,
                         "direct" if backend == "postgres" else "spool", None))
                if backend == "postgres":
                    trees = args.patched_tree if n == 0 else args.patched_tree[-1:]
                    history_targets += [(f"PostgreSQL, the same, code from {tree.name}", target, "direct", tree)
                                        for tree in trees]
                if history_targets and not args.skip_writes:
                    ingestion(f"Ingestion into the {rows:,}-row history, {WRITERS} writer processes:",
                              history_targets, args, "history", datetime(2026, 4, 10), verdicts)
                if backend == "duckdb":
                    for p in work.glob(f"history_{rows}.duckdb*"):
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
                else:
                    with server.connect() as conn:
                        conn.execute(f"DROP DATABASE history_{rows} WITH (FORCE)")
            print_reads(rows, results)

        print("\nLoads and bytes per row:")
        for line in loads.values():
            print(f"  {line}")
        print()
        for what, ok, target in verdicts:
            print(f"{'PASS' if ok else 'MISS'}  {what}  (target {target})")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
