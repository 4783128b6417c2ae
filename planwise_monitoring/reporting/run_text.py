"""The plain-text summary of one run, computed from the monitoring database (the command line's
``summary RUN_ID`` when the run's ``summary.txt`` was not written).

    from planwise_monitoring.reporting.run_text import run_summary_text

    print(run_summary_text(store, "0f3c9a1e-..."))

Per-year timings (summed over attempts) and SLA compliance are the store's figures, the same the
run summary files and the monitoring assets use.
"""

from __future__ import annotations

from typing import Any

from ..store import MonitoringStore
from ..store.rows import Rows
from .queries import QueryError


def run_summary_text(store: MonitoringStore, run_id: str, top: int = 5) -> str:
    """A plain-text summary of one run's monitored steps: per year and component, the slowest
    steps, SLA compliance, warnings and breaches, failures. Raises :class:`QueryError` for an
    unknown run.

        text = run_summary_text(store, "run-9")
        assert text.startswith("run run-9")
    """
    with store.session(read_only=True) as session:
        steps, timings = session.run_steps(run_id).dicts(), session.run_timings(run_id)
        [compliance] = session.run_compliance(run_id).dicts()
    if not steps:
        raise QueryError(f"no monitored steps recorded for run {run_id!r}")
    ok = [s for s in steps if s["status"] == "SUCCESS"]
    failed = [s for s in steps if s["status"] == "FAILED"]
    years = sorted({s["simulation_year"] for s in steps if s["simulation_year"] is not None})
    pct = compliance["sla_compliance_pct"]
    lines = [
        f"run {run_id}",
        f"  steps: {len(steps)} ({len(ok)} succeeded, {len(failed)} failed)",
        f"  years: {', '.join(map(str, years)) or '-'}; scenario: {', '.join(sorted({s['scenario'] for s in steps}))}",
        f"  from {min(s['execution_start_time'] for s in steps):%Y-%m-%d %H:%M:%S} to "
        f"{max(s['execution_end_time'] for s in steps):%Y-%m-%d %H:%M:%S} UTC, "
        f"{sum(s['execution_time_seconds'] for s in steps):.1f}s of step time",
        f"  SLA compliance: {'-' if pct is None else f'{pct:g}%'} of {compliance['judged_runs']} judged step(s)",
        "",
        "seconds per year and component (all attempts):",
        *("  " + line for line in _grid(timings)),
        "",
        f"slowest steps (top {top}):",
    ]
    for s in sorted(steps, key=lambda s: s["execution_time_seconds"], reverse=True)[:top]:
        lines.append(f"  {s['execution_time_seconds']:9.2f}s  {s['component_name']} {_year(s['simulation_year'])}"
                     f"  {s['status']}")
    judged = [s for s in steps if s["sla_status"] in ("SLA_WARNING", "SLA_BREACH")]
    lines += ["", f"SLA breaches and warnings: {len(judged) or 'none'}"]
    for s in sorted(judged, key=lambda s: (s["sla_status"], -s["execution_time_seconds"])):
        lines.append(f"  {s['sla_status']:<11}  {s['component_name']} {_year(s['simulation_year'])}: "
                     f"{s['execution_time_seconds']:.2f}s against {s['sla_threshold_seconds']:g}s")
    if failed:
        lines += ["", "failed steps:"]
        lines += [f"  {s['component_name']} {_year(s['simulation_year'])}: {s['error_class'] or 'error'}" for s in failed]
    return "\n".join(lines)


def _grid(timings: Rows) -> list[str]:
    """Components down, years across, and a total column, aligned."""
    years = sorted({_year(y) for y in timings.column("simulation_year")}, key=lambda y: (y != "-", y))
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for t in timings.dicts():
        cells.setdefault((t["component_name"], t["component_type"]), {})[_year(t["simulation_year"])] = (
            t["execution_time_seconds"])
    table = [["component_name", "component_type", *years, "total"]]
    for (name, ctype), by_year in cells.items():
        table.append([name, ctype, *(f"{by_year[y]:.2f}" if y in by_year else "" for y in years),
                      f"{sum(by_year.values()):.2f}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    # names left-aligned, seconds right-aligned
    return ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
            .rstrip() for row in table]


def _year(value: Any) -> str:
    return "-" if value is None else str(int(value))
