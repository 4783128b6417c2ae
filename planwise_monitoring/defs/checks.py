"""Asset checks on monitored assets: ``sla`` and ``regression``, judged from the monitoring
database for the asset's latest materialization.

    checks = build_monitoring_checks([scd_workforce_state], blocking_components={"scd_workforce_state"})
    Definitions(assets=[scd_workforce_state], asset_checks=[checks], resources={"monitoring": ...})

Selected with the asset (Dagster includes an asset's checks in its runs), they run right after it
and show on the asset's Checks tab without the daemon; a blocking check that fails with ERROR
stops downstream assets in the same run. The performance sensor reports the same checks after
every materialization, whichever run made it.

A check never fails the run because of the monitoring database: when it is locked (waited for at
most the resource's ``lock_timeout_seconds``, once per check step), missing or broken, each check
reports "not evaluated" (not passed, WARN, ``planwise/evaluated: False``) and the performance
sensor judges the record once the database can be read.
"""

# No `from __future__ import annotations`: Dagster compares the check function's context
# annotation by identity, which a string would fail.
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    multi_asset_check,
)

from ..evaluation.verdicts import CheckOutcome, Evaluation, evaluate_records
from ..redaction import redact
from ..store import MonitoringStore, StoreError, StoreLockedError

SLA_CHECK = "sla"
REGRESSION_CHECK = "regression"
PERFORMANCE_ID_KEY = "planwise/performance_id"
EVALUATED_KEY = "planwise/evaluated"


def monitored_keys(assets: Sequence[AssetsDefinition | AssetKey]) -> list[AssetKey]:
    """The asset keys of ``assets``, each output of a multi-asset on its own.

        from dagster import AssetKey
        assert monitored_keys([AssetKey("a")]) == [AssetKey("a")]
    """
    keys: list[AssetKey] = []
    for a in assets:
        keys += list(a.keys) if isinstance(a, AssetsDefinition) else [a]
    return keys


def build_monitoring_checks(assets: Sequence[AssetsDefinition | AssetKey], *, resource_key: str = "monitoring",
                            blocking_components: Collection[str] = (),
                            name: str = "planwise_performance_checks") -> AssetChecksDefinition:
    """``sla`` and ``regression`` checks for every asset of ``assets``; blocking for the assets
    whose name is in ``blocking_components``.

        from dagster import Definitions, asset
        from planwise_monitoring import MonitoringResource, build_monitoring_checks, monitor_performance

        @asset
        @monitor_performance("SCD")
        def scd_workforce_state(): ...

        defs = Definitions(assets=[scd_workforce_state],
                           asset_checks=[build_monitoring_checks([scd_workforce_state])],
                           resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb")})
    """
    keys = monitored_keys(assets)
    specs = [
        AssetCheckSpec(check, asset=key, blocking=key.path[-1] in blocking_components, description=text)
        for key in keys
        for check, text in [
            (SLA_CHECK, "The latest materialization met its SLA (WARN: warning threshold, ERROR: breach)."),
            (REGRESSION_CHECK, "The latest materialization is not slower than its history "
                               "(WARN: suspected or MINOR, ERROR: MAJOR or CRITICAL)."),
        ]
    ]

    @multi_asset_check(specs=specs, name=name, can_subset=True, required_resource_keys={resource_key})
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        store = getattr(context.resources, resource_key).get_store()
        check_keys = sorted(context.selected_asset_check_keys, key=lambda k: (k.asset_key.path, k.name))
        ids = {key: _performance_id(context, key) for key in {k.asset_key for k in check_keys}}
        try:
            judged = _judge_stored(context, store, {pid for pid in ids.values() if pid is not None})
        except Exception as exc:  # whatever the database does, the run goes on
            reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
            context.log.warning(f"planwise-monitoring: checks not evaluated: {redact(reason)}")
            yield from (_not_evaluated(k.asset_key, k.name, reason) for k in check_keys)
            return
        for check_key in check_keys:
            yield _result(check_key.asset_key, check_key.name, ids[check_key.asset_key], judged)

    return _checks


def performance_id_of(materialization: AssetMaterialization | None) -> str | None:
    """The record a materialization stands for, from the metadata the decorator put on it.

        from dagster import AssetMaterialization
        m = AssetMaterialization("scd", metadata={"planwise/performance_id": "0b5f..."})
        assert performance_id_of(m) == "0b5f..." and performance_id_of(AssetMaterialization("x")) is None
    """
    value = materialization.metadata.get(PERFORMANCE_ID_KEY) if materialization else None
    return str(value.value) if value is not None else None


def _performance_id(context: AssetCheckExecutionContext, asset_key: AssetKey) -> str | None:
    event = context.instance.get_latest_materialization_event(asset_key)
    return performance_id_of(event.asset_materialization if event else None)


def _judge_stored(context: AssetCheckExecutionContext, store: MonitoringStore,
                  performance_ids: set[str]) -> dict[str, Evaluation]:
    """Each record judged once, however many assets of a multi-asset step share it. Waits for the
    lock at most once: a locked replay means a read would wait the same bound for the same answer."""
    if not performance_ids:  # nothing monitored to judge: no reason to touch the database
        return {}
    try:
        store.replay_spool()  # a record still spooled by the step's process
    except StoreLockedError:
        raise
    except StoreError as exc:  # e.g. one bad spooled record: the database may still be readable
        context.log.warning(f"planwise-monitoring: {redact(str(exc))}")
    with store.session(read_only=True) as session:
        return evaluate_records(session, sorted(performance_ids))


def _result(asset_key: AssetKey, check_name: str, performance_id: str | None,
            judged: dict[str, Evaluation]) -> AssetCheckResult:
    if performance_id is None:
        return AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=True,
                                severity=AssetCheckSeverity.WARN,
                                description="no monitored materialization to judge yet")
    evaluation = judged.get(performance_id)
    if evaluation is None:
        return _not_evaluated(asset_key, check_name, f"record {performance_id} is not in the monitoring database")
    outcome: CheckOutcome = evaluation.sla_check if check_name == SLA_CHECK else evaluation.regression_check
    return AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=outcome.passed,
                            severity=outcome.severity, description=outcome.description,
                            metadata={**outcome.metadata, EVALUATED_KEY: True})


def _not_evaluated(asset_key: AssetKey, check_name: str, reason: str) -> AssetCheckResult:
    """Not passed, so nobody reads it as "within SLA"; WARN, so it is never read as a breach and a
    blocking check does not stop downstream assets (Dagster blocks on ERROR only)."""
    reason = redact(reason) or ""
    metadata: dict[str, Any] = {EVALUATED_KEY: False, "reason": reason}
    return AssetCheckResult(
        asset_key=asset_key, check_name=check_name, passed=False, severity=AssetCheckSeverity.WARN,
        description=f"not evaluated: {reason}; the performance sensor judges it once the database can be read",
        metadata=metadata,
    )
