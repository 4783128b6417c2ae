"""``@monitor_performance``: measure an asset's materialization and record it.

Stacked under ``@asset`` / ``@multi_asset``; the asset needs no other change:

    @asset(partitions_def=simulation_years)
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext) -> pd.DataFrame:
        ...

The decorator adds the ``monitoring`` resource (and ``context``, if missing) to the signature
Dagster sees, so the asset requires the resource. Monitoring never changes what the asset does:
its own failures are logged as warnings and the asset's result and exceptions pass unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, Output

from ..evaluation.sla import SlaRules, SlaVerdict
from ..recording.measure import ComponentTiming, Measurement, PhaseTiming, StepMeter, active_meter
from ..recording.partitions import PartitionKeyError, simulation_year_from_key
from ..recording.records import FAILED, SUCCESS, PerformanceRecord, error_class
from ..redaction import redact
from .metadata import attach_metadata, count_inputs, count_outputs, observe_records
from .resource import SCENARIO_TAG, MonitoringResource
from .signature import resource_signature

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("planwise_monitoring")

SIMULATION_ID_TAG = "planwise/simulation_id"
SIMULATION_YEAR_TAG = "planwise/simulation_year"
_ERROR_MESSAGE_LIMIT = 4000
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]*$")


@dataclass(frozen=True)
class _Spec:
    component_type: str
    component_name: str | None
    resource_key: str
    track_records: bool


@dataclass(frozen=True)
class _Identity:
    """Who a step is: what its records share."""

    run_id: str
    simulation_id: str
    simulation_year: int | None
    scenario: str
    component_name: str
    asset_key: str | None
    partition_key: str | None


def monitor_performance(
    component_type: str,
    *,
    component_name: str | None = None,
    resource_key: str = "monitoring",
    track_records: bool = True,
) -> Callable[[F], F]:
    """Record each materialization of the decorated asset into the monitoring database.

        from dagster import AssetExecutionContext, StaticPartitionsDefinition, asset
        from planwise_monitoring import monitor_performance

        @asset(partitions_def=StaticPartitionsDefinition(["2025", "2026"]))
        @monitor_performance("SCD")
        def scd_workforce_state(context: AssetExecutionContext):
            ...

    Args:
        component_type: e.g. ``"SCD"``, ``"EVENT_GENERATION"``; picks the SLA when no SLA names
            the component itself.
        component_name: defaults to the asset's name (the op's name for a multi-asset).
        resource_key: the key of the :class:`MonitoringResource` in the Definitions.
        track_records: count output records from a returned DataFrame or ``dagster/row_count``
            metadata, and input records from DataFrame inputs.
    """
    _check_name("component_type", component_type, 50)
    if component_name is not None:
        _check_name("component_name", component_name, 100)
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"@monitor_performance: resource_key must be a Python identifier, got {resource_key!r}")
    spec = _Spec(component_type, component_name, resource_key, track_records)

    def decorator(fn: F) -> F:
        if isinstance(fn, AssetsDefinition) or not inspect.isfunction(fn):
            raise TypeError(
                "@monitor_performance must be stacked under @asset/@multi_asset, directly on the "
                f"function (got {type(fn).__name__})"
            )
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"@monitor_performance does not support async assets yet ({fn.__name__})")
        return cast(F, _wrap(fn, spec))

    return decorator


def _check_name(what: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > limit:
        raise ValueError(
            f"@monitor_performance: {what} must be 1-{limit} characters of letters, digits and "
            f"_ . - / (starting with a letter, digit or _), got {value!r}"
        )


def _wrap(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    seen = resource_signature(fn, AssetExecutionContext, spec.resource_key, MonitoringResource)
    takes_context, takes_resource = seen.takes_context, seen.takes_resource

    def split(args: tuple, kwargs: dict) -> tuple[Any, MonitoringResource, tuple, dict]:
        context = args[0] if args else kwargs.get("context", kwargs.get("_context"))
        monitoring = kwargs[spec.resource_key] if takes_resource else kwargs.pop(spec.resource_key)
        if not takes_context:
            args = args[1:]
        return context, monitoring, args, kwargs

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            context, monitoring, args, kwargs = split(args, kwargs)
            step = _MonitoredStep.begin(context, monitoring, spec, kwargs)
            if step is None:
                return (yield from fn(*args, **kwargs))
            return (yield from step.run_generator(fn(*args, **kwargs)))
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            context, monitoring, args, kwargs = split(args, kwargs)
            step = _MonitoredStep.begin(context, monitoring, spec, kwargs)
            if step is None:
                return fn(*args, **kwargs)
            with active_meter(step.meter):
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    step.failed(exc)
                    raise
            return step.succeeded(result)

    wrapper.__signature__ = seen.signature  # type: ignore[attr-defined]
    return wrapper


class _MonitoredStep:
    """One monitored execution: who it is, its meter, and turning the outcome into a record."""

    def __init__(self, context: AssetExecutionContext, monitoring: MonitoringResource, spec: _Spec,
                 identity: _Identity, rules: SlaRules):
        self.context = context
        self.monitoring = monitoring
        self.spec = spec
        self.identity = identity
        self.rules = rules
        self.meter = StepMeter(monitoring.memory_sample_interval_seconds)

    @classmethod
    def begin(cls, context: AssetExecutionContext, monitoring: MonitoringResource, spec: _Spec,
              kwargs: Mapping[str, Any]) -> _MonitoredStep | None:
        if not monitoring.enabled:
            return None
        t0 = time.perf_counter()
        try:
            step = cls(context, monitoring, spec, _identify(context, spec, monitoring), monitoring.get_sla_rules())
            if spec.track_records:
                step.meter.input_records = count_inputs(kwargs)
            _relay_warnings(context, monitoring)
            step.meter.start()
            step.meter.overhead_seconds += time.perf_counter() - t0
            return step
        except Exception as exc:
            _warn(context, f"not monitoring this step: {type(exc).__name__}: {exc}")
            return None

    def succeeded(self, result: Any, attach: bool = True) -> Any:
        try:
            step, components = self._finish(SUCCESS, count_outputs(result) if self.spec.track_records else None)
            carried: set[str] = set()
            if attach:
                result, carried = attach_metadata(self.context, result, step, components)
            observe_records(self.context, [r for r in (step, *(r for _, r in components))
                                           if r.performance_id not in carried])
        except Exception as exc:
            _warn(self.context, f"could not record this step: {type(exc).__name__}: {exc}")
        return result

    def failed(self, exc: BaseException, held: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """Record the failed step; what it yielded before failing (e.g. the models a failing dbt
        build did build) gets its metadata, so the sensor can judge those materializations."""
        try:
            message = redact(str(exc)) or ""
            step, components = self._finish(FAILED, None, error=(error_class(exc), message[:_ERROR_MESSAGE_LIMIT]))
            carried: set[str] = set()
            if held:
                held, carried = attach_metadata(self.context, held, step, components)
            # before the exception propagates: the event log then holds the failed step's record too
            observe_records(self.context, [r for r in (step, *(r for _, r in components))
                                           if r.performance_id not in carried])
            return tuple(held)
        except Exception as inner:
            _warn(self.context, f"could not record the failed step: {type(inner).__name__}: {inner}")
        return held

    def run_generator(self, gen: Iterator[Any]) -> Iterator[Any]:
        """Pass events through; hold outputs back until the end so they carry the metadata."""
        held: list[Any] = []
        while True:
            try:
                with active_meter(self.meter):
                    item = next(gen)
            except StopIteration as stop:
                returned = stop.value
                break
            except BaseException as exc:
                labelled = self.failed(exc, tuple(held))
                if isinstance(exc, Exception):
                    yield from labelled  # what the asset yielded before failing counts, as it would unmonitored
                raise
            if held or isinstance(item, (Output, MaterializeResult)):
                held.append(item)
            else:
                yield item
        yield from self.succeeded(tuple(held), attach=bool(held))
        return returned

    def _finish(self, status: str, output_records: int | None, error: tuple[str, str] | None = None
                ) -> tuple[PerformanceRecord, list[tuple[ComponentTiming, PerformanceRecord]]]:
        """Stop the meter and turn the step, and each component it reported, into records."""
        t0 = time.perf_counter()
        m = self.meter.stop()
        for message in self.meter.warnings:  # figures the step reported that cannot be recorded
            _warn(self.context, message)
        if self.meter.output_records is not None:
            output_records = self.meter.output_records
        step = self._make_record(
            m, self.identity.component_name, self.spec.component_type, status, m.started_at,
            m.duration_seconds, m.cpu_seconds, self.meter.input_records, output_records, error, m.phases,
        )
        step = dataclasses.replace(
            step, monitoring_overhead_seconds=self.meter.overhead_seconds + time.perf_counter() - t0
        )
        # A component shares the step's process tree: it gets the step's peak memory, and a share
        # of the step's CPU time in proportion to its duration.
        total = sum(c.duration_seconds for c in self.meter.components) or 1.0
        components = [
            (c, self._make_record(
                m, c.component_name, c.component_type, c.status, c.started_at or m.started_at,
                c.duration_seconds, m.cpu_seconds * c.duration_seconds / total, None, c.output_records,
                (c.error_class or "ComponentError", redact(c.error_message or "") or "") if c.status == FAILED else None,
                (),
            ))
            for c in self.meter.components
        ]
        writer = self.monitoring.get_writer()
        events = self.monitoring.get_event_log()
        writer.event_log = events
        records = [step, *(r for _, r in components)]
        writer.submit_all(records, self.rules)  # one transaction where the store takes direct writes
        _relay_warnings(self.context, self.monitoring)  # e.g. a direct write that fell back to the spool
        for record in records:
            if events is not None:
                events.event(
                    "step_recorded" if record.status == SUCCESS else "step_failed",
                    level="INFO" if record.status == SUCCESS else "ERROR",
                    run_id=record.simulation_run_id, asset=record.asset_key, simulation_year=record.simulation_year,
                    component=record.component_name, performance_id=record.performance_id,
                    component_type=record.component_type, duration_seconds=record.execution_time_seconds,
                    peak_memory_mb=record.memory_usage_mb, cpu_seconds=record.cpu_seconds,
                    output_records=record.output_record_count, sla_status=record.sla_status,
                    error_class=record.error_class, error_message=record.error_message,
                )
        # Only what needs attention goes to the Dagster log: each log line is an event-log write.
        for record in records:
            if record.sla_status in ("SLA_WARNING", "SLA_BREACH"):
                _warn(self.context, f"{record.component_name}"
                      f"{f' year {record.simulation_year}' if record.simulation_year is not None else ''} "
                      f"{record.sla_status}: {record.execution_time_seconds:.1f}s against "
                      f"{record.warning_threshold_seconds:g}s warning / {record.sla_threshold_seconds:g}s breach")
        return step, components

    def _make_record(self, m: Measurement, component_name: str, component_type: str, status: str,
                     started_at: datetime, duration: float, cpu: float, input_records: int | None,
                     output_records: int | None, error: tuple[str, str] | None,
                     phases: tuple[PhaseTiming, ...]) -> PerformanceRecord:
        ident = self.identity
        verdict: SlaVerdict = self.rules.evaluate(
            component_name, component_type, duration, output_records, succeeded=status == SUCCESS
        )
        rate = output_records / duration if output_records is not None and duration > 0 else None
        return PerformanceRecord(
            performance_id=str(uuid.uuid4()),
            simulation_run_id=ident.run_id,
            simulation_id=ident.simulation_id,
            simulation_year=ident.simulation_year,
            scenario=ident.scenario,
            component_name=component_name[:100],
            component_type=component_type[:50],
            asset_key=ident.asset_key,
            partition_key=ident.partition_key,
            status=status,
            execution_start_time=started_at,
            execution_end_time=started_at + timedelta(seconds=duration),
            execution_time_seconds=duration,
            cpu_seconds=cpu,
            memory_usage_mb=m.peak_memory_mb,
            memory_start_mb=m.start_memory_mb,
            input_record_count=input_records,
            output_record_count=output_records,
            records_per_second=rate,
            sla_threshold_seconds=verdict.sla_threshold_seconds,
            warning_threshold_seconds=verdict.warning_threshold_seconds,
            sla_status=verdict.sla_status.value if verdict.sla_status else None,
            performance_category=verdict.performance_category.value if verdict.performance_category else None,
            error_class=error[0] if error else None,
            error_message=error[1] if error else None,
            phases=phases,
        )


def _identify(context: AssetExecutionContext, spec: _Spec, monitoring: MonitoringResource) -> _Identity:
    tags = context.run.tags
    run_id = context.run.run_id
    keys = sorted(context.selected_asset_keys, key=lambda k: k.path)
    if spec.component_name:
        component_name = spec.component_name
    elif len(keys) == 1:
        component_name = keys[0].path[-1]
    else:
        component_name = context.op_execution_context.op.name
    partition_key, year = None, None
    if context.has_partition_key:
        partition_key = str(context.partition_key)
        key = context.partition_key
        try:
            year = simulation_year_from_key(getattr(key, "keys_by_dimension", None) or key)
        except PartitionKeyError as exc:
            _warn(context, f"{exc}; recording {component_name} without a simulation year")
    elif context.has_partition_key_range:
        r = context.partition_key_range
        partition_key = f"{r.start}...{r.end}"
        _warn(context, f"step covers partitions {partition_key}, several years at once; "
                       "recording it without a simulation year")
    if year is None and partition_key is None:
        year = _year_from_config_or_tags(context, tags)
    scenario = tags.get(SCENARIO_TAG) or monitoring.scenario
    return _Identity(
        run_id=run_id,
        simulation_id=tags.get(SIMULATION_ID_TAG) or tags.get("dagster/backfill") or run_id,
        simulation_year=year,
        scenario=scenario[:100],
        component_name=component_name[:100],
        asset_key=", ".join(k.to_user_string() for k in keys) or None,
        partition_key=partition_key,
    )


def _year_from_config_or_tags(context: AssetExecutionContext, tags: Mapping[str, str]) -> int | None:
    config = context.op_execution_context.op_config
    raw = config.get("simulation_year") if isinstance(config, Mapping) else None
    raw = raw if raw is not None else tags.get(SIMULATION_YEAR_TAG)
    if raw is None:
        return None
    try:
        return simulation_year_from_key(str(raw))
    except PartitionKeyError:
        _warn(context, f"simulation_year {raw!r} from config/tags is not a year; recording without one")
        return None


def _relay_warnings(context: AssetExecutionContext, monitoring: MonitoringResource) -> None:
    """Background writes have no step to log to; say what went wrong in the next monitored step."""
    for message in monitoring.get_writer().take_warnings():
        _warn(context, message)


def _warn(context: AssetExecutionContext, message: str) -> None:
    try:
        context.log.warning(f"planwise-monitoring: {message}")
    except Exception:
        log.warning("planwise-monitoring: %s", message)
