"""What a monitored step tells Dagster: record counts read from its inputs and outputs, and its
figures as ``planwise/*`` metadata on each output it materializes.

Dagster's event log is also the record's second durable copy: each materialization carries its
whole record (``planwise/record``, the spool's JSON), and the records no materialization carries
(a failed step's, a dbt build's own total) go in one ``AssetObservation`` of the step
(``planwise/records``). On a multi-node deployment the event log is in PostgreSQL, and the
performance sensor rebuilds from it any record a lost pod never got into the store.

    from planwise_monitoring.defs.metadata import METADATA_PREFIX, count_outputs
    import pandas as pd

    assert count_outputs(pd.DataFrame({"employee_id": range(3)})) == 3
    assert METADATA_PREFIX == "planwise/"
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetObservation, MaterializeResult, MetadataValue, Output

from ..recording.measure import ComponentTiming
from ..recording.records import PerformanceRecord

METADATA_PREFIX = "planwise/"
RECORD_KEY = f"{METADATA_PREFIX}record"  # a materialization's own record, whole
RECORDS_KEY = f"{METADATA_PREFIX}records"  # an observation's records that no materialization carries


def count_inputs(kwargs: Mapping[str, Any]) -> int | None:
    """Rows in the DataFrame inputs, or None when there are none:
    ``count_inputs({"employees": pd.DataFrame({"id": [1, 2]})}) == 2``."""
    counts = [len(v) for v in kwargs.values() if _is_frame(v)]
    return sum(counts) if counts else None


def count_outputs(result: Any) -> int | None:
    """Rows in what the asset returned (DataFrames, or ``dagster/row_count`` on an Output or
    MaterializeResult), or None: ``count_outputs(Output(1, metadata={"dagster/row_count": 5})) == 5``."""
    items = result if isinstance(result, tuple) else (result,)
    counts = []
    for item in items:
        if isinstance(item, (Output, MaterializeResult)):
            row_count: Any = (item.metadata or {}).get("dagster/row_count")
            if row_count is not None:
                counts.append(int(getattr(row_count, "value", row_count)))
                continue
            item = item.value
        if _is_frame(item):
            counts.append(len(item))
    return sum(counts) if counts else None


def _is_frame(value: Any) -> bool:
    # duck-typed so pandas and polars frames both count, without importing either here
    return hasattr(value, "columns") and hasattr(value, "__len__") and not isinstance(value, (str, bytes, Mapping))


def _metadata(r: PerformanceRecord) -> dict[str, MetadataValue]:
    p = METADATA_PREFIX
    md: dict[str, MetadataValue] = {
        f"{p}duration_seconds": MetadataValue.float(round(r.execution_time_seconds, 6)),
        f"{p}cpu_seconds": MetadataValue.float(round(r.cpu_seconds or 0.0, 6)),
        f"{p}peak_memory_mb": MetadataValue.float(round(r.memory_usage_mb or 0.0, 3)),
        f"{p}memory_growth_mb": MetadataValue.float(round((r.memory_usage_mb or 0.0) - (r.memory_start_mb or 0.0), 3)),
        f"{p}sla_threshold_seconds": MetadataValue.float(float(r.sla_threshold_seconds or 0.0)),
        f"{p}sla_warning_seconds": MetadataValue.float(float(r.warning_threshold_seconds or 0.0)),
        f"{p}sla_status": MetadataValue.text(r.sla_status or "UNKNOWN"),
        f"{p}performance_category": MetadataValue.text(r.performance_category or "UNKNOWN"),
        f"{p}performance_id": MetadataValue.text(r.performance_id),
        RECORD_KEY: MetadataValue.json(json.loads(r.to_json())),
    }
    if r.simulation_year is not None:
        md[f"{p}simulation_year"] = MetadataValue.int(r.simulation_year)
    if r.input_record_count is not None:
        md[f"{p}input_records"] = MetadataValue.int(r.input_record_count)
    if r.output_record_count is not None:
        md[f"{p}output_records"] = MetadataValue.int(r.output_record_count)
    if r.monitoring_overhead_seconds is not None:
        md[f"{p}monitoring_overhead_ms"] = MetadataValue.float(round(r.monitoring_overhead_seconds * 1000, 3))
    if r.records_per_second is not None:
        md[f"{p}records_per_second"] = MetadataValue.float(round(r.records_per_second, 3))
    for phase in r.phases:
        md[f"{p}phase/{phase.name}_seconds"] = MetadataValue.float(round(phase.duration_seconds, 6))
    return md


def attach_metadata(context: AssetExecutionContext, result: Any, step: PerformanceRecord,
                    components: list[tuple[ComponentTiming, PerformanceRecord]]) -> tuple[Any, set[str]]:
    """Merge metadata into returned Output/MaterializeResult objects, or else add it to the step's
    outputs; returns the result and the ids of the records its outputs now carry. An output that
    a component names gets that component's figures (plus the step's duration and peak memory);
    every other output gets the step's. The record count becomes ``dagster/row_count`` only for a
    single output whose asset did not set one."""
    step_md = _metadata(step)
    carried: set[str] = set()
    by_output: dict[str | None, PerformanceRecord] = {c.output_name: r for c, r in components if c.output_name}
    by_key: dict[str | None, PerformanceRecord] = {c.asset_key: r for c, r in components if c.asset_key}

    def metadata_for(output_name: str | None, asset_key: str | None) -> dict[str, MetadataValue]:
        record = by_output.get(output_name) or by_key.get(asset_key)
        carried.add((record or step).performance_id)
        if record is None:
            return step_md
        return {**_metadata(record),
                f"{METADATA_PREFIX}step_duration_seconds": step_md[f"{METADATA_PREFIX}duration_seconds"],
                f"{METADATA_PREFIX}step_peak_memory_mb": step_md[f"{METADATA_PREFIX}peak_memory_mb"]}

    items = result if isinstance(result, tuple) else (result,)
    if any(isinstance(i, (Output, MaterializeResult)) for i in items):
        def merged(item: Any) -> Any:
            if isinstance(item, Output):
                md = metadata_for(item.output_name, None)
            elif isinstance(item, MaterializeResult):
                md = metadata_for(None, item.asset_key.to_user_string() if item.asset_key else None)
            else:
                return item
            new = {**(item.metadata or {}), **md}
            row_count = md.get(f"{METADATA_PREFIX}output_records")
            if row_count is not None and (len(items) == 1 or md is not step_md):
                new.setdefault("dagster/row_count", row_count)
            return item.with_metadata(new) if isinstance(item, Output) else with_metadata(item, new)

        new_items = tuple(merged(i) for i in items)
        return (new_items if isinstance(result, tuple) else new_items[0]), carried
    names = sorted(context.op_execution_context.selected_output_names)
    for name in names:
        md = metadata_for(name, None)
        row_count = md.get(f"{METADATA_PREFIX}output_records")
        if row_count is not None and (len(names) == 1 or md is not step_md):
            md = {**md, "dagster/row_count": row_count}
        context.add_output_metadata(md, output_name=name)
    return result, carried


def records_in(metadata: Mapping[str, Any] | None) -> list[PerformanceRecord]:
    """The whole records an event's metadata carries (``planwise/record`` of a materialization,
    ``planwise/records`` of an observation), read back as strictly as the spool's; a payload
    that is not a valid record is left out (ValueError names it) rather than guessed at.

        [record] = records_in({RECORD_KEY: MetadataValue.json(json.loads(record.to_json()))})
    """
    if not metadata:
        return []
    payloads: list[Any] = []
    for key in (RECORD_KEY, RECORDS_KEY):
        value = metadata.get(key)
        data = getattr(value, "data", value)
        if data is not None:
            payloads += data if isinstance(data, list) else [data]
    return [PerformanceRecord.from_json(json.dumps(p)) for p in payloads]


def observe_records(context: AssetExecutionContext, records: Iterable[PerformanceRecord]) -> None:
    """Log the records no materialization carries as one observation of the step's first asset,
    so that Dagster's event log holds every record of the step."""
    payload = [json.loads(r.to_json()) for r in records]
    keys: list[AssetKey] = sorted(context.selected_asset_keys, key=lambda k: tuple(k.path))
    if payload and keys:
        context.log_event(AssetObservation(asset_key=keys[0], metadata={RECORDS_KEY: MetadataValue.json(payload)}))



def with_metadata(result: MaterializeResult, metadata: Mapping[str, Any]) -> MaterializeResult:
    """A copy of ``result`` with ``metadata``, through the public constructor (Dagster's
    ``Output`` has ``with_metadata``; ``MaterializeResult`` has no public equivalent). Every
    constructor argument is copied; ``test_metadata.py`` fails if Dagster adds one."""
    return MaterializeResult(
        asset_key=result.asset_key,
        metadata=metadata,
        check_results=result.check_results,
        data_version=result.data_version,
        tags=result.tags,
        value=result.value,
    )

