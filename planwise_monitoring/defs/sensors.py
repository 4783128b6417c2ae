"""Sensors: judge every new materialization of the monitored assets, and catalog failed runs.

    defs = Definitions(
        assets=[scd_workforce_state],
        asset_checks=[build_monitoring_checks([scd_workforce_state])],
        sensors=[build_performance_sensor([scd_workforce_state], alert_config="alerts.yaml"),
                 build_run_failure_sensor(alert_config="alerts.yaml")],
        resources={"monitoring": MonitoringResource(...)},
    )

The performance sensor is a plain ``@sensor`` with a cursor of the last event storage id per
asset: ``@asset_sensor`` only sees the newest event, so partitions materialized between two ticks
would be skipped. Each tick first reconciles: every record the new materializations and
observations of the monitored assets carry (see :mod:`.metadata`) that is missing from the store
is inserted, exactly once (the store skips ids it has), together with the local spool. A pod
that disappeared with its spool before its records got into a shared PostgreSQL store loses
nothing: Dagster's event log held them. It then judges each new record (SLA and regression, see
:mod:`planwise_monitoring.evaluation.verdicts`) in one short database session, writes confirmed regressions to
``mon_multi_year_regression``, reports the ``sla`` and ``regression`` check evaluations (the
daemon stores them with ``report_runless_asset_event``, so they show on the asset's Checks tab),
and hands alerts to the dispatcher, whose network I/O happens outside any database session.

Every materialization gets its evaluations, also when several share one record (the outputs of
a plain multi-asset step); a record is evaluated, stored as a regression and alerted on once.
If the database stays locked, the tick skips without moving its cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogRecord,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from ..alerting.dispatcher import AlertDispatcher
from ..alerting.policy import Alert, AlertConfig, AlertType, Severity, load_alert_config, parse_alert_config
from ..evaluation.optimization import OptimizationRules, optimization_alerts
from ..evaluation.slo import burn_alerts, evaluate_slos
from ..evaluation.verdicts import Evaluation, evaluate_records
from ..recording.measure import utcnow
from ..redaction import redact
from ..reporting.summaries import user_error, write_run_summary
from ..store import StoreError
from .checks import REGRESSION_CHECK, SLA_CHECK, monitored_keys, performance_id_of
from .metadata import records_in
from .resource import MonitoringResource, with_resource_parameter

_ERROR_MESSAGE_LIMIT = 4000


def _alert_config(alert_config: AlertConfig | str | Path | None) -> AlertConfig:
    if isinstance(alert_config, AlertConfig):
        return alert_config
    if alert_config is None:
        return parse_alert_config({}, "default alert config")  # the Dagster log only
    return load_alert_config(alert_config)


@dataclass(frozen=True)
class _Materialization:
    """One new materialization of a monitored asset and the record its metadata names (None when
    the step was not monitored). Outputs of one step may share a record: a multi-asset's outputs,
    the seeds of a dbt build."""

    key: AssetKey
    event: EventLogRecord
    performance_id: str | None

    @classmethod
    def of(cls, key: AssetKey, event: EventLogRecord) -> _Materialization:
        return cls(key, event, performance_id_of(event.asset_materialization))


def build_performance_sensor(assets: Sequence[AssetsDefinition | AssetKey], *,
                             name: str = "planwise_performance_sensor", resource_key: str = "monitoring",
                             alert_config: AlertConfig | str | Path | None = None,
                             minimum_interval_seconds: int = 30,
                             default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
                             max_events_per_tick: int = 500,
                             clock: Callable[[], datetime] = utcnow) -> SensorDefinition:
    """A sensor that judges every new materialization of ``assets``; see the module docstring.
    ``alert_config`` is parsed now, so a bad alert file fails at definitions load. ``clock`` (naive
    UTC) decides alert throttling and retry backoff.

        from dagster import Definitions, asset
        from planwise_monitoring import MonitoringResource, build_performance_sensor, monitor_performance

        @asset
        @monitor_performance("SCD")
        def scd_workforce_state(): ...

        defs = Definitions(assets=[scd_workforce_state], sensors=[build_performance_sensor([scd_workforce_state])],
                           resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb")})
    """
    keys = monitored_keys(assets)
    config = _alert_config(alert_config)

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
            required_resource_keys={resource_key},
            description="Judges SLA and regressions after every materialization of the monitored assets.")
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        monitoring: MonitoringResource = getattr(context.resources, resource_key)
        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        new = [
            _Materialization.of(key, event)
            for key in keys
            for event in context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, after_storage_id=cursor.get(key.to_user_string())),
                limit=max_events_per_tick, ascending=True,
            ).records
        ]
        observed = [
            (key, event)
            for key in keys
            for event in context.instance.fetch_observations(
                AssetRecordsFilter(asset_key=key, after_storage_id=cursor.get(_OBSERVED + key.to_user_string())),
                limit=max_events_per_tick, ascending=True,
            ).records
        ]
        store = monitoring.get_store()
        dispatcher = AlertDispatcher(store, config, context.log, clock)
        if not new and not observed:
            dispatcher.retry_pending()
            return SkipReason("no new materializations of monitored assets")
        carried = _carried_records([m.event for m in new] + [e for _, e in observed], context)
        try:
            written = store.write(carried, monitoring.get_sla_rules())  # the missing ones, and the spool
            if written:
                context.log.info(f"planwise-monitoring: wrote {written} record(s) missing from {store.target} "
                                 "(from the spool, or rebuilt from Dagster's event log)")
            with store.session() as session:  # one short write session per tick
                evaluations = evaluate_records(session, [m.performance_id for m in new if m.performance_id])
                session.insert_regressions([row for e in evaluations.values() if (row := e.regression_row())])
        except StoreError as exc:  # locked for long: judge these events on the next tick
            dispatcher.retry_pending()
            return SkipReason(f"monitoring database unavailable, will retry: {redact(str(exc))}")
        check_events: list[AssetCheckEvaluation] = []
        for m in new:  # every materialization, in order, against the record it carries
            evaluation = evaluations.get(m.performance_id) if m.performance_id else None
            if evaluation is not None:
                check_events += _check_evaluations(m, evaluation)
            elif m.performance_id:
                context.log.warning(f"planwise-monitoring: record {m.performance_id} of {m.key.to_user_string()} "
                                    "is not in the monitoring database")
        # one record, one set of alerts, however many outputs share it
        alerts = [alert for e in evaluations.values() for alert in e.alerts()]
        report = dispatcher.dispatch(alerts)
        dispatcher.retry_pending()
        _log_events(monitoring, list(evaluations.values()), alerts, str(report))
        for m in new:
            cursor[m.key.to_user_string()] = max(cursor.get(m.key.to_user_string(), 0), m.event.storage_id)
        for key, event in observed:
            name = _OBSERVED + key.to_user_string()
            cursor[name] = max(cursor.get(name, 0), event.storage_id)
        return SensorResult(asset_events=check_events, cursor=json.dumps(cursor, sort_keys=True))

    return _sensor


_OBSERVED = "observed:"  # the cursor's entries for observations (asset key strings hold no colon)


def _carried_records(events: Sequence[EventLogRecord], context: SensorEvaluationContext) -> list[Any]:
    """Every record the events carry whole; one that cannot be read is named and left out."""
    records = []
    for event in events:
        carrier = event.asset_materialization or event.asset_observation
        try:
            records += records_in(carrier.metadata if carrier else None)
        except ValueError as exc:
            context.log.warning(f"planwise-monitoring: event {event.storage_id} carries a record that cannot be read "
                                f"({redact(str(exc))}); left out")
    return records


def _log_events(monitoring: MonitoringResource, evaluations: list[Evaluation], alerts: list[Alert],
                outcome: str) -> None:
    events = monitoring.get_event_log()
    if events is None:
        return
    for e in evaluations:
        r, v = e.record, e.regression
        events.event("evaluated", run_id=r["simulation_run_id"], asset=r["asset_key"],
                     simulation_year=r["simulation_year"], component=r["component_name"],
                     performance_id=str(r["performance_id"]), sla_status=r["sla_status"],
                     regression=(v.severity.value if v and v.is_regression and v.severity
                                 else "SUSPECTED" if v and v.suspected else None))
    if alerts:
        events.event("alerts_dispatched", level="WARNING", alerts=len(alerts), outcome=outcome)


def _check_evaluations(m: _Materialization, evaluation: Evaluation) -> list[AssetCheckEvaluation]:
    """The ``sla`` and ``regression`` evaluations of one materialization.

    Dagster's link to the judged materialization (``target_materialization_data``) takes a type
    that is not public API; without it the UI ties a run-less evaluation to the latest
    materialization by time, which holds since evaluations follow their materializations in
    storage order. The judged event is named in the metadata instead. No ``partition=``: Dagster's
    store keeps one run-less evaluation per (check, run, partition), so a second evaluation of the
    same partition would be refused; the partition goes in the metadata too."""
    materialization = m.event.asset_materialization
    partition = materialization.partition if materialization else None
    judged: dict[str, Any] = {"materialization_storage_id": m.event.storage_id,
                              "materialization_run_id": m.event.run_id,
                              **({"partition": partition} if partition else {})}
    return [
        AssetCheckEvaluation(asset_key=m.key, check_name=name, passed=outcome.passed, severity=outcome.severity,
                             description=outcome.description, metadata={**outcome.metadata, **judged})
        for name, outcome in [(SLA_CHECK, evaluation.sla_check), (REGRESSION_CHECK, evaluation.regression_check)]
    ]


def build_run_failure_sensor(*, name: str = "planwise_run_failure_sensor", resource_key: str = "monitoring",
                             alert_config: AlertConfig | str | Path | None = None,
                             artifacts_dir: str | Path | None = "artifacts",
                             default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
                             clock: Callable[[], datetime] = utcnow) -> SensorDefinition:
    """A run-failure sensor that catalogs each failed run in ``mon_run_failures`` (error class and
    message of the first failed step, or of the run), writes its summary under ``artifacts_dir``
    (see :mod:`planwise_monitoring.reporting.summaries`; None: no summary) and sends a RUN_FAILURE
    alert. ``clock`` (naive UTC) stamps the failure and decides alert throttling.

        from dagster import Definitions
        from planwise_monitoring import MonitoringResource, build_run_failure_sensor

        defs = Definitions(sensors=[build_run_failure_sensor(artifacts_dir="artifacts")],
                           resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb")})
    """
    config = _alert_config(alert_config)

    def _on_failure(context: RunFailureSensorContext, **resources: MonitoringResource) -> None:
        monitoring = resources[resource_key]
        run = context.dagster_run
        step_failures = context.get_step_failure_events()
        errors = [user_error(e.step_failure_data.error) for e in step_failures if e.step_failure_data.error]
        failed_steps = [e.step_key for e in step_failures if e.step_key]
        error = errors[0] if errors else context.failure_event.job_failure_data.error
        error_class = error.cls_name if error else None
        message = redact(error.message.strip() if error else context.failure_event.message or "") or ""
        partition = run.tags.get("dagster/partition")
        store = monitoring.get_store()
        if artifacts_dir is not None:
            write_run_summary(context.instance, run, store, artifacts_dir, monitoring.get_event_log())
        with store.session() as session:
            session.insert_run_failure({
                "dagster_run_id": run.run_id, "job_name": run.job_name, "failed_at": clock(),
                "partition_key": partition, "failed_steps": ", ".join(failed_steps) or None,
                "error_class": error_class, "error_message": message[:_ERROR_MESSAGE_LIMIT],
            })
        year = int(partition) if partition and partition.isdigit() else None
        AlertDispatcher(store, config, context.log, clock).dispatch([Alert(
            alert_type=AlertType.RUN_FAILURE, severity=Severity.ERROR, component_name=run.job_name,
            simulation_year=year, scenario=run.tags.get("planwise/scenario", monitoring.scenario),
            title=f"Run failed: {run.job_name}{f' {partition}' if partition else ''} ({error_class or 'unknown error'})",
            message=message[:1000], simulation_run_id=run.run_id,
            details=(("failed_steps", ", ".join(failed_steps)), ("error_class", error_class or "")),
        )])

    return run_failure_sensor(
        name=name, default_status=default_status,
        description="Catalogs failed runs (error class), writes their summaries and alerts on them.",
    )(with_resource_parameter(_on_failure, RunFailureSensorContext, resource_key))


def build_optimization_sensor(*, name: str = "planwise_optimization_sensor", resource_key: str = "monitoring",
                              alert_config: AlertConfig | str | Path | None = None,
                              iteration_warning: int | None = None,
                              parameter_bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
                              lookback_hours: float = 24.0, minimum_interval_seconds: int = 30,
                              default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
                              clock: Callable[[], datetime] = utcnow) -> SensorDefinition:
    """A sensor that judges every optimization run recorded in the store (see
    :mod:`planwise_monitoring.evaluation.optimization`: not converged, too many iterations, extreme
    final parameters) and routes its alerts, throttled to one per failure type per optimization per
    the alert config's ``throttle_seconds`` (an hour by default). Arguments are checked now, at
    definitions load.

        from planwise_monitoring import build_optimization_sensor

        build_optimization_sensor(alert_config="alerts.yaml", iteration_warning=150,
                                  parameter_bounds={"cola_rate": (0.0, 0.07)})

    Each tick replays the local spool, reads the runs finished in the last ``lookback_hours``
    and judges those its cursor has not seen (the cursor holds the ids judged within that window,
    so a run that reaches the store late, from a spool, is judged once when it arrives; one
    that arrives after the window has passed is not). If the store cannot be read the tick skips
    without moving its cursor."""
    config = _alert_config(alert_config)
    rules = OptimizationRules(iteration_warning, parameter_bounds or {})
    if not lookback_hours > 0:
        raise ValueError(f"lookback_hours must be positive, got {lookback_hours!r}")

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
            required_resource_keys={resource_key},
            description="Alerts on optimization runs that did not converge, converged slowly or ended with "
                        "extreme parameters.")
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        monitoring: MonitoringResource = getattr(context.resources, resource_key)
        judged: dict[str, str] = json.loads(context.cursor) if context.cursor else {}  # id -> finished_at
        store = monitoring.get_store()
        dispatcher = AlertDispatcher(store, config, context.log, clock)
        since = clock() - timedelta(hours=lookback_hours)
        try:
            store.replay_spool()
            with store.session(read_only=True) as session:
                runs = [r for r in session.optimization_runs(since) if str(r["optimization_id"]) not in judged]
        except store.unavailable_errors as exc:
            dispatcher.retry_pending()
            return SkipReason(f"monitoring database unavailable, will retry: {redact(str(exc))}")
        if not runs:
            dispatcher.retry_pending()
            return SkipReason("no new optimization runs")
        alerts = [a for run in runs for a in optimization_alerts(run, run["final_params"], rules)]
        report = dispatcher.dispatch(alerts)
        dispatcher.retry_pending()
        context.log.info(f"planwise-monitoring: judged {len(runs)} optimization run(s), {len(alerts)} alert(s): "
                         f"{report}")
        judged.update({str(r["optimization_id"]): r["finished_at"].isoformat() for r in runs})
        cutoff = since.isoformat()
        return SensorResult(cursor=json.dumps({k: v for k, v in judged.items() if v >= cutoff}, sort_keys=True))

    return _sensor


def build_slo_sensor(*, name: str = "planwise_slo_sensor", resource_key: str = "monitoring",
                     alert_config: AlertConfig | str | Path | None = None, minimum_interval_seconds: int = 60,
                     default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
                     clock: Callable[[], datetime] = utcnow) -> SensorDefinition:
    """A sensor that judges the SLOs of the resource's SLA file (its ``slos:`` section, see
    :mod:`planwise_monitoring.evaluation.slo`) every tick and alerts when one's error budget starts
    burning: SLO_FAST_BURN (CRITICAL, a page) or SLO_SLOW_BURN (WARNING, a ticket), through the
    alert config's routes.

        from planwise_monitoring import build_slo_sensor

        build_slo_sensor(alert_config="alerts.yaml")   # SLOs: MonitoringResource(sla_file=...)

    An SLO is alerted when its level rises (none -> ticket -> page), once: the cursor keeps each
    SLO's level, so a burn that lasts for hours is not announced every tick or every throttle
    window; once it stops (level none) a new burn is alerted again. Every tick replays the local
    spool first, so the SLOs count what this machine recorded. If the store cannot be read the
    tick skips without moving its cursor."""
    config = _alert_config(alert_config)

    @sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
            required_resource_keys={resource_key},
            description="Judges the SLOs' error budgets and alerts on fast (page) and slow (ticket) burns.")
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        monitoring: MonitoringResource = getattr(context.resources, resource_key)
        slos = monitoring.get_slos()
        store = monitoring.get_store()
        dispatcher = AlertDispatcher(store, config, context.log, clock)
        if not slos:
            dispatcher.retry_pending()
            return SkipReason("no SLOs: the SLA file has no 'slos:' section")
        try:
            store.replay_spool(monitoring.get_sla_rules())
            with store.session(read_only=True) as session:
                statuses = evaluate_slos(session, slos, clock())
        except store.unavailable_errors as exc:
            dispatcher.retry_pending()
            return SkipReason(f"monitoring database unavailable, will retry: {redact(str(exc))}")
        previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        alerts, levels = burn_alerts(statuses, previous)
        report = dispatcher.dispatch(alerts)
        dispatcher.retry_pending()
        for status in statuses:
            context.log.info(f"planwise-monitoring: {status.summary()}")
        context.log.info(f"planwise-monitoring: judged {len(statuses)} SLO(s), {len(alerts)} alert(s): {report}")
        return SensorResult(cursor=json.dumps(levels, sort_keys=True))

    return _sensor


def build_run_summary_sensor(*, artifacts_dir: str | Path = "artifacts", resource_key: str = "monitoring",
                             name: str = "planwise_run_summary_sensor",
                             default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING):
    """Writes the summary of every successful run (failed runs: ``build_run_failure_sensor``)."""

    def _on_success(context: RunStatusSensorContext, **resources: MonitoringResource) -> None:
        monitoring = resources[resource_key]
        write_run_summary(context.instance, context.dagster_run, monitoring.get_store(), artifacts_dir,
                          monitoring.get_event_log())

    return run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS, name=name, default_status=default_status,
        description="Writes artifacts/runs/<run_id>/summary.json and .txt when a run succeeds.",
    )(with_resource_parameter(_on_success, RunStatusSensorContext, resource_key))
