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

import hashlib
import json
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
    """Read the trail in order and check every entry's position, link and hash."""
    expected_seq, prev, read = 1, GENESIS, 0
    for row in _rows_in_order(conn, batch):
        seq, values, prev_hash, digest = int(row[0]), row[1:-2], str(row[-2]), str(row[-1])
        read += 1
        if seq > expected_seq:
            return ChainVerdict(False, read, expected_seq, f"entries {expected_seq}..{seq - 1} are missing (deleted)")
        if seq < expected_seq:
            return ChainVerdict(False, read, seq, f"entry {seq} appears again after entry {expected_seq - 1} "
                                                  "(inserted or reordered)")
        if prev_hash != prev:
            return ChainVerdict(False, read, seq, f"it does not follow entry {seq - 1}: entry {seq - 1} was rewritten "
                                                  "(its hash recomputed), or rows were replaced or reordered")
        if row_hash(seq, values, prev_hash) != digest:
            return ChainVerdict(False, read, seq, "its content does not match its hash (edited)")
        expected_seq, prev = seq + 1, digest
    return ChainVerdict(True, read)


def _rows_in_order(conn: Any, batch: int) -> Iterator[tuple]:
    cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM mon_parameter_changes ORDER BY entry_seq")
    while rows := cur.fetchmany(batch):
        yield from rows


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
