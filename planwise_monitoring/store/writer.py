"""Getting records into the store without making the monitored step wait.

On PostgreSQL (a store with ``direct_writes``) a step writes its records itself, in one short
transaction on a pooled connection, and waits for it at most the store's lock timeout; whatever
does not get in by then (the server is unreachable, busy or refusing connections) is spooled
below and replayed like any other spooled record.

Opening a DuckDB file costs tens of milliseconds and may wait on another process's lock, so on
DuckDB a monitored step never writes to the database itself. It puts its record in the spool (one small
file, well under a millisecond) and wakes this process's background writer, which moves spooled
records into DuckDB. Before the process exits the writer makes a last, bounded attempt, so a
record normally reaches the database by the time its run ends; if the database stays locked the
record waits in the spool until the next write from any process, and a warning says so.

    from planwise_monitoring.store.writer import writer_for

    writer = writer_for(store)
    writer.submit(record)
    assert writer.flush(timeout_seconds=5)  # tests, tools and teardown: drain now, bounded

Nothing is lost on the way: a figure the database would refuse becomes NULL before the record is
spooled (see ``recording.records.storable``); when neither the spool nor its fallback directory
can be written (a full disk, a file where the directory should be), the record is held in memory
and the background thread writes it to the database directly, and a warning says so once.
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
from typing import Any

from ..events import JsonEventLog
from ..recording.records import PerformanceRecord, storable
from ..redaction import redact
from . import MonitoringStore, StoreError  # the package's names: stable while the store's modules move
from .spool import take_notices

log = logging.getLogger("planwise_monitoring")

_SETTLE_SECONDS = 0.25  # a record reaches DuckDB this long after its step, or at process exit
_RETRY_DELAYS = (0.5, 2.0, 5.0)  # background retries after a locked database, then wait for new work
# At exit, how long to wait for a background drain under way (its lock wait plus its write): the
# interpreter must not shut down while a daemon thread is inside DuckDB.
EXIT_WAIT_SECONDS = 30.0
MAX_HELD_RECORDS = 10_000  # records kept in memory while no spool can be written (~1 KB each)


class RecordWriter:
    """
        writer = RecordWriter(MonitoringStore(tmp_path / "monitoring.duckdb"))
        writer.submit(record)
        assert writer.flush() and not writer.pending_ids()

    Spools records at once and drains the spool into the store from a background thread.
    Thread-safe: steps submit from their threads, the background thread drains, and ``flush``
    may come at the same time from a resource's teardown or from ``atexit``.
    """

    def __init__(self, store: MonitoringStore):
        self.store = store
        # Handed as is to the store's replay (SLA rules to mirror into mon_sla_definitions); the
        # store decides what it needs, so the writer does not import the evaluation stage.
        self.sla_rules: Any = None
        self.event_log: JsonEventLog | None = None  # set by the monitored steps that use this writer
        self._wake = threading.Event()
        self._io = threading.Lock()  # one drain at a time in this process
        self._state = threading.Lock()  # guards the fields below, touched from several threads
        self._thread: threading.Thread | None = None
        self._mine: set[str] = set()  # ids this process submitted and has not seen stored
        self._held: dict[str, Any] = {}  # records no spool could take
        self._warnings: list[str] = []
        self._warned_held = False
        self._closed = False  # set at exit: DuckDB must not run in a daemon thread during shutdown
        self._exited = False

    def submit(self, record: PerformanceRecord, sla_rules: Any = None) -> None:
        """Store one record; see :meth:`submit_all`."""
        self.submit_all([record], sla_rules)

    def submit_all(self, records: Iterable[Any], sla_rules: Any = None, direct: bool = True) -> None:
        """Store a step's records: written at once where the store takes direct writes (bounded
        by its lock timeout; ``direct=False``: never, e.g. on an optimizer's path), else (and if
        that fails) spooled, durable from there on, with a background drain scheduled. A record
        is any kind the store takes (see ``store.base.decode``). A step's figure the database
        would refuse is stored as NULL, with a warning; a step record that cannot be stored at
        all (no usable duration) is dropped with a warning."""
        batch = []
        for record in records:
            cleaned, problems = storable(record) if isinstance(record, PerformanceRecord) else (record, [])
            for problem in problems:
                self._warn(problem, event="record_figures")
            if cleaned is not None:
                batch.append(cleaned)
        if not batch:
            return
        if sla_rules is not None:
            self.sla_rules = sla_rules
        if direct and self.store.direct_writes and self._write_directly(batch):
            return
        for cleaned in batch:
            with self._state:
                self._mine.add(cleaned.spool_id)
            try:
                self.store.spool.put(cleaned.spool_id, cleaned.to_json())
            except OSError as exc:
                self._hold(cleaned, exc)
        self._relay_spool_notices()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="planwise-monitoring-writer", daemon=True)
            self._thread.start()
        self._wake.set()

    def _write_directly(self, records: list[Any]) -> bool:
        """One transaction for the records, on a thread of its own so that the step waits at
        most the lock timeout whatever the network does; False (with a warning) when they are
        not stored by then. A write that lands after the step gave up is harmless: the spooled
        copies are then replayed as ids already stored."""
        done = threading.Event()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                with self._io:  # one write at a time in this process
                    self.store.write(records, self.sla_rules)
            except BaseException as exc:  # reported by the waiting step
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=write, name="planwise-monitoring-direct-write", daemon=True).start()
        timeout = self.store.lock_timeout_seconds
        if done.wait(timeout) and not failure:
            if self.event_log is not None:
                self.event_log.event("records_written", level="DEBUG", records=len(records),
                                     database=self.store.target)
            return True
        reason = (f"{type(failure[0]).__name__}: {failure[0]}" if failure and not isinstance(failure[0], StoreError)
                  else str(failure[0]) if failure else
                  f"monitoring database {self.store.target} did not take the records within {timeout:g}s")
        self._warn(f"{reason}; {len(records)} record(s) of this step are spooled in {self.store.spool.directory} "
                   "and will be written by the next successful write")
        return False

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Drain the spool now; returns whether this process's records are all stored.

        Bounded: waits at most ``timeout_seconds`` (default: the store's lock timeout) for a
        drain already under way in the background thread and then for the database lock, so it
        is safe from a resource's teardown and from ``atexit``."""
        self._drain(timeout_seconds)
        return not self.pending_ids()

    def pending_ids(self) -> set[str]:
        """Ids this process submitted that are not in the database yet (spooled or held)."""
        with self._state:
            mine, held = set(self._mine), set(self._held)
        waiting = {i for i in mine if i in held or self.store.spool.has(i)}
        with self._state:
            self._mine -= mine - waiting  # stored (or set aside by the store as unstorable)
        return waiting

    def take_warnings(self) -> list[str]:
        """Warnings from background drains since the last call, for the step's Dagster log."""
        self._relay_spool_notices()
        with self._state:
            out, self._warnings = self._warnings, []
        return out

    # -- the background thread -----------------------------------------------------------------
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

    def _drain(self, timeout_seconds: float | None = None, final: bool = False,
               drain_wait_seconds: float | None = None) -> bool:
        """One drain. Waits for a drain under way for ``drain_wait_seconds`` (default: within the
        same budget as the database lock, ``timeout_seconds`` or the store's lock timeout)."""
        budget = self.store.lock_timeout_seconds if timeout_seconds is None else timeout_seconds
        deadline = time.monotonic() + budget
        if not self._io.acquire(timeout=max(budget if drain_wait_seconds is None else drain_wait_seconds, 0.0)):
            return False  # the background drain is still at it; it will finish the job
        if drain_wait_seconds is not None:
            deadline = time.monotonic() + budget  # the lock budget starts once the other drain is done
        try:
            if self._closed:
                return True
            self._closed = final
            held = self._respool_held()
            store = self.store
            if not held and not store.spool.count():
                return True  # nothing to write: don't open (and lock) the database for nothing
            remaining = max(deadline - time.monotonic(), 0.0)
            if timeout_seconds is not None or remaining < store.lock_timeout_seconds:
                store = store.with_lock_timeout(remaining)
            try:
                written = store.write(held, self.sla_rules) if held else store.replay_spool(self.sla_rules)
                with self._state:
                    for record in held:
                        self._held.pop(record.spool_id, None)
                if self.event_log is not None:
                    self.event_log.event("records_written", level="DEBUG", records=written, database=store.target)
                return True
            except StoreError as exc:
                self._warn(f"{exc}; {self._waiting(store)} and will be written by the next successful write")
            except Exception as exc:  # monitoring must never take the process down
                self._warn(f"could not write monitoring records to {store.target}: "
                           f"{type(exc).__name__}: {exc}; {self._waiting(store)}")
            return False
        finally:
            self._relay_spool_notices()
            self._io.release()

    # -- when no spool can be written -----------------------------------------------------------
    def _hold(self, record: Any, exc: OSError) -> None:
        with self._state:
            self._held[record.spool_id] = record
            dropped = []
            while len(self._held) > MAX_HELD_RECORDS:
                oldest = next(iter(self._held))
                dropped.append(self._held.pop(oldest))
                self._mine.discard(oldest)
            first, self._warned_held = not self._warned_held, True
        if first:
            self._warn(f"{exc}; records are held in memory and written to {self.store.target} directly "
                       "by the background writer until the spool can be written again")
        for record in dropped:
            self._warn(f"more than {MAX_HELD_RECORDS} records held in memory; record {record.spool_id} "
                       f"is lost: {record.to_json()}")

    def _respool_held(self) -> list[Any]:
        """Move held records back to the spool if it can be written again; returns those it can't take."""
        with self._state:
            held = list(self._held.values())
        still = []
        for record in held:
            try:
                self.store.spool.put(record.spool_id, record.to_json())
            except OSError:
                still.append(record)
                continue
            with self._state:
                self._held.pop(record.spool_id, None)
        return still

    def _waiting(self, store: MonitoringStore) -> str:
        with self._state:
            held = len(self._held)
        where = f"{store.spool.count()} record(s) wait in {store.spool.directory}"
        return where + (f" and {held} in this process's memory" if held else "")

    def _relay_spool_notices(self) -> None:
        notices = take_notices(self.store.spool.directories())  # already logged by the spool; the next step's Dagster log gets them too
        if notices:
            with self._state:
                self._warnings += notices

    def _warn(self, message: str, event: str = "store_unavailable") -> None:
        message = redact(message) or message  # a database error may quote anything
        log.warning("planwise-monitoring: %s", message)
        with self._state:
            self._warnings.append(message)
        if self.event_log is not None:
            self.event_log.event(event, level="WARNING", message=message)

    def _at_exit(self) -> None:
        if self._exited:
            return  # atexit and multiprocessing's finalizer may both call this
        self._exited = True
        if self.pending_ids():
            self._drain(final=True, drain_wait_seconds=EXIT_WAIT_SECONDS)
        elif self._io.acquire(timeout=EXIT_WAIT_SECONDS):
            self._closed = True
            self._io.release()
        waiting = self.pending_ids()
        with self._state:
            held = [r for i, r in self._held.items() if i in waiting]
        spooled = len(waiting) - len(held)
        # stderr reaches Dagster's captured step logs even after the event stream has closed
        if spooled:
            print(f"planwise-monitoring: WARNING: {spooled} record(s) left in {self.store.spool.directory}; "
                  "they will be replayed by the next write", flush=True, file=sys.stderr)
        for record in held:
            # the last copy of a record no spool could take: printed whole, so it can be recovered
            print(f"planwise-monitoring: UNSAVED RECORD {record.to_json()}", flush=True, file=sys.stderr)


_writers: dict[tuple[int, str, str], RecordWriter] = {}
_writers_lock = threading.Lock()
_exit_hook_pid: int | None = None


def writer_for(store: MonitoringStore) -> RecordWriter:
    """This process's writer for the store's database and spool.

        writer = writer_for(MonitoringStore(tmp_path / "monitoring.duckdb"))
        assert writer is writer_for(MonitoringStore(tmp_path / "monitoring.duckdb"))
    """
    global _exit_hook_pid
    key = (os.getpid(), store.location, os.path.abspath(store.spool.directory))
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
        try:
            writer._at_exit()
        except Exception as exc:  # one writer's trouble must not keep the others from flushing
            log.warning("planwise-monitoring: flushing at exit failed: %s: %s", type(exc).__name__, exc)
