"""What a recorded optimization run means for alerting (seed 000 §4): pure decisions, no I/O.

    from planwise_monitoring.evaluation.optimization import OptimizationRules, optimization_alerts

    rules = OptimizationRules(iteration_warning=150, parameter_bounds={"cola_rate": (0.0, 0.07)})
    alerts = optimization_alerts(run_row, {"cola_rate": 0.08}, rules)   # a row of mon_optimization_runs

- a run that did not converge: one ERROR (``OPTIMIZATION_NOT_CONVERGED``), with its failure reason;
- a run that converged in more iterations than ``iteration_warning`` (default: 80 % of the run's
  own ``max_iterations``; no warning for a run without one): one WARNING (``OPTIMIZATION_SLOW``);
- a final parameter value outside its bounds (``parameter_bounds``: name -> (low, high), either
  None for no bound): one WARNING (``PARAMETER_EXTREME``) naming every such parameter.

The alert's component is the optimization's name, so the dispatcher's throttle (one alert per
fingerprint per ``throttle_seconds``, an hour by default) sends at most one alert per failure
type per optimization per hour, the seed's "Max 1 alert per failure type per hour".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..alerting.policy import Alert, AlertType, Severity

DEFAULT_WARNING_SHARE = 0.8


@dataclass(frozen=True)
class OptimizationRules:
    """When a recorded run is worth an alert; see the module docstring. Checked when built."""

    iteration_warning: int | None = None
    parameter_bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.iteration_warning is not None and (isinstance(self.iteration_warning, bool)
                                                   or not isinstance(self.iteration_warning, int)
                                                   or self.iteration_warning < 1):
            raise ValueError(f"iteration_warning must be a positive whole number, got {self.iteration_warning!r}")
        bounds = {}
        for name, pair in dict(self.parameter_bounds).items():
            try:
                low, high = pair
            except (TypeError, ValueError):
                raise ValueError(f"parameter_bounds[{name!r}] must be (low, high), got {pair!r}") from None
            for bound in (low, high):
                if bound is not None and not (isinstance(bound, (int, float)) and math.isfinite(bound)):
                    raise ValueError(f"parameter_bounds[{name!r}]: {bound!r} is not a finite number or None")
            if low is not None and high is not None and low > high:
                raise ValueError(f"parameter_bounds[{name!r}]: low {low} is above high {high}")
            bounds[str(name)] = (low, high)
        object.__setattr__(self, "parameter_bounds", MappingProxyType(bounds))

    def warning_threshold(self, max_iterations: int | None) -> int | None:
        if self.iteration_warning is not None:
            return self.iteration_warning
        return None if max_iterations is None else math.floor(DEFAULT_WARNING_SHARE * max_iterations)


def optimization_alerts(run: Mapping[str, Any], final_params: Mapping[str, float | None],
                        rules: OptimizationRules) -> list[Alert]:
    """The alerts one run calls for (``run``: its ``mon_optimization_runs`` row)."""
    name, iterations = run["optimization_name"], run["iterations"]
    facts = {"optimization_id": str(run["optimization_id"]), "algorithm": run["algorithm"],
             "iterations": iterations, "objective_value": run["objective_value"],
             "failure_reason": run["failure_reason"], "final_params": dict(final_params)}

    def alert(alert_type: AlertType, severity: Severity, title: str, message: str) -> Alert:
        return Alert(alert_type, severity, name, None, run["scenario"], title=title, message=message,
                     simulation_run_id=run["dagster_run_id"], details=tuple(facts.items()))

    alerts = []
    if not run["converged"]:
        why = run["error_class"] or run["optimizer_message"] or ""
        alerts.append(alert(AlertType.OPTIMIZATION_NOT_CONVERGED, Severity.ERROR,
                            f"optimization {name} did not converge ({run['failure_reason']})",
                            f"{run['algorithm']} stopped after {iterations} iterations, objective "
                            f"{run['objective_value']}" + (f": {why}" if why else "")))
    else:
        threshold = rules.warning_threshold(run["max_iterations"])
        if threshold is not None and iterations > threshold:
            alerts.append(alert(AlertType.OPTIMIZATION_SLOW, Severity.WARNING,
                                f"optimization {name} took {iterations} iterations",
                                f"{run['algorithm']} converged in {iterations} iterations "
                                f"(threshold: {threshold})"))
    extreme = []
    for parameter, (low, high) in rules.parameter_bounds.items():
        value = final_params.get(parameter)
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            extreme.append(f"{parameter} = {value:.6g} outside [{_bound(low, '-inf')}, {_bound(high, 'inf')}]")
    if extreme:
        alerts.append(alert(AlertType.PARAMETER_EXTREME, Severity.WARNING,
                            f"optimization {name}: extreme parameter value(s)", "; ".join(extreme)))
    return alerts


def _bound(value: float | None, unbounded: str) -> str:
    return unbounded if value is None else f"{value:g}"
