"""The DuckDB backend: connecting with bounded waiting on the lock, writing, replaying the spool, pruning.

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore(tmp_path / "monitoring.duckdb")
    store.write([record])            # or spool records and store.replay_spool()
    df = store.read_performance()

DuckDB lets one process at a time open a file for writing, and the plugin's writers are many
short-lived step processes, dbt, and perhaps a user's notebook. So every connection is short,
opening it retries on the lock for at most ``lock_timeout_seconds``, and a write that still cannot
get the lock leaves its record in the spool (see :mod:`planwise_monitoring.store.writer`), from where
the next successful write replays it. Record ids make replay idempotent.

What is DuckDB's own lives here (opening a file, its lock and error messages, which errors belong
to one record, the session time zone); the queries are in :mod:`.session`, :mod:`.figures` and
:mod:`.performance`, the DDL in :mod:`.schema`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from .errors import StoreError, StoreLockedError
from .performance import insert_records
from .schema import current_version, ensure_schema
from .session import StoreSession
from .sla_definitions import SlaRow, sla_rows, sync_sla_definitions
from .spool import Spool

if TYPE_CHECKING:
    import pandas as pd

    from ..recording.records import PerformanceRecord

__all__ = ["MonitoringStore", "StoreError", "StoreLockedError", "StoreSession"]

logger = logging.getLogger("planwise_monitoring.store")

# Another process holds the file, or (same process) another thread has it open another way.
_LOCK_MESSAGE = re.compile(r"lock|different configuration|already attached|file handle conflict", re.I)
_LOCK_HOLDER = re.compile(r"held in (.+?) \(PID (\d+)\)")
# A database file that a full disk (or a file-size limit) stopped while it was first written.
_HALF_CREATED = re.compile(r"not a valid DuckDB database file|Could not read enough bytes", re.I)
# A DuckDB file begins with a 4 KiB main header then two 4 KiB database headers; one shorter
# than that holds no data yet.
_MIN_DATABASE_BYTES = 3 * 4096
_MAGIC = b"DUCK"
# Errors that belong to the rows of one statement (a value out of range, a NULL where none may
# be), as opposed to the database (full disk, lock, I/O): only those are worth retrying one by one.
_RECORD_ERRORS = (duckdb.DataError, duckdb.IntegrityError, TypeError, ValueError, OverflowError)

_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()
_synced: dict[str, tuple[SlaRow, ...]] = {}


class MonitoringStore:
    """Reads and writes the ``mon_*`` tables of one DuckDB file. See the module docstring.

        store = MonitoringStore(tmp_path / "monitoring.duckdb", lock_timeout_seconds=1.0)
        assert store.write([]) == 0 and store.schema_version() == 3
    """

    def __init__(self, path: str | Path, *, lock_timeout_seconds: float = 1.0, spool_dir: str | Path | None = None):
        self.path = Path(path)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.spool = Spool(spool_dir or f"{self.path}.spool")

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection, opened with bounded waiting on the lock and always closed.

        Within a process, writers take turns: threads share one DuckDB instance, where two
        transactions replaying the same spooled record would conflict at commit."""
        if read_only and not self.path.exists():
            raise StoreError(f"monitoring database {self.path} does not exist yet (nothing was recorded)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if read_only else _process_write_lock(self.path):
            conn = self._open(read_only)
            try:
                # Every timestamp is UTC; a TIMESTAMPTZ cast to TIMESTAMP would otherwise be local time.
                conn.execute("SET TimeZone = 'UTC'")
                if not read_only:
                    ensure_schema(conn, self.path, _utcnow())
                yield conn
            finally:
                conn.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.01
        cleared = False
        while True:
            created = not self.path.exists()
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                message = str(exc)
                if _LOCK_MESSAGE.search(message) is None:
                    if not read_only and not cleared and (created or _HALF_CREATED.search(message)):
                        # A file we (or an earlier process) started and could not finish: a full
                        # disk or file-size limit. Left behind, it would be refused as corrupt
                        # once space is back, so remove it and start again (once).
                        cleared = self._remove_half_created()
                        if cleared and not created:
                            continue
                    verb = "create" if created and not read_only else "open"
                    raise StoreError(f"cannot {verb} monitoring database {self.path}: {_first_line(exc)}") from None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = _LOCK_HOLDER.search(str(exc))
                    raise StoreLockedError(self.path, self.lock_timeout_seconds,
                                           holder_pid=int(holder.group(2)) if holder else None,
                                           holder=holder.group(1) if holder else None) from None
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
                delay = min(delay * 2, 0.2)

    def _remove_half_created(self) -> bool:
        """Remove the database file if it holds no data: shorter than DuckDB's headers, empty or
        beginning like a DuckDB file (so never a user's other file), with no write-ahead log."""
        wal = Path(f"{self.path}.wal")
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(12)
        except OSError:
            return False
        if size >= _MIN_DATABASE_BYTES or wal.exists() or (size and head[8:12] != _MAGIC):
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        logger.warning("monitoring database %s was left half-created (%d bytes, e.g. by a full disk); "
                       "removed it to create it again", self.path, size)
        return True

    # -- writing --------------------------------------------------------------------------------
    def write(self, records: Sequence[PerformanceRecord], sla_rules: Any = None) -> int:
        """Insert records (ignoring ids already stored) and replay the spool; returns rows inserted.

        ``sla_rules``: the SLA rows to mirror into ``mon_sla_definitions`` (a sequence of
        :class:`~.sla_definitions.SlaRow`, or ``SlaRules``), or None to leave them."""
        with self.connect() as conn:
            return self._write(conn, records, sla_rows(sla_rules))

    def replay_spool(self, sla_rules: Any = None, limit: int | None = None) -> int:
        """Insert spooled records into the database and drop them from the spool.

        A spooled file that cannot be read, or whose record the database refuses, is quarantined
        (kept as ``.bad`` with the reason) and never blocks the others."""
        with self.connect() as conn:
            return self._write(conn, [], sla_rows(sla_rules), limit)

    def _write(self, conn: duckdb.DuckDBPyConnection, records: Sequence[PerformanceRecord],
               rows: tuple[SlaRow, ...] | None, limit: int | None = None) -> int:
        # Imported here: pydantic and psutil would cost every read command of the CLI ~50 ms.
        from ..recording.records import PerformanceRecord

        batch: list[tuple[PerformanceRecord, Path | None]] = []
        for path, payload in self.spool.pending(limit):
            try:
                batch.append((PerformanceRecord.from_json(payload), path))
            except (ValueError, TypeError, KeyError) as exc:
                self.spool.quarantine(path, f"{type(exc).__name__}: {exc}")
        batch += [(r, None) for r in records]
        key = os.path.abspath(self.path)
        sync = rows is not None and _synced.get(key) != rows

        def sync_sla() -> None:
            if sync and rows is not None:
                sync_sla_definitions(conn, rows)

        def sync_and_insert() -> int:
            sync_sla()
            return insert_records(conn, [r for r, _ in batch])

        try:
            inserted = self._transaction(conn, sync_and_insert)
        except _RECORD_ERRORS:
            # One record the database refuses must not hold back the others: take them one by one.
            self._transaction(conn, sync_sla)
            inserted = self._write_one_by_one(conn, batch)
        if sync and rows is not None:
            _synced[key] = rows
        # Only after the commit: a crash in between replays harmlessly.
        self.spool.remove([p for _, p in batch if p is not None])
        return inserted

    def _write_one_by_one(self, conn: duckdb.DuckDBPyConnection,
                          batch: list[tuple[PerformanceRecord, Path | None]]) -> int:
        inserted, refused = 0, 0
        for record, path in batch:
            try:
                inserted += self._transaction(conn, lambda r=record: insert_records(conn, [r]))
            except _RECORD_ERRORS as exc:
                refused += 1
                reason = f"refused by the database: {_first_line(exc)}"
                if path is None:  # a record handed to write(): kept in the spool's quarantine, not lost
                    path = self.spool.put(record.performance_id, record.to_json())
                self.spool.quarantine(path, reason)
        logger.warning("%d monitoring record(s) refused by %s were set aside in %s (.bad files, with the reason)",
                       refused, self.path, self.spool.directory)
        return inserted

    @staticmethod
    def _transaction(conn: duckdb.DuckDBPyConnection, work: Any) -> Any:
        conn.execute("BEGIN")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has rolled back already
                conn.execute("ROLLBACK")
            raise
        return result

    # -- reading --------------------------------------------------------------------------------
    def read_performance(self) -> pd.DataFrame:
        """Every stored record as a DataFrame (pandas is imported by DuckDB only when asked for)."""
        with self.connect(read_only=True) as conn:
            return conn.execute(
                "SELECT * FROM mon_multi_year_performance ORDER BY execution_start_time, component_name"
            ).df()

    def read_table(self, table: str) -> pd.DataFrame:
        """One ``mon_*`` table or view as a DataFrame."""
        if not re.fullmatch(r"mon_[a-z_]+", table):
            raise ValueError(f"not a monitoring table: {table!r}")
        with self.connect(read_only=True) as conn:
            return conn.execute(f"SELECT * FROM {table}").df()

    @contextlib.contextmanager
    def session(self, read_only: bool = False) -> Iterator[StoreSession]:
        """Several reads and writes on one short connection (e.g. one sensor tick)."""
        with self.connect(read_only=read_only) as conn:
            yield StoreSession(conn)

    def alerts(self, status: str | None = None, limit: int = 100) -> pd.DataFrame:
        """Alerts, newest first, as a DataFrame."""
        with self.session(read_only=True) as s:
            return s.alerts(status, limit).df()

    def acknowledge_alert(self, alert_id: str, now: datetime | None = None) -> int:
        """Mark every delivery of the alert acknowledged (at ``now``, UTC); returns how many were."""
        with self.session() as s:
            return s.acknowledge_alert(alert_id, now or _utcnow())

    def prune(self, older_than: timedelta, now: datetime | None = None) -> dict[str, int]:
        """Delete history older than ``older_than`` (by each table's own timestamp); keep the rest.
        Returns the rows removed per table. SLA definitions and the schema version are kept."""
        cutoff = (now or _utcnow()) - older_than
        removed: dict[str, int] = {}

        def delete() -> None:
            for table, column in _PRUNABLE.items():
                if table == "mon_phase_timings":
                    sql = ("DELETE FROM mon_phase_timings WHERE performance_id IN (SELECT performance_id FROM "
                           "mon_multi_year_performance WHERE execution_end_time < ?)")
                else:
                    sql = f"DELETE FROM {table} WHERE {column} < ?"
                (removed[table],) = conn.execute(sql, [cutoff]).fetchone() or (0,)

        with self.connect() as conn:
            self._transaction(conn, delete)
        return removed

    def schema_version(self) -> int:
        with self.connect(read_only=True) as conn:
            return current_version(conn)


# table -> the timestamp that dates a row; phases go with their record (so before it)
_PRUNABLE = {
    "mon_phase_timings": None,
    "mon_multi_year_performance": "execution_end_time",
    "mon_multi_year_regression": "detection_timestamp",
    "mon_alerts": "created_at",
    "mon_run_failures": "failed_at",
}


def _process_write_lock(path: Path) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(os.path.abspath(path), threading.Lock())


def _utcnow() -> datetime:
    from ..recording.measure import utcnow  # not at import: psutil and pydantic, for writes only

    return utcnow()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
