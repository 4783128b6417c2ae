"""What a stored step record means: its SLA verdict and its regression verdict, and what follows
from them (asset check results, a regression row, alerts). Shared by the sensor and the checks.

    with store.session() as s:
        [row] = s.performance([performance_id])
        evaluation = evaluate_record(s, row)
    evaluation.sla_check.passed, evaluation.regression_check.severity, evaluation.alerts()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckSeverity

from ..alerting.policy import Alert, AlertType, Severity
from ..store import StoreSession
from .regression import MIN_DEGRADATION_PCT, RegressionSeverity, RegressionVerdict, detect_regression

CONFIRM_RUNS = 2  # a regression is confirmed by this many consecutive slow runs
BASELINE_WINDOW = 20


@dataclass(frozen=True)
class CheckOutcome:
    """What one asset check (``sla`` or ``regression``) says about one record.

        outcome = CheckOutcome(False, AssetCheckSeverity.ERROR, "12.00s against 9s warning / 10s breach", {})
        assert not outcome.passed
    """

    passed: bool
    severity: AssetCheckSeverity
    description: str
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Evaluation:
    """One stored record judged: its SLA verdict (from the record) and its regression verdict
    (None for a failed step), and what follows from them.

        evaluation = Evaluation({"status": "FAILED"}, regression=None, baseline_run_id=None)
        assert evaluation.regression_check.description == "not judged: the step failed"
    """

    record: Mapping[str, Any]  # the mon_multi_year_performance row
    regression: RegressionVerdict | None
    baseline_run_id: str | None

    @property
    def where(self) -> str:
        year = self.record["simulation_year"]
        return f"{self.record['component_name']}{f' {year}' if year is not None else ''}"

    @property
    def sla_check(self) -> CheckOutcome:
        r = self.record
        status = r["sla_status"]
        metadata = {
            "duration_seconds": float(r["execution_time_seconds"]),
            "warning_threshold_seconds": float(r["warning_threshold_seconds"] or 0),
            "sla_threshold_seconds": float(r["sla_threshold_seconds"] or 0),
            "sla_status": status or "UNKNOWN",
            "performance_id": str(r["performance_id"]),
        }
        text = (f"{r['execution_time_seconds']:.2f}s against {r['warning_threshold_seconds']:g}s warning / "
                f"{r['sla_threshold_seconds']:g}s breach: {status or 'no SLA status'}")
        if status == "SLA_BREACH":
            return CheckOutcome(False, AssetCheckSeverity.ERROR, text, metadata)
        if status == "SLA_WARNING":
            return CheckOutcome(False, AssetCheckSeverity.WARN, text, metadata)
        return CheckOutcome(status == "WITHIN_SLA", AssetCheckSeverity.WARN, text, metadata)

    @property
    def regression_check(self) -> CheckOutcome:
        v = self.regression
        if v is None:
            return CheckOutcome(True, AssetCheckSeverity.WARN, "not judged: the step failed", {})
        metadata = {k: val for k, val in {
            "baseline_seconds": v.baseline_seconds, "current_seconds": v.current_seconds,
            "degradation_pct": v.degradation_pct, "robust_z": v.robust_z, "baseline_samples": v.samples,
            "severity": v.severity.value if v.severity else "NONE",
        }.items() if val is not None}
        text = v.reason
        if v.is_regression:
            severe = v.severity in (RegressionSeverity.MAJOR, RegressionSeverity.CRITICAL)
            return CheckOutcome(False, AssetCheckSeverity.ERROR if severe else AssetCheckSeverity.WARN, text, metadata)
        if v.suspected:
            return CheckOutcome(False, AssetCheckSeverity.WARN, text, metadata)
        return CheckOutcome(True, AssetCheckSeverity.WARN, text, metadata)

    def regression_row(self) -> dict[str, Any] | None:
        v, r = self.regression, self.record
        if v is None or not v.is_regression:
            return None
        return {
            "component_name": r["component_name"], "component_type": r["component_type"],
            "simulation_year": r["simulation_year"], "scenario": r["scenario"],
            "performance_id": str(r["performance_id"]), "baseline_run_id": self.baseline_run_id or "",
            "current_run_id": r["simulation_run_id"], "baseline_execution_time": v.baseline_seconds,
            "current_execution_time": v.current_seconds, "performance_degradation_pct": v.degradation_pct,
            "regression_severity": v.severity.value if v.severity else None,
            "regression_threshold_pct": MIN_DEGRADATION_PCT, "robust_z": v.robust_z, "baseline_samples": v.samples,
        }

    def alerts(self) -> list[Alert]:
        r = self.record
        common = dict(component_name=r["component_name"], simulation_year=r["simulation_year"],
                      scenario=r["scenario"], simulation_run_id=r["simulation_run_id"],
                      performance_id=str(r["performance_id"]))
        out = []
        sla = self.sla_check
        if r["sla_status"] in ("SLA_BREACH", "SLA_WARNING"):
            breach = r["sla_status"] == "SLA_BREACH"
            out.append(Alert(
                alert_type=AlertType.SLA_BREACH if breach else AlertType.SLA_WARNING,
                severity=Severity.ERROR if breach else Severity.WARNING,
                title=f"{r['sla_status']}: {self.where}", message=sla.description,
                details=tuple(sla.metadata.items()), **common,
            ))
        v = self.regression
        if v is not None and v.is_regression and v.severity is not None:
            severity = {RegressionSeverity.MINOR: Severity.WARNING, RegressionSeverity.MAJOR: Severity.ERROR,
                        RegressionSeverity.CRITICAL: Severity.CRITICAL}[v.severity]
            out.append(Alert(
                alert_type=AlertType.REGRESSION, severity=severity,
                title=f"{v.severity.value} regression: {self.where} {v.degradation_pct:+.0f}%",
                message=self.regression_check.description,
                details=tuple(self.regression_check.metadata.items()), **common,
            ))
        return out


def evaluate_record(session: StoreSession, record: Mapping[str, Any], *, confirm_runs: int = CONFIRM_RUNS,
                    window: int = BASELINE_WINDOW) -> Evaluation:
    """Judge one stored record against the earlier runs of the same component, year and scenario."""
    if record["status"] != "SUCCESS":
        return Evaluation(record, None, None)
    earlier = session.baseline(record["component_name"], record["scenario"], record["simulation_year"],
                               before=record["execution_end_time"], limit=window + confirm_runs - 1)
    # the newest earlier runs are judged with this one (confirmation); the rest are the baseline
    split = max(len(earlier) - (confirm_runs - 1), 0)
    baseline, recent = earlier[:split], earlier[split:]
    verdict = detect_regression(
        [seconds for _, seconds in baseline],
        [seconds for _, seconds in recent] + [float(record["execution_time_seconds"])],
        confirm_runs=confirm_runs, window=window,
    )
    return Evaluation(record, verdict, baseline[-1][0] if baseline else None)


def evaluate_records(session: StoreSession, performance_ids: Sequence[str]) -> dict[str, Evaluation]:
    """The stored records among ``performance_ids``, each judged once however often it is named
    (the outputs of one step share its record), keyed by id in the order first named; ids not
    stored are left out.

        store = MonitoringStore(tmp_path / "monitoring.duckdb")
        store.write([record])
        with store.session(read_only=True) as s:
            evaluations = evaluate_records(s, [record.performance_id, record.performance_id])
        assert list(evaluations) == [record.performance_id]
    """
    rows = {str(r["performance_id"]): r for r in session.performance(sorted(set(performance_ids)))}
    return {pid: evaluate_record(session, rows[pid]) for pid in dict.fromkeys(performance_ids) if pid in rows}
