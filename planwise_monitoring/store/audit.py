"""The parameter audit trail: an append-only, hash-chained log of who changed which parameter.

    from planwise_monitoring.store.audit import ChangeEntry, append_entries, verify_chain

    append_entries(conn, [ChangeEntry.change(parameter_name="cola_rate", old_value=0.02, new_value=0.025,
                                             user_name="ana", change_source="manual")])   # in a transaction
    verdict = verify_chain(conn)        # ok, rows read, and the first row that is not as written

Every row of ``mon_parameter_changes`` is an entry: a change (a parameter's old and new value, why,
where from) or an approval of one (appended later; nothing is ever updated). Each entry has its
position in the chain (``entry_seq``: 1, 2, 3 …) and carries ``row_hash``, the SHA-256 of its
canonical content (:func:`canonical`, which includes its position) and of the previous entry's
hash (``prev_hash``; the first entry's is 64 zeros). Editing a value, deleting, inserting or
reordering rows, or rewriting one row with a recomputed hash, breaks the chain at a row that
:func:`verify_chain` names.

Writers take turns appending (PostgreSQL: an advisory lock held to commit; DuckDB: the file's
lock), so the chain never forks; on PostgreSQL a primary key on ``entry_seq`` refuses a fork
anyway, and a trigger refuses UPDATE, DELETE and TRUNCATE (see migration 7). An entry's id makes
appending it again a no-op (a replayed spool, a retried write).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CHANGE, APPROVAL = "CHANGE", "APPROVAL"
SOURCES = ("optimization", "manual", "import")
GENESIS = "0" * 64

_CONTENT = ["entry_id", "entry_kind", "change_id", "recorded_at", "session_id", "dagster_run_id", "user_name",
            "parameter_name", "job_level", "fiscal_year", "old_value", "new_value", "change_source",
            "optimization_target", "reason"]
COLUMNS = ["entry_seq", *_CONTENT, "prev_hash", "row_hash"]


@dataclass(frozen=True)
class ChangeEntry:
    """One entry of the trail, as written (its position and hashes are given when it is appended)."""

    entry_id: str
    entry_kind: str
    change_id: str
    recorded_at: datetime
    user_name: str
    session_id: str | None = None
    dagster_run_id: str | None = None
    parameter_name: str | None = None
    job_level: int | None = None
    fiscal_year: int | None = None
    old_value: float | None = None
    new_value: float | None = None
    change_source: str | None = None
    optimization_target: float | None = None
    reason: str | None = None

    @classmethod
    def change(cls, *, parameter_name: str, old_value: float | None, new_value: float | None, user_name: str,
               change_source: str, recorded_at: datetime, **context: Any) -> ChangeEntry:
        if change_source not in SOURCES:
            raise ValueError(f"change_source must be one of {', '.join(SOURCES)}, got {change_source!r}")
        entry_id = context.pop("entry_id", None) or str(uuid.uuid4())
        return cls(entry_id=entry_id, entry_kind=CHANGE, change_id=entry_id, recorded_at=recorded_at,
                   user_name=user_name, parameter_name=parameter_name, old_value=_number(old_value),
                   new_value=_number(new_value), change_source=change_source, **context)

    @classmethod
    def approval(cls, change_id: str, *, user_name: str, recorded_at: datetime, reason: str | None = None,
                 entry_id: str | None = None) -> ChangeEntry:
        return cls(entry_id=entry_id or str(uuid.uuid4()), entry_kind=APPROVAL, change_id=change_id,
                   recorded_at=recorded_at, user_name=user_name, reason=reason)

    def __post_init__(self) -> None:
        if not self.user_name:
            raise ValueError("an audit entry needs the user who made it")
        for name in ("entry_id", "change_id"):
            object.__setattr__(self, name, str(uuid.UUID(str(getattr(self, name)))))  # ValueError if not a UUID
        if self.recorded_at.tzinfo is not None:  # stored as naive UTC, as every time in the store
            object.__setattr__(self, "recorded_at", self.recorded_at.astimezone(UTC).replace(tzinfo=None))

    def values(self) -> list[Any]:
        return [getattr(self, c) for c in _CONTENT]

    @property
    def spool_id(self) -> str:
        return self.entry_id

    def to_json(self) -> str:
        """The entry as it waits in the spool (its position and hashes are given when it is appended)."""
        fields = dict(zip(_CONTENT, self.values(), strict=True))
        return json.dumps({**fields, "kind": "parameter_change"}, separators=(",", ":"), allow_nan=False,
                          default=_plain)

    @classmethod
    def from_json(cls, text: str | bytes) -> ChangeEntry:
        """Read an entry written by :meth:`to_json`; ValueError names what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("kind", None) != "parameter_change":
            raise ValueError("not a parameter change entry")
        unknown = set(data) - set(_CONTENT)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        for name in ("job_level", "fiscal_year"):
            if data.get(name) is not None and (type(data[name]) is not int):
                raise ValueError(f"{name} must be a whole number, got {data[name]!r}")
        for name in ("old_value", "new_value", "optimization_target"):
            if data.get(name) is not None and type(data[name]) not in (int, float):
                raise ValueError(f"{name} must be a number, got {data[name]!r}")
            data[name] = _number(data.get(name))
        if data.get("entry_kind") not in (CHANGE, APPROVAL):
            raise ValueError(f"entry_kind must be {CHANGE} or {APPROVAL}")
        if data.get("change_source") not in (None, *SOURCES):
            raise ValueError(f"change_source must be one of {', '.join(SOURCES)}")
        try:
            data["recorded_at"] = datetime.fromisoformat(data["recorded_at"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"recorded_at: {exc}") from None
        return cls(**data)


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def canonical(seq: int, values: Sequence[Any], prev_hash: str) -> bytes:
    """An entry's content as the bytes its hash is taken over: its position, its fields in a fixed
    order (numbers as the shortest text that reads back the same, times to the microsecond) and the
    previous entry's hash. The same bytes from the values written and from the values read back,
    on either backend."""
    return json.dumps([seq, *values, prev_hash], separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_plain).encode()


def _plain(value: Any) -> Any:
    """What JSON cannot say itself (called by the json module for those values only)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"an audit entry cannot hold a {type(value).__name__}: {value!r}")


def row_hash(seq: int, values: Sequence[Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical(seq, values, prev_hash)).hexdigest()


def append_entries(conn: Any, entries: Sequence[ChangeEntry]) -> int:
    """Append the entries whose ids are not in the trail yet, chained after its last entry;
    returns how many. Inside the caller's transaction: writers take turns until it commits."""
    conn.take_turns("audit")  # PostgreSQL: held to commit; the tail read below sees the last writer's rows
    ids = list({e.entry_id: None for e in entries})
    if not ids:
        return 0
    stored = {str(k) for (k,) in conn.execute(
        "SELECT entry_id FROM mon_parameter_changes WHERE entry_id IN (SELECT unnest(?::UUID[]))", [ids]
    ).fetchall()}
    new = [e for e in {e.entry_id: e for e in entries}.values() if e.entry_id not in stored]
    if not new:
        return 0
    tail = conn.execute("SELECT entry_seq, row_hash FROM mon_parameter_changes "
                        "ORDER BY entry_seq DESC LIMIT 1").fetchone()
    seq, prev = (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)
    rows = []
    for entry in new:
        seq += 1
        values = entry.values()
        digest = row_hash(seq, values, prev)
        rows.append([seq, *values, prev, digest])
        prev = digest
    # Not ON CONFLICT DO NOTHING on the position: were the chain ever to fork, the write must fail
    # (PostgreSQL's primary key), not drop an entry.
    return len(conn.insert_new("mon_parameter_changes", COLUMNS, rows, key="entry_id"))


@dataclass(frozen=True)
class ChainVerdict:
    """What :func:`verify_chain` found: ``ok``, the rows read, and for a broken chain the position
    of the first row that is not as it was written and what is wrong with it."""

    ok: bool
    rows: int
    seq: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.rows:,} entries, every hash and link verified"
        return f"audit trail broken at entry {self.seq}: {self.problem}"


def verify_chain(conn: Any, batch: int = 10_000) -> ChainVerdict:
    """Read the trail in order and check every entry's position, link and hash.

    The database renders each entry's canonical text itself, so the driver makes no Python object
    per value (which cost ~25 s per 1 M entries): DuckDB also hashes it and checks positions and
    links in one statement; PostgreSQL, whose functions cost more per row than the client's
    hashing, streams it as CSV by COPY (its quoting and escaping of strings are JSON's) and the
    client hashes each line. A rendering is exact where it says anything (every value has one
    spelling), but need not match :func:`canonical` everywhere (a float PostgreSQL spells another
    way, a control character in a text): an entry whose rendering does not match its hash is
    checked again as before, from its values read back, so no verdict rests on the database's
    spelling of a value."""
    if conn.dialect == "postgres":
        return _verify_postgres(conn, batch)
    cur = conn.execute(_DUCKDB_VERIFY)
    while rows := cur.fetchmany(batch):  # only the entries to look at again, and the last one
        for k, linked, hashed, last, *row in rows:
            seq = int(row[0])
            verdict = _out_of_place(k, seq, linked)
            if verdict is not None:
                return verdict
            if not hashed and not _as_written(row):
                return _edited(k, seq)
            if last:
                return ChainVerdict(True, k)
    return ChainVerdict(True, 0)


def _out_of_place(k: int, seq: int, linked: bool) -> ChainVerdict | None:
    """The first checks of the ``k``-th entry read (every entry before it intact): its position,
    then its link to the entry before."""
    if seq > k:
        return ChainVerdict(False, k, k, f"entries {k}..{seq - 1} are missing (deleted)")
    if seq < k:
        return ChainVerdict(False, k, seq, f"entry {seq} appears again after entry {k - 1} (inserted or reordered)")
    if not linked:
        return ChainVerdict(False, k, seq, f"it does not follow entry {seq - 1}: entry {seq - 1} was rewritten "
                                           "(its hash recomputed), or rows were replaced or reordered")
    return None


def _edited(k: int, seq: int) -> ChainVerdict:
    return ChainVerdict(False, k, seq, "its content does not match its hash (edited)")


def _as_written(row: Sequence[Any]) -> bool:
    """Whether a row read back (``COLUMNS``, as the driver gives them) hashes to its ``row_hash``."""
    return row_hash(int(row[0]), row[1:-2], str(row[-2])) == str(row[-1])


# Each column's kind, for its rendering as canonical() writes it (the others are strings).
_KINDS = {"entry_seq": "int", "entry_id": "uuid", "change_id": "uuid", "recorded_at": "time", "job_level": "int",
          "fiscal_year": "int", "old_value": "float", "new_value": "float", "optimization_target": "float"}
_HASHED = COLUMNS[:-1]  # what an entry's hash is taken over, in order
_TIME_RANGE = "BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999'"


def _duckdb_json(column: str) -> str:
    """``column`` as canonical() writes it, or, for a value it cannot come from, text that is no
    JSON ('?'). DuckDB spells a float as Python's repr does (checked on 600,000 doubles, and by
    the tests); one that does not read back the same is '?'. Its JSON strings escape the rarer
    control characters as \\u000B, not \\u000b: such an entry is only checked again."""
    kind = _KINDS.get(column, "text")
    if kind == "text":
        return f"coalesce(CAST(to_json({column}) AS VARCHAR), 'null')"
    if kind == "int":
        return f"coalesce(CAST({column} AS VARCHAR), 'null')"
    if kind == "uuid":
        return f"coalesce('\"' || CAST({column} AS VARCHAR) || '\"', 'null')"
    if kind == "time":  # years outside 1..9999 (BC ones spelt as AD) are no time canonical() writes
        return (f"CASE WHEN {column} IS NULL THEN 'null' WHEN {column} {_TIME_RANGE} "
                f"THEN '\"' || strftime({column}, '%Y-%m-%dT%H:%M:%S.%f') || '\"' ELSE '?' END")
    return (f"CASE WHEN {column} IS NULL THEN 'null' WHEN CAST(CAST({column} AS VARCHAR) AS DOUBLE) = {column} "
            f"THEN CAST({column} AS VARCHAR) ELSE '?' END")


# DuckDB: one statement hashes every entry (on all cores) and checks each position and link
# against the entry before in order; it returns the entries that fail a check, with their values
# (a hash that does not match is checked again from them: see verify_chain), and the last entry.
_DUCKDB_VERIFY = f"""
WITH hashed AS (
    SELECT rowid AS rid, entry_seq, prev_hash, row_hash,
           coalesce(sha256(concat('[', {", ',', ".join(_duckdb_json(c) for c in _HASHED)}, ']')) = row_hash, false)
               AS hashed
    FROM mon_parameter_changes
), checked AS (
    SELECT rid, entry_seq, hashed, row_number() OVER w AS k,
           prev_hash IS NOT DISTINCT FROM lag(row_hash, 1, '{GENESIS}') OVER w AS linked,
           lead(true) OVER w IS NULL AS last
    FROM hashed
    WINDOW w AS (ORDER BY entry_seq)
)
SELECT c.k, c.linked, c.hashed, c.last, {", ".join(f"t.{c}" for c in COLUMNS)}
FROM checked c JOIN mon_parameter_changes t ON t.rowid = c.rid
WHERE c.entry_seq <> c.k OR NOT c.linked OR NOT c.hashed OR c.last
ORDER BY c.k
"""


def _postgres_column(column: str) -> str:
    """``column`` for the COPY of :func:`_verify_postgres`: what CSV then writes is canonical()'s
    text, or text it never writes. Strings are quoted by FORCE_QUOTE, with \\" and \\\\ (ESCAPE);
    CSV leaves control characters as they are (the client writes them as JSON escapes, and reads
    a value with a newline as one record). Floats in the shortest text that reads back the same
    (extra_float_digits 1), with Python's ".0" after a whole number; PostgreSQL spells 1e15 and
    beyond another way than Python (such an entry is checked again)."""
    kind = _KINDS.get(column, "text")
    if kind == "time":  # to_char writes 44 BC as 0044
        return (f"CASE WHEN {column} {_TIME_RANGE} THEN to_char({column}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
                f"ELSE '?' END AS {column}")
    if kind == "float":
        return (f"{column}::text || CASE WHEN {column} = trunc({column}) AND abs({column}) < 1e15 THEN '.0' ELSE '' END "
                f"AS {column}")
    return column


# Each entry as one CSV record, in order: its canonical text without the brackets, then its row_hash
# (quoted too: CSV would leave a backslash in an unquoted value as it is).
_POSTGRES_VERIFY = (
    f"COPY (SELECT {', '.join(_postgres_column(c) for c in COLUMNS)} FROM mon_parameter_changes ORDER BY entry_seq) "
    f"TO STDOUT (FORMAT csv, ESCAPE E'\\\\', NULL 'null', "
    f"FORCE_QUOTE ({', '.join(c for c in COLUMNS if _KINDS.get(c, 'text') in ('text', 'uuid', 'time'))}))"
)
_CONTROL = re.compile(rb"[\x00-\x1f]")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_READ_MESSAGES = 4096  # rows a time: the server sends each as a message


def _verify_postgres(conn: Any, batch: int) -> ChainVerdict:
    """Stream the trail by COPY (see ``_POSTGRES_VERIFY``) and check each record; the entries whose
    record does not match their hash are checked again from their values, in the same snapshot."""
    import psycopg
    from psycopg.pq import ExecStatus, TransactionStatus

    own = conn.raw.info.transaction_status == TransactionStatus.IDLE
    if own:
        conn.begin()
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    else:  # the caller's transaction: its settings are given back
        saved = list(conn.execute("SELECT current_setting('extra_float_digits'), "
                                  "current_setting('client_encoding')").fetchone())
    try:
        conn.execute("SET LOCAL extra_float_digits = 1")
        conn.execute("SET LOCAL client_encoding = 'UTF8'")
        scan = _CopyScan()
        with conn.raw.cursor().copy(_POSTGRES_VERIFY):
            # libpq's own reads: the server sends a message per row, and psycopg's Copy.read()
            # costs ~4 µs a message. Read to the end even once a verdict is near (a COPY cannot
            # be left half-read), then take its result as psycopg would.
            pgconn = conn.raw.pgconn
            get, buf, count = pgconn.get_copy_data, bytearray(), 0
            while True:
                size, data = get(0)
                if size <= 0:
                    break
                buf += data
                count += 1
                if count == _READ_MESSAGES:
                    lines = bytes(buf).split(b"\n")
                    buf, count = bytearray(lines.pop()), 0
                    if scan.stop is None:
                        scan.records(lines)
            failed = pgconn.error_message.decode(errors="replace") if size == -2 else None
            while (result := pgconn.get_result()) is not None:
                if result.status != ExecStatus.COMMAND_OK and failed is None:
                    failed = (result.error_message or b"COPY failed").decode(errors="replace")
            if failed is not None:
                raise psycopg.OperationalError(failed.strip())
        if scan.stop is None:
            lines = bytes(buf).split(b"\n")
            if lines.pop():
                raise ValueError("the COPY of mon_parameter_changes did not end with a whole line")
            scan.records(lines)
            if scan.partial is not None:
                raise ValueError("the COPY of mon_parameter_changes ended inside a record")
        return _recheck(conn, scan.deferred, batch) or scan.verdict()
    finally:
        if own:
            conn.rollback()
        else:
            conn.execute("SELECT set_config('extra_float_digits', ?, true), set_config('client_encoding', ?, true)",
                         saved)


class _CopyScan:
    """The checks of the COPY records, in order. The k-th is ``<seq>,…,"<prev_hash>","<row_hash>"``
    on one line, whose part before the last comma is, in brackets, what its hash is taken over;
    the line passes as it is when it says seq k, the last row_hash as prev_hash and a matching
    hash. A line cut short by a newline in a value never does: it would have to end in ``,"``,
    64 hex digits and ``"``, and CSV escapes every quote inside a value."""

    def __init__(self) -> None:
        self.k = 0
        self.tail = b',"' + GENESIS.encode() + b'"'  # how the next record's part ends: the last row_hash, quoted
        self.deferred: list[tuple[int, int, str, str]] = []  # (k, seq, prev_hash, row_hash) to check from values
        self.stop: ChainVerdict | int | None = None  # the verdict, or the record whose check again decides
        self.partial: bytes | None = None  # a record with a newline, cut by the end of a read

    def records(self, lines: list[bytes]) -> None:
        more = iter(lines)
        if self.partial is not None:
            line, self.partial = self.partial, None
            self._again(line, more)
            if self.stop is not None or self.partial is not None:
                return
        k, tail, sha256 = self.k, self.tail, hashlib.sha256
        for line in more:
            k += 1
            if line[-67:-65] == b',"' and line[-1:] == b'"' and line.startswith(b"%d," % k):
                body, digest = line[:-67], line[-65:-1]
                if body.endswith(tail) and sha256(b"[%s]" % body).hexdigest().encode() == digest:
                    tail = b',"%s"' % digest
                    continue
            self.k, self.tail = k, tail
            self._again(line, more)
            if self.stop is not None or self.partial is not None:
                return
            tail = self.tail
        self.k, self.tail = k, tail

    def _again(self, line: bytes, more: Iterator[bytes]) -> None:
        """The k-th record, from ``line`` on, which did not pass as it is: whole (a value may
        hold newlines), with its control characters as JSON escapes; else its fields read for
        the checks of position and link, and its hash to be checked again from its values."""
        record, k, tail = line, self.k, self.tail
        while True:
            fixed = _CONTROL.sub(_json_escape, record)
            body, digest = fixed[:-67], fixed[-65:-1]
            if (fixed[-67:-65] == b',"' and fixed[-1:] == b'"' and fixed.startswith(b"%d," % k)
                    and body.endswith(tail) and hashlib.sha256(b"[%s]" % body).hexdigest().encode() == digest):
                self.tail = b',"%s"' % digest
                return
            if record.endswith((b'"', b"null")):  # else it ends inside a value
                try:
                    fields = next(csv.reader([record.decode()], escapechar="\\", doublequote=False, strict=True))
                    break
                except csv.Error:
                    pass
            following = next(more, None)  # a value with a newline: the record goes on in the next line
            if following is None:
                self.partial = record
                return
            record += b"\n" + following
        prev = tail[2:-1].decode()
        seq, prev_hash, digest_text = int(fields[0]), fields[-2], fields[-1]
        verdict = _out_of_place(k, seq, prev_hash == prev)
        if verdict is not None:
            self.stop = verdict
            return
        self.deferred.append((k, seq, prev_hash, digest_text))
        if _HEX64.fullmatch(digest_text) is None:  # no hash canonical() gives: checking it again decides
            self.stop = k
        self.tail = b',"' + digest_text.encode() + b'"'

    def verdict(self) -> ChainVerdict:
        return self.stop if isinstance(self.stop, ChainVerdict) else ChainVerdict(True, self.k)


def _json_escape(match: re.Match[bytes]) -> bytes:
    return json.dumps(match.group().decode())[1:-1].encode()


def _recheck(conn: Any, deferred: list[tuple[int, int, str, str]], batch: int) -> ChainVerdict | None:
    """The first of the deferred entries (k, seq, prev_hash, row_hash as streamed) whose values
    read back do not hash to its row_hash (entries of equal position are told apart by their hashes)."""
    for i in range(0, len(deferred), batch):
        part = deferred[i:i + batch]
        by_seq: dict[int, list[tuple]] = {}
        for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM mon_parameter_changes "
                                "WHERE entry_seq = ANY(?::bigint[])", [[seq for _, seq, _, _ in part]]).fetchall():
            by_seq.setdefault(int(row[0]), []).append(row)
        for k, seq, prev_hash, digest in part:
            if not any(str(r[-2]) == prev_hash and str(r[-1]) == digest and _as_written(r) for r in by_seq.get(seq, [])):
                return _edited(k, seq)
    return None


# The change report an auditor asks for: each change made in [from, to), its approvals, who gave
# the first and when, the hours it waited for it; unapproved changes have none (approvals 0).
REPORT = """
SELECT c.change_id, c.recorded_at AS changed_at, c.user_name AS changed_by, c.parameter_name, c.job_level,
       c.fiscal_year, c.old_value, c.new_value, c.change_source, c.optimization_target, c.session_id,
       c.dagster_run_id, c.reason,
       count(a.entry_id) AS approvals,
       string_agg(a.user_name, ', ' ORDER BY a.entry_seq) AS approved_by,
       min(a.recorded_at) AS first_approved_at,
       round(CAST(date_part('epoch', min(a.recorded_at) - c.recorded_at) / 3600.0 AS NUMERIC), 2)
           AS hours_to_approval
FROM mon_parameter_changes c
LEFT JOIN mon_parameter_changes a ON a.entry_kind = 'APPROVAL' AND a.change_id = c.change_id
WHERE c.entry_kind = 'CHANGE' AND c.recorded_at >= ? AND c.recorded_at < ?
GROUP BY c.entry_seq, c.change_id, c.recorded_at, c.user_name, c.parameter_name, c.job_level, c.fiscal_year,
         c.old_value, c.new_value, c.change_source, c.optimization_target, c.session_id, c.dagster_run_id, c.reason
ORDER BY c.entry_seq
"""

TABLE = """
CREATE TABLE mon_parameter_changes (
    entry_seq BIGINT NOT NULL,
    entry_id UUID NOT NULL,
    entry_kind VARCHAR(16) NOT NULL,
    change_id UUID NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    session_id VARCHAR,
    dagster_run_id VARCHAR,
    user_name VARCHAR NOT NULL,
    parameter_name VARCHAR,
    job_level INTEGER,
    fiscal_year INTEGER,
    old_value DOUBLE,
    new_value DOUBLE,
    change_source VARCHAR(16),
    optimization_target DOUBLE,
    reason VARCHAR,
    prev_hash VARCHAR(64) NOT NULL,
    row_hash VARCHAR(64) NOT NULL
)
"""

# PostgreSQL: the chain's order and the entries' ids are keys, and the table itself refuses
# anything but INSERT (a superuser can still drop the trigger; verify_chain is the proof).
POSTGRES_GUARDS = [
    "ALTER TABLE mon_parameter_changes ADD PRIMARY KEY (entry_seq)",
    "CREATE UNIQUE INDEX mon_parameter_changes_entry ON mon_parameter_changes (entry_id)",
    "CREATE INDEX mon_parameter_changes_change ON mon_parameter_changes (change_id)",
    """
    CREATE OR REPLACE FUNCTION mon_parameter_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'mon_parameter_changes is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    "CREATE TRIGGER mon_parameter_changes_no_update_delete BEFORE UPDATE OR DELETE ON mon_parameter_changes "
    "FOR EACH ROW EXECUTE FUNCTION mon_parameter_changes_append_only()",
    "CREATE TRIGGER mon_parameter_changes_no_truncate BEFORE TRUNCATE ON mon_parameter_changes "
    "FOR EACH STATEMENT EXECUTE FUNCTION mon_parameter_changes_append_only()",
]
