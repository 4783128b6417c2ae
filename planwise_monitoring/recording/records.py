"""The records the plugin stores: one :class:`PerformanceRecord` per monitored step."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .measure import PhaseTiming

SUCCESS = "SUCCESS"
FAILED = "FAILED"


@dataclass(frozen=True)
class PerformanceRecord:
    """One row of ``mon_multi_year_performance`` (plus its phases), as measured.

    ``year_over_year_change_pct`` and ``cumulative_execution_time_seconds`` are not here: the store
    derives them from the history when it inserts the row, so a record replayed late gets them right.
    """

    performance_id: str
    simulation_run_id: str  # the Dagster run id
    simulation_id: str  # groups the runs of one multi-year simulation (tag, backfill, or the run)
    simulation_year: int | None
    scenario: str
    component_name: str
    component_type: str
    asset_key: str | None
    partition_key: str | None
    status: str  # SUCCESS or FAILED
    execution_start_time: datetime  # UTC
    execution_end_time: datetime  # UTC
    execution_time_seconds: float
    cpu_seconds: float | None
    memory_usage_mb: float | None  # peak RSS of the step's process tree
    memory_start_mb: float | None
    input_record_count: int | None
    output_record_count: int | None
    records_per_second: float | None
    sla_threshold_seconds: float | None
    warning_threshold_seconds: float | None
    sla_status: str | None
    performance_category: str | None
    error_class: str | None = None
    error_message: str | None = None
    monitoring_overhead_seconds: float | None = None  # the monitoring's own time in the step
    phases: tuple[PhaseTiming, ...] = ()

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, default=_encode, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PerformanceRecord:
        data: dict[str, Any] = json.loads(text)
        for key in ("execution_start_time", "execution_end_time"):
            data[key] = datetime.fromisoformat(data[key])
        data["phases"] = tuple(
            PhaseTiming(p["name"], datetime.fromisoformat(p["started_at"]), p["duration_seconds"])
            for p in data.get("phases", ())
        )
        return cls(**data)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")
