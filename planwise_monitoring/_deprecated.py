"""Import paths of planwise-monitoring 0.1, kept working for one release with a DeprecationWarning.

0.1 was a flat package (``planwise_monitoring.store``, ``.sla``, ``.decorator``…); 0.2 groups the
modules by stage of the data flow. ``import planwise_monitoring.sla`` now returns
``planwise_monitoring.evaluation.sla`` itself (the same module object, so ``isinstance`` and
monkeypatching keep working), after warning once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

_PACKAGE = "planwise_monitoring"

# old module -> new module (both relative to the package)
OLD_MODULES = {
    "alert_delivery": "alerting.delivery",
    "alert_policy": "alerting.policy",
    "checks": "defs.checks",
    "dbt": "defs.dbt",
    "decorator": "defs.decorator",
    "evaluate": "evaluation.verdicts",
    "jsonlog": "events",
    "measure": "recording.measure",
    "partitions": "recording.partitions",
    "query": "reporting.queries",
    "records": "recording.records",
    "regression": "evaluation.regression",
    "reports": "reporting.assets",
    "resource": "defs.resource",
    "sensors": "defs.sensors",
    "sla": "evaluation.sla",
    "spool": "store.spool",
    "summaries": "reporting.summaries",
    "writer": "store.writer",
}

# names 0.1 exported from the package itself that are internals now -> their module
OLD_TOP_LEVEL = {
    "Alert": "alerting.policy",
    "AlertType": "alerting.policy",
    "DEFAULT_SLA": "evaluation.sla",
    "DEFAULT_SLA_DEFINITIONS": "evaluation.sla",
    "Measurement": "recording.measure",
    "PhaseTiming": "recording.measure",
    "Severity": "alerting.policy",
    "SlaDefinition": "evaluation.sla",
    "SlaRules": "evaluation.sla",
    "StepMeter": "recording.measure",
    "phase": "recording.measure",
    "simulation_year_from_key": "recording.partitions",
}


def old_top_level_name(name: str) -> str | None:
    """The module of a name 0.1 exported from the package, with a warning; None if it never did."""
    module = OLD_TOP_LEVEL.get(name)
    if module is not None:
        warnings.warn(
            f"planwise_monitoring.{name} is internal since 0.2; import it from "
            f"planwise_monitoring.{module} (this alias goes away in 0.3)",
            DeprecationWarning, stacklevel=3,
        )
    return module


class _OldPathLoader(importlib.abc.Loader):
    def __init__(self, new_name: str):
        self.new_name = new_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new_name} in planwise-monitoring 0.2 "
            "(this alias goes away in 0.3)",
            DeprecationWarning, stacklevel=2,
        )
        return importlib.import_module(self.new_name)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the new module is already executed


class _OldPathFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        prefix, _, name = fullname.rpartition(".")
        if prefix != _PACKAGE or name not in OLD_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _OldPathLoader(f"{_PACKAGE}.{OLD_MODULES[name]}"))


def install_old_module_paths() -> None:
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())
