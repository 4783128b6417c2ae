"""``python -m planwise_monitoring.demo``: simulate 2025-2029 through Dagster and print what the
monitoring recorded. Run it again to add a second run to the history."""

import argparse
import contextlib
import os
import sys
import time

import pandas as pd
from dagster import DagsterInstance

COLUMNS = {
    "simulation_year": "year",
    "component_name": "component",
    "component_type": "type",
    "execution_time_seconds": "seconds",
    "memory_usage_mb": "peak MB",
    "output_record_count": "rows",
    "records_per_second": "rows/s",
    "sla_status": "SLA status",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", nargs="+", default=None, help="years to simulate (default 2025-2029)")
    parser.add_argument("--census-size", type=int, default=10_000)
    args = parser.parse_args(argv)

    from . import definitions as d  # parses the dbt project on first use

    years = args.years or d.SIMULATION_YEARS
    job = d.defs.resolve_job_def("workforce_simulation_job")
    simulation_id = f"demo-{time.strftime('%Y%m%dT%H%M%S')}"
    run_config = {"ops": {"workforce_simulation": {"config": {"census_size": args.census_size}}}}
    run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    log_path = d.DBT_PROJECT_DIR / "logs" / "demo.log"
    log_path.parent.mkdir(exist_ok=True)
    print(f"Simulating {', '.join(years)} with {args.census_size:,} employees (simulation {simulation_id}); "
          f"dbt's output goes to {log_path}", flush=True)
    started = time.perf_counter()
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        calibration = d.defs.resolve_job_def("hire_rate_calibration_job").execute_in_process(
            instance=instance, raise_on_error=False, tags={"planwise/simulation_id": simulation_id},
            run_config={"ops": {"hire_rate_calibration": {"config": {"census_size": args.census_size}}},
                        "loggers": run_config["loggers"]})
    if not calibration.success:
        print(f"  calibration FAILED (run {calibration.run_id}); see {log_path}")
        return 1
    [calibrated] = calibration.get_asset_materialization_events()
    hire_rate = calibrated.materialization.metadata["planwise/hire_rate"].value
    run_config["ops"]["workforce_simulation"]["config"]["hire_rate"] = hire_rate
    print(f"  calibration: hire_rate = {hire_rate} in {time.perf_counter() - started:.1f}s "
          f"(run {calibration.run_id})", flush=True)
    for year in years:
        started = time.perf_counter()
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):
            result = job.execute_in_process(partition_key=year, instance=instance, run_config=run_config,
                                            tags={"planwise/simulation_id": simulation_id}, raise_on_error=False)
        print(f"  {year}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - started:.1f}s "
              f"(run {result.run_id})", flush=True)
        if not result.success:
            break

    d.monitoring.flush()
    df = d.monitoring.get_store().read_performance()
    runs = df["simulation_id"].nunique()
    df = df[df["simulation_id"] == simulation_id]
    table = df[list(COLUMNS)].rename(columns=COLUMNS).sort_values(["year", "type", "component"])
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print()
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    reports = d.defs.resolve_job_def("planwise_monitoring_daily_job").execute_in_process(
        instance=instance, run_config={"loggers": run_config["loggers"]}, raise_on_error=False)
    if reports.success:
        headline = {e.materialization.asset_key.path[-1]: e.materialization.metadata
                    for e in reports.get_asset_materialization_events()}
        print(f"\nSLA compliance over all runs: {headline['mon_sla_compliance']['planwise/overall_compliance_pct'].value}% "
              f"({headline['mon_sla_compliance']['planwise/sla_breaches'].value} breaches); regressions: "
              f"{headline['mon_regression_report']['planwise/regressions'].value}")
    _print_calibration(d.monitoring.get_store(), str(calibrated.materialization.metadata["planwise/optimization_id"].value))
    _print_growth(d.SIMULATION_DB, years)
    print(f"\nRecorded in {d.MONITORING_DB} (mon_multi_year_performance; {runs} simulation run(s) so far).")
    print("Open the Dagster UI with `make ui`, then http://127.0.0.1:3000 "
          "(Catalog > a model, e.g. fct_yearly_events > Overview > Metadata > Plots).")
    return 0 if len(df) and (df["status"] == "SUCCESS").all() else 1


def _print_growth(simulation_db, years: list[str]) -> None:
    """Each simulated year's headcount growth: the calibrated rate holds the first year to the target."""
    import duckdb

    with duckdb.connect(str(simulation_db), read_only=True) as conn:
        rows = conn.execute(
            "SELECT simulation_year, count(*) FILTER (WHERE employment_status = 'active') FROM fct_workforce_snapshot "
            "GROUP BY 1 ORDER BY 1").fetchall()
        [(census,)] = conn.execute("SELECT count(*) FROM stg_census").fetchall()
    headcount = dict(rows)
    growth, previous = [], census
    for year in map(int, years):
        if year in headcount:
            growth.append(f"{year} {100 * (headcount[year] / previous - 1):+.2f}%")
            previous = headcount[year]
    print("Headcount growth with the calibrated hire rate: " + ", ".join(growth)
          + " (calibrated on the first year; later years leave at their own rates)")


def _print_calibration(store, optimization_id: str) -> None:
    """The calibration as the monitoring recorded it: its run, its last iterations, the audit trail."""
    runs = store.read_table("mon_optimization_runs")
    run = runs[runs["optimization_id"].astype(str) == optimization_id].iloc[0]
    iterations = store.read_table("mon_optimization_iterations")
    mine = iterations[iterations["optimization_id"].astype(str) == optimization_id].sort_values("iteration")
    print(f"\nCalibration {run['optimization_name']} ({run['algorithm']}): "
          f"{'converged' if run['converged'] else 'did NOT converge (' + str(run['failure_reason']) + ')'} after "
          f"{run['iterations']} iterations, {run['function_evaluations']} evaluations, "
          f"{run['duration_seconds']:.3f}s; objective {run['objective_value']:.3g}; tracked iterations: {len(mine)}")
    print(mine.tail(3)[["iteration", "objective_value", "parameter_values"]].to_string(index=False))
    trail = store.read_table("mon_parameter_changes").sort_values("entry_seq")
    print(f"\nAudit trail ({len(trail)} entries, latest 3):")
    print(trail.tail(3)[["entry_seq", "recorded_at", "user_name", "parameter_name", "old_value", "new_value",
                         "change_source"]].to_string(index=False))
    print(f"`planwise-monitoring audit verify`: {store.verify_audit()}")


if __name__ == "__main__":
    sys.exit(main())
