"""Run summaries: when a run ends, ``artifacts/runs/<run_id>/summary.json`` and ``summary.txt``.

    sensors = [build_run_summary_sensor(artifacts_dir="artifacts"),
               build_run_failure_sensor(artifacts_dir="artifacts")]   # summaries of failed runs too

A summary holds the run's start, end, duration and status; per-year and per-component timings
from the monitoring database; the slowest components (bottlenecks); SLA breaches; regressions;
memory across years; each error with its class and stack trace; the run's config and tags; and
the environment. It is also reported as an observation of the ``planwise_run_summaries`` asset, so
the Dagster UI lists every summary with its headline figures.
"""

import json
import os
import platform
import socket
import sys
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    MetadataValue,
)

from ..events import JsonEventLog
from ..redaction import redact, redact_mapping
from ..store import MonitoringStore
from ..store.errors import StoreError

RUN_SUMMARIES = AssetKey("planwise_run_summaries")
run_summaries_spec = AssetSpec(RUN_SUMMARIES, group_name="planwise_monitoring",
                               description="One observation per finished run: its summary's headline figures.")
BOTTLENECKS = 5


def user_error(error):
    """The user's own exception under Dagster's wrappers (DagsterExecutionStepExecutionError …)."""
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for package in ("dagster", "dagster-dbt", "dbt-core", "duckdb", "planwise-monitoring"):
        try:
            out[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            pass
    return out


def _errors(instance: DagsterInstance, run_id: str) -> list[dict[str, Any]]:
    errors = []
    entries = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    # the run's own failure only when no step failed (e.g. a resource that could not start)
    for entry in entries or instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        if error is None:
            continue
        chain = []
        while error is not None:
            chain.append(error)
            error = error.cause
        user = user_error(chain[0])
        errors.append({
            "step": entry.step_key,
            "error_class": user.cls_name,
            "message": redact(user.message.strip()),
            "stack_trace": redact("".join(e.cls_name + ": " + e.message + "".join(e.stack) for e in chain)),
        })
    return errors


def run_summary(instance: DagsterInstance, run: DagsterRun, store: MonitoringStore) -> dict[str, Any]:
    """Everything a person wants to know about a finished run, as JSON-ready data."""
    stats = instance.get_run_stats(run.run_id)
    start = datetime.fromtimestamp(stats.start_time, UTC) if stats.start_time else None
    end = datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else None
    steps: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    regressions: list[dict[str, Any]] = []
    compliance: dict[str, Any] = {}
    monitoring_error = None
    try:
        with store.session(read_only=True) as session:
            steps = session.run_steps(run.run_id).dicts()
            timings = session.run_timings(run.run_id).dicts()
            [compliance] = session.run_compliance(run.run_id).dicts()
            regressions = session.run_regressions(run.run_id).dicts()
    except StoreError as exc:
        monitoring_error = str(exc)
    components = [
        {"simulation_year": r["simulation_year"], "component": r["component_name"],
         "component_type": r["component_type"], "status": r["status"],
         "seconds": round(float(r["execution_time_seconds"]), 3),
         "peak_memory_mb": None if r["memory_usage_mb"] is None else round(float(r["memory_usage_mb"]), 1),
         "output_records": r["output_record_count"], "sla_status": r["sla_status"]}
        for r in steps
    ]
    # The store's figure: a component's time in a year is the sum over its attempts (retries).
    per_year: dict[str, dict[str, float]] = {}
    for t in timings:
        per_year.setdefault(str(t["simulation_year"]), {})[t["component_name"]] = round(
            float(t["execution_time_seconds"]), 3)
    memory: dict[str, float] = {}
    for c in components:
        if c["simulation_year"] is not None and c["peak_memory_mb"] is not None:
            year = str(c["simulation_year"])
            memory[year] = max(memory.get(year, 0.0), c["peak_memory_mb"])
    return {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "status": run.status.value,
        "started_at": start.isoformat() if start else None,
        "ended_at": end.isoformat() if end else None,
        "duration_seconds": round(stats.end_time - stats.start_time, 3) if stats.start_time and stats.end_time else None,
        "partition_key": run.tags.get("dagster/partition"),
        "per_year": per_year,
        "components": components,
        "bottlenecks": sorted(components, key=lambda c: c["seconds"], reverse=True)[:BOTTLENECKS],
        "sla_breaches": [c for c in components if c["sla_status"] == "SLA_BREACH"],
        "regressions": json.loads(json.dumps(regressions, default=_json_text)),
        "sla_compliance": compliance,
        "peak_memory_mb_by_year": memory,
        "errors": _errors(instance, run.run_id),
        "config": redact_mapping(json.loads(json.dumps(run.run_config, default=str))),
        "tags": redact_mapping(dict(run.tags)),
        "environment": {"host": socket.gethostname(), "platform": platform.platform(), "pid": os.getpid(),
                        **_versions()},
        "monitoring_error": monitoring_error,
    }


def _json_text(value: Any) -> str:
    """Timestamps as ISO 8601, UUIDs and the rest as their text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def format_summary(s: dict[str, Any]) -> str:
    """The readable version of a summary."""
    lines = [f"Run {s['run_id']} ({s['job_name']}{', partition ' + s['partition_key'] if s['partition_key'] else ''})",
             f"  status {s['status']}, {s['duration_seconds']}s, from {s['started_at']} to {s['ended_at']}"]
    if s["per_year"]:
        lines.append("Per year and component (seconds):")
        for year, parts in s["per_year"].items():
            lines.append(f"  {year}: " + ", ".join(f"{name} {sec:g}" for name, sec in parts.items()))
    if s["bottlenecks"]:
        lines.append("Slowest components:")
        lines += [f"  {c['component']} {c['simulation_year'] or ''} {c['seconds']}s ({c['sla_status'] or c['status']})"
                  for c in s["bottlenecks"]]
    compliance = s.get("sla_compliance") or {}
    if compliance.get("sla_compliance_pct") is not None:
        lines.append(f"SLA compliance: {compliance['sla_compliance_pct']:g}% of {compliance['judged_runs']} judged step(s)")
    lines.append(f"SLA breaches: {len(s['sla_breaches'])}" + "".join(
        f"\n  {c['component']} {c['simulation_year'] or ''} {c['seconds']}s" for c in s["sla_breaches"]))
    lines.append(f"Regressions: {len(s['regressions'])}" + "".join(
        f"\n  {r['component_name']} {r['regression_severity']} {r['performance_degradation_pct']:+.1f}%"
        for r in s["regressions"]))
    if s["peak_memory_mb_by_year"]:
        lines.append("Peak memory by year (MB): " + ", ".join(f"{y} {mb:g}" for y, mb in s["peak_memory_mb_by_year"].items()))
    for e in s["errors"]:
        lines += [f"Error in {e['step'] or 'the run'}: {e['error_class']}: {e['message']}", e["stack_trace"]]
    if s["monitoring_error"]:
        lines.append(f"Monitoring database: {s['monitoring_error']}")
    return "\n".join(lines) + "\n"


def write_run_summary(instance: DagsterInstance, run: DagsterRun, store: MonitoringStore,
                      artifacts_dir: str | Path, event_log: JsonEventLog | None = None) -> Path:
    """Write the summary files and report them as an observation; returns the run's directory."""
    summary = run_summary(instance, run, store)
    directory = Path(artifacts_dir) / "runs" / run.run_id
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (directory / "summary.txt").write_text(format_summary(summary))
    if event_log is not None:
        event_log.event("run_summary_written", level="ERROR" if summary["errors"] else "INFO", run_id=run.run_id,
                        status=summary["status"], duration_seconds=summary["duration_seconds"],
                        sla_breaches=len(summary["sla_breaches"]), errors=len(summary["errors"]),
                        path=str(directory / "summary.json"))
    instance.report_runless_asset_event(AssetObservation(asset_key=RUN_SUMMARIES, metadata={
        "run_id": run.run_id,
        "status": summary["status"],
        "duration_seconds": summary["duration_seconds"] or 0.0,
        "sla_breaches": len(summary["sla_breaches"]),
        "regressions": len(summary["regressions"]),
        "errors": len(summary["errors"]),
        "summary": MetadataValue.path(str((directory / "summary.txt").resolve())),
        "slowest": MetadataValue.md("\n".join(
            f"- {c['component']} {c['simulation_year'] or ''}: {c['seconds']}s" for c in summary["bottlenecks"]) or "_none_"),
    }))
    return directory
