"""A full disk (here: a file-size limit) while the database file is first created must not leave
a file that blocks every later write once space is back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from planwise_monitoring.store import MonitoringStore, StoreError

from ..factories import make_record

# In its own process: the limit applies to the whole process, and SIGXFSZ would kill it.
_CREATE_UNDER_A_LIMIT = """
import resource, signal, sys
from planwise_monitoring.store import MonitoringStore, StoreError
from planwise_monitoring_tests.factories import make_record

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = MonitoringStore(sys.argv[1])
record = make_record()
store.spool.put(record.performance_id, record.to_json())   # as the writer does before writing
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    store.replay_spool()
    print("written")
except StoreError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("limit", [0, 4096], ids=["nothing-written", "header-only"])
def test_records_land_once_space_is_back(db_path: Path, limit: int):
    result = subprocess.run([sys.executable, "-c", _CREATE_UNDER_A_LIMIT, str(db_path), str(limit)],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused: cannot "), result.stdout
    store = MonitoringStore(db_path)
    assert store.spool.count() == 1  # kept for later
    assert store.replay_spool() == 1  # space is back (this process has no limit)
    assert len(store.read_performance()) == 1 and store.spool.count() == 0


def _duckdb_header(tmp_path: Path) -> bytes:
    real = tmp_path / "real.duckdb"
    duckdb.connect(str(real)).close()
    return real.read_bytes()[:4096]


@pytest.mark.parametrize("content", ["empty", "header"])
def test_a_half_created_file_left_by_another_process_is_started_again(db_path: Path, tmp_path: Path, content: str):
    db_path.write_bytes(b"" if content == "empty" else _duckdb_header(tmp_path))
    store = MonitoringStore(db_path)
    assert store.write([make_record()]) == 1
    assert len(store.read_performance()) == 1


def test_a_small_file_that_is_not_duckdb_is_never_removed(db_path: Path):
    db_path.write_text("my notes, saved under the wrong name\n")
    with pytest.raises(StoreError, match="cannot open monitoring database"):
        MonitoringStore(db_path).write([make_record()])
    assert db_path.read_text() == "my notes, saved under the wrong name\n"


def test_a_database_removed_and_created_again_in_the_same_process_gets_its_schema(db_path: Path):
    """The per-process 'already migrated' memory is of a file, not of a path."""
    store = MonitoringStore(db_path)
    store.write([make_record()])
    db_path.unlink()
    Path(f"{db_path}.wal").unlink(missing_ok=True)
    assert store.write([make_record()]) == 1
    assert len(store.read_performance()) == 1
