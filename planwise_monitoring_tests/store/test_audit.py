"""The parameter audit trail: append-only, hash-chained, verified, on both backends."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from planwise_monitoring.store import MonitoringStore, StoreError
from planwise_monitoring.store.audit import APPROVAL, CHANGE, GENESIS, ChangeEntry

from .backends import Backend

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456)


def _change(i: int, **overrides: Any) -> ChangeEntry:
    fields: dict[str, Any] = dict(parameter_name=f"merit_rate_level_{i % 5}", old_value=0.03 + i / 1e6,
                                  new_value=0.031 + i / 1e6, user_name="ana", change_source="optimization",
                                  recorded_at=T0 + timedelta(seconds=i), job_level=i % 5 + 1, fiscal_year=2025,
                                  session_id="calibration-1", dagster_run_id="run-1", optimization_target=0.03,
                                  reason=f"calibration step {i}")
    fields.update(overrides)
    return ChangeEntry.change(**fields)


def _trail(backend: Backend) -> list[dict]:
    with backend.raw() as conn:
        cur = conn.execute("SELECT * FROM mon_parameter_changes ORDER BY entry_seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _tamper(backend: Backend, *statements: tuple[str, list[Any]]) -> None:
    """What someone with write access to the database could do (on PostgreSQL: its owner, who can
    switch the append-only trigger off)."""
    with backend.raw() as conn:
        if backend.is_postgres:
            conn.execute("ALTER TABLE mon_parameter_changes DISABLE TRIGGER USER")
            conn.execute("ALTER TABLE mon_parameter_changes DROP CONSTRAINT mon_parameter_changes_pkey")
        for sql, params in statements:
            conn.execute(sql, params)


def test_entries_are_chained_in_order_and_stored_as_given(backend: Backend):
    store = backend.store()
    odd = _change(0, reason='a "quoted" reason ü 漢字\nline 2', parameter_name="cola_rate",
                  old_value=0.1 + 0.2, new_value=5e-324, recorded_at=datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=2))))
    entries = [odd, *(_change(i) for i in range(1, 5))]
    assert store.log_changes(entries) == 5
    assert store.log_changes(entries[:2]) == 0  # appending again is a no-op
    rows = _trail(backend)
    assert [r["entry_seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["row_hash"] for r in rows[:-1]]
    assert rows[0]["recorded_at"] == datetime(2026, 3, 1, 8)  # stored in UTC
    assert str(rows[0]["entry_id"]) == odd.entry_id
    for field in ("reason", "parameter_name", "old_value", "new_value", "job_level", "user_name"):
        assert rows[0][field] == getattr(odd, field), field
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 5, str(verdict)


def test_an_approval_is_another_entry_and_needs_a_change(backend: Backend):
    store = backend.store()
    change = _change(1)
    store.log_changes([change])
    approval = store.approve_change(change.entry_id, by="controller", now=T0 + timedelta(hours=3), reason="reviewed")
    with pytest.raises(StoreError, match="no parameter change 'nope'"):
        store.approve_change("nope", by="controller")
    with pytest.raises(StoreError, match="no parameter change"):  # an approval is not a change
        store.approve_change(approval.entry_id, by="controller")
    rows = _trail(backend)
    assert [(r["entry_kind"], str(r["change_id"]), r["user_name"]) for r in rows] == [
        (CHANGE, change.entry_id, "ana"), (APPROVAL, change.entry_id, "controller")]
    assert store.verify_audit().ok


@pytest.mark.parametrize("how, broken_at, says", [
    ("edited value", 4, "does not match its hash"),
    ("deleted row", 4, "entries 4..4 are missing"),
    ("row inserted in the middle", 4, "does not follow entry 3"),
    ("two rows swapped", 4, "does not follow entry 3"),
    ("one row rewritten with its hash recomputed", 5, "does not follow entry 4: entry 4 was rewritten"),
])
def test_verify_names_the_first_entry_that_is_not_as_written(backend: Backend, how: str, broken_at: int, says: str):
    store = backend.store()
    store.log_changes([_change(i) for i in range(8)])
    rows = _trail(backend)
    fourth = rows[3]
    if how == "edited value":
        _tamper(backend, ("UPDATE mon_parameter_changes SET new_value = 0.5 WHERE entry_seq = 4", []))
    elif how == "deleted row":
        _tamper(backend, ("DELETE FROM mon_parameter_changes WHERE entry_seq = 4", []))
    elif how == "row inserted in the middle":
        # a forged entry put in as entry 4, the later ones moved up: its own hash is right, its link is not
        forged = _change(99)
        from planwise_monitoring.store.audit import COLUMNS, row_hash

        values = forged.values()
        prev = "f" * 64
        _tamper(backend, ("UPDATE mon_parameter_changes SET entry_seq = entry_seq + 1 WHERE entry_seq >= 4", []),
                (f"INSERT INTO mon_parameter_changes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                 [4, *values, prev, row_hash(4, values, prev)]))
    elif how == "two rows swapped":
        _tamper(backend, ("UPDATE mon_parameter_changes SET entry_seq = -1 WHERE entry_seq = 4", []),
                ("UPDATE mon_parameter_changes SET entry_seq = 4 WHERE entry_seq = 5", []),
                ("UPDATE mon_parameter_changes SET entry_seq = 5 WHERE entry_seq = -1", []))
    else:
        from planwise_monitoring.store.audit import COLUMNS, row_hash

        values = [fourth[c] for c in COLUMNS[1:-2]]
        values[COLUMNS.index("new_value") - 1] = 0.5
        _tamper(backend, ("UPDATE mon_parameter_changes SET new_value = 0.5, row_hash = ? WHERE entry_seq = 4",
                          [row_hash(4, values, fourth["prev_hash"])]))
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.seq == broken_at and says in verdict.problem, str(verdict)


def test_postgres_refuses_update_delete_and_truncate_itself(postgres: Backend):
    import psycopg

    store = postgres.store()
    store.log_changes([_change(i) for i in range(3)])
    before = _trail(postgres)
    for statement in ("UPDATE mon_parameter_changes SET new_value = 1", "DELETE FROM mon_parameter_changes",
                      "TRUNCATE mon_parameter_changes"):
        with postgres.raw() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
    assert _trail(postgres) == before and store.verify_audit().ok


def _append(target: str, worker: int, batches: int, size: int) -> None:
    store = MonitoringStore(target, lock_timeout_seconds=60.0)
    for b in range(batches):
        store.log_changes([_change(worker * 100_000 + b * size + i, user_name=f"worker-{worker}",
                                   recorded_at=datetime.now(UTC)) for i in range(size)])


def test_four_processes_appending_at_once_keep_one_chain(backend: Backend):
    store = backend.store()
    store.log_changes([])  # the schema, before the processes race
    batches, size = 25, 100  # 10,000 entries
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(backend.target, w, batches, size)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * 4
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 4 * batches * size, str(verdict)
    rows = _trail(backend)
    assert len({r["entry_id"] for r in rows}) == len(rows)
    assert {r["user_name"] for r in rows} == {f"worker-{w}" for w in range(4)}
