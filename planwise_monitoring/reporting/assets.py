"""Monitoring assets: trend, SLA-compliance, regression, memory-growth, optimization-KPI and SLO
tables built in the monitoring database, and a schedule that rebuilds them daily.

    reports = build_monitoring_assets()
    defs = Definitions(assets=[*simulation_assets, *reports],
                       schedules=[build_monitoring_schedule(reports)],
                       resources={"monitoring": MonitoringResource(...)})

Each materialization carries what a person reads in the UI: a Markdown preview of the worst rows,
the row count, and numeric headline figures (e.g. overall SLA compliance %), which plot over time.
"""

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from ..evaluation.slo import SloStatus, evaluate_slos, span
from ..recording.measure import utcnow
from ..store import StoreSession

GROUP = "planwise_monitoring"
PREVIEW_ROWS = 10


def markdown_table(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    """A small Markdown table of the first rows (floats to 2 decimals)."""
    if df.empty:
        return "_no rows_"
    head = df.head(rows)
    cells = [[f"{v:,.2f}" if isinstance(v, float) else ("" if pd.isna(v) else str(v)) for v in row]
             for row in head.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    if len(df) > rows:
        lines.append(f"\n_{len(df) - rows:,} more rows_")
    return "\n".join(lines)


def _headlines_trends(session: StoreSession, df: pd.DataFrame, since: datetime) -> dict[str, Any]:
    return {"components": int(df["component_name"].nunique()) if len(df) else 0,
            "runs": int(df["runs"].sum()) if len(df) else 0,
            "sla_breaches": int(df["sla_breaches"].sum()) if len(df) else 0}


def _headlines_compliance(session: StoreSession, df: pd.DataFrame, since: datetime) -> dict[str, Any]:
    # The overall figure is the store's, over every component at once, not an average of percentages.
    [overall] = session.overall_compliance(since).dicts()
    worst = df["sla_compliance_pct"].dropna() if len(df) else pd.Series(dtype=float)
    return {"overall_compliance_pct": 100.0 if overall["sla_compliance_pct"] is None
            else float(overall["sla_compliance_pct"]),
            "sla_breaches": int(overall["sla_breaches"]),
            "sla_warnings": int(overall["sla_warnings"]),
            "worst_component_compliance_pct": float(worst.min()) if len(worst) else 100.0}


def _headlines_regressions(session: StoreSession, df: pd.DataFrame, since: datetime) -> dict[str, Any]:
    counts = df["regression_severity"].value_counts() if len(df) else {}
    return {"regressions": len(df), **{s.lower(): int(counts.get(s, 0)) for s in ("CRITICAL", "MAJOR", "MINOR")}}


def _headlines_memory(session: StoreSession, df: pd.DataFrame, since: datetime) -> dict[str, Any]:
    growth = df["growth_since_first_year_mb"].dropna() if len(df) else pd.Series(dtype=float)
    return {"max_growth_mb": round(float(growth.max()), 2) if len(growth) else 0.0,
            "max_peak_memory_mb": round(float(df["peak_memory_mb"].max()), 2) if len(df) else 0.0}


Headlines = Callable[[StoreSession, pd.DataFrame, datetime], dict[str, Any]]

# (table, description, headline figures); each table is built by the store from its figure's query.
_REPORTS: list[tuple[str, str, Headlines]] = [
    ("mon_performance_trends", "Per component, simulation year, scenario and UTC day a step ended: runs, failed "
     "runs, SLA breaches and avg/min/max/p95 seconds of the succeeded steps.", _headlines_trends),
    ("mon_sla_compliance", "Per component: judged runs, within SLA, with a warning, breaching, not judged, and "
     "compliance % (judged runs that did not breach).", _headlines_compliance),
    ("mon_regression_report", "Regressions detected in the window, worst first.", _headlines_regressions),
    ("mon_memory_growth", "Per component, scenario and simulation year: the largest and the average peak "
     "memory of its succeeded steps, and the largest's growth since the component's first year in the window "
     "(each simulation's own: the view mon_simulation_memory_growth).", _headlines_memory),
]


def build_monitoring_assets(*, resource_key: str = "monitoring", window_days: int = 30,
                            group_name: str = GROUP) -> list[AssetsDefinition]:
    """The monitoring assets: four built from the last ``window_days`` of history,
    ``mon_optimization_kpis`` (see :func:`build_optimization_kpis`) and ``mon_slo_status`` (see
    :func:`build_slo_status`)."""

    def make(name: str, description: str, headlines: Headlines) -> AssetsDefinition:
        @asset(name=name, group_name=group_name, description=description, required_resource_keys={resource_key},
               retry_policy=RetryPolicy(max_retries=3, delay=10), kinds={"duckdb"})
        def _report(context: AssetExecutionContext) -> MaterializeResult:
            store = getattr(context.resources, resource_key).get_store()
            since = utcnow() - timedelta(days=window_days)
            with store.session() as session:
                df = session.build_report(name, since).df()
                metadata = {f"planwise/{k}": v for k, v in headlines(session, df, since).items()}
            return MaterializeResult(metadata={
                **metadata,
                "dagster/row_count": len(df),
                "preview": MetadataValue.md(markdown_table(df)),
                "window_days": window_days,
            })

        return _report

    return [*(make(*report) for report in _REPORTS),
            build_optimization_kpis(resource_key=resource_key, group_name=group_name),
            build_slo_status(resource_key=resource_key, group_name=group_name)]


def build_optimization_kpis(*, resource_key: str = "monitoring", group_name: str = GROUP,
                            breakdown_days: int = 30) -> AssetsDefinition:
    """``mon_optimization_kpis``: per window (24h, 7d, 30d, 90d) the optimization runs, success rate
    and its change against the window before, average iterations and time to converge; its
    metadata adds, over the last ``breakdown_days``, the failure reasons, a per-algorithm comparison
    and the drift of the converged runs' final parameters. Every figure is numeric metadata
    (``planwise/success_rate_pct_7d``, ``planwise/failures_max_iterations``,
    ``planwise/param_cola_rate_last``…), so the UI plots it materialization after materialization."""

    @asset(name="mon_optimization_kpis", group_name=group_name, required_resource_keys={resource_key},
           retry_policy=RetryPolicy(max_retries=3, delay=10), kinds={"duckdb"},
           description="Optimization runs per window (24h/7d/30d/90d): runs, success rate and its change, average "
                       "iterations and time to converge; failure reasons, algorithms and parameter drift.")
    def _kpis(context: AssetExecutionContext) -> MaterializeResult:
        store = getattr(context.resources, resource_key).get_store()
        now = utcnow()
        with store.session() as session:
            windows = session.build_optimization_kpis(now).df()
            breakdown = {k: rows.df() for k, rows in session.optimization_breakdown(
                now - timedelta(days=breakdown_days)).items()}
        metadata: dict[str, Any] = {}
        for w in windows.itertuples():
            for figure in ("runs", "success_rate_pct", "success_rate_change_pts", "avg_iterations",
                           "avg_seconds_to_converge"):
                value = getattr(w, figure)
                metadata[f"planwise/{figure}_{w.window_name}"] = 0.0 if pd.isna(value) else float(value)
        for reason in breakdown["failure_reasons"].itertuples():
            metadata[f"planwise/failures_{str(reason.failure_reason).lower()}"] = int(reason.runs)
        drift = breakdown["parameter_drift"]
        for name, group in (drift.groupby("parameter_name") if len(drift) else []):
            metadata[f"planwise/param_{re.sub(r'[^A-Za-z0-9_]', '_', str(name))}_last"] = float(group.sort_values("day")["avg_final_value"].iloc[-1])
        shown = windows.drop(columns=["since", "until", "position"])
        preview = "\n\n".join([
            "**Windows**\n\n" + markdown_table(shown),
            f"**Failure reasons ({breakdown_days} days)**\n\n" + markdown_table(breakdown["failure_reasons"]),
            f"**Algorithms ({breakdown_days} days)**\n\n" + markdown_table(breakdown["algorithms"]),
            f"**Parameter drift ({breakdown_days} days, converged runs)**\n\n" + markdown_table(drift),
        ])
        return MaterializeResult(metadata={**metadata, "dagster/row_count": len(windows),
                                           "preview": MetadataValue.md(preview)})

    return _kpis


def _status_row(status: SloStatus, now: datetime) -> list[Any]:
    """One SLO's row of ``mon_slo_status`` (the store's ``slo.STATUS_COLUMNS``)."""
    slo = status.slo
    long_rates = [status.burn_rates[rule.long] for rule in slo.burn_alerts]
    firing = "; ".join(f"{r.level}: {span(r.long)} and {span(r.short)} at >= {r.burn_rate:g}x" for r in status.firing)
    return [slo.name, slo.indicator.value, slo.objective, slo.window / 86400, status.events, status.bad,
            status.attainment_pct, status.budget_remaining_pct, max(long_rates, default=0.0), status.level.value,
            firing or None, now]


def build_slo_status(*, resource_key: str = "monitoring", group_name: str = GROUP) -> AssetsDefinition:
    """``mon_slo_status``: per SLO of the SLA file's ``slos:`` section (see
    :mod:`planwise_monitoring.evaluation.slo`) its events, attainment, error budget remaining, the
    highest burn rate of its alert rules' long windows and the alert level now. Each figure is
    numeric metadata per SLO (``planwise/slo/<name>/budget_remaining_pct``, ``.../attainment_pct``,
    ``.../burn_rate_1h``…), so the UI plots the budget remaining materialization after
    materialization."""

    @asset(name="mon_slo_status", group_name=group_name, required_resource_keys={resource_key},
           retry_policy=RetryPolicy(max_retries=3, delay=10), kinds={"duckdb"},
           description="Per SLO: attainment against its objective over its window, error budget remaining, "
                       "burn rates and the alert level (page / ticket / none).")
    def _slo_status(context: AssetExecutionContext) -> MaterializeResult:
        monitoring = getattr(context.resources, resource_key)
        slos = monitoring.get_slos()
        now = utcnow()
        with monitoring.get_store().session() as session:
            statuses = evaluate_slos(session, slos, now)
            table = session.build_slo_status([_status_row(s, now) for s in statuses]).df()
        metadata: dict[str, Any] = {}
        for status in statuses:
            key = f"planwise/slo/{status.slo.name}"
            metadata[f"{key}/budget_remaining_pct"] = round(float(status.budget_remaining_pct), 4)
            if status.attainment_pct is not None:  # no events: nothing measured, no point plotted
                metadata[f"{key}/attainment_pct"] = round(float(status.attainment_pct), 4)
            metadata[f"{key}/events"] = status.events
            for window, rate in status.burn_rates.items():
                metadata[f"{key}/burn_rate_{span(window).replace(' ', '')}"] = round(float(rate), 4)
        shown = table.drop(columns=["evaluated_at"])
        summaries = "\n".join(f"- {s.summary()}" for s in statuses) or "_no SLOs: add an `slos:` section to the SLA file_"
        return MaterializeResult(metadata={**metadata, "dagster/row_count": len(table),
                                           "preview": MetadataValue.md(markdown_table(shown) + "\n\n" + summaries)})

    return _slo_status


def build_monitoring_schedule(assets: Sequence[AssetsDefinition], *, cron_schedule: str = "0 6 * * *",
                              name: str = "planwise_monitoring_daily",
                              default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING
                              ) -> ScheduleDefinition:
    """A schedule that materializes the monitoring assets (daily at 06:00 by default)."""
    job = define_asset_job(f"{name}_job", selection=[a.key for a in assets])
    return ScheduleDefinition(name=name, job=job, cron_schedule=cron_schedule, default_status=default_status)
