"""The spool with real files: one bad file never blocks the others, a full disk leaves nothing
half-written, and an unwritable spool falls back instead of losing the record."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planwise_monitoring.recording.records import PerformanceRecord
from planwise_monitoring.store.duckdb import MonitoringStore
from planwise_monitoring.store.spool import STRAY_TMP_SECONDS, Spool, SpoolWriteError, default_fallback
from planwise_monitoring_tests.factories import make_record


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def test_put_and_pending_hand_over_bytes_oldest_first(tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    first, second = make_record(), make_record()
    spool.put(first.performance_id, first.to_json())
    spool.put(second.performance_id, second.to_json().encode())
    os.utime(spool.directory / f"{first.performance_id}.json", ns=(1, 1))  # certainly older
    assert [PerformanceRecord.from_json(payload) for _, payload in spool.pending()] == [first, second]
    assert all(isinstance(payload, bytes) for _, payload in spool.pending())
    assert spool.count() == 2 and spool.has(first.performance_id) and not spool.has("other")


@pytest.mark.parametrize("record_id", ["../escape", "a/b", ".hidden", "", "x" * 300])
def test_a_record_id_never_names_a_path(tmp_path: Path, record_id: str):
    with pytest.raises(ValueError, match="cannot name a spool file"):
        Spool(tmp_path / "spool").put(record_id, "{}")
    assert not (tmp_path / "escape.json").exists()


def test_invalid_utf8_does_not_stop_pending(tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    spool.put("undecodable", b'{"scenario": "\xff\xfe"}')
    [(path, payload)] = spool.pending()
    assert path.name == "undecodable.json" and payload == b'{"scenario": "\xff\xfe"}'


def _bad_payloads() -> dict[str, bytes]:
    good = json.loads(make_record().to_json())
    return {
        "invalid-utf8": b'{"scenario": "\xff"}',
        "not-json": b"{not json",
        "string-duration": json.dumps({**good, "execution_time_seconds": "12.5"}).encode(),
        "non-uuid-id": json.dumps({**good, "performance_id": "run-1-step-3"}).encode(),
        "nan-figure": json.dumps({**good, "cpu_seconds": float("nan")}).encode(),
        "huge-count": json.dumps({**good, "output_record_count": 10**20}).encode(),
        "unknown-field": json.dumps({**good, "surprise": True}).encode(),
    }


def test_bad_spool_files_are_quarantined_and_the_good_ones_stored(db_path: Path, caplog):
    store = MonitoringStore(db_path)
    goods = [make_record() for _ in range(3)]
    bad = _bad_payloads()
    for name, payload in bad.items():
        store.spool.put(name, payload)
    for record in goods:
        store.spool.put(record.performance_id, record.to_json())
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        assert store.replay_spool() == 3
        assert store.replay_spool() == 0  # nothing left to block a later replay
    assert sorted(store.read_performance()["performance_id"].astype(str)) == sorted(r.performance_id for r in goods)
    assert store.spool.count() == 0
    assert store.spool.quarantined_count() == len(bad)
    for name, payload in bad.items():
        assert (store.spool.directory / f"{name}.bad").read_bytes() == payload  # kept exactly, never deleted
    reason = (store.spool.directory / "string-duration.bad.reason").read_text()
    assert "execution_time_seconds: Input should be a valid number" in reason
    assert "not a UUID" in (store.spool.directory / "non-uuid-id.bad.reason").read_text()
    # warned about once per process, not once per file
    assert caplog.text.count("cannot be stored") == 1 and "quarantined_count()" in caplog.text


def test_quarantine_never_overwrites_an_earlier_one(tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    for payload in (b"first", b"second"):
        spool.quarantine(spool.put("same", payload), "bad")
    assert (spool.directory / "same.bad").read_bytes() == b"first"
    assert (spool.directory / "same.2.bad").read_bytes() == b"second"
    assert spool.quarantined_count() == 2


def test_quarantine_of_a_file_another_process_took_is_nothing(tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    path = spool.put("gone", b"{}")
    path.unlink()
    assert spool.quarantine(path, "bad") is None
    assert spool.quarantined_count() == 0


def test_a_quarantine_reason_is_redacted(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PLANWISE_TEST_PASSWORD", "hunter2-very-secret")
    spool = Spool(tmp_path / "spool")
    target = spool.quarantine(spool.put("x", b"{}"), "database said: login hunter2-very-secret refused")
    reason = target.with_name(target.name + ".reason").read_text()
    assert "hunter2" not in reason and "***" in reason


def test_stray_temp_files_are_removed_once_old(tmp_path: Path):
    now = 1_900_000_000.0
    spool = Spool(tmp_path / "spool", clock=lambda: now)
    spool.directory.mkdir()
    old = spool.directory / ".abandoned.123.456.tmp"
    fresh = spool.directory / ".being-written.789.1.tmp"
    for path, age in ((old, STRAY_TMP_SECONDS + 1), (fresh, 1.0)):
        path.write_bytes(b'{"half": ')
        os.utime(path, (now - age, now - age))
    spool.pending()
    assert _files(spool.directory) == [fresh.name]


def test_the_first_put_of_a_process_cleans_stray_temp_files(tmp_path: Path):
    now = 1_900_000_000.0
    spool = Spool(tmp_path / "spool-first-put", clock=lambda: now)
    spool.directory.mkdir()
    old = spool.directory / ".abandoned.1.2.tmp"
    old.write_bytes(b"{")
    os.utime(old, (now - 3600, now - 3600))
    spool.put("r", b"{}")
    assert _files(spool.directory) == ["r.json"]


_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from planwise_monitoring.store.spool import Spool, SpoolWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
spool = Spool(sys.argv[1], fallback_directory=sys.argv[2])
spool.put("small", b"{}")
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    spool.put("big", b"x" * 100_000)
except SpoolWriteError as exc:
    print("refused:", exc)
"""


def test_a_full_disk_leaves_no_partial_file(tmp_path: Path):
    spool_dir, fallback = tmp_path / "spool", tmp_path / "fallback" / "spool"
    out = subprocess.run([sys.executable, "-c", _FULL_DISK, str(spool_dir), str(fallback)],
                         capture_output=True, text=True, check=True).stdout
    assert "refused: cannot spool record big" in out and "File too large" in out
    assert _files(spool_dir) == ["small.json"]  # no '.big.<pid>.tmp' holding 4 KB of half a record
    assert _files(fallback) == []


def test_a_file_in_place_of_the_spool_falls_back_and_replay_reads_it(db_path: Path, private_system_tmp, caplog):
    blocked = db_path.parent / "blocked.spool"
    blocked.write_text("a file where the spool directory should be")
    store = MonitoringStore(db_path, spool_dir=blocked)
    records = [make_record() for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        paths = [store.spool.put(r.performance_id, r.to_json()) for r in records]
    assert all(p.parent == default_fallback(blocked) for p in paths)
    assert str(private_system_tmp) in str(paths[0])
    assert caplog.text.count(f"spool {blocked} cannot be written") == 1  # once, not per record
    assert store.spool.count() == 2
    assert store.replay_spool() == 2
    assert store.spool.count() == 0
    assert len(store.read_performance()) == 2


def test_a_planted_fallback_directory_is_not_used(tmp_path: Path, private_system_tmp):
    blocked = tmp_path / "blocked.spool"
    blocked.write_text("not a directory")
    fallback = default_fallback(blocked)
    fallback.parent.mkdir(mode=0o700)
    os.chown(fallback.parent, 4242, 4242)  # as if another user had created it first
    with pytest.raises(SpoolWriteError, match="is not a private directory of this user"):
        Spool(blocked).put("r", b"{}")
    assert not fallback.exists()


def test_a_fallback_parent_that_is_a_symlink_is_not_used(tmp_path: Path, private_system_tmp):
    blocked = tmp_path / "blocked.spool"
    blocked.write_text("not a directory")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    default_fallback(blocked).parent.symlink_to(elsewhere)
    with pytest.raises(SpoolWriteError):
        Spool(blocked).put("r", b"{}")
    assert _files(elsewhere) == []


def test_pending_on_a_file_in_place_of_the_spool_is_empty(tmp_path: Path):
    blocked = tmp_path / "blocked.spool"
    blocked.write_text("x")
    spool = Spool(blocked)
    assert spool.pending() == [] and spool.count() == 0 and spool.quarantined_count() == 0
