"""Getting records into the store without making the monitored step wait.

Opening a DuckDB file costs tens of milliseconds and may wait on another process's lock, so a
monitored step never writes to the database itself. It puts its record in the spool (one small
file, well under a millisecond) and wakes this process's background writer, which moves spooled
records into DuckDB. Before the process exits the writer makes a last, bounded attempt, so a
record normally reaches the database by the time its run ends; if the database stays locked the
record waits in the spool until the next write from any process, and a warning says so.

    from planwise_monitoring.store.writer import writer_for

    writer = writer_for(store)
    writer.submit(record)
    writer.flush()  # only tests and tools need this: wait until the spool is drained
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import sys
import threading
import time
from collections.abc import Iterable

from ..recording.records import PerformanceRecord
from ..evaluation.sla import SlaRules
from .duckdb import MonitoringStore, StoreError

log = logging.getLogger("planwise_monitoring")

_SETTLE_SECONDS = 0.25  # a record reaches DuckDB this long after its step, or at process exit
_RETRY_DELAYS = (0.5, 2.0, 5.0)  # background retries after a locked database, then wait for new work


class RecordWriter:
    """Spools records at once and drains the spool into the store from a background thread."""

    def __init__(self, store: MonitoringStore):
        self.store = store
        self.sla_rules: SlaRules | None = None
        self._wake = threading.Event()
        self._io = threading.Lock()  # one drain at a time in this process
        self._thread: threading.Thread | None = None
        self._mine: set[str] = set()  # ids this process spooled and has not seen stored
        self._warnings: list[str] = []
        self._closed = False  # set at exit: DuckDB must not run in a daemon thread during shutdown
        self.event_log = None  # a JsonEventLog, set by the monitored steps that use this writer

    def submit(self, record: PerformanceRecord, sla_rules: SlaRules | None = None) -> None:
        """Spool the record (durable from here on) and schedule a background drain."""
        self.store.spool.put(record.performance_id, record.to_json())
        self._mine.add(record.performance_id)
        if sla_rules is not None:
            self.sla_rules = sla_rules
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="planwise-monitoring-writer", daemon=True)
            self._thread.start()
        self._wake.set()

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Drain the spool now, waiting on the lock up to ``timeout_seconds`` (default: the store's).
        Returns whether this process's records are all stored."""
        self._drain(timeout_seconds)
        return not self.pending_ids()

    def pending_ids(self) -> set[str]:
        spool_dir = self.store.spool.directory
        self._mine -= {i for i in list(self._mine) if not (spool_dir / f"{i}.json").exists()}
        return set(self._mine)

    def take_warnings(self) -> list[str]:
        """Warnings from background drains since the last call, for the step's Dagster log."""
        out, self._warnings = self._warnings, []
        return out

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Let the step that spooled the record finish before competing with it for the GIL;
            # whatever is spooled meanwhile goes into the same batch.
            time.sleep(_SETTLE_SECONDS)
            self._wake.clear()
            for delay in (0.0, *_RETRY_DELAYS):
                if delay and self._wake.wait(delay):
                    self._wake.clear()  # new work arrived: drain now, with it
                if self._drain():
                    break

    def _drain(self, timeout_seconds: float | None = None, final: bool = False) -> bool:
        with self._io:
            if self._closed:
                return True
            self._closed = final
            store = self.store
            if not store.spool.count():
                return True  # nothing to write: don't open (and lock) the database for nothing
            if timeout_seconds is not None:
                store = MonitoringStore(store.path, lock_timeout_seconds=timeout_seconds,
                                        spool_dir=store.spool.directory)
            try:
                written = store.replay_spool(self.sla_rules)
                if self.event_log is not None:
                    self.event_log.event("records_written", level="DEBUG", records=written, database=str(store.path))
                return True
            except StoreError as exc:
                self._warn(f"{exc}; {store.spool.count()} record(s) wait in {store.spool.directory} "
                           "and will be written by the next successful write")
            except Exception as exc:  # monitoring must never take the process down
                self._warn(f"could not write monitoring records to {store.path}: "
                           f"{type(exc).__name__}: {exc}; they stay in {store.spool.directory}")
            return False

    def _warn(self, message: str) -> None:
        log.warning("planwise-monitoring: %s", message)
        self._warnings.append(message)
        if self.event_log is not None:
            self.event_log.event("store_unavailable", level="WARNING", message=message)

    def _at_exit(self) -> None:
        if self.pending_ids():
            self._drain(final=True)
        else:
            with self._io:
                self._closed = True
        if self.pending_ids():
            # stderr reaches Dagster's captured step logs even after the event stream has closed
            print(f"planwise-monitoring: WARNING: {len(self._mine)} record(s) left in "
                  f"{self.store.spool.directory}; they will be replayed by the next write", flush=True,
                  file=sys.stderr)


_writers: dict[tuple[int, str, str], RecordWriter] = {}
_writers_lock = threading.Lock()
_exit_hook_pid: int | None = None


def writer_for(store: MonitoringStore) -> RecordWriter:
    """This process's writer for the store's database and spool."""
    global _exit_hook_pid
    key = (os.getpid(), os.path.abspath(store.path), os.path.abspath(store.spool.directory))
    with _writers_lock:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = RecordWriter(store)
        if _exit_hook_pid != os.getpid():
            # atexit covers normal interpreter exit (and Dagster's default "spawn" step processes);
            # multiprocessing's finalizers cover children that leave through os._exit (fork/forkserver).
            atexit.register(flush_all_writers)
            multiprocessing.util.Finalize(None, flush_all_writers, exitpriority=10)
            _exit_hook_pid = os.getpid()
    return writer


def all_writers() -> Iterable[RecordWriter]:
    pid = os.getpid()
    with _writers_lock:
        return [w for (p, _, _), w in _writers.items() if p == pid]


def flush_all_writers() -> None:
    for writer in all_writers():
        writer._at_exit()
