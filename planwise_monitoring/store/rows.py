"""Query results as plain rows: what the store returns where pandas would be too heavy to import.

    rows = Rows(("component_name", "runs"), [("scd_workforce_state", 3)])
    assert rows.dicts() == [{"component_name": "scd_workforce_state", "runs": 3}]
    df = rows.df()        # pandas, imported only when asked for

The command line prints these directly; importing pandas costs it ~0.4 s per command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Rows:
    """Column names and rows of one result; ``truncated`` when there were more than ``limit``.

        rows = Rows(("i",), [(0,), (1,)], truncated=True, limit=2)
        assert rows.column("i") == [0, 1] and len(rows) == 2
    """

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    limit: int | None = None

    @classmethod
    def of(cls, cursor: Any, limit: int | None = None) -> Rows:
        """The rows of an executed DB-API cursor, at most ``limit`` (None or 0: all)."""
        columns = tuple(d[0] for d in cursor.description)
        if not limit:
            return cls(columns, cursor.fetchall(), False, limit)
        rows = cursor.fetchmany(limit + 1)
        return cls(columns, rows[:limit], len(rows) > limit, limit)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def df(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame.from_records(self.rows, columns=list(self.columns))
        df.attrs.update(truncated=self.truncated, limit=self.limit)
        return df


def select(conn: Any, sql: str, params: Sequence[Any] | dict[str, Any] | None = None,
           limit: int | None = None) -> Rows:
    """Run one query and take its rows (``limit``: at most that many, and say if there were more)."""
    return Rows.of(conn.execute(sql, params), limit)
