"""Mirroring SLA rules into mon_sla_definitions when several processes do it at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

_SYNC = """
import sys, threading
from planwise_monitoring.store import MonitoringStore
from planwise_monitoring.store.sla_definitions import SlaRow
from planwise_monitoring_tests.factories import make_record

rows = [SlaRow(f"component_{i}", None, 100.0 + i, 50.0) for i in range(5)]
store = MonitoringStore(sys.argv[1], spool_dir=sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # start together
store.write([make_record()], rows)
"""


def test_processes_mirroring_the_same_rules_at_once_store_each_rule_once(postgres_url: str, tmp_path: Path):
    # A fresh database: both processes find mon_sla_definitions empty and would each insert all five.
    procs = [subprocess.Popen([sys.executable, "-c", _SYNC, postgres_url, str(tmp_path / f"spool{i}")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = [(p.wait(timeout=60), p.stderr.read()[-2000:]) for p in procs]
    assert [code for code, _ in outcomes] == [0] * 4, outcomes
    with psycopg.connect(postgres_url) as conn:
        active = conn.execute("SELECT component_name, count(*) FROM mon_sla_definitions WHERE is_active "
                              "GROUP BY component_name ORDER BY component_name").fetchall()
    assert active == [(f"component_{i}", 1) for i in range(5)]
