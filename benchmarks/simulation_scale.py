"""The demo simulation at two sizes, monitored: time per year and the monitoring's share of it.

For 10 k and 100 k employees (``--sizes`` to change), simulates three years in order through the
demo's Dagster definitions (in-process), each size on fresh databases, and prints per year:
the year's total (``multi_year_simulation``: the whole ``dbt build`` step), the sum of dbt's own
model times, and the time the monitoring spent inside the step (its self-measured
``monitoring_overhead_seconds``: starting and stopping the meter, reading dbt's results, counting
each model's rows, building and spooling the records) with its share of the year.

    .venv/bin/python benchmarks/simulation_scale.py                 # 10 k and 100 k, ~3 minutes
    .venv/bin/python benchmarks/simulation_scale.py --sizes 2000    # a quick look
"""

import argparse
import contextlib
import importlib
import io
import os
import tempfile
import time

from dagster import DagsterInstance

YEARS = ["2025", "2026", "2027"]


def run_size(census_size: int, workdir: str) -> list[dict]:
    os.environ["PLANWISE_SIM_DB"] = os.path.join(workdir, f"simulation-{census_size}.duckdb")
    os.environ["PLANWISE_MONITORING_DB"] = os.path.join(workdir, f"monitoring-{census_size}.duckdb")
    import planwise_monitoring.demo.definitions as definitions

    d = importlib.reload(definitions)  # picks up the databases above
    job = d.defs.resolve_job_def("workforce_simulation_job")
    instance = DagsterInstance.ephemeral()
    config = {"ops": {"workforce_simulation": {"config": {"census_size": census_size}}},
              "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    wall = {}
    for year in YEARS:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # dbt's own log lines
            result = job.execute_in_process(partition_key=year, instance=instance, run_config=config)
        wall[int(year)] = time.perf_counter() - started
        assert result.success
    assert d.monitoring.flush()
    df = d.monitoring.get_store().read_performance()
    rows = []
    for year, group in df.groupby("simulation_year"):
        total = group[group.component_name == "multi_year_simulation"].iloc[0]
        models = group[group.component_name != "multi_year_simulation"]
        rows.append({
            "employees": census_size, "year": year, "run_s": wall[year],
            "step_s": total.execution_time_seconds, "models_s": models.execution_time_seconds.sum(),
            "rows": int(total.output_record_count), "peak_mb": total.memory_usage_mb,
            "monitoring_ms": total.monitoring_overhead_seconds * 1000,
            "share_pct": total.monitoring_overhead_seconds / total.execution_time_seconds * 100,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="planwise-scale-") as workdir:
        for size in args.sizes:
            rows += run_size(size, workdir)
    print(f"{'employees':>10}{'year':>6}{'run s':>8}{'step s':>8}{'models s':>10}{'rows':>10}"
          f"{'peak MB':>9}{'monitoring ms':>15}{'share %':>9}")
    for r in rows:
        print(f"{r['employees']:>10,}{r['year']:>6}{r['run_s']:>8.1f}{r['step_s']:>8.1f}{r['models_s']:>10.2f}"
              f"{r['rows']:>10,}{r['peak_mb']:>9.0f}{r['monitoring_ms']:>15.1f}{r['share_pct']:>9.2f}")
    print("run s: execute_in_process; step s: the dbt build step (multi_year_simulation); models s: dbt's "
          "own model times;\nmonitoring ms: the monitoring's self-measured time inside the step; share: of the step")


if __name__ == "__main__":
    main()
