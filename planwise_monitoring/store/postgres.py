"""The PostgreSQL backend: the shared store when many machines write (psycopg 3).

    from planwise_monitoring.store import MonitoringStore

    store = MonitoringStore("postgresql://planwise@db:5432/monitoring", schema="planwise")
    store.write([record])             # one short transaction, idempotent on the record id

PostgreSQL takes concurrent writers, so a step writes its records itself in one transaction
(``direct_writes``), bounded by ``lock_timeout_seconds`` on the server (``lock_timeout``) and by
the writer on the client; the spool is only the fallback while the server cannot be reached.
Record ids are a primary key: ``INSERT … ON CONFLICT DO NOTHING`` makes every write and replay
idempotent, also when two processes replay the same spooled record at once. Writers of the same
component's history take turns on an advisory lock, so a late year's derived columns
(year-over-year, cumulative) see the earlier year however the two commits interleave.

What is PostgreSQL's own lives here: the URL (its password is registered as a secret and never
shown: :attr:`PostgresStore.target` has none), the connection settings (UTC, ``search_path``,
timeouts), a small per-process pool of idle connections, ``?`` / ``$name`` parameters turned into
psycopg's, NUMERIC read as float (``round`` in the figures), and a user's read-only query.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.types.numeric import FloatLoader

from ..redaction import redact, register_secret
from .base import BackendConnection, MonitoringStore, first_line, utcnow
from .errors import QueryError, StoreError, StoreLockedError
from .rows import Rows
from .schema import ensure_schema

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_STATEMENT_TIMEOUT_MS = 300_000  # a runaway query (a user's, a report at 10 M rows) ends in 5 minutes
_MAX_IDLE = 4  # idle connections kept per database and kind in each process

# type OIDs: int2, int4, int8, float4, float8, numeric; date, timestamp, timestamptz
_NUMBER_TYPES = frozenset({21, 23, 20, 700, 701, 1700})
_TIME_TYPES = frozenset({1082, 1114, 1184})

_pool: dict[tuple[Any, ...], list[Any]] = {}
_types: dict[tuple[Any, ...], dict[str, str]] = {}  # (host, port, database, schema, table) -> column -> type
_pool_lock = threading.Lock()
_migrated: weakref.WeakSet[Any] = weakref.WeakSet()  # write connections whose schema is up to date


@atexit.register
def _close_idle_connections() -> None:
    """At exit, after the writers' last flush (registered later, so run earlier): close what the pool holds."""
    with _pool_lock:
        idle = [raw for conns in _pool.values() for raw in conns]
        _pool.clear()
    for raw in idle:
        with contextlib.suppress(Exception):
            raw.close()


class PostgresConnection(BackendConnection):
    """A psycopg connection as the store's queries use it (see :mod:`.base`); ``raw`` is psycopg's."""

    dialect = "postgres"
    keeps_rollups = True
    derives_in_insert = True

    def __init__(self, raw: Any, namespace: str, reopen: Callable[[], Any] | None = None):
        self.raw = raw
        self.namespace = namespace  # the schema: advisory lock keys are per schema
        self._reopen = reopen  # a pooled connection not used yet: how to get a new one in its place

    def _run(self, sql: str, params: Any = None) -> Any:
        """psycopg's ``execute``. The first statement on a pooled connection the server has dropped
        since (a restart, a terminated backend) runs again on a new one: nothing was done on it
        yet, and pooled connections are not pinged, which would cost a round trip per write."""
        reopen, self._reopen = self._reopen, None
        try:
            return self.raw.execute(sql, params)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if reopen is None or not self.raw.broken:
                raise
            with contextlib.suppress(Exception):
                self.raw.close()
            self.raw = reopen()
            return self.raw.execute(sql, params)

    def begin(self) -> None:
        self._run("BEGIN")

    def commit(self) -> None:
        self._run("COMMIT")

    def rollback(self) -> None:
        self._run("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        return self._run(sql if params is None else _psycopg_sql(sql), params)

    def count(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return max(self.execute(sql, params).rowcount, 0)

    def insert_rows(self, table: str, columns: list[str], rows: list[list[Any]]) -> int:
        """Insert the rows a key does not refuse; returns how many went in."""
        if not rows:
            return 0
        cur = self._run(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {self._relation(table, columns)} "
                        "ON CONFLICT DO NOTHING", [_json_rows(columns, rows)])
        return max(cur.rowcount, 0)

    def insert_new(self, table: str, columns: list[str], rows: list[list[Any]], key: str,
                   select: tuple[list[str], str] | None = None, then: str | None = None) -> set[str]:
        """Insert the rows whose ``key`` is not stored; returns those keys. The primary key decides,
        so two writers inserting the same record at once store it once. ``select``: (more columns,
        a SELECT of ``columns`` and those from ``{rows}``, the rows as a relation ``t``). ``then``:
        more common table expressions, over ``inserted`` (the rows inserted), run in the same
        statement."""
        if not rows:
            return set()
        more, query = select or ([], "SELECT * FROM {rows}")
        insert = (f"INSERT INTO {table} ({', '.join(columns + more)}) {query.format(rows=self._relation(table, columns))} "
                  f"ON CONFLICT ({key}) DO NOTHING RETURNING *")
        sql = f"WITH inserted AS ({insert}){f', {then}' if then else ''} SELECT {key} FROM inserted"
        return {str(k) for (k,) in self._run(sql, [_json_rows(columns, rows)]).fetchall()}

    def _relation(self, table: str, columns: list[str]) -> str:
        """The rows, sent as one JSON array of objects, as a relation ``t`` typed as the table's
        columns: ``json_to_recordset(%s::json) AS t(name type, …)`` (psycopg's placeholder). One
        parameter whatever the rows, so the statement is prepared once; encoding is the json
        module's C code, ~10 times cheaper for the client than psycopg's binary arrays (Python
        per value), and the server parses the document once."""
        types = _column_types(self.raw, self.namespace, table)
        return f"json_to_recordset(%s::json) AS t({', '.join(f'{c} {types[c]}' for c in columns)})"

    def lock_histories(self, keys: Sequence[tuple[str, str]]) -> None:
        """Take (until commit) the advisory lock of each (component, scenario) history, in one
        order in every process, so writers of the same history take turns and never deadlock.
        One statement: the keys sorted, and sorted again by the server before it locks each."""
        lock_keys = sorted({_lock_key(self.namespace, "history", *k) for k in keys})
        if lock_keys:
            self.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k ORDER BY k", [lock_keys])

    def take_turns(self, name: str) -> None:
        """Wait (until commit) for any other transaction doing ``name`` in this schema: migrating,
        mirroring the SLA rules. Within a transaction only."""
        self.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key(self.namespace, name)])

    def replace_table(self, table: str, sql: str, params: Any) -> None:
        """Rebuild a report table in one transaction; two builds at once take turns."""
        own = self.raw.info.transaction_status == TransactionStatus.IDLE
        if own:
            self.begin()
        try:
            self.execute("SELECT pg_advisory_xact_lock(?)", [_lock_key(self.namespace, "table", table)])
            self.execute(f"DROP TABLE IF EXISTS {table}")
            self.execute(f"CREATE TABLE {table} AS {sql}", params)
            if own:
                self.commit()
        except BaseException:
            if own:
                self.rollback()
            raise

    def table_exists(self, name: str) -> bool:
        # pg_tables, not to_regclass(): a statement's snapshot sees what another process committed
        # while we waited on the migration lock; the relation cache behind to_regclass() does not
        # until this transaction takes a lock on a table (the second of several processes opening
        # a fresh database migrated again and failed with DuplicateTable).
        return bool(self.execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables "
                                 "WHERE schemaname = current_schema() AND tablename = ?)", [name]).fetchone()[0])

    def frame(self, sql: str) -> Any:
        """The query as a DataFrame typed as DuckDB's ``.df()`` types it, so callers see one
        thing on either backend: numbers with NULLs as float64 (NaN), dates as datetime64."""
        import pandas as pd

        cur = self._run(sql)
        kinds = {d.name: d.type_code for d in cur.description}
        rows = Rows.of(cur)
        df = rows.df()
        for name in df.columns:
            values = [v for v in rows.column(name) if v is not None]
            if not values:  # all NULL: typed by the column's type, as DuckDB types it (NaN, NaT)
                if len(df) and kinds[name] in _NUMBER_TYPES:
                    df[name] = df[name].astype("float64")
                elif len(df) and kinds[name] in _TIME_TYPES:
                    df[name] = pd.to_datetime(df[name])
                continue
            if len(values) < len(df) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                df[name] = df[name].astype("float64")
            elif all(isinstance(v, (datetime, date)) for v in values):
                df[name] = pd.to_datetime(df[name])
        return df


class PostgresStore(MonitoringStore):
    """The ``mon_*`` tables in a PostgreSQL database (``schema``: its schema, created if missing;
    default the connection's own). See the module docstring.

        store = PostgresStore("postgresql://app@127.0.0.1:5432/monitoring", lock_timeout_seconds=1.0)
        assert "app@127.0.0.1" in store.target
    """

    dialect = "postgres"
    direct_writes = True
    database_errors = (psycopg.Error,)
    record_errors = (pg_errors.DataError, pg_errors.IntegrityError, TypeError, ValueError, OverflowError)
    transient_errors = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

    def __init__(self, url: str, *, lock_timeout_seconds: float = 1.0, spool_dir: str | Path | None = None,
                 schema: str | None = None):
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StoreError(f"schema must be a plain SQL name (letters, digits, _), got {schema!r}")
        self.url = _plain_url(url)
        self.schema = schema
        parts = urlsplit(self.url)
        if parts.password:
            register_secret(unquote(parts.password))
        self._target = _without_password(self.url) + (f" (schema {schema})" if schema else "")
        super().__init__(url, lock_timeout_seconds=lock_timeout_seconds, spool_dir=spool_dir)

    @property
    def target(self) -> str:
        return self._target

    @property
    def location(self) -> str:
        return f"{_without_password(self.url)}#{self.schema or ''}"

    def default_spool_dir(self) -> Path:
        """Under the system temp dir, private to this user, one per database: a pod's local disk."""
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"planwise-monitoring-{os.geteuid()}" / f"postgres-{digest}.spool"

    def exists(self) -> bool:
        try:
            with self.connect(read_only=True) as conn:
                return conn.table_exists("mon_schema_version")
        except StoreError:
            return False

    def with_lock_timeout(self, seconds: float) -> PostgresStore:
        store = PostgresStore(self.url, lock_timeout_seconds=seconds, spool_dir=self.spool.directory,
                              schema=self.schema)
        store.spool = self.spool
        return store

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[PostgresConnection]:
        """A connection from this process's pool (or a new one), in autocommit mode with
        explicit transactions; given back to the pool only when it ends clean. Connection and
        server errors (unreachable, refused, a lock not had within the timeout, a dropped
        connection) are raised as :class:`StoreError`, with no password in the message."""
        key = (os.getpid(), self.url, self.schema, read_only, self.lock_timeout_seconds)
        raw, pooled = self._checkout(key, read_only)
        conn = PostgresConnection(raw, self.schema or "public",
                                  reopen=functools.partial(self._replace_pooled, key, read_only) if pooled else None)
        healthy = False
        try:
            if not self._first_use(conn, read_only):
                # As a DuckDB file that does not exist yet: a clear error, not "relation does not exist".
                healthy = True
                raise StoreError(f"monitoring database {self.target} does not exist yet (nothing was recorded)")
            yield conn
            healthy = conn.raw.info.transaction_status == TransactionStatus.IDLE
        except pg_errors.LockNotAvailable:
            raise StoreLockedError(self.target, self.lock_timeout_seconds) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreError(f"monitoring database {self.target}: {redact(first_line(exc))}") from None
        finally:
            self._checkin(key, conn.raw, healthy)

    def _first_use(self, conn: PostgresConnection, read_only: bool) -> bool:
        """Writing: the schema brought up to date, once per connection (one that failed is closed,
        not pooled, so a database or schema dropped and created again is checked again by the next
        one); True. Reading: whether our tables exist."""
        if read_only:
            return conn.table_exists("mon_schema_version")
        if conn.raw not in _migrated:
            ensure_schema(conn, self.target, utcnow())
            _migrated.add(conn.raw)
        return True

    def _replace_pooled(self, key: tuple[Any, ...], read_only: bool) -> Any:
        """A new connection for a pooled one the server dropped; the other idle ones likely were too."""
        self._discard_idle(key)
        return self._open(read_only)

    def _checkout(self, key: tuple[Any, ...], read_only: bool) -> tuple[Any, bool]:
        """An idle pooled connection (True) or a new one (False). Not pinged, which would cost a
        round trip per write: one the server has dropped is noticed at its first statement."""
        while True:
            with _pool_lock:
                idle = _pool.get(key)
                raw = idle.pop() if idle else None
            if raw is None:
                return self._open(read_only), False
            if not raw.closed and raw.info.status == ConnStatus.OK:
                return raw, True
            with contextlib.suppress(Exception):
                raw.close()

    def _discard_idle(self, key: tuple[Any, ...]) -> None:
        with _pool_lock:
            idle = _pool.pop(key, [])
        for raw in idle:
            with contextlib.suppress(Exception):
                raw.close()

    def _checkin(self, key: tuple[Any, ...], raw: Any, healthy: bool) -> None:
        if healthy and not raw.closed:
            with _pool_lock:
                idle = _pool.setdefault(key, [])
                if len(idle) < _MAX_IDLE:
                    idle.append(raw)
                    return
        with contextlib.suppress(Exception):
            raw.close()

    def _open(self, read_only: bool) -> Any:
        settings = {
            "TimeZone": "UTC",  # every timestamp is naive UTC
            "lock_timeout": f"{max(int(self.lock_timeout_seconds * 1000), 1)}ms",
            "statement_timeout": f"{_STATEMENT_TIMEOUT_MS}ms",
            "idle_in_transaction_session_timeout": f"{_STATEMENT_TIMEOUT_MS}ms",
            "jit": "off",  # compiling costs more than a write's short statements (or a figure) take
        }
        if self.schema:
            settings["search_path"] = self.schema
        if read_only:
            settings["default_transaction_read_only"] = "on"
        timeout = max(int(self.lock_timeout_seconds * 1000), 1)
        try:
            raw = psycopg.connect(
                self.url, autocommit=True, application_name="planwise-monitoring",
                # libpq counts whole seconds, at least 2; a dead peer is noticed within the lock timeout
                connect_timeout=max(2, math.ceil(self.lock_timeout_seconds)), tcp_user_timeout=timeout,
                options=" ".join(f"-c {k}={v}" for k, v in settings.items()),
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to monitoring database {self.target}: {redact(_reason(exc))}") from None
        raw.adapters.register_loader("numeric", FloatLoader)  # round(...) gives NUMERIC; figures are floats
        if self.schema and not read_only:
            try:
                raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            except pg_errors.UniqueViolation:
                pass  # another process created it at the same moment (IF NOT EXISTS does not cover a race)
            except psycopg.Error as exc:
                raw.close()
                raise StoreError(f"cannot create schema {self.schema} in {self.target}: {redact(first_line(exc))}"
                                 ) from None
        return raw

    # -- a user's SQL -----------------------------------------------------------------------------
    def query(self, sql: str, limit: int | None, params: Sequence[Any] | None = None) -> Rows:
        """One SELECT, in a READ ONLY transaction that is always rolled back. Checked first (one
        statement, a SELECT, no row locks, none of the functions that read server files, write,
        change settings or run SQL of their own: :func:`check_select`); the read-only
        transaction is what guarantees nothing is written."""
        text, explain = check_select(sql)
        with self.connect(read_only=True) as conn:
            conn.begin()
            try:
                conn.raw.execute("SET TRANSACTION READ ONLY")
                if explain or not limit:
                    wrapped, limit = text, None
                else:
                    # A subquery: PostgreSQL itself refuses a second statement or anything not a query.
                    wrapped = f"SELECT * FROM (\n{text}\n) AS query LIMIT {int(limit) + 1}"
                return Rows.of(conn.execute(wrapped, list(params) if params else None), limit)
            except psycopg.Error as exc:
                if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and \
                        not isinstance(exc, pg_errors.QueryCanceled):
                    raise
                raise QueryError(redact(first_line(exc)) or type(exc).__name__) from None
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()


# -- checking a user's SQL ----------------------------------------------------------------------
_TOKEN = re.compile(r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[Ee]'(?:[^'\\]|\\.|'')*'|[BbXxUu]?'(?:[^']|'')*')
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)\$)
    | (?P<uident>[Uu]&"(?:[^"]|"")*")
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<word>[A-Za-z_][\w$]*)
    | (?P<semicolon>;)
    | (?P<other>.)
""", re.X | re.S)
_QUERY_STARTS = {"select", "with", "values", "table", "("}
_WRITES = {"insert", "update", "delete", "merge"}  # right after "(": a data-modifying WITH query
_ROW_LOCKS = {"update", "share"}  # after FOR: FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE
# Functions that read or write server files, change settings, take locks, signal backends, use
# sequences, or run SQL text of their own (which no check here could see into).
_DENIED_FUNCTION = re.compile(
    r"(set_config|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|lo_\w+|dblink\w*|"
    r"(query|table|schema|database|cursor)_to_xml\w*|query_to_xmlschema|pg_(try_)?advisory\w*|"
    r"pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_create_\w+|"
    r"pg_drop_\w+|pg_notify|nextval|setval|pg_sleep\w*|pg_logical_\w+|pg_replication_\w+|pg_file_\w+|"
    r"pg_promote|pg_import_system_collations|pg_log_backend_memory_contexts|binary_upgrade_\w+|"
    r"pg_current_xact_id|txid_current)", re.I)


def check_select(sql: str) -> tuple[str, bool]:
    """The one statement in ``sql`` without its trailing ``;``, and whether it is an EXPLAIN.
    Raises :class:`QueryError` saying what was refused.

        assert check_select("SELECT 1;") == ("SELECT 1", False)
    """
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql)]
    code = [(kind, text) for kind, text in tokens if kind not in ("space", "comment")]
    while code and code[-1][0] == "semicolon":
        code.pop()
    if not code:
        raise QueryError("no SQL statement given")
    statements = 1 + sum(1 for kind, _ in code if kind == "semicolon")
    if statements > 1:
        raise QueryError(f"only a single SELECT query is allowed (got {statements} statements)")
    words = [text.lower() if kind == "word" else text for kind, text in code]
    explain = words[0] == "explain"
    if explain:
        if len(words) > 1 and words[1] in ("analyze", "analyse", "("):
            raise QueryError("only SELECT queries are allowed (EXPLAIN ANALYZE runs its statement)")
        words, code = words[1:], code[1:]
    if not words or words[0] not in _QUERY_STARTS:
        raise QueryError(f"only SELECT queries are allowed (got {(words[0] if words else 'EXPLAIN').upper()})")
    for i, (kind, text) in enumerate(code):
        if kind == "uident":  # its name is only known once decoded, so no check here could see it
            raise QueryError('Unicode-escaped names (U&"...") are not allowed in a query')
        name = text.strip('"').lower() if kind in ("word", "ident") else None
        if kind == "word" and name in _WRITES and i and code[i - 1][1] == "(":
            raise QueryError(f"only SELECT queries are allowed (got {text.upper()} in a WITH query)")
        following = next((t for k, t in code[i + 1:]), None)
        if name and following == "(" and _DENIED_FUNCTION.fullmatch(name):
            raise QueryError(f"function {name}() is not allowed in a query")
        if name == "for" and kind == "word" and any(w in _ROW_LOCKS for w in words[i + 1:i + 4]):
            raise QueryError("SELECT ... FOR UPDATE/SHARE (row locks) is not allowed in a read-only query")
        if kind == "word" and name in ("into",) and words[0] == "select":
            raise QueryError("SELECT ... INTO creates a table; not allowed in a read-only query")
    end = max(i for i, m in enumerate(tokens) if m[0] not in ("space", "comment", "semicolon"))
    text = "".join(t for _, t in tokens[:end + 1]).strip()
    return text, explain


# -- helpers ------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _psycopg_sql(sql: str) -> str:
    """``?`` and ``$name`` (the store's parameters, as DuckDB takes them) as ``%s`` and
    ``%(name)s`` (``?::type[]``, an array, as ``%b``); a literal ``%`` doubled. Quoted strings,
    identifiers and comments are kept as they are (but for their ``%``, which psycopg reads
    everywhere)."""
    out = []
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(sql)]
    for i, (kind, text) in enumerate(tokens):
        if kind == "other" and text == "?" and _is_array_cast(tokens, i + 1):
            out.append("%b")  # an array: sent in binary, ~20 times cheaper for the client than as text
        elif kind == "other" and text == "?":
            out.append("%s")
        elif kind == "other" and text == "%":
            out.append("%%")
        elif kind == "other" and text == "$" and i + 1 < len(tokens) and tokens[i + 1][0] == "word":
            out.append(f"%({tokens[i + 1][1]})s")  # $name in the SQL itself, not in a literal
        elif kind == "word" and i and tokens[i - 1] == ("other", "$"):
            continue  # the name of the $name just written
        elif kind in ("string", "dollar", "uident", "ident", "comment"):
            out.append(text.replace("%", "%%"))
        else:
            out.append(text)
    return "".join(out)


def _is_array_cast(tokens: list[tuple[str | None, str]], i: int) -> bool:
    """Whether ``tokens[i:]`` start with ``::name[]`` (a parameter cast to an array)."""
    texts = [t for _, t in tokens[i:i + 5]]
    return len(texts) == 5 and texts[:2] == [":", ":"] and tokens[i + 2][0] == "word" and texts[3:] == ["[", "]"]


def _column_types(raw: Any, namespace: str, table: str) -> dict[str, str]:
    """Each column's type without its modifier (``character varying``, not ``…(100)``: a cast to
    it would cut a long value where the INSERT must refuse it), read once per table and process.
    From the catalog by name, with the statement's snapshot (see ``table_exists``)."""
    key = (raw.info.host, raw.info.port, raw.info.dbname, namespace, table)
    types = _types.get(key)
    if types is None:
        rows = raw.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
            "WHERE c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped", [table]).fetchall()
        types = _types[key] = dict(rows)
    return types


def _json_rows(columns: list[str], rows: list[list[Any]]) -> str:
    """Rows as a JSON array of objects. Times as ISO text (an aware one in UTC, as every stored
    time is); NaN and infinity are refused (ValueError): JSON has no spelling for them."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=_json_value, allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (date, time, uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__}: {value!r}")


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key, the same in every process (``hash()`` is salted)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _plain_url(url: str) -> str:
    """``postgresql://…`` for psycopg: a SQLAlchemy driver suffix (``postgresql+psycopg2://``)
    and the ``postgres://`` spelling are accepted and dropped."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url.strip(), flags=re.I)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _reason(exc: BaseException) -> str:
    """libpq's message without the hint lines, on one line."""
    return " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip()) or type(exc).__name__
