"""The DuckDB backend: one file on one machine, opened with bounded waiting on its lock.

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore(tmp_path / "monitoring.duckdb")      # a DuckDBStore
    store.write([record])

DuckDB lets one process at a time open a file for writing, and the plugin's writers are many
short-lived step processes, dbt, and perhaps a user's notebook. So every connection is short,
opening it retries on the lock for at most ``lock_timeout_seconds``, and a write that still cannot
get the lock leaves its record in the spool (see :mod:`planwise_monitoring.store.writer`), from where
the next successful write replays it. Record ids make replay idempotent.

What is DuckDB's own lives here: opening a file, its lock and error messages, a file a full
disk left half-created, which errors belong to one record, checking a user's SQL with DuckDB's
parser. The shared logic is in :mod:`.base`, the queries in :mod:`.session`, :mod:`.figures`
and :mod:`.performance`, the DDL in :mod:`.schema`.
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
from pathlib import Path
from typing import Any

import duckdb

from .base import BackendConnection, MonitoringStore, first_line, utcnow
from .errors import QueryError, StoreError, StoreLockedError
from .rows import Rows
from .schema import ensure_schema
from .session import StoreSession

__all__ = ["DuckDBStore", "MonitoringStore", "StoreError", "StoreLockedError", "StoreSession"]

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
_COLUMN_TYPES: dict[str, dict[str, str]] = {}  # table -> column -> type: our schema's, the same in every file

_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


class DuckDBConnection(BackendConnection):
    """A DuckDB connection as the store's queries use it (see :mod:`.base`); ``raw`` is DuckDB's."""

    dialect = "duckdb"

    def __init__(self, raw: duckdb.DuckDBPyConnection):
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        return self.raw.execute(sql, params)

    def count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Rows changed by one INSERT, UPDATE or DELETE (DuckDB returns the count as a row)."""
        return int((self.raw.execute(sql, params).fetchone() or (0,))[0])

    def insert_rows(self, table: str, columns: list[str], rows: list[list[Any]], on_conflict: bool = True) -> int:
        """One INSERT of every row, each column sent as one typed list (``unnest(?::TYPE[])``):
        seven times cheaper than a VALUES list of one parameter per value, whatever the row count.
        Returns how many rows went in (a key refuses the others when ``on_conflict``)."""
        if not rows:
            return 0
        types = self._column_types(table)
        select = ", ".join(f"unnest(?::{types[c]}[])" for c in columns)
        conflict = " ON CONFLICT DO NOTHING" if on_conflict else ""
        return self.count(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}{conflict}",
                          [list(values) for values in zip(*rows, strict=True)])

    def _column_types(self, table: str) -> dict[str, str]:
        types = _COLUMN_TYPES.get(table)
        if types is None:
            types = _COLUMN_TYPES[table] = dict(self.raw.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema()", [table]).fetchall())
        return types

    def insert_new(self, table: str, columns: list[str], rows: list[list[Any]], key: str) -> set[str]:
        """Insert the rows whose ``key`` (a UUID column) is not stored; returns those keys.
        One writer at a time holds the file, so looking the keys up first is safe, and saves
        the unique index a conflict check would need (half a row's bytes)."""
        at = columns.index(key)
        stored = {str(k) for (k,) in self.raw.execute(
            f"SELECT {key} FROM {table} WHERE {key} IN (SELECT unnest(?::UUID[]))", [[row[at] for row in rows]]
        ).fetchall()}
        new = [row for row in rows if str(row[at]) not in stored]
        if new:
            self.insert_rows(table, columns, new, on_conflict=False)
        return {str(row[at]) for row in new}

    def lock_histories(self, keys: Sequence[tuple[str, str]]) -> None:
        """Nothing to do: the file's lock lets one writer in at a time."""

    def take_turns(self, name: str) -> None:
        """Nothing to do: the file's lock lets one writer in at a time."""

    def replace_table(self, table: str, sql: str, params: Any) -> None:
        self.raw.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}", params)

    def table_exists(self, name: str) -> bool:
        (found,) = self.raw.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = current_schema()",
            [name]).fetchone() or (0,)
        return bool(found)

    def frame(self, sql: str) -> Any:
        return self.raw.execute(sql).df()  # DuckDB's own conversion: NULL numbers as NaN, times as datetime64


class DuckDBStore(MonitoringStore):
    """The ``mon_*`` tables in one DuckDB file. See the module docstring.

        store = DuckDBStore(tmp_path / "monitoring.duckdb", lock_timeout_seconds=1.0)
        assert store.write([]) == 0 and store.path.exists()
    """

    dialect = "duckdb"
    database_errors = (duckdb.Error,)
    record_errors = (duckdb.DataError, duckdb.IntegrityError, TypeError, ValueError, OverflowError)

    def __init__(self, path: str | Path, *, lock_timeout_seconds: float = 1.0, spool_dir: str | Path | None = None,
                 schema: str | None = None):
        if schema:
            raise StoreError(f"schema {schema!r}: a schema applies to a PostgreSQL database only, "
                             f"not the DuckDB file {path}")
        self.path = Path(path)
        super().__init__(path, lock_timeout_seconds=lock_timeout_seconds, spool_dir=spool_dir)

    @property
    def target(self) -> str:
        return str(self.path)

    @property
    def location(self) -> str:
        return os.path.abspath(self.path)

    def default_spool_dir(self) -> Path:
        return Path(f"{self.path}.spool")

    def exists(self) -> bool:
        return self.path.exists()

    def with_lock_timeout(self, seconds: float) -> DuckDBStore:
        store = DuckDBStore(self.path, lock_timeout_seconds=seconds, spool_dir=self.spool.directory)
        store.spool = self.spool  # the same fallback directory and clock
        return store

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[DuckDBConnection]:
        """A short connection, opened with bounded waiting on the lock and always closed.

        Within a process, writers take turns: threads share one DuckDB instance, where two
        transactions replaying the same spooled record would conflict at commit."""
        if read_only and not self.path.exists():
            raise StoreError(f"monitoring database {self.path} does not exist yet (nothing was recorded)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if read_only else _process_write_lock(self.path):
            raw = self._open(read_only)
            try:
                # Every timestamp is UTC; a TIMESTAMPTZ cast to TIMESTAMP would otherwise be local time.
                raw.execute("SET TimeZone = 'UTC'")
                conn = DuckDBConnection(raw)
                if not read_only:
                    ensure_schema(conn, str(self.path), utcnow())
                yield conn
            finally:
                raw.close()

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
                    raise StoreError(f"cannot {verb} monitoring database {self.path}: {first_line(exc)}") from None
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

    # -- a user's SQL -----------------------------------------------------------------------------
    def query(self, sql: str, limit: int | None, params: Sequence[Any] | None = None) -> Rows:
        """One SELECT (DuckDB's own parser decides), on a read-only connection with file access
        off, so even a SELECT cannot read or write other files (``read_csv('/etc/passwd')``,
        ``COPY … TO``, ``ATTACH``). The parser check gives the clear message; the connection
        settings are what actually guarantee it."""
        with self.connect(read_only=True) as conn:
            # Off for the whole DuckDB instance of this file in this process, and it cannot be switched
            # back on while the instance lives: fine, as store connections are short and this one is
            # read-only (a writer in the same process could not share the instance anyway).
            conn.raw.execute("SET enable_external_access = false")
            text, explain = check_select(conn.raw, sql)
            if explain or not limit:
                wrapped, limit = text, None  # EXPLAIN output is never cut
            else:
                # The database stops at one row past the limit (which only says there were more).
                # Newlines, so that a trailing "-- comment" in the user's SQL cannot swallow the LIMIT.
                wrapped = f"SELECT * FROM (\n{text}\n) LIMIT {int(limit) + 1}"
            try:
                return Rows.of(conn.raw.execute(wrapped, list(params) if params else None), limit)
            except duckdb.Error as exc:
                raise QueryError(first_line(exc)) from None


_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.I)


def check_select(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, bool]:
    """The single statement in ``sql`` without its trailing ``;``, and whether it is an EXPLAIN.
    Raises :class:`QueryError` for anything but one SELECT or one EXPLAIN of a SELECT."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise QueryError(f"only a single SELECT query is allowed (got {len(statements)} statements: {kinds})")
    statement = statements[0]
    text = statement.query.strip().rstrip(";").strip()
    if statement.type == duckdb.StatementType.SELECT:
        return text, False
    if statement.type == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement, so what is explained must pass the same check.
        inner = _EXPLAIN.match(text)
        if inner is None:
            raise QueryError("only SELECT queries are allowed (got an EXPLAIN this tool cannot check)")
        inner_type = conn.extract_statements(text[inner.end():])[0].type
        if inner_type != duckdb.StatementType.SELECT:
            raise QueryError(f"only SELECT queries are allowed (got EXPLAIN of {inner_type.name})")
        return text, True
    raise QueryError(f"only SELECT queries are allowed (got {statement.type.name})")


def _process_write_lock(path: Path) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(os.path.abspath(path), threading.Lock())
