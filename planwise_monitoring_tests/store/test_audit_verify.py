"""verify_chain's renderings in the database: byte for byte canonical()'s, or checked again from the values.

verify_chain has each backend spell an entry's canonical text (DuckDB in SQL, PostgreSQL as the
CSV of a COPY), so these tests hold those spellings to Python's own: times as
``isoformat(timespec="microseconds")``, floats as ``repr``, strings as ``json.dumps``. Where a
backend spells a value another way, the entry must still verify (checked again from its values)
and an edit of it must still be found.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from planwise_monitoring.store.audit import (
    _DUCKDB_VERIFY,
    _POSTGRES_VERIFY,
    COLUMNS,
    GENESIS,
    ChainVerdict,
    _CopyScan,
    _duckdb_json,
    _postgres_column,
    row_hash,
)

from .backends import Backend
from .test_audit import T0, _change, _tamper

TIMES = [
    datetime(2026, 3, 1, 9, 30, 0),  # microsecond 0: isoformat still writes .000000
    datetime(2026, 3, 1, 9, 30, 0, 1),
    datetime(2026, 12, 31, 23, 59, 59, 999999),
    datetime(999, 1, 2, 3, 4, 5, 60),  # a year below 1000: four digits
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime(1970, 1, 1),
    datetime(2000, 2, 29, 12, 0, 0, 500000),
]
# Floats both backends must spell as repr does (PostgreSQL spells 1e15 and beyond its own way).
FLOATS = [0.0, -0.0, 1.0, -2.0, 100.0, 0.1 + 0.2, 0.03 + 1e-9, 1e-4, 1e-5, 1.5e-7, 5e-324, 2.2250738585072014e-308,
          123456789012345.0, 999999999999999.9, 0.030000001999999998, -1.7976931348623157e-300, 1 / 3]
LARGE_FLOATS = [1e15, 1234567890123456.0, 1e16, 2.0076373617104272e16, 1.7976931348623157e308, -1e22]
STRINGS = ["", "null", "plain", 'a "quoted" word', "back\\slash", "\\\"", "comma, and ;", "über € 漢字 😀",
           "\u2028\u2029\ufeff\x7f", "line 1\nline 2\r\nline 3\n", "\n", "tab\there", "\b\f", "%s %d {}",
           "ends with a backslash \\", '"', "\\n is not a newline", "".join(chr(c) for c in range(1, 32))]
# Characters DuckDB's JSON writes as \u000B where Python writes \u000b: an entry with one is checked again.
DUCKDB_UPPER_HEX = {chr(c) for c in (0x0B, 0x0E, 0x0F, *range(0x1A, 0x20))}


def _render(backend: Backend, column: str) -> dict[int, str]:
    """``column`` of each entry as verify_chain has the database spell it (PostgreSQL: before CSV)."""
    with backend.raw() as conn:
        if backend.is_postgres:
            conn.execute("SET extra_float_digits = 1")
            expr = _postgres_column(column).rsplit(" AS ", 1)[0]
        else:
            expr = _duckdb_json(column)
        return {int(seq): text for seq, text in conn.execute(
            f"SELECT entry_seq, {expr} FROM mon_parameter_changes ORDER BY entry_seq").fetchall()}


def _scan(backend: Backend, lines_a_time: int) -> _CopyScan:
    """The PostgreSQL COPY of verify_chain, its lines handed to the scan ``lines_a_time`` at once."""
    with backend.raw() as conn:
        conn.raw.execute("SET extra_float_digits = 1")
        with conn.raw.cursor().copy(_POSTGRES_VERIFY) as copy:
            data = b"".join(bytes(block) for block in copy)
    lines = data.split(b"\n")
    assert lines.pop() == b""
    scan = _CopyScan()
    for i in range(0, len(lines), lines_a_time):
        scan.records(lines[i:i + lines_a_time])
    assert scan.partial is None
    return scan


def _unchecked_again(backend: Backend) -> set[int]:
    """The entries whose database spelling was not canonical()'s: checked again from their values."""
    if backend.is_postgres:
        scan = _scan(backend, 4096)
        assert scan.stop is None
        return {seq for _, seq, _, _ in scan.deferred}
    with backend.raw() as conn:
        rows = conn.execute(_DUCKDB_VERIFY).fetchall()
    return {int(row[4]) for row in rows if not row[2]}


def test_times_are_spelt_as_isoformat_to_the_microsecond(backend: Backend):
    store = backend.store()
    store.log_changes([_change(i, recorded_at=t) for i, t in enumerate(TIMES)])
    rendered = _render(backend, "recorded_at")
    for seq, t in enumerate(TIMES, start=1):
        expected = t.isoformat(timespec="microseconds")
        assert rendered[seq] == (json.dumps(expected) if not backend.is_postgres else expected), t
    assert _unchecked_again(backend) == set()
    assert store.verify_audit() == ChainVerdict(True, len(TIMES))


def test_floats_are_spelt_as_repr(backend: Backend):
    store = backend.store()
    values = FLOATS + LARGE_FLOATS
    store.log_changes([_change(i, old_value=v, new_value=-v, optimization_target=None) for i, v in enumerate(values)])
    old, new = _render(backend, "old_value"), _render(backend, "new_value")
    respelt = {seq for seq, v in enumerate(values, start=1) if (old[seq], new[seq]) != (repr(v), repr(-v))}
    assert respelt <= ({seq for seq, v in enumerate(values, start=1) if v in LARGE_FLOATS}
                       if backend.is_postgres else set())
    assert _render(backend, "optimization_target")[1] == (None if backend.is_postgres else "null")  # NULL, as CSV's null
    assert _unchecked_again(backend) == respelt  # checked again from their values, and intact
    assert store.verify_audit() == ChainVerdict(True, len(values))


def test_strings_are_spelt_as_json(backend: Backend):
    store = backend.store()
    store.log_changes([_change(i, reason=s, session_id=s or None, parameter_name=s[::-1])
                       for i, s in enumerate(STRINGS)])
    if not backend.is_postgres:
        rendered = _render(backend, "reason")
        for seq, s in enumerate(STRINGS, start=1):
            if not DUCKDB_UPPER_HEX & set(s):
                assert rendered[seq] == json.dumps(s, ensure_ascii=False), s
    expected_again = ({seq for seq, s in enumerate(STRINGS, start=1) if DUCKDB_UPPER_HEX & set(s)}
                      if not backend.is_postgres else set())
    assert _unchecked_again(backend) == expected_again
    assert store.verify_audit() == ChainVerdict(True, len(STRINGS))


def test_postgres_records_with_newlines_are_read_whole_however_the_lines_come(postgres: Backend):
    store = postgres.store()
    store.log_changes([_change(i, reason=f"step {i}\n" * (i % 4), session_id="a\nb" if i % 3 == 0 else None)
                       for i in range(40)])
    for lines_a_time in (1, 2, 3, 7, 4096):  # a record cut by the end of a read goes on in the next
        scan = _scan(postgres, lines_a_time)
        assert scan.verdict() == ChainVerdict(True, 40) and scan.deferred == [], lines_a_time


def _tamper_row(backend: Backend, seq: int, assignments: str, params: list[Any]) -> None:
    _tamper(backend, (f"UPDATE mon_parameter_changes SET {assignments} WHERE entry_seq = {seq}", params))


@pytest.mark.parametrize("field, value", [
    ("reason", "line 1\nline 2, edited"),
    ("session_id", 'a "new" session'),
    ("parameter_name", "tab\tand\x0bvertical tab"),
    ("old_value", 1e16),
    ("new_value", math.nextafter(0.031 + 2 / 1e6, 1)),  # one ulp away from entry 3's
    ("recorded_at", T0 + timedelta(seconds=2, microseconds=1)),
    ("job_level", None),
])
def test_an_edit_is_found_whatever_its_spelling(backend: Backend, field: str, value: Any):
    store = backend.store()
    store.log_changes([_change(i, reason="first\nsecond" if i == 2 else f"step {i}") for i in range(6)])
    _tamper_row(backend, 3, f"{field} = ?", [value])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.seq == 3 and "does not match its hash" in (verdict.problem or ""), str(verdict)


def test_an_edit_respelt_with_a_recomputed_hash_breaks_the_next_link(backend: Backend):
    """A row rewritten with a newline and a quote in its reason and its hash recomputed: intact
    itself, so the break is at the next entry, as for any other rewritten row."""
    store = backend.store()
    store.log_changes([_change(i) for i in range(5)])
    with backend.raw() as conn:
        row = list(conn.execute(f"SELECT {', '.join(COLUMNS)} FROM mon_parameter_changes WHERE entry_seq = 2"
                                ).fetchone())
    values = row[1:-2]
    values[COLUMNS.index("reason") - 1] = 'rewritten "reason",\nsecond line'
    _tamper_row(backend, 2, "reason = ?, row_hash = ?", [values[COLUMNS.index("reason") - 1],
                                                         row_hash(2, values, str(row[-2]))])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.seq == 3 and "does not follow entry 2: entry 2 was rewritten" in (
        verdict.problem or ""), str(verdict)


@pytest.mark.parametrize("field, value, broken_at, says", [
    ("prev_hash", '"' + "0" * 63, 3, "does not follow entry 2"),
    ("prev_hash", "x\n" + "0" * 62, 3, "does not follow entry 2"),
    ("row_hash", "a\\,\n\"", 3, "does not match its hash"),
    ("row_hash", None, 3, "does not match its hash"),
])
def test_hashes_that_are_no_hashes_are_found(backend: Backend, field: str, value: str | None, broken_at: int,
                                             says: str):
    store = backend.store()
    store.log_changes([_change(i) for i in range(5)])
    if value is None:  # a NULL row_hash: only a table whose NOT NULL was dropped holds one
        statements: list[tuple[str, list[Any]]] = [
            (f"ALTER TABLE mon_parameter_changes ALTER COLUMN {field} DROP NOT NULL", []),
            (f"UPDATE mon_parameter_changes SET {field} = NULL WHERE entry_seq = 3", [])]
        _tamper(backend, *statements)
    else:
        _tamper_row(backend, 3, f"{field} = ?", [value])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.seq == broken_at and says in (verdict.problem or ""), str(verdict)


def test_an_empty_trail_and_a_genesis_that_is_not(backend: Backend):
    store = backend.store()
    store.log_changes([])
    assert store.verify_audit() == ChainVerdict(True, 0)
    store.log_changes([_change(i) for i in range(3)])
    _tamper_row(backend, 1, "prev_hash = ?", ["1" + GENESIS[1:]])
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.seq == 1 and verdict.rows == 1 and "does not follow entry 0" in (
        verdict.problem or ""), str(verdict)


def test_postgres_verify_in_the_callers_transaction_leaves_it_as_it_was(postgres: Backend):
    from planwise_monitoring.store.audit import verify_chain

    store = postgres.store()
    store.log_changes([_change(i, old_value=1.0) for i in range(3)])
    with postgres.raw() as conn:
        conn.begin()
        conn.execute("SET LOCAL extra_float_digits = 0")  # 15 digits: no float would read back the same
        assert verify_chain(conn) == ChainVerdict(True, 3)
        assert conn.execute("SELECT current_setting('extra_float_digits')").fetchone()[0] == "0"
        assert str(conn.raw.info.transaction_status.name) == "INTRANS"
        conn.rollback()
