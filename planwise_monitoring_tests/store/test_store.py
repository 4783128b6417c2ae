from __future__ import annotations

import multiprocessing
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from planwise_monitoring.evaluation.sla import SlaDefinition, SlaRules
from planwise_monitoring.recording.records import FAILED
from planwise_monitoring.store import MonitoringStore, StoreError, StoreLockedError
from planwise_monitoring.store.schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, render
from planwise_monitoring.store.writer import writer_for

from ..factories import lock_held_by_another_process, make_record
from .backends import Backend

SEED_COLUMNS = {
    "mon_multi_year_performance": [
        "performance_id", "simulation_run_id", "simulation_year", "component_name", "component_type",
        "execution_start_time", "execution_end_time", "execution_time_seconds", "memory_usage_mb",
        "input_record_count", "output_record_count", "records_per_second", "sla_threshold_seconds",
        "sla_status", "performance_category", "year_over_year_change_pct",
        "cumulative_execution_time_seconds", "created_at",
    ],
    "mon_multi_year_regression": [
        "regression_id", "component_name", "baseline_run_id", "current_run_id", "baseline_execution_time",
        "current_execution_time", "performance_degradation_pct", "regression_severity",
        "regression_threshold_pct", "detection_timestamp", "investigation_status",
    ],
    "mon_sla_definitions": [
        "sla_id", "component_name", "component_type", "sla_threshold_seconds", "warning_threshold_seconds",
        "record_count_threshold", "is_active", "created_at",
    ],
}


def test_schema_has_the_seed_tables_and_columns_and_a_version(backend: Backend):
    store = backend.store()
    store.write([])
    store.write([])  # idempotent
    for table, columns in SEED_COLUMNS.items():
        have = backend.columns(table)
        assert set(columns) <= have, (table, set(columns) - have)
    with backend.raw() as conn:
        assert tuple(conn.execute("SELECT max(version), count(*) FROM mon_schema_version").fetchone()) == (
            SCHEMA_VERSION, SCHEMA_VERSION)


def test_an_older_database_is_migrated_and_keeps_its_rows(backend: Backend):
    record = make_record()
    with backend.raw() as conn:  # a database as version 1 left it
        conn.execute(VERSION_TABLE)
        for statement in MIGRATIONS[1]:
            conn.execute(render(statement, conn.dialect))
        conn.execute("INSERT INTO mon_schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO mon_multi_year_performance (performance_id, simulation_run_id, simulation_id, scenario, "
                     "component_name, component_type, status, execution_start_time, execution_end_time, "
                     "execution_time_seconds) VALUES (?, 'r', 's', 'baseline', 'c', 'T', 'SUCCESS', now(), now(), 1.5)",
                     [record.performance_id])
        conn.execute("INSERT INTO mon_multi_year_regression (component_name, baseline_run_id, current_run_id) "
                     "VALUES ('c', 'r0', 'r')")
    store = backend.store()
    store.write([])
    assert store.schema_version() == SCHEMA_VERSION
    assert store.read_performance()["execution_time_seconds"].tolist() == [1.5]
    assert len(store.read_table("mon_alerts")) == 0
    assert store.read_table("mon_multi_year_regression")["detection_type"].tolist() == ["STEP"]  # migration 9
    with backend.raw() as conn:
        assert conn.execute("SELECT version FROM mon_schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_newer_schema_is_refused_with_a_clear_error(backend: Backend):
    with backend.raw() as conn:
        conn.execute("CREATE TABLE mon_schema_version (version INTEGER, applied_at TIMESTAMP)")
        conn.execute("INSERT INTO mon_schema_version VALUES (99, now())")
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        backend.store().write([])


def test_write_ignores_ids_it_already_has(backend: Backend):
    store = backend.store()
    record = make_record()
    assert store.write([record]) == 1
    assert store.write([record]) == 0
    assert store.write([record, record]) == 0
    assert backend.performance_ids() == [record.performance_id]


def test_every_value_is_stored_as_given(backend: Backend):
    """Strings that quote, escape or look like JSON or SQL, floats at the ends of their range and
    with every digit, big counts and microseconds come back as they went in."""
    record = make_record(
        component_name='stg_"quoted"\\back\\slash', asset_key="schema/model ü 漢字 🚀", partition_key="{\"a\": [1]}",
        error_class="x'); DROP TABLE mon_alerts; --", error_message="line 1\nline\t2 \u00e9 \\u0000 %s %(x)s ?",
        execution_start_time=datetime(2026, 2, 3, 4, 5, 6, 789012), execution_time_seconds=0.1 + 0.2,
        cpu_seconds=5e-324, memory_usage_mb=1.7976931348623157e308, memory_start_mb=123456.78901234567,
        input_record_count=2**62, output_record_count=0, monitoring_overhead_seconds=1 / 3)
    assert backend.store().write([record]) == 1
    [row] = backend.store().read_performance().to_dict("records")
    for field in ("component_name", "asset_key", "partition_key", "error_class", "error_message",
                  "execution_start_time", "execution_end_time", "execution_time_seconds", "cpu_seconds",
                  "memory_usage_mb", "memory_start_mb", "input_record_count", "output_record_count",
                  "monitoring_overhead_seconds"):
        assert row[field] == getattr(record, field), field


def test_year_over_year_and_cumulative_time_come_from_the_history(backend: Backend):
    store = backend.store()
    t0 = datetime(2026, 1, 1)
    store.write([make_record(simulation_year=2025, execution_time_seconds=10, execution_start_time=t0)])
    store.write([make_record(simulation_year=2026, execution_time_seconds=15, execution_start_time=t0 + timedelta(minutes=1))])
    # year 2026 re-run in the same simulation: the cumulative time counts its latest run once
    store.write([make_record(simulation_year=2026, execution_time_seconds=12, execution_start_time=t0 + timedelta(minutes=2))])
    store.write([make_record(simulation_year=2027, execution_time_seconds=18, execution_start_time=t0 + timedelta(minutes=3))])
    # a failed run neither serves as a baseline nor counts
    store.write([make_record(simulation_year=2027, execution_time_seconds=1, status=FAILED,
                             execution_start_time=t0 + timedelta(minutes=4), sla_status=None)])
    df = store.read_performance()
    yoy = df["year_over_year_change_pct"].tolist()
    cumulative = df["cumulative_execution_time_seconds"].tolist()
    assert yoy[0] != yoy[0]  # NaN: no earlier year
    assert yoy[1:4] == pytest.approx([50.0, 20.0, 50.0])  # 15 vs 10, 12 vs 10, 18 vs 12 (latest 2026)
    assert cumulative == pytest.approx([10, 25, 22, 10 + 12 + 18, 1 + 10 + 12])


def test_year_over_year_prefers_the_same_simulation(backend: Backend):
    store = backend.store()
    t0 = datetime(2026, 1, 1)
    store.write([make_record(simulation_id="a", simulation_year=2025, execution_time_seconds=10, execution_start_time=t0)])
    store.write([make_record(simulation_id="b", simulation_year=2025, execution_time_seconds=20, execution_start_time=t0 + timedelta(hours=1))])
    store.write([make_record(simulation_id="a", simulation_year=2026, execution_time_seconds=11, execution_start_time=t0 + timedelta(hours=2))])
    assert store.read_performance()["year_over_year_change_pct"].iloc[-1] == pytest.approx(10.0)


def test_spooled_records_are_replayed_exactly_once(backend: Backend):
    store = backend.store()
    records = [make_record() for _ in range(3)]
    for r in records:
        store.spool.put(r.performance_id, r.to_json())
    store.spool.put(records[0].performance_id + "-copy", records[0].to_json())  # same id twice
    assert store.replay_spool() == 3
    assert store.spool.count() == 0
    assert store.replay_spool() == 0
    df = store.read_performance()
    assert sorted(df["performance_id"].astype(str)) == sorted(r.performance_id for r in records)
    # the round trip through the spool loses nothing
    assert df.set_index(df["performance_id"].astype(str)).loc[records[1].performance_id, "memory_usage_mb"] == 300.0


def test_a_corrupt_spool_file_is_kept_aside_not_lost(backend: Backend):
    store = backend.store()
    store.spool.put("broken", "{not json")
    good = make_record()
    store.spool.put(good.performance_id, good.to_json())
    assert store.replay_spool() == 1
    assert (store.spool.directory / "broken.bad").read_text() == "{not json"


def test_phases_are_stored_with_their_record(backend: Backend):
    from planwise_monitoring.recording.measure import PhaseTiming

    record = make_record(phases=(PhaseTiming("load", datetime(2026, 1, 1), 1.5), PhaseTiming("write", datetime(2026, 1, 1), 0.5)))
    store = backend.store()
    store.spool.put(record.performance_id, record.to_json())
    store.replay_spool()
    phases = store.read_table("mon_phase_timings").sort_values("phase_index")
    assert phases["phase_name"].tolist() == ["load", "write"]
    assert phases["duration_seconds"].tolist() == [1.5, 0.5]


def test_sla_definitions_are_mirrored_and_old_ones_deactivated(backend: Backend):
    store = backend.store()
    store.write([], SlaRules([SlaDefinition(10, 5, component_name="a", component_type="T")]))
    store.write([], SlaRules([SlaDefinition(20, 5, component_type="T")]))
    df = store.read_table("mon_sla_definitions")
    active = {(r.component_name, r.component_type, r.sla_threshold_seconds) for r in df.itertuples() if r.is_active}
    assert active == {("*", "T", 20.0), ("*", "*", 300.0)}
    assert ("a", "T", 10.0) in {(r.component_name, r.component_type, r.sla_threshold_seconds) for r in df.itertuples()}


def test_a_long_held_lock_fails_with_the_holder_named(db_path: Path):
    MonitoringStore(db_path).write([])
    with lock_held_by_another_process(db_path) as holder:
        with pytest.raises(StoreLockedError, match=f"locked by process {holder.pid}") as excinfo:
            MonitoringStore(db_path, lock_timeout_seconds=0.3).write([make_record()])
        assert excinfo.value.holder_pid == holder.pid
    assert len(MonitoringStore(db_path).read_performance()) == 0


def test_reading_a_database_nothing_was_recorded_in_is_a_clear_error(backend: Backend):
    """DuckDB: no file yet; PostgreSQL: a database without our tables. A read creates neither."""
    store = backend.store()
    for read in (store.read_performance, store.alerts, lambda: store.read_table("mon_alerts")):
        with pytest.raises(StoreError, match="does not exist yet"):
            read()
    assert not store.exists()


_SHARED = uuid.UUID("6f1c7a52-8d7e-4c1e-9a53-000000000000")
# processes, records each: every 4th record is the same in every process (same id)
_HAMMER = {"duckdb": (4, 40), "postgres": (8, 200)}


def _hammer(target: str, spool_dir: str, count: int, lock_timeout: float, component: str) -> None:
    store = MonitoringStore(target, lock_timeout_seconds=lock_timeout, spool_dir=spool_dir)
    writer = writer_for(store)
    run_id = f"pid-{multiprocessing.current_process().pid}"
    t0 = datetime(2026, 1, 1)
    for i in range(count):
        at = dict(simulation_year=2025 + i % 5, execution_start_time=t0 + timedelta(seconds=i))
        if i % 4 == 0:  # the same record, submitted by every process
            record = make_record(performance_id=str(uuid.uuid5(_SHARED, str(i))), simulation_run_id="shared",
                                 component_name="shared_component", **at)
        else:
            record = make_record(simulation_run_id=run_id, component_name=component, **at)
        writer.submit(record)


def test_many_processes_writing_at_once_lose_and_duplicate_nothing(backend: Backend, tmp_path: Path):
    processes, count = _HAMMER[backend.name]
    spool_dir = tmp_path / "shared.spool"  # one spool, as the processes of one machine share it
    store = backend.store(spool_dir=spool_dir)
    store.write([])
    ctx = multiprocessing.get_context("spawn")
    lock_timeout = 1.0 if backend.is_postgres else 0.2
    procs = [ctx.Process(target=_hammer, args=(backend.target, str(spool_dir), count, lock_timeout, f"component_{k % 3}"))
             for k in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    store.replay_spool()  # whatever a locked exit (or a direct write that gave up) left behind
    shared = len(range(0, count, 4))
    ids = backend.performance_ids()
    assert len(ids) == len(set(ids)) == processes * (count - shared) + shared
    df = store.read_performance()
    assert sorted(df.groupby("simulation_run_id").size().tolist()) == [shared] + [count - shared] * processes
    assert store.spool.count() == 0 and store.spool.quarantined_count() == 0


def test_prune_removes_only_what_is_older_than_the_window(backend: Backend):
    from datetime import timedelta

    from planwise_monitoring.recording.measure import PhaseTiming

    store = backend.store()
    now = datetime(2026, 6, 1)
    old = make_record(execution_start_time=now - timedelta(days=120),
                      phases=(PhaseTiming("load", now - timedelta(days=120), 1.0),))
    recent = make_record(execution_start_time=now - timedelta(days=30),
                         phases=(PhaseTiming("load", now - timedelta(days=30), 1.0),))
    for r in (old, recent):
        store.spool.put(r.performance_id, r.to_json())
    store.replay_spool()
    removed = store.prune(timedelta(days=90), now=now)
    assert removed["mon_multi_year_performance"] == 1 and removed["mon_phase_timings"] == 1
    assert store.read_performance()["performance_id"].astype(str).tolist() == [recent.performance_id]
    assert len(store.read_table("mon_phase_timings")) == 1
    assert store.prune(timedelta(days=90), now=now)["mon_multi_year_performance"] == 0


def test_sla_definitions_are_mirrored_from_plain_rows(backend: Backend):
    """The store takes the rows to mirror; it does not need the evaluation stage's SlaRules."""
    from planwise_monitoring.store.sla_definitions import SlaRow

    store = backend.store()
    rows = [SlaRow("a", None, 10.0, 5.0), SlaRow(None, None, 300.0, 240.0)]
    store.write([], rows)
    store.write([], list(rows))  # equal rows: nothing changes
    store.write([], [SlaRow("a", None, 12.0, 6.0), SlaRow(None, None, 300.0, 240.0)])
    df = store.read_table("mon_sla_definitions")
    assert len(df) == 2 and df["is_active"].all()
    assert {(r.component_name, r.component_type, r.sla_threshold_seconds) for r in df.itertuples()} == {
        ("a", "*", 12.0), ("*", "*", 300.0)}
