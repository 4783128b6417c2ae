"""The Dagster resource: where records go and which SLAs apply."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import Config, ConfigurableResource
from pydantic import Field, model_validator

from ..events import JsonEventLog, JsonLogConfig
from ..recording.measure import ComponentTiming, current_meter, phase
from ..evaluation.sla import (
    DEFAULT_SLA,
    DEFAULT_SLA_DEFINITIONS,
    SlaConfigError,
    SlaDefinition,
    SlaRules,
    check_unique,
    load_sla_file,
    merge_definitions,
    parse_sla_definition,
)
from ..store.duckdb import MonitoringStore
from ..store.writer import writer_for


class SlaDefinitionConfig(Config):
    """One SLA definition given in resource config rather than in the SLA file."""

    component_name: str | None = Field(default=None, description="Component (asset or dbt model) name.")
    component_type: str | None = Field(default=None, description="Component type, e.g. SCD.")
    sla_threshold_seconds: float = Field(description="Above this the step breaches its SLA.")
    warning_threshold_seconds: float = Field(description="Above this (and within the SLA) it warns.")
    record_count_threshold: int = Field(
        default=0, description="Thresholds scale linearly above this many output records (0: never)."
    )


class MonitoringResource(ConfigurableResource):
    """Records the performance of monitored steps into a DuckDB monitoring database.

    Examples:
        .. code-block:: python

            from dagster import AssetExecutionContext, Definitions, StaticPartitionsDefinition, asset
            from planwise_monitoring import MonitoringResource, monitor_performance

            years = StaticPartitionsDefinition(["2025", "2026", "2027"])

            @asset(partitions_def=years)
            @monitor_performance("SCD")
            def scd_workforce_state(context: AssetExecutionContext):
                ...

            defs = Definitions(
                assets=[scd_workforce_state],
                resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb",
                                                            sla_file="sla.yaml")},
            )

    The SLA rules are the seed defaults, overridden by ``sla_file`` entries, overridden by
    ``sla_definitions`` entries (same component name, or same type for type-only entries). A
    malformed definition fails when the resource is built, i.e. when the definitions load.
    """

    database_path: str = Field(
        default="monitoring.duckdb",
        description="The monitoring DuckDB file; keep it separate from the simulation's database.",
    )
    scenario: str = Field(
        default="baseline",
        description="Scenario name stored with every record; a run tag planwise/scenario overrides it.",
    )
    sla_file: str | None = Field(default=None, description="YAML file of SLA definitions.")
    sla_definitions: list[SlaDefinitionConfig] = Field(
        default=[], description="SLA definitions that override the file's and the defaults."
    )
    use_default_slas: bool = Field(default=True, description="Start from the seed's default SLAs.")
    lock_timeout_seconds: float = Field(
        default=1.0, gt=0, description="How long a write waits for the database lock before spooling."
    )
    memory_sample_interval_seconds: float = Field(
        default=0.1, gt=0, description="How often child processes' memory is sampled during a step."
    )
    spool_dir: str | None = Field(
        default=None, description="Where records wait while the database is locked (default: <database>.spool)."
    )
    enabled: bool = Field(default=True, description="Turn monitoring off without touching the assets.")
    json_log_path: str | None = Field(
        default=None, description="Structured JSON log of monitoring events (default: logs/planwise-monitoring.jsonl "
                                  "beside the database); '' turns it off.")
    json_log_max_bytes: int = Field(default=10 * 2**20, ge=0, description="Rotate the JSON log at this size.")
    json_log_backup_count: int = Field(default=5, ge=0, description="Rotated JSON log files kept.")

    @model_validator(mode="after")
    def _validate(self) -> MonitoringResource:
        if not self.scenario.strip() or len(self.scenario) > 100:
            raise ValueError(f"scenario must be 1-100 characters, got {self.scenario!r}")
        if not str(self.database_path).strip():
            raise ValueError("database_path must not be empty")
        self.get_sla_rules()  # fails now, at definitions load, rather than in the middle of a run
        return self

    def get_store(self) -> MonitoringStore:
        return MonitoringStore(
            self.database_path, lock_timeout_seconds=self.lock_timeout_seconds, spool_dir=self.spool_dir
        )

    def get_event_log(self) -> JsonEventLog | None:
        """This process's structured event log (one per file), or None when turned off."""
        if self.json_log_path == "":
            return None
        path = self.json_log_path or str(Path(self.database_path).parent / "logs" / "planwise-monitoring.jsonl")
        return _event_log(os.path.abspath(path), self.json_log_max_bytes, self.json_log_backup_count)

    def get_sla_rules(self) -> SlaRules:
        """The effective SLA rules (cached while the configuration and the SLA file are unchanged)."""
        overrides = tuple(
            parse_sla_definition(d.model_dump(exclude_none=True), f"sla_definitions[{i}]")
            for i, d in enumerate(self.sla_definitions)
        )
        check_unique(overrides, "sla_definitions")
        file_stamp = None
        if self.sla_file:
            try:
                file_stamp = os.stat(self.sla_file).st_mtime_ns
            except OSError as exc:
                raise SlaConfigError(f"cannot read SLA file {self.sla_file}: {exc.strerror}") from None
        return _rules(self.use_default_slas, self.sla_file, file_stamp, overrides)

    def phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time a sub-phase of the monitored step: ``with monitoring.phase("load"): ...``."""
        return phase(name)

    def set_record_counts(self, input_records: int | None = None, output_records: int | None = None) -> None:
        """Tell the monitored step's record its input/output record counts."""
        meter = current_meter()
        if meter is not None:
            meter.set_record_counts(input_records, output_records)

    def record_component(self, component: ComponentTiming) -> None:
        """Record a component timed inside the monitored step (e.g. each model of a dbt build)
        as a record of its own, sharing the step's run, year and scenario."""
        meter = current_meter()
        if meter is None:
            raise RuntimeError("record_component() is only meaningful inside a @monitor_performance step")
        meter.add_component(component)

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Write everything spooled by this process now; True when nothing of it is left waiting."""
        return writer_for(self.get_store()).flush(timeout_seconds)


_rules_cache: dict[tuple, SlaRules] = {}
_event_logs: dict[tuple, JsonEventLog] = {}


def _event_log(path: str, max_bytes: int, backup_count: int) -> JsonEventLog:
    key = (path, max_bytes, backup_count)
    if key not in _event_logs:
        _event_logs[key] = JsonEventLog(JsonLogConfig(path=path, max_bytes=max_bytes, backup_count=backup_count))
    return _event_logs[key]


def _rules(use_defaults: bool, sla_file: str | None, file_stamp: int | None,
           overrides: tuple[SlaDefinition, ...]) -> SlaRules:
    key = (use_defaults, sla_file and str(Path(sla_file).resolve()), file_stamp, overrides)
    if key not in _rules_cache:
        definitions: list[SlaDefinition] = list(DEFAULT_SLA_DEFINITIONS) if use_defaults else []
        default = DEFAULT_SLA
        if sla_file:
            from_file, file_default = load_sla_file(sla_file)
            definitions = merge_definitions(definitions, from_file)
            default = file_default or default
        _rules_cache[key] = SlaRules(merge_definitions(definitions, overrides), default)
    return _rules_cache[key]


def with_resource_parameter(fn: Callable[..., Any], context_type: type, resource_key: str) -> Callable[..., Any]:
    """Give ``fn(context, **resources)`` the signature ``(context, *, <resource_key>: MonitoringResource)``,
    so Dagster passes the monitoring resource under the configured key (as the decorator does)."""
    fn.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=context_type),
        inspect.Parameter(resource_key, inspect.Parameter.KEYWORD_ONLY, annotation=MonitoringResource),
    ])
    return fn
