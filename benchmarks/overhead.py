"""Overhead of @monitor_performance: the same asset with and without it, side by side.

Two pairs of assets with identical bodies, one plain and one under ``@monitor_performance``:
a ~0 s asset (returns a small pandas DataFrame) and a ~2 s asset (``time.sleep(2.0)``, then the
same DataFrame; sleeping measures wall-clock overhead without CPU-calibration noise). Both
variants require the same other resource (``SimulationDatabase``), as real assets do, so
Dagster's cost of initialising resources at all is not charged to the plugin. Plain and
monitored materializations are interleaved (the order alternates each round: AB, BA, ...) in one
process and one ephemeral DagsterInstance, so drift hits both equally; the first round is a
discarded warm-up. Per materialization it measures

  wall  the whole ``dagster.materialize()`` call (includes the run-end flush that makes the
        run's record readable when it returns), and
  step  the step's duration as Dagster reports it (STEP_SUCCESS ``duration_ms``; less noisy),

and the plugin's own time inside the step as it measures itself (``monitoring_overhead_seconds``).
It reports the medians, the ms added (median monitored - median plain), the ratio, and a noise
figure (median |difference| between consecutive plain runs), then PASS/MISS per target:
<= 5 ms of the plugin's own time per step and <= 1 % of the 2 s asset's ``materialize()``.

    .venv/bin/python benchmarks/overhead.py            # full run, ~2 minutes
    .venv/bin/python benchmarks/overhead.py --quick    # smoke run, a few seconds

It is a benchmark, not a test: it exits 0 whatever the verdict.
"""

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    DagsterInstance,
    InitResourceContext,
    asset,
    materialize,
)

from planwise_monitoring import MonitoringResource, monitor_performance

SLOW_SECONDS = 2.0
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class SimulationDatabase(ConfigurableResource):
    """Stands for the resource a real asset needs anyway (its simulation database)."""

    path: str


teardown_ms: list[float] = []


class TimedMonitoringResource(MonitoringResource):
    """The plugin's resource, timing its run-end flush (the price of reading a run's records at once)."""

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        t0 = time.perf_counter()
        super().teardown_after_execution(context)
        teardown_ms.append((time.perf_counter() - t0) * 1000)


def fast(context: AssetExecutionContext, simulation_db: SimulationDatabase) -> pd.DataFrame:
    return pd.DataFrame({"employee_id": range(10), "salary": [50_000.0] * 10})


def slow(context: AssetExecutionContext, simulation_db: SimulationDatabase) -> pd.DataFrame:
    time.sleep(SLOW_SECONDS)
    return pd.DataFrame({"employee_id": range(10), "salary": [50_000.0] * 10})


def pair(fn, name):
    """The same body as a plain asset and as a monitored one."""
    return asset(name=f"{name}_plain")(fn), asset(name=f"{name}_monitored")(monitor_performance("SCD")(fn))


def run_once(assets_def, instance, resources):
    t0 = time.perf_counter()
    result = materialize([assets_def], instance=instance, resources=resources, run_config=QUIET)
    wall = (time.perf_counter() - t0) * 1000
    assert result.success
    [success] = result.get_step_success_events()
    return wall, success.event_specific_data.duration_ms


def bench(plain, monitored, rounds, instance, resources, readable):
    """Return {"plain": [(wall, step), ...], "monitored": [...]} for `rounds` measured rounds;
    append to `readable` whether each monitored run's record was in DuckDB when it returned."""
    samples = {"plain": [], "monitored": []}
    store = resources["monitoring"].get_store()
    for i in range(rounds + 1):  # round 0 is the warm-up
        order = [("plain", plain), ("monitored", monitored)]
        for variant, assets_def in order if i % 2 else order[::-1]:
            sample = run_once(assets_def, instance, resources)
            if i:
                samples[variant].append(sample)
                if variant == "monitored":
                    readable.append(len(store.read_performance()))
    return samples


def noise(values):
    """Median |difference| between consecutive runs of the same variant."""
    return statistics.median(abs(a - b) for a, b in itertools.pairwise(values)) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast-rounds", type=int, default=60, help="measured rounds of the ~0 s pair (default 60)")
    parser.add_argument("--slow-rounds", type=int, default=20, help="measured rounds of the 2 s pair (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 fast and 2 slow rounds")
    args = parser.parse_args()
    if args.quick:
        args.fast_rounds, args.slow_rounds = 5, 2

    readable: list[int] = []
    rows, verdict_inputs = [], {}
    with tempfile.TemporaryDirectory(prefix="planwise-bench-") as tmp:
        monitoring = TimedMonitoringResource(database_path=str(Path(tmp) / "monitoring.duckdb"))
        resources = {"monitoring": monitoring, "simulation_db": SimulationDatabase(path=str(Path(tmp) / "sim.duckdb"))}
        instance = DagsterInstance.ephemeral()
        started = time.perf_counter()
        for label, fn, rounds in [("~0 s", fast, args.fast_rounds), (f"{SLOW_SECONDS:g} s sleep", slow, args.slow_rounds)]:
            samples = bench(*pair(fn, fn.__name__), rounds, instance, resources, readable)
            for k, measure in enumerate(["wall", "step"]):
                plain = [s[k] for s in samples["plain"]]
                mon = [s[k] for s in samples["monitored"]]
                p, m = statistics.median(plain), statistics.median(mon)
                rows.append((label, measure, rounds, p, m, m - p, (m - p) / p * 100, noise(plain)))
                verdict_inputs[(label, measure)] = (m - p, (m - p) / p * 100)
        performance = monitoring.get_store().read_performance()
        own_ms = performance["monitoring_overhead_seconds"].dropna() * 1000
        elapsed = time.perf_counter() - started

    header = ("asset", "measure", "n", "plain ms", "monitored ms", "added ms", "ratio %", "noise ms")
    print(f"{header[0]:<11}{header[1]:<8}{header[2]:>4}" + "".join(f"{h:>14}" for h in header[3:]))
    for label, measure, n, p, m, added, ratio, nz in rows:
        print(f"{label:<11}{measure:<8}{n:>4}{p:>14.1f}{m:>14.1f}{added:>+14.1f}{ratio:>+14.2f}{nz:>14.1f}")
    print("noise = median |difference| between consecutive plain runs; n = measured pairs (warm-up discarded)")
    # each monitored run adds one row; a run whose row was not readable when it returned shows as a repeat
    missing = sum(1 for a, b in itertools.pairwise([0, *readable]) if b == a)
    print(f"records not readable when materialize() returned: {missing} of {len(readable)} "
          f"({len(performance)} stored)")
    print(f"of which the run-end flush into DuckDB (resource teardown, after the step): median "
          f"{statistics.median(teardown_ms):.1f} ms")
    own = statistics.median(own_ms)
    print(f"{'PASS' if own <= 5 else 'MISS'}  <= 5 ms of the plugin's own time per step: median {own:.2f} ms, "
          f"p90 {statistics.quantiles(own_ms, n=10)[-1]:.2f} ms (self-measured, {len(own_ms)} steps)")
    slow_label = f"{SLOW_SECONDS:g} s sleep"
    for label in ["~0 s", slow_label]:
        added, _ = verdict_inputs[(label, "step")]
        wall_added, wall_ratio = verdict_inputs[(label, "wall")]
        print(f"      added on the {label} asset: {added:+.1f} ms step time, {wall_added:+.1f} ms "
              f"({wall_ratio:+.2f} %) materialize()")
    _, wall_ratio = verdict_inputs[(slow_label, "wall")]
    print(f"{'PASS' if wall_ratio <= 1 else 'MISS'}  <= 1 % of the {slow_label} asset's materialize(): "
          f"{wall_ratio:+.2f} %")
    print(f"total {elapsed:.0f} s")


if __name__ == "__main__":
    main()
