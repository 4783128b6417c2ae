"""The records the plugin stores: one :class:`PerformanceRecord` per monitored step.

A record crosses a process boundary as JSON (the spool), so reading one back is strict: whatever
the database would refuse, or store wrongly, is refused here with a reason instead.

    from datetime import datetime
    from planwise_monitoring.recording.records import PerformanceRecord

    try:
        PerformanceRecord.from_json(b'{"performance_id": "not-a-uuid"}')
    except ValueError as exc:
        assert "performance_id" in str(exc)
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from .figures import clean_count, clean_duration, clean_measure, clean_timestamp, clean_year
from .measure import PhaseTiming

SUCCESS = "SUCCESS"
FAILED = "FAILED"
STATUSES = (SUCCESS, FAILED)

# strict: a string is not a number, a float is not a count; no NaN or inf; no unknown fields
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


@with_config(_STRICT)
@dataclass(frozen=True)
class PerformanceRecord:
    """One row of ``mon_multi_year_performance`` (plus its phases), as measured.

        from planwise_monitoring_tests.factories import make_record

        record = make_record(execution_time_seconds=12.5)
        assert PerformanceRecord.from_json(record.to_json()) == record

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

    @property
    def spool_id(self) -> str:
        """Its name in the spool (each kind of record the store takes has one)."""
        return self.performance_id

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, default=_encode, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> PerformanceRecord:
        """Read a record written by :meth:`to_json`. Raises ``ValueError`` naming what is wrong:
        invalid UTF-8, not JSON, a missing or unknown field, a wrong type (a string duration, a
        bad timestamp), an id that is not a UUID, a figure that is NaN, infinite, negative or
        beyond the database's range."""
        try:
            record = _ADAPTER.validate_json(text)
        except ValidationError as exc:
            raise ValueError(_reason(exc)) from None
        cleaned, problems = storable(record)
        if problems:
            raise ValueError("; ".join(problems))
        assert cleaned is not None  # no problems, so nothing refused
        return cleaned


_ADAPTER: TypeAdapter[PerformanceRecord] = TypeAdapter(PerformanceRecord)


def storable(record: PerformanceRecord) -> tuple[PerformanceRecord | None, list[str]]:
    """
        import dataclasses, math
        from planwise_monitoring_tests.factories import make_record

        record, warnings = storable(make_record(output_record_count=10**20))
        assert record.output_record_count is None and record.records_per_second is None
        assert storable(dataclasses.replace(record, execution_time_seconds=math.nan))[0] is None

    The record as the store can take it, and a warning for each figure changed on the way: a
    figure that is NaN, infinite, negative or out of range becomes None. A record whose
    duration, id, status or times are unusable is refused whole (None): those columns cannot be
    NULL, and a guessed duration would be a false record with a false SLA verdict.
    """
    name = f"record {record.component_name!r}"
    refused: list[str] = []
    try:
        uuid.UUID(str(record.performance_id))
    except ValueError:
        refused.append(f"{name}: performance_id {record.performance_id!r} is not a UUID")
    if record.status not in STATUSES:
        refused.append(f"{name}: status {record.status!r} is not one of {', '.join(STATUSES)}")
    seconds, problem = clean_duration(record.execution_time_seconds, f"{name}: execution_time_seconds")
    if problem:
        refused.append(problem)
    start, problem_start = clean_timestamp(record.execution_start_time, f"{name}: execution_start_time")
    end, problem_end = clean_timestamp(record.execution_end_time, f"{name}: execution_end_time")
    refused += [p for p in (problem_start, problem_end) if p]
    if start is None or end is None:
        refused.append(f"{name}: execution start and end times are required")
    if refused:
        return None, [*refused, f"{name} is not stored"]

    warnings: list[str] = []

    def keep(cleaned: tuple[Any, str | None]) -> Any:
        value, warning = cleaned
        if warning:
            warnings.append(f"{name}: {warning}; stored as NULL")
        return value

    changes: dict[str, Any] = {"execution_start_time": start, "execution_end_time": end, "execution_time_seconds": seconds}
    changes["simulation_year"] = keep(clean_year(record.simulation_year))
    for field in ("input_record_count", "output_record_count"):
        changes[field] = keep(clean_count(getattr(record, field), field))
    for field in ("cpu_seconds", "memory_usage_mb", "memory_start_mb", "records_per_second",
                  "sla_threshold_seconds", "warning_threshold_seconds", "monitoring_overhead_seconds"):
        changes[field] = keep(clean_measure(getattr(record, field), field))
    if changes["output_record_count"] is None:
        changes["records_per_second"] = None  # a rate of a count we refused means nothing
    phases = []
    for phase in record.phases:
        if keep(clean_duration(phase.duration_seconds, f"phase {phase.name!r}")) is None:
            warnings.append(f"{name}: phase {phase.name!r} is left out")
        else:
            phases.append(phase)
    changes["phases"] = tuple(phases)
    changed = {k: v for k, v in changes.items() if v != getattr(record, k)}
    return (dataclasses.replace(record, **changed) if changed else record), warnings


def error_class(exc: BaseException) -> str:
    """The class of an exception as records name it: ``ValueError``, ``dbt.exceptions.DbtRuntimeError``."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _reason(exc: ValidationError) -> str:
    """Field and problem only: the input values may hold anything, secrets included."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")
