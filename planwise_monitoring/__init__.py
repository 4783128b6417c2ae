"""planwise-monitoring: performance observability for multi-year simulation pipelines on Dagster.

    from dagster import AssetExecutionContext, Definitions, StaticPartitionsDefinition, asset
    from planwise_monitoring import MonitoringResource, monitor_performance

    @asset(partitions_def=StaticPartitionsDefinition(["2025", "2026"]))
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext): ...

    defs = Definitions(assets=[scd_workforce_state],
                       resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb")})

Names are imported on first use, so ``import planwise_monitoring`` (and the CLI, which reads the
store without Dagster) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._deprecated import install_old_module_paths, old_top_level_name

if TYPE_CHECKING:
    from .alerting.policy import AlertConfig, load_alert_config
    from .defs.checks import build_monitoring_checks
    from .defs.dbt import monitored_dbt_build
    from .defs.decorator import monitor_performance
    from .defs.resource import MonitoringResource, SlaDefinitionConfig
    from .defs.sensors import (
        build_optimization_sensor,
        build_performance_sensor,
        build_run_failure_sensor,
        build_run_summary_sensor,
        build_slo_sensor,
    )
    from .evaluation.optimization import OptimizationRules
    from .evaluation.regression import RegressionSeverity, RegressionVerdict, detect_regression
    from .evaluation.sla import PerformanceCategory, SlaConfigError, SlaStatus, load_sla_file
    from .evaluation.slo import Slo, SloStatus, load_slo_file
    from .recording.measure import ComponentTiming
    from .recording.optimization import OptimizationRun, OptimizationTracker
    from .recording.partitions import PartitionKeyError
    from .recording.records import PerformanceRecord
    from .reporting.assets import build_monitoring_assets, build_monitoring_schedule
    from .reporting.summaries import run_summaries_spec
    from .store import MonitoringStore, StoreError, StoreLockedError

# public name -> the module that defines it
_PUBLIC = {
    "AlertConfig": "alerting.policy",
    "ComponentTiming": "recording.measure",
    "MonitoringResource": "defs.resource",
    "MonitoringStore": "store",
    "OptimizationRules": "evaluation.optimization",
    "OptimizationRun": "recording.optimization",
    "OptimizationTracker": "recording.optimization",
    "PartitionKeyError": "recording.partitions",
    "PerformanceCategory": "evaluation.sla",
    "PerformanceRecord": "recording.records",
    "RegressionSeverity": "evaluation.regression",
    "RegressionVerdict": "evaluation.regression",
    "SlaConfigError": "evaluation.sla",
    "SlaDefinitionConfig": "defs.resource",
    "SlaStatus": "evaluation.sla",
    "Slo": "evaluation.slo",
    "SloStatus": "evaluation.slo",
    "StoreError": "store",
    "StoreLockedError": "store",
    "build_monitoring_assets": "reporting.assets",
    "build_monitoring_checks": "defs.checks",
    "build_monitoring_schedule": "reporting.assets",
    "build_optimization_sensor": "defs.sensors",
    "build_performance_sensor": "defs.sensors",
    "build_run_failure_sensor": "defs.sensors",
    "build_run_summary_sensor": "defs.sensors",
    "build_slo_sensor": "defs.sensors",
    "detect_regression": "evaluation.regression",
    "load_alert_config": "alerting.policy",
    "load_sla_file": "evaluation.sla",
    "load_slo_file": "evaluation.slo",
    "monitor_performance": "defs.decorator",
    "monitored_dbt_build": "defs.dbt",
    "run_summaries_spec": "reporting.summaries",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        module = old_top_level_name(name)  # warns: a name this package exported before 0.2
    if module is None:
        raise AttributeError(f"module 'planwise_monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


install_old_module_paths()
