"""planwise-monitoring: performance observability for multi-year simulation pipelines on Dagster.

    from dagster import AssetExecutionContext, Definitions, StaticPartitionsDefinition, asset
    from planwise_monitoring import MonitoringResource, monitor_performance

    @asset(partitions_def=StaticPartitionsDefinition(["2025", "2026"]))
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext): ...

    defs = Definitions(assets=[scd_workforce_state],
                       resources={"monitoring": MonitoringResource(database_path="monitoring.duckdb")})
"""

from .alert_policy import Alert, AlertConfig, AlertType, Severity, load_alert_config
from .checks import build_monitoring_checks
from .decorator import monitor_performance
from .measure import Measurement, PhaseTiming, StepMeter, phase
from .partitions import PartitionKeyError, simulation_year_from_key
from .records import PerformanceRecord
from .regression import RegressionSeverity, RegressionVerdict, detect_regression
from .resource import MonitoringResource, SlaDefinitionConfig
from .sla import (
    DEFAULT_SLA,
    DEFAULT_SLA_DEFINITIONS,
    PerformanceCategory,
    SlaConfigError,
    SlaDefinition,
    SlaRules,
    SlaStatus,
    load_sla_file,
)
from .sensors import build_performance_sensor, build_run_failure_sensor
from .store import MonitoringStore, StoreError, StoreLockedError

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertType",
    "DEFAULT_SLA",
    "DEFAULT_SLA_DEFINITIONS",
    "Measurement",
    "MonitoringResource",
    "MonitoringStore",
    "PartitionKeyError",
    "PerformanceCategory",
    "PerformanceRecord",
    "PhaseTiming",
    "RegressionSeverity",
    "RegressionVerdict",
    "Severity",
    "SlaConfigError",
    "SlaDefinition",
    "SlaDefinitionConfig",
    "SlaRules",
    "SlaStatus",
    "StepMeter",
    "StoreError",
    "StoreLockedError",
    "build_monitoring_checks",
    "build_performance_sensor",
    "build_run_failure_sensor",
    "detect_regression",
    "load_alert_config",
    "load_sla_file",
    "monitor_performance",
    "phase",
    "simulation_year_from_key",
]
