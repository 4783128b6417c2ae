"""Asset checks on monitored assets: ``sla`` and ``regression``, judged from the monitoring
database for the asset's latest materialization.

    checks = build_monitoring_checks([scd_workforce_state], blocking_components={"scd_workforce_state"})
    Definitions(assets=[scd_workforce_state], asset_checks=[checks], resources={"monitoring": ...})

Selected with the asset (Dagster includes an asset's checks in its runs), they run right after it
and show on the asset's Checks tab without the daemon; a blocking check that fails with ERROR
stops downstream assets in the same run. The performance sensor reports the same checks after
every materialization, whichever run made it.
"""


from collections.abc import Collection, Iterator, Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    multi_asset_check,
)

from ..evaluation.verdicts import evaluate_record
from ..store.duckdb import StoreError

SLA_CHECK = "sla"
REGRESSION_CHECK = "regression"
PERFORMANCE_ID_KEY = "planwise/performance_id"


def monitored_keys(assets: Sequence[AssetsDefinition | AssetKey]) -> list[AssetKey]:
    keys: list[AssetKey] = []
    for a in assets:
        keys += list(a.keys) if isinstance(a, AssetsDefinition) else [a]
    return keys


def build_monitoring_checks(assets: Sequence[AssetsDefinition | AssetKey], *, resource_key: str = "monitoring",
                            blocking_components: Collection[str] = (),
                            name: str = "planwise_performance_checks") -> AssetChecksDefinition:
    """``sla`` and ``regression`` checks for every asset of ``assets``; blocking for the assets
    whose name is in ``blocking_components``."""
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
        try:
            store.replay_spool()  # a record still spooled by the step's process
        except StoreError as exc:
            context.log.warning(f"planwise-monitoring: {exc}")
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: (k.asset_key.path, k.name)):
            yield _judge(context, store, check_key.asset_key, check_key.name)

    return _checks


def _judge(context: AssetCheckExecutionContext, store, asset_key: AssetKey, check_name: str) -> AssetCheckResult:
    event = context.instance.get_latest_materialization_event(asset_key)
    materialization = event.asset_materialization if event else None
    performance_id = materialization.metadata.get(PERFORMANCE_ID_KEY) if materialization else None
    if performance_id is None:
        return AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=True,
                                severity=AssetCheckSeverity.WARN,
                                description="no monitored materialization to judge yet")
    with store.session(read_only=True) as session:
        rows = session.performance([performance_id.value])
        if not rows:
            return AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=False,
                                    severity=AssetCheckSeverity.WARN,
                                    description=f"record {performance_id.value} is not in the monitoring database")
        evaluation = evaluate_record(session, rows[0])
    outcome = evaluation.sla_check if check_name == SLA_CHECK else evaluation.regression_check
    return AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=outcome.passed,
                            severity=outcome.severity, description=outcome.description,
                            metadata=dict(outcome.metadata))
