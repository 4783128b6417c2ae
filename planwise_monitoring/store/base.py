"""What every backend of the monitoring database does alike: writing records (and replaying the
spool), reading, sessions, alerts, pruning. A backend only knows how to connect and what its
dialect needs (see :mod:`.duckdb` and :mod:`.postgres`).

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("monitoring.duckdb")                        # DuckDBStore: one machine
    store = MonitoringStore("postgresql://app@db:5432/monitoring")      # PostgresStore: many writers
    store.write([record])            # or spool records and store.replay_spool()
    df = store.read_performance()

``MonitoringStore(target)`` picks the backend from the target: a ``postgresql://`` (or
``postgres://``) URL is PostgreSQL, anything else a DuckDB file. Everything above the store
(the writer, sensors, checks, reports, the command line) calls this interface and never learns
which backend it has.

A backend's connection (what ``connect`` yields and sessions use) takes ``?`` and ``$name``
parameters on both dialects and offers the few operations whose SQL differs: ``count`` (rows a
statement changed), ``insert_rows``, ``insert_new`` (rows whose key is not stored yet),
``lock_histories``, ``take_turns``, ``replace_table``, ``table_exists``, ``frame`` (a query as a DataFrame),
``begin`` / ``commit`` / ``rollback``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..identity import os_user
from . import baselines, rollups
from .audit import CHANGE, REPORT, ChainVerdict, ChangeEntry, append_entries, verify_chain
from .errors import StoreError
from .optimization import insert_optimization
from .performance import insert_records
from .rows import Rows, select
from .schema import current_version
from .session import StoreSession
from .sla_definitions import SlaRow, sla_rows, sync_sla_definitions
from .spool import Spool

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("planwise_monitoring.store")

_POSTGRES_URL = re.compile(r"^postgres(ql)?(\+\w+)?://", re.I)
_synced: dict[str, tuple[SlaRow, ...]] = {}
_TRANSIENT_TRIES = 3

# table -> the timestamp that dates a row; phases go with their record (so before it)
_PRUNABLE = {
    "mon_phase_timings": None,
    "mon_multi_year_performance": "execution_end_time",
    "mon_multi_year_regression": "detection_timestamp",
    "mon_alerts": "created_at",
    "mon_run_failures": "failed_at",
}


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a DuckDB file.

        assert is_postgres_url("postgresql://app@db/monitoring") and not is_postgres_url("m.duckdb")
    """
    return isinstance(target, str) and _POSTGRES_URL.match(target.strip()) is not None


class BackendConnection:
    """What both backends' connections share: explicit transactions on the driver's connection
    ``raw`` (kept in autocommit mode between them)."""

    raw: Any
    # Whether the backend keeps summary tables of the steps (see .rollups) in step with them.
    keeps_rollups: ClassVar[bool] = False
    # Whether a step's history figures are computed in its INSERT (see .performance), else after it.
    derives_in_insert: ClassVar[bool] = False

    def begin(self) -> None:
        self.raw.execute("BEGIN")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.execute("ROLLBACK")


class MonitoringStore:
    """Reads and writes the ``mon_*`` tables of one monitoring database. See the module docstring.

        store = MonitoringStore(tmp_path / "monitoring.duckdb", lock_timeout_seconds=1.0)
        assert store.write([]) == 0 and store.exists()

    ``lock_timeout_seconds`` bounds how long any write waits for the database (another
    process's lock, a busy server); ``spool_dir`` is where records wait while it cannot be
    written; ``schema`` (PostgreSQL only) the schema of the tables, else the connection's default.
    """

    dialect: ClassVar[str]
    # Raised by the backend's driver: the errors a caller may see from a session it opened.
    database_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    # Errors that belong to the rows of one statement (a value out of range, a NULL where none
    # may be), as opposed to the database (full disk, lock, I/O): worth retrying one by one.
    record_errors: ClassVar[tuple[type[BaseException], ...]] = (TypeError, ValueError, OverflowError)
    # Errors after which the same transaction may simply succeed when tried again.
    transient_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    # Whether a monitored step writes its records itself (the server takes concurrent writers)
    # rather than spooling them for a background writer.
    direct_writes: ClassVar[bool] = False

    def __new__(cls, target: str | Path, **kwargs: Any) -> MonitoringStore:
        if cls is MonitoringStore:
            if is_postgres_url(target):
                from .postgres import PostgresStore

                cls = PostgresStore
            else:
                from .duckdb import DuckDBStore

                cls = DuckDBStore
        return super().__new__(cls)

    def __init__(self, target: str | Path, *, lock_timeout_seconds: float = 1.0,
                 spool_dir: str | Path | None = None, schema: str | None = None):
        self.lock_timeout_seconds = lock_timeout_seconds
        self.spool = Spool(spool_dir or self.default_spool_dir())

    @property
    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        """What a session of this store may raise when the database cannot serve it (locked,
        unreachable, refusing): the errors a sensor or the alerting treats as "try again later"."""
        return (StoreError, OSError, *self.database_errors)

    # -- what a backend provides ------------------------------------------------------------------
    @property
    def target(self) -> str:
        """The database as messages name it (a URL without its password)."""
        raise NotImplementedError

    @property
    def location(self) -> str:
        """What tells two databases apart (a file's absolute path, a URL and schema)."""
        raise NotImplementedError

    def default_spool_dir(self) -> Path:
        raise NotImplementedError

    def connect(self, read_only: bool = False) -> contextlib.AbstractContextManager[Any]:
        """A short backend connection, always closed (or returned to its pool); a write
        connection brings the schema up to date first."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the database exists and holds our schema (a read would find tables)."""
        raise NotImplementedError

    def with_lock_timeout(self, seconds: float) -> MonitoringStore:
        """The same database and spool, waiting at most ``seconds`` for it."""
        raise NotImplementedError

    def query(self, sql: str, limit: int | None, params: Sequence[Any] | None = None) -> Rows:
        """A user's read-only SELECT, checked and confined as the backend can (see
        ``reporting.queries.run_query``); raises :class:`~.errors.QueryError`."""
        raise NotImplementedError

    # -- writing ----------------------------------------------------------------------------------
    def write(self, records: Sequence[Any], sla_rules: Any = None) -> int:
        """Insert records (ignoring ids already stored) and replay the spool; returns rows inserted.
        A record is any kind the spool holds (see :func:`decode`): a step's ``PerformanceRecord``,
        an optimization run or iteration chunk, an audit entry.

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

    def _write(self, conn: Any, records: Sequence[Any], rows: tuple[SlaRow, ...] | None,
               limit: int | None = None) -> int:
        batch: list[tuple[Any, Path | None]] = []
        for path, payload in self.spool.pending(limit):
            try:
                batch.append((decode(payload), path))
            except (ValueError, TypeError, KeyError) as exc:
                self.spool.quarantine(path, f"{type(exc).__name__}: {exc}")
        batch += [(r, None) for r in records]
        sync = rows is not None and _synced.get(self.location) != rows

        def sync_sla() -> None:
            if sync and rows is not None:
                sync_sla_definitions(conn, rows)

        def sync_and_insert() -> int:
            sync_sla()
            return insert_items(conn, [r for r, _ in batch])

        try:
            inserted = self._transaction(conn, sync_and_insert)
        except self.record_errors:
            # One record the database refuses must not hold back the others: take them one by one.
            self._transaction(conn, sync_sla)
            inserted = self._write_one_by_one(conn, batch)
        if sync and rows is not None:
            _synced[self.location] = rows
        # Only after the commit: a crash in between replays harmlessly.
        self.spool.remove([p for _, p in batch if p is not None])
        return inserted

    def _write_one_by_one(self, conn: Any, batch: list[tuple[Any, Path | None]]) -> int:
        inserted, refused = 0, 0
        for record, path in batch:
            try:
                inserted += self._transaction(conn, functools.partial(insert_items, conn, [record]))
            except self.record_errors as exc:
                refused += 1
                reason = f"refused by the database: {first_line(exc)}"
                if path is None:  # a record handed to write(): kept in the spool's quarantine, not lost
                    path = self.spool.put(record.spool_id, record.to_json())
                self.spool.quarantine(path, reason)
        logger.warning("%d monitoring record(s) refused by %s were set aside in %s (.bad files, with the reason)",
                       refused, self.target, self.spool.directory)
        return inserted

    def _transaction(self, conn: Any, work: Callable[[], Any]) -> Any:
        for attempt in range(1, _TRANSIENT_TRIES + 1):
            conn.begin()
            try:
                result = work()
                conn.commit()
                return result
            except self.transient_errors:
                conn.rollback()
                if attempt == _TRANSIENT_TRIES:
                    raise
            except BaseException:
                with contextlib.suppress(*self.database_errors):  # a failed COMMIT has rolled back already
                    conn.rollback()
                raise
        raise AssertionError("unreachable")

    # -- reading ----------------------------------------------------------------------------------
    def read_performance(self) -> pd.DataFrame:
        """Every stored record as a DataFrame."""
        with self.connect(read_only=True) as conn:
            return conn.frame("SELECT * FROM mon_multi_year_performance ORDER BY execution_start_time, component_name")

    def read_table(self, table: str) -> pd.DataFrame:
        """One ``mon_*`` table or view as a DataFrame."""
        if not re.fullmatch(r"mon_[a-z_]+", table):
            raise ValueError(f"not a monitoring table: {table!r}")
        with self.connect(read_only=True) as conn:
            return conn.frame(f"SELECT * FROM {table}")

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
            return s.acknowledge_alert(alert_id, now or utcnow())

    def prune(self, older_than: timedelta, now: datetime | None = None) -> dict[str, int]:
        """Delete history older than ``older_than`` (by each table's own timestamp); keep the rest.
        Returns the rows removed per table. SLA definitions, baselines (a current one may be older than
        the window) and the schema version are kept."""
        cutoff = (now or utcnow()) - older_than
        removed: dict[str, int] = {}

        def delete() -> None:
            if conn.keeps_rollups:
                rollups.before_prune(conn, cutoff)
            for table, column in _PRUNABLE.items():
                if table == "mon_phase_timings":
                    sql = ("DELETE FROM mon_phase_timings WHERE performance_id IN (SELECT performance_id FROM "
                           "mon_multi_year_performance WHERE execution_end_time < ?)")
                else:
                    sql = f"DELETE FROM {table} WHERE {column} < ?"
                removed[table] = conn.count(sql, [cutoff])
            if conn.keeps_rollups:
                rollups.after_prune(conn, cutoff)

        with self.connect() as conn:
            self._transaction(conn, delete)
        return removed

    # -- the parameter audit trail (see .audit) -----------------------------------------------------
    def log_changes(self, entries: Sequence[ChangeEntry]) -> int:
        """Append audit entries (ids already in the trail are skipped); returns how many were."""
        with self.connect() as conn:
            return self._transaction(conn, functools.partial(append_entries, conn, entries))

    def approve_change(self, change_id: str, by: str, now: datetime | None = None,
                       reason: str | None = None) -> ChangeEntry:
        """Append an approval of the change ``change_id`` by ``by``; the entry appended."""
        missing = StoreError(f"no parameter change {change_id!r} in the audit trail of {self.target}")
        try:
            change_id = str(uuid.UUID(change_id))
        except ValueError:
            raise missing from None
        approval = ChangeEntry.approval(change_id, user_name=by, recorded_at=now or utcnow(), reason=reason)

        def approve() -> None:
            found = conn.execute("SELECT entry_kind FROM mon_parameter_changes WHERE entry_id = CAST(? AS UUID)",
                                 [change_id]).fetchone()
            if found is None or found[0] != CHANGE:
                raise missing
            append_entries(conn, [approval])

        with self.connect() as conn:
            self._transaction(conn, approve)
        return approval

    def audit_report(self, start: datetime, end: datetime, limit: int | None = None) -> Rows:
        """The changes made in [start, end) with their approvals (see ``audit.REPORT``)."""
        with self.connect(read_only=True) as conn:
            return select(conn, REPORT, [start, end], limit)

    def verify_audit(self) -> ChainVerdict:
        """Check the whole audit trail: every entry's position, link and hash."""
        with self.connect(read_only=True) as conn:
            return verify_chain(conn)

    # -- performance baselines (see .baselines) -----------------------------------------------------
    def update_baselines(self, component: str, runs: int = 20,
                         now: datetime | None = None, by: str | None = None) -> int:
        """Append the next version of ``component``'s baselines, from its last ``runs`` successful runs
        per simulation year and scenario, computed at ``now`` (UTC) by ``by`` (default: the OS user);
        returns the version. StoreError if the component has no successful run.

            version = store.update_baselines("scd_workforce_state", runs=20)
        """
        now, by = _naive_utc(now), by or os_user()
        with self.connect() as conn:
            return int(self._transaction(conn, functools.partial(baselines.update, conn, component, runs, now, by,
                                                                 self.target)))

    def rollback_baselines(self, component: str, to_version: int | None = None, now: datetime | None = None,
                           by: str | None = None) -> int:
        """Append a new version of ``component``'s baselines copying version ``to_version`` (default:
        the one before the current one); returns the new version. StoreError if there is none.

            store.rollback_baselines("scd_workforce_state", to_version=1)
        """
        now, by = _naive_utc(now), by or os_user()
        with self.connect() as conn:
            return int(self._transaction(conn, functools.partial(baselines.rollback, conn, component, to_version,
                                                                 now, by, self.target)))

    def baselines(self, component: str | None = None, all_versions: bool = False, *, version: int | None = None,
                  limit: int | None = None) -> Rows:
        """The current version's baselines of ``component`` (default: of every component), a row per
        simulation year and scenario; ``all_versions``: every version, newest first; ``version``: that one.

            rows = store.baselines("scd_workforce_state").dicts()
        """
        with self.connect(read_only=True) as conn:
            return baselines.read(conn, component, all_versions, version, limit)

    def schema_version(self) -> int:
        with self.connect(read_only=True) as conn:
            return current_version(conn)


def decode(payload: bytes) -> Any:
    """A spooled record, by its kind: the kinds other than a step's record end ``"kind":"…"}``
    (see their ``to_json``). Raises ValueError (or TypeError, KeyError) for a file that is none."""
    # Imported here: pydantic and psutil would cost every read command of the CLI ~50 ms.
    from ..recording.optimization import IterationChunk, OptimizationRun
    from ..recording.records import PerformanceRecord

    kind = _KIND.search(payload[-48:])
    reader = {None: PerformanceRecord.from_json, "optimization_run": OptimizationRun.from_json,
              "optimization_iterations": IterationChunk.from_json,
              "parameter_change": ChangeEntry.from_json}.get(kind and kind.group(1).decode())
    if reader is None:
        raise ValueError(f"unknown kind of record {kind.group(1)!r}" if kind else "not a record")
    return reader(payload)


_KIND = re.compile(rb'"kind":"(\w+)"\}\s*$')


def insert_items(conn: Any, items: Sequence[Any]) -> int:
    """Insert records of every kind (in the caller's transaction); returns how many were new."""
    from ..recording.optimization import IterationChunk, OptimizationRun
    from ..recording.records import PerformanceRecord

    by_kind: dict[type, list[Any]] = {}
    for item in items:
        by_kind.setdefault(type(item), []).append(item)
    inserted = insert_records(conn, by_kind.pop(PerformanceRecord, []))
    inserted += insert_optimization(conn, by_kind.pop(OptimizationRun, []), by_kind.pop(IterationChunk, []))
    entries = by_kind.pop(ChangeEntry, [])
    if entries:
        inserted += append_entries(conn, entries)
    if by_kind:
        raise TypeError(f"the store takes no {', '.join(t.__name__ for t in by_kind)}")
    return inserted


def _naive_utc(moment: datetime | None) -> datetime:
    """``moment`` (default now) as every stored time is: naive UTC."""
    if moment is None:
        return utcnow()
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def utcnow() -> datetime:
    from ..recording.measure import utcnow as now  # not at import: psutil and pydantic, for writes only

    return now()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
