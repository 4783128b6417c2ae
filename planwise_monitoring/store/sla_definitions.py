"""Mirroring the active SLA rules into ``mon_sla_definitions``, from plain rows.

    from planwise_monitoring.store.sla_definitions import SlaRow

    store.write(records, sla_rows=[SlaRow("scd_workforce_state", None, 120.0, 90.0)])

The store does not know how SLA rules are parsed or matched (that is the evaluation stage); it
takes the rows to store. For the 0.2 transition it also takes an object with ``table_rows()``
(``evaluation.sla.SlaRules``), whose definitions have the same field names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ANY = "*"  # "any component" / "any type" in mon_sla_definitions, whose columns are NOT NULL


@dataclass(frozen=True)
class SlaRow:
    """One SLA definition as stored: a component name, a component type, both, or neither (the default).

        row = SlaRow(component_name=None, component_type="SCD", sla_threshold_seconds=120.0,
                     warning_threshold_seconds=90.0)
        assert row.key == ("*", "SCD")
    """

    component_name: str | None
    component_type: str | None
    sla_threshold_seconds: float
    warning_threshold_seconds: float
    record_count_threshold: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.component_name or ANY, self.component_type or ANY)


def sla_rows(rules: Any) -> tuple[SlaRow, ...] | None:
    """Rows from a sequence of :class:`SlaRow`, or from anything with ``table_rows()`` returning
    objects with the same fields (``SlaRules``); None stays None (nothing to mirror).

        assert sla_rows(None) is None
        assert sla_rows([SlaRow("a", None, 10.0, 5.0)])[0].key == ("a", "*")
    """
    if rules is None:
        return None
    items: Iterable[Any] = rules.table_rows() if hasattr(rules, "table_rows") else rules
    return tuple(
        r if isinstance(r, SlaRow) else SlaRow(r.component_name, r.component_type, float(r.sla_threshold_seconds),
                                               float(r.warning_threshold_seconds), int(r.record_count_threshold))
        for r in items
    )


def sync_sla_definitions(conn: Any, rows: tuple[SlaRow, ...]) -> None:
    """Make the active rows of ``mon_sla_definitions`` exactly ``rows``: update what changed,
    deactivate what is gone (kept, for the history), insert what is new. Inside the caller's
    transaction; writers that start together take turns (each would otherwise find the table
    without the others' rows and insert every rule again)."""
    conn.take_turns("sla_definitions")
    wanted = {r.key: r for r in rows}
    existing = conn.execute(
        "SELECT sla_id, component_name, component_type, sla_threshold_seconds, warning_threshold_seconds, "
        "record_count_threshold, is_active FROM mon_sla_definitions"
    ).fetchall()
    seen = set()
    for sla_id, name, ctype, breach, warning, records, active in existing:
        d = wanted.get((name, ctype))
        if d is None or (name, ctype) in seen:
            if active:
                conn.execute("UPDATE mon_sla_definitions SET is_active = false WHERE sla_id = ?", [sla_id])
            continue
        seen.add((name, ctype))
        if (breach, warning, records, active) != (d.sla_threshold_seconds, d.warning_threshold_seconds,
                                                  d.record_count_threshold, True):
            conn.execute(
                "UPDATE mon_sla_definitions SET sla_threshold_seconds = ?, warning_threshold_seconds = ?, "
                "record_count_threshold = ?, is_active = true WHERE sla_id = ?",
                [d.sla_threshold_seconds, d.warning_threshold_seconds, d.record_count_threshold, sla_id],
            )
    for (name, ctype), d in wanted.items():
        if (name, ctype) not in seen:
            conn.execute(
                "INSERT INTO mon_sla_definitions (sla_id, component_name, component_type, sla_threshold_seconds, "
                "warning_threshold_seconds, record_count_threshold, is_active) VALUES (?, ?, ?, ?, ?, ?, true)",
                [str(uuid.uuid4()), name, ctype, d.sla_threshold_seconds, d.warning_threshold_seconds,
                 d.record_count_threshold],
            )
