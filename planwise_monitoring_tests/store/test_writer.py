"""The background writer with real files, real DuckDB and real processes: bad figures become
NULL, an unwritable spool never loses the record, and flush is bounded."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from planwise_monitoring.recording.records import PerformanceRecord
from planwise_monitoring.store.duckdb import MonitoringStore
from planwise_monitoring.store.writer import RecordWriter
from planwise_monitoring_tests.factories import lock_held_by_another_process, make_record

from .backends import Backend


def _unwritable_spool(db_path: Path, system_tmp: Path) -> MonitoringStore:
    """A file where the spool directory should be, and where its fallback's parent should be."""
    blocked = db_path.parent / "blocked.spool"
    blocked.write_text("not a directory")
    (system_tmp / "planwise-monitoring-0").write_text("not a directory either")
    return MonitoringStore(db_path, spool_dir=blocked)


def test_bad_figures_are_stored_as_null_with_a_warning(backend: Backend, caplog):
    writer = RecordWriter(backend.store())
    record = make_record(output_record_count=10**20)
    record = dataclasses.replace(record, cpu_seconds=math.nan, records_per_second=math.inf)
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        writer.submit(record)
        assert writer.flush()
    [row] = backend.store().read_performance().to_dict("records")
    assert row["output_record_count"] is None or math.isnan(row["output_record_count"])
    assert math.isnan(row["cpu_seconds"]) and math.isnan(row["records_per_second"])  # NULL in pandas
    assert row["execution_time_seconds"] == 10.0
    warnings = writer.take_warnings()
    assert any("output_record_count 100000000000000000000 is not a record count" in w for w in warnings)
    assert any("cpu_seconds nan" in w for w in warnings)
    assert writer.store.spool.quarantined_count() == 0  # nothing reached the spool that blocks it


@pytest.mark.parametrize("duration", [math.nan, math.inf, -1.0])
def test_a_record_without_a_usable_duration_is_dropped_alone(db_path: Path, duration: float):
    writer = RecordWriter(MonitoringStore(db_path))
    good = make_record()
    writer.submit(dataclasses.replace(make_record(), execution_time_seconds=duration, sla_status="WITHIN_SLA"))
    writer.submit(good)
    assert writer.flush()
    stored = MonitoringStore(db_path).read_performance()
    assert stored["performance_id"].astype(str).tolist() == [good.performance_id]
    assert any("is not stored" in w for w in writer.take_warnings())


def test_an_unwritable_spool_keeps_the_record_in_memory_and_writes_it_directly(
        db_path: Path, private_system_tmp: Path, caplog):
    store = _unwritable_spool(db_path, private_system_tmp)
    writer = RecordWriter(store)
    records = [make_record() for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        for record in records:
            writer.submit(record)  # must not raise
        assert writer.pending_ids() == {r.performance_id for r in records}
        assert writer.flush()
    assert caplog.text.count("records are held in memory") == 1  # once, clearly
    assert f"{store.spool.directory}: File exists" in caplog.text  # says why
    stored = MonitoringStore(db_path).read_performance()
    assert sorted(stored["performance_id"].astype(str)) == sorted(r.performance_id for r in records)
    assert writer.pending_ids() == set()


def test_held_records_go_back_to_the_spool_once_it_can_be_written(db_path: Path, private_system_tmp: Path):
    MonitoringStore(db_path).write([])
    store = _unwritable_spool(db_path, private_system_tmp)
    writer = RecordWriter(store)
    record = make_record()
    with lock_held_by_another_process(db_path):
        writer.submit(record)
        store.spool.directory.unlink()  # the spool directory can be created again
        assert not writer.flush(timeout_seconds=0.2)
        assert store.spool.has(record.performance_id)  # durable again, no longer only in memory
    assert writer.flush(timeout_seconds=10)
    assert MonitoringStore(db_path).read_performance()["performance_id"].astype(str).tolist() == [record.performance_id]


_FULL_DISK = """
import resource, signal, sys
from planwise_monitoring.store.duckdb import MonitoringStore
from planwise_monitoring.store.writer import RecordWriter
from planwise_monitoring_tests.factories import make_record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
store = MonitoringStore(sys.argv[1])
store.write([])
writer = RecordWriter(store)
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
record = make_record()
writer.submit(record)  # neither the spool nor its fallback can take ~1 KB
print("tmp files:", sorted(p.name for d in store.spool.directories() if d.is_dir() for p in d.iterdir()))
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space again
print("flushed:", writer.flush(timeout_seconds=10))
print("stored:", store.read_performance()["performance_id"].astype(str).tolist() == [record.performance_id])
"""


def test_a_full_disk_loses_no_record_and_leaves_no_partial_file(db_path: Path, private_system_tmp: Path):
    code = f"import tempfile; tempfile.tempdir = {str(private_system_tmp)!r}\n" + _FULL_DISK
    result = subprocess.run([sys.executable, "-c", code, str(db_path)], capture_output=True, text=True,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert "tmp files: []" in result.stdout
    assert "flushed: True" in result.stdout and "stored: True" in result.stdout
    assert "File too large" in result.stderr  # the warning says what happened


_UNSAVED_AT_EXIT = """
import sys, tempfile
from pathlib import Path
from planwise_monitoring.store.duckdb import MonitoringStore
from planwise_monitoring.store.writer import writer_for
from planwise_monitoring_tests.factories import make_record
blocker = Path(sys.argv[1])
tempfile.tempdir = str(blocker)  # no fallback either
store = MonitoringStore(blocker / "monitoring.duckdb", lock_timeout_seconds=0.1)  # nor a database
record = make_record()
writer_for(store).submit(record)
print(record.performance_id)
"""


def test_a_record_nothing_could_take_is_printed_whole_at_exit(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("everything is a file here")
    result = subprocess.run([sys.executable, "-c", _UNSAVED_AT_EXIT, str(blocker)], capture_output=True,
                            text=True, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    record_id = result.stdout.strip()
    [line] = [line for line in result.stderr.splitlines() if "UNSAVED RECORD" in line]
    recovered = PerformanceRecord.from_json(line.split("UNSAVED RECORD ", 1)[1])
    assert recovered.performance_id == record_id


def test_flush_is_bounded_while_a_background_drain_waits_for_the_lock(db_path: Path):
    MonitoringStore(db_path).write([])
    writer = RecordWriter(MonitoringStore(db_path, lock_timeout_seconds=600))
    record = make_record()
    with lock_held_by_another_process(db_path):
        writer.submit(record)  # the background drain now waits (up to 600 s) for the lock
        while not writer._io.locked():  # until the drain is under way
            threading.Event().wait(0.01)
        results: list[bool] = []
        flusher = threading.Thread(target=lambda: results.append(writer.flush(timeout_seconds=0.2)), daemon=True)
        flusher.start()
        flusher.join(timeout=60)  # a liveness check, not a timing: unbounded, it would wait 600 s
        assert not flusher.is_alive() and results == [False]
    assert writer.flush(timeout_seconds=30)
    assert MonitoringStore(db_path).read_performance()["performance_id"].astype(str).tolist() == [record.performance_id]


def test_submits_and_flushes_from_many_threads_lose_nothing(backend: Backend):
    writer = RecordWriter(backend.store(lock_timeout_seconds=5))
    submitted: list[str] = []
    lock = threading.Lock()

    def step(n: int) -> None:
        for _ in range(n):
            record = make_record()
            writer.submit(record)
            with lock:
                submitted.append(record.performance_id)
            writer.flush(timeout_seconds=0.05)  # teardown-style flushes racing the background thread

    threads = [threading.Thread(target=step, args=(15,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(timeout_seconds=30)
    stored = backend.store().read_performance()["performance_id"].astype(str)
    assert sorted(stored) == sorted(submitted) and len(set(stored)) == 60


def test_a_quarantined_spool_file_is_reported_to_the_next_step(backend: Backend):
    writer = RecordWriter(backend.store())
    writer.store.spool.put("bad", json.dumps({"performance_id": "nope"}))
    writer.submit(make_record())
    assert writer.flush()
    assert any("bad.json cannot be stored" in w for w in writer.take_warnings())
    assert writer.store.spool.quarantined_count() == 1


def test_a_secret_in_a_store_error_never_reaches_the_warnings(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setenv("PLANWISE_TEST_TOKEN", "s3cr3t-token-value")
    db_path = tmp_path / "s3cr3t-token-value" / "monitoring.duckdb"  # the database error quotes its path
    db_path.parent.mkdir()
    db_path.write_text("not a DuckDB file")
    writer = RecordWriter(MonitoringStore(db_path))
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        writer.submit(make_record())
        assert not writer.flush()
    warnings = writer.take_warnings()
    assert any("cannot open monitoring database" in w for w in warnings)
    assert "s3cr3t" not in " ".join(warnings) and "s3cr3t" not in caplog.text


def test_a_writer_relays_only_its_own_spools_warnings(tmp_path: Path):
    mine = RecordWriter(MonitoringStore(tmp_path / "mine.duckdb"))
    other = RecordWriter(MonitoringStore(tmp_path / "other.duckdb"))
    other.store.spool.put("bad", b"{not json")
    other.store.replay_spool()  # quarantines it, as a sensor tick would
    assert mine.take_warnings() == []  # a background drain of another database's writer takes nothing
    assert any("bad.json cannot be stored" in w for w in other.take_warnings())


_EXIT_DURING_A_DRAIN = """
import sys, threading
from planwise_monitoring.store.duckdb import MonitoringStore
from planwise_monitoring.store.writer import writer_for
from planwise_monitoring_tests.factories import make_record
store = MonitoringStore(sys.argv[1], lock_timeout_seconds=0.2)
store.write([])
for _ in range(int(sys.argv[2])):  # a backlog: the drain takes far longer than the lock timeout
    record = make_record()
    store.spool.put(record.performance_id, record.to_json())
writer = writer_for(store)
writer.submit(make_record())
while not writer._io.locked():  # the background drain is under way
    threading.Event().wait(0.005)
print("exiting during the drain", flush=True)
"""


def test_exit_waits_for_a_background_drain_under_way(db_path: Path):
    backlog = 2000
    result = subprocess.run([sys.executable, "-c", _EXIT_DURING_A_DRAIN, str(db_path), str(backlog)],
                            capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr  # no daemon thread killed inside DuckDB
    assert "exiting during the drain" in result.stdout
    assert "left in" not in result.stderr
    store = MonitoringStore(db_path)
    assert store.spool.count() == 0 and len(store.read_performance()) == backlog + 1
