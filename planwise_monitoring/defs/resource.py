"""The Dagster resource: where records go and which SLAs apply."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Config, ConfigurableResource, InitResourceContext, OpExecutionContext
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

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
from ..evaluation.slo import Slo, load_slo_file
from ..events import JsonEventLog, JsonLogConfig
from ..identity import os_user
from ..recording.measure import ComponentTiming, current_meter, phase, utcnow
from ..recording.optimization import OptimizationRun, OptimizationTracker, RunIdentity, target_value
from ..redaction import redact
from ..store import MonitoringStore, StoreError, is_postgres_url
from ..store.audit import ChangeEntry
from ..store.writer import RecordWriter, writer_for
from .signature import resource_signature

log = logging.getLogger("planwise_monitoring")

SCENARIO_TAG = "planwise/scenario"
USER_TAG = "planwise/user"  # who a run's optimizations and parameter changes are recorded as


class SlaDefinitionConfig(Config):
    """One SLA definition given in resource config rather than in the SLA file."""

    model_config = ConfigDict(extra="forbid")  # a misspelt threshold must fail, not vanish

    component_name: str | None = Field(default=None, description="Component (asset or dbt model) name.")
    component_type: str | None = Field(default=None, description="Component type, e.g. SCD.")
    sla_threshold_seconds: float = Field(description="Above this the step breaches its SLA.")
    warning_threshold_seconds: float = Field(description="Above this (and within the SLA) it warns.")
    record_count_threshold: int = Field(
        default=0, description="Thresholds scale linearly above this many output records (0: never)."
    )


class MonitoringResource(ConfigurableResource):
    """Records the performance of monitored steps into the monitoring database: a DuckDB file on
    one machine (``database_path``), or PostgreSQL when many machines write (``database_url``).

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

    On a multi-node deployment (Dagster on PostgreSQL, a pod per step) give every process the
    same shared store, the password through the environment:

        .. code-block:: python

            from dagster import EnvVar

            MonitoringResource(database_url=EnvVar("PLANWISE_MONITORING_DB_URL"), database_schema="planwise")

    The SLA rules are the seed defaults, overridden by ``sla_file`` entries, overridden by
    ``sla_definitions`` entries (same component name, or same type for type-only entries). A
    malformed definition fails when the resource is built, i.e. when the definitions load, and
    so does an unknown field (``databse_path=`` would otherwise send every record to the default
    database).

    The resource owns its process's state for the run: the record writer it flushes when the
    run ends (so a run's records are readable when ``materialize()`` returns), its event log,
    and the parsed SLA rules. Dagster gives each run (each step process, under the multiprocess
    executor) its own copy of the resource, so this state is never shared between runs. Having a
    teardown makes it a context-manager resource for Dagster: a context built by hand for a unit
    test opens it with ``with build_sensor_context(resources=...) as context:``.
    """

    model_config = ConfigDict(extra="forbid")

    database_path: str = Field(
        default="monitoring.duckdb",
        description="The monitoring DuckDB file; keep it separate from the simulation's database.",
    )
    database_url: str | None = Field(
        default=None,
        description="A postgresql://user@host:5432/dbname URL: the shared store of a multi-node deployment "
                    "(use EnvVar(...) so a password never sits in code). Takes the place of database_path.",
    )
    database_schema: str | None = Field(
        default=None, description="PostgreSQL schema of the mon_* tables, created if missing (default: the "
                                  "connection's default schema).",
    )
    scenario: str = Field(
        default="baseline",
        description="Scenario name stored with every record; a run tag planwise/scenario overrides it.",
    )
    sla_file: str | None = Field(default=None, description="YAML file of SLA definitions (and of the SLOs, "
                                                         "its 'slos:' section).")
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

    # Dagster's documented place for a resource's state: private attributes, outside the config.
    _writer: RecordWriter | None = PrivateAttr(default=None)
    _event_log: JsonEventLog | None = PrivateAttr(default=None)
    _rules: tuple[int | None, SlaRules] | None = PrivateAttr(default=None)  # (SLA file's mtime, rules)
    _slos: tuple[int | None, list[Slo]] | None = PrivateAttr(default=None)  # (SLA file's mtime, SLOs)

    @model_validator(mode="after")
    def _validate(self) -> MonitoringResource:
        if not self.scenario.strip() or len(self.scenario) > 100:
            raise ValueError(f"scenario must be 1-100 characters, got {self.scenario!r}")
        if not str(self.database_path).strip():
            raise ValueError("database_path must not be empty")
        if self.database_url is not None:
            if "database_path" in self.model_fields_set:
                raise ValueError("give database_path (a DuckDB file) or database_url (PostgreSQL), not both")
            if not str(self.database_url).strip():
                raise ValueError("database_url must not be empty")
        elif self.database_schema is not None:
            raise ValueError("database_schema applies to a PostgreSQL database_url only")
        self.get_sla_rules()  # fails now, at definitions load, rather than in the middle of a run
        return self

    def get_store(self) -> MonitoringStore:
        """The store these settings name (a DuckDB file, or PostgreSQL for a ``database_url``)."""
        if self.database_url is not None and not is_postgres_url(self.database_url):
            raise StoreError("database_url must be a postgresql:// URL (a DuckDB file goes in database_path)")
        return MonitoringStore(
            self.database_url or self.database_path, lock_timeout_seconds=self.lock_timeout_seconds,
            spool_dir=self.spool_dir, schema=self.database_schema,
        )

    def get_writer(self) -> RecordWriter:
        """This process's writer for the database; the resource flushes it when the run (or, under
        the multiprocess executor, the step's process) ends."""
        if self._writer is None:
            self._writer = writer_for(self.get_store())
        return self._writer

    def get_event_log(self) -> JsonEventLog | None:
        """The structured event log this resource writes to, or None when turned off."""
        if self.json_log_path == "":
            return None
        if self._event_log is None:
            beside = Path(".") if self.database_url else Path(self.database_path).parent
            path = self.json_log_path or str(beside / "logs" / "planwise-monitoring.jsonl")
            self._event_log = JsonEventLog(JsonLogConfig(
                path=os.path.abspath(path), max_bytes=self.json_log_max_bytes, backup_count=self.json_log_backup_count))
        return self._event_log

    def get_sla_rules(self) -> SlaRules:
        """The effective SLA rules (kept while the configuration and the SLA file are unchanged)."""
        file_stamp = self._sla_file_stamp()
        if self._rules is None or self._rules[0] != file_stamp:
            self._rules = (file_stamp, self._build_rules())
        return self._rules[1]

    def get_slos(self) -> list[Slo]:
        """The SLOs of the SLA file's ``slos:`` section (none without a file; kept while it is
        unchanged). A malformed one is an ``SloConfigError`` naming the file, entry and field."""
        file_stamp = self._sla_file_stamp()
        if self._slos is None or self._slos[0] != file_stamp:
            self._slos = (file_stamp, load_slo_file(self.sla_file) if self.sla_file else [])
        return self._slos[1]

    def _sla_file_stamp(self) -> int | None:
        if not self.sla_file:
            return None
        try:
            return os.stat(self.sla_file).st_mtime_ns
        except OSError as exc:
            raise SlaConfigError(f"cannot read SLA file {self.sla_file}: {exc.strerror}") from None

    def _build_rules(self) -> SlaRules:
        overrides = tuple(
            parse_sla_definition(d.model_dump(exclude_none=True), f"sla_definitions[{i}]")
            for i, d in enumerate(self.sla_definitions)
        )
        check_unique(overrides, "sla_definitions")
        definitions: list[SlaDefinition] = list(DEFAULT_SLA_DEFINITIONS) if self.use_default_slas else []
        default = DEFAULT_SLA
        if self.sla_file:
            from_file, file_default = load_sla_file(self.sla_file)
            definitions = merge_definitions(definitions, from_file)
            default = file_default or default
        return SlaRules(merge_definitions(definitions, overrides), default)

    def phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Time a sub-phase of the monitored step: ``with monitoring.phase("load"): ...``."""
        return phase(name)

    def set_record_counts(self, input_records: int | None = None, output_records: int | None = None) -> None:
        """Tell the monitored step's record its input/output record counts. Never raises: a count
        that cannot be stored (NaN, inf, negative, beyond BIGINT) is left out with a warning in
        the step's Dagster log, and the asset carries on."""
        try:
            meter = current_meter()
            if meter is not None:
                meter.set_record_counts(input_records, output_records)
        except Exception as exc:
            log.warning("planwise-monitoring: set_record_counts ignored: %s: %s", type(exc).__name__, exc)

    def record_component(self, component: ComponentTiming) -> None:
        """Record a component timed inside the monitored step (e.g. each model of a dbt build)
        as a record of its own, sharing the step's run, year and scenario. Never raises: a
        component that cannot be recorded is refused with a warning in the step's Dagster log."""
        try:
            meter = current_meter()
            if meter is None:
                log.warning("planwise-monitoring: record_component() outside a @monitor_performance step; ignored")
                return
            meter.add_component(component)
        except Exception as exc:
            log.warning("planwise-monitoring: record_component ignored: %s: %s", type(exc).__name__, exc)

    # -- optimization runs and the parameter audit trail -----------------------------------------
    def optimization(self, name: str, *, algorithm: str, target: Any = None, max_iterations: int | None = None,
                     initial_params: Any = None, param_names: Sequence[str] | None = None,
                     tolerance: float | None = None, user: str | None = None, job_level: int | None = None,
                     fiscal_year: int | None = None) -> OptimizationTracker:
        """Track one optimization run (see :mod:`planwise_monitoring.recording.optimization`):

            with monitoring.optimization("merit_calibration", algorithm="Nelder-Mead",
                                         target={"growth_rate": 0.03}, max_iterations=200,
                                         initial_params={"merit_rate": 0.03}, tolerance=1e-8) as opt:
                result = scipy.optimize.minimize(f, opt.x0, method="Nelder-Mead", callback=opt.scipy_callback)
                opt.finish(result)

        Every iteration goes to ``mon_optimization_iterations`` and the run to ``mon_optimization_runs``
        through the spool (never a database round trip on the optimizer's path); a converged run whose
        final parameters differ from the initial ones appends each change to the audit trail
        (``change_source`` optimization, ``job_level`` and ``fiscal_year`` as given here). An exception
        inside the block is recorded (FAILED, EXCEPTION, its class) and goes on unchanged.

        The run is recorded as ``user`` (else the run tag ``planwise/user``, else the OS user), with the
        Dagster run, asset and partition it ran in. Bad arguments raise ValueError at once."""
        identity = self._identity(user)
        writer = self.get_writer() if self.enabled else None

        def submit(records: Sequence[Any], at_end: bool) -> None:
            if writer is None:
                return
            try:
                writer.submit_all(records, direct=at_end)
            except Exception as exc:  # never in the optimizer's way
                log.warning("planwise-monitoring: optimization records of %s not stored: %s", name,
                            redact(f"{type(exc).__name__}: {exc}"))
            if at_end:
                self._log_outcome(records)

        def changes(run: OptimizationRun) -> list[ChangeEntry]:
            reason = (f"{run.optimization_name} ({run.algorithm}) converged in {run.iterations} iterations, "
                      f"objective {run.objective_value:g}" if run.objective_value is not None else None)
            return [ChangeEntry.change(
                parameter_name=p.name, old_value=p.initial_value, new_value=p.final_value,
                user_name=identity.user_name, change_source="optimization", recorded_at=run.finished_at,
                session_id=run.optimization_id, dagster_run_id=run.dagster_run_id, job_level=job_level,
                fiscal_year=fiscal_year, optimization_target=target_value(run.target), reason=reason,
            ) for p in run.parameters if p.final_value is not None and p.final_value != p.initial_value]

        return OptimizationTracker(name, algorithm=algorithm, identity=identity, submit=submit, target=target,
                                   max_iterations=max_iterations, initial_params=initial_params,
                                   param_names=param_names, tolerance=tolerance, on_finished=changes)

    def log_parameter_change(self, parameter_name: str, old_value: float | None, new_value: float | None, *,
                             change_source: str = "manual", reason: str | None = None, job_level: int | None = None,
                             fiscal_year: int | None = None, optimization_target: float | None = None,
                             user: str | None = None, session_id: str | None = None) -> str:
        """Append a parameter change to the audit trail (``mon_parameter_changes``); returns its
        change id, the id ``planwise-monitoring audit approve`` takes. Durable like every record
        (written at once on PostgreSQL, else spooled); a store that cannot be reached only delays it.
        Bad arguments (an unknown ``change_source``, no user) raise ValueError at once."""
        identity = self._identity(user)
        entry = ChangeEntry.change(
            parameter_name=parameter_name, old_value=old_value, new_value=new_value, user_name=identity.user_name,
            change_source=change_source, recorded_at=utcnow(), session_id=session_id,
            dagster_run_id=identity.dagster_run_id, job_level=job_level, fiscal_year=fiscal_year,
            optimization_target=optimization_target, reason=reason)
        if self.enabled:
            try:
                self.get_writer().submit_all([entry])
            except Exception as exc:
                log.warning("planwise-monitoring: parameter change %s not stored: %s", entry.change_id,
                            redact(f"{type(exc).__name__}: {exc}"))
        return entry.change_id

    def _identity(self, user: str | None) -> RunIdentity:
        """Who and where, from the Dagster step running now (if any)."""
        if user is not None and (not isinstance(user, str) or not user.strip()):
            raise ValueError(f"user must be a non-empty name, got {user!r}")
        context = _current_context()
        tags: Mapping[str, str] = context.run.tags if context is not None else {}
        asset_key = partition_key = None
        if context is not None:
            with contextlib.suppress(Exception):  # an op, or a multi-asset: no single asset
                asset_key = context.asset_key.to_user_string()
            partition_key = context.partition_key if context.has_partition_key else None
        return RunIdentity(user_name=user or tags.get(USER_TAG) or os_user(),
                           scenario=(tags.get(SCENARIO_TAG) or self.scenario)[:100],
                           dagster_run_id=context.run_id if context is not None else None,
                           asset_key=asset_key, partition_key=partition_key)

    def _log_outcome(self, records: Sequence[Any]) -> None:
        """The finished run in the structured event log and in the step's Dagster log."""
        run = next((r for r in records if isinstance(r, OptimizationRun)), None)
        if run is None:
            return
        event_log = self.get_event_log()
        if event_log is not None:
            event_log.event("optimization_finished", level="INFO" if run.converged else "WARNING",
                            run_id=run.dagster_run_id, asset=run.asset_key, component=run.optimization_name,
                            optimization_id=run.optimization_id, algorithm=run.algorithm, status=run.status,
                            failure_reason=run.failure_reason, iterations=run.iterations,
                            objective=run.objective_value, duration_seconds=round(run.duration_seconds, 6))
        context = _current_context()
        if context is None:
            return
        outcome = "converged" if run.converged else f"did not converge ({run.failure_reason})"
        context.log.info(f"planwise-monitoring: optimization {run.optimization_name} ({run.algorithm}) {outcome} "
                         f"after {run.iterations} iterations in {run.duration_seconds:.2f}s; objective "
                         f"{run.objective_value}; id {run.optimization_id}")

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Write everything spooled by this process now; True when nothing of it is left waiting."""
        return self.get_writer().flush(timeout_seconds)

    # -- Dagster's resource lifecycle ------------------------------------------------------------
    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Before the run's steps: open the writer and the event log here, outside any step's time."""
        if self.enabled:
            self.get_writer()
            self.get_event_log()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """At the end of the run (or of the step's process): make this run's records readable.

        Runs after the steps, so it is never part of a step's measured time; bounded by the lock
        timeout, and never fails the run: what cannot be written now stays spooled, with a warning."""
        writer, self._writer = self._writer, None
        try:
            if writer is not None and not writer.flush(self.lock_timeout_seconds):
                # the process's writer: under the in-process executor it may hold an earlier run's too
                message = (f"planwise-monitoring: {len(writer.pending_ids())} record(s) of this process are not in "
                           f"{writer.store.target} yet (it is locked or cannot be reached); they stay spooled in "
                           f"{writer.store.spool.directory} and the next write stores them")
                (context.log or log).warning(message)
        except Exception as exc:
            log.warning("planwise-monitoring: flushing at the end of the run failed: %s",
                        redact(f"{type(exc).__name__}: {exc}"))
        finally:
            if writer is not None and writer.event_log is self._event_log:
                writer.event_log = None  # the process's writer outlives this run: don't reopen a closed log
            if self._event_log is not None:
                self._event_log.close()


def _current_context() -> OpExecutionContext | None:
    try:
        return OpExecutionContext.get()
    except Exception:  # outside a Dagster step
        return None



def with_resource_parameter(fn: Callable[..., Any], context_type: type, resource_key: str) -> Callable[..., Any]:
    """Show Dagster ``fn(context, *, <resource_key>: MonitoringResource, ...)`` so it passes the
    monitoring resource under the configured key: the same signature ``@monitor_performance``
    makes (see :mod:`planwise_monitoring.defs.signature`).

        from dagster import RunFailureSensorContext
        from planwise_monitoring.defs.resource import with_resource_parameter

        def on_failure(context: RunFailureSensorContext, **resources: MonitoringResource) -> None:
            monitoring = resources["monitoring"]

        with_resource_parameter(on_failure, RunFailureSensorContext, "monitoring")
    """
    fn.__signature__ = resource_signature(  # type: ignore[attr-defined]
        fn, context_type, resource_key, MonitoringResource).signature
    return fn
