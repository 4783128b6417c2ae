"""Replaying the spool: a file that cannot be read, or a record the database refuses, is set aside
(quarantined, with its reason) and never holds back the others."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys

import pytest

from planwise_monitoring.store import MonitoringStore

from ..factories import make_record
from .backends import Backend


def _bad_files(store: MonitoringStore) -> dict[str, str]:
    """Quarantined file name -> its reason."""
    return {p.name: p.with_name(p.name + ".reason").read_text() for p in store.spool.directory.glob("*.bad")}


def test_unreadable_spool_files_are_quarantined_and_the_others_land(backend: Backend):
    store = backend.store()
    good = [make_record(), make_record()]
    for record in good:
        store.spool.put(record.performance_id, record.to_json())
    store.spool.put("invalid-utf8", b'{"performance_id": "\xff\xfe"}')
    wrong_type = json.loads(make_record().to_json()) | {"execution_time_seconds": "ten"}
    store.spool.put("wrong-type", json.dumps(wrong_type))
    huge = make_record(output_record_count=10**20)
    store.spool.put("huge-count", huge.to_json())

    assert store.replay_spool() == 2
    assert sorted(store.read_performance()["performance_id"].astype(str)) == sorted(r.performance_id for r in good)
    bad = _bad_files(store)
    assert set(bad) == {"invalid-utf8.bad", "wrong-type.bad", "huge-count.bad"}
    assert "execution_time_seconds" in bad["wrong-type.bad"] and "output_record_count" in bad["huge-count.bad"]
    assert store.spool.count() == 0
    assert store.replay_spool() == 0  # nothing left to block a later replay


def test_records_the_database_refuses_are_set_aside_one_by_one(backend: Backend, caplog):
    """The batch insert fails on one value out of range; the store retries one by one, keeps the
    refused records as quarantined spool files and stores every other record."""
    store = backend.store()
    spooled = make_record()
    store.spool.put(spooled.performance_id, spooled.to_json())
    fine = make_record()
    # Built around PerformanceRecord's own checks, as a caller bypassing them would.
    refused = [dataclasses.replace(make_record(), output_record_count=10**20),
               dataclasses.replace(make_record(), input_record_count=-(10**19) * 2)]
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring.store"):
        assert store.write([fine, *refused]) == 2
    stored = set(store.read_performance()["performance_id"].astype(str))
    assert stored == {spooled.performance_id, fine.performance_id}
    bad = _bad_files(store)
    assert set(bad) == {f"{r.performance_id}.bad" for r in refused}
    assert all("refused by the database" in reason for reason in bad.values())
    kept = json.loads((store.spool.directory / f"{refused[0].performance_id}.bad").read_text())
    assert kept["output_record_count"] == 10**20  # the record is kept whole, not lost
    warnings = [r for r in caplog.records if r.name == "planwise_monitoring.store"]
    assert len(warnings) == 1 and "2 monitoring record(s) refused" in warnings[0].getMessage()
    assert store.spool.count() == 0


@pytest.mark.parametrize("payload", [b"\xff\xfe\xfd", b'{"performance_id": 3}'], ids=["not-utf8", "not-a-record"])
def test_flush_exits_cleanly_past_a_bad_file(backend: Backend, payload: bytes):
    store = backend.store()
    good = make_record()
    store.spool.put("bad", payload)
    store.spool.put(good.performance_id, good.to_json())
    result = subprocess.run([sys.executable, "-m", "planwise_monitoring.cli", "--db", backend.target, "flush"],
                            capture_output=True, text=True, timeout=120, env=backend.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 record(s) written")
    assert "Traceback" not in result.stderr
    assert store.read_performance()["performance_id"].astype(str).tolist() == [good.performance_id]
