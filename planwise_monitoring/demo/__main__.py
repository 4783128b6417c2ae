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
    print(f"\nRecorded in {d.MONITORING_DB} (mon_multi_year_performance; {runs} simulation run(s) so far).")
    print("Open the Dagster UI with `make ui`, then http://127.0.0.1:3000 "
          "(Catalog > a model, e.g. fct_yearly_events > Overview > Metadata > Plots).")
    return 0 if len(df) and (df["status"] == "SUCCESS").all() else 1


if __name__ == "__main__":
    sys.exit(main())
