"""Overhead of @monitor_performance: the same asset with and without it, side by side.

Two pairs of assets with identical bodies, one plain and one under ``@monitor_performance``:
a ~0 s asset (returns a small pandas DataFrame) and a ~2 s asset (``time.sleep(2.0)``, then the
same DataFrame; sleeping measures wall-clock overhead without CPU-calibration noise). Plain and
monitored materializations are interleaved (the order alternates each round: AB, BA, ...) in one
process and one ephemeral DagsterInstance, so drift hits both equally; the first round is a
discarded warm-up. Per materialization it measures

  wall  the whole ``dagster.materialize()`` call, and
  step  the step's duration as Dagster reports it (STEP_SUCCESS ``duration_ms``; less noisy).

It reports the medians, the ms added (median monitored - median plain), the ratio, and a noise
figure (median |difference| between consecutive plain runs), then PASS/MISS per target:
<= 10 ms added per materialization and <= 1 % on the 2 s asset. The time the background writer
takes to get records into DuckDB (off the step's path) is reported on its own line.

    .venv/bin/python benchmarks/overhead.py            # full run, ~2 minutes
    .venv/bin/python benchmarks/overhead.py --quick    # smoke run, a few seconds

It is a benchmark, not a test: it exits 0 whatever the verdict.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, DagsterInstance, asset, materialize

from planwise_monitoring import MonitoringResource, monitor_performance
from planwise_monitoring.store.writer import writer_for

SLOW_SECONDS = 2.0
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def fast(context: AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"employee_id": range(10), "salary": [50_000.0] * 10})


def slow(context: AssetExecutionContext) -> pd.DataFrame:
    time.sleep(SLOW_SECONDS)
    return pd.DataFrame({"employee_id": range(10), "salary": [50_000.0] * 10})


def pair(fn, name):
    """The same body as a plain asset and as a monitored one."""
    return asset(name=f"{name}_plain")(fn), asset(name=f"{name}_monitored")(monitor_performance("SCD")(fn))


# How long getting a record into DuckDB takes: flush() after each monitored run does that drain
# synchronously (the background writer waits a moment after a step before draining).
drain_ms: list[float] = []


def run_once(assets_def, instance, monitoring):
    t0 = time.perf_counter()
    result = materialize([assets_def], instance=instance, resources={"monitoring": monitoring}, run_config=QUIET)
    wall = (time.perf_counter() - t0) * 1000
    assert result.success
    [success] = result.get_step_success_events()
    return wall, success.event_specific_data.duration_ms


def bench(plain, monitored, rounds, instance, monitoring, pending):
    """Return {"plain": [(wall, step), ...], "monitored": [...]} for `rounds` measured rounds."""
    samples = {"plain": [], "monitored": []}
    for i in range(rounds + 1):  # round 0 is the warm-up
        order = [("plain", plain), ("monitored", monitored)]
        for variant, assets_def in order if i % 2 else order[::-1]:
            sample = run_once(assets_def, instance, monitoring)
            if variant == "monitored":  # was the record in DuckDB yet? Then make sure it is, before going on
                if i:
                    pending.append(bool(writer_for(monitoring.get_store()).pending_ids()))
                t0 = time.perf_counter()
                assert monitoring.flush(), "records still waiting in the spool"
                drain_ms.append((time.perf_counter() - t0) * 1000)
            if i:
                samples[variant].append(sample)
    return samples


def noise(values):
    """Median |difference| between consecutive runs of the same variant."""
    return statistics.median(abs(a - b) for a, b in zip(values, values[1:])) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast-rounds", type=int, default=60, help="measured rounds of the ~0 s pair (default 60)")
    parser.add_argument("--slow-rounds", type=int, default=20, help="measured rounds of the 2 s pair (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 fast and 2 slow rounds")
    args = parser.parse_args()
    if args.quick:
        args.fast_rounds, args.slow_rounds = 5, 2

    pending: list[bool] = []
    rows, verdict_inputs = [], {}
    with tempfile.TemporaryDirectory(prefix="planwise-bench-") as tmp:
        monitoring = MonitoringResource(database_path=str(Path(tmp) / "monitoring.duckdb"))
        instance = DagsterInstance.ephemeral()
        started = time.perf_counter()
        for label, fn, rounds in [("~0 s", fast, args.fast_rounds), (f"{SLOW_SECONDS:g} s sleep", slow, args.slow_rounds)]:
            samples = bench(*pair(fn, fn.__name__), rounds, instance, monitoring, pending)
            for k, measure in enumerate(["wall", "step"]):
                plain = [s[k] for s in samples["plain"]]
                mon = [s[k] for s in samples["monitored"]]
                p, m = statistics.median(plain), statistics.median(mon)
                rows.append((label, measure, rounds, p, m, m - p, (m - p) / p * 100, noise(plain)))
                verdict_inputs[(label, measure)] = (m - p, (m - p) / p * 100)
        stored = len(monitoring.get_store().read_performance())
        elapsed = time.perf_counter() - started

    header = ("asset", "measure", "n", "plain ms", "monitored ms", "added ms", "ratio %", "noise ms")
    print(f"{header[0]:<11}{header[1]:<8}{header[2]:>4}" + "".join(f"{h:>14}" for h in header[3:]))
    for label, measure, n, p, m, added, ratio, nz in rows:
        print(f"{label:<11}{measure:<8}{n:>4}{p:>14.1f}{m:>14.1f}{added:>+14.1f}{ratio:>+14.2f}{nz:>14.1f}")
    print("noise = median |difference| between consecutive plain runs; n = measured pairs (warm-up discarded)")
    print(f"background write to DuckDB (off the step's path): median {statistics.median(drain_ms):.1f} ms per drain "
          f"({len(drain_ms)} drains, {stored} records stored); "
          f"still in the spool when materialize() returned: {sum(pending)} of {len(pending)}")

    slow_label = f"{SLOW_SECONDS:g} s sleep"
    for label in ["~0 s", slow_label]:
        added, _ = verdict_inputs[(label, "step")]
        wall_added, _ = verdict_inputs[(label, "wall")]
        print(f"{'PASS' if added <= 10 else 'MISS'}  <= 10 ms added on the {label} asset: {added:+.1f} ms "
              f"step time ({wall_added:+.1f} ms wall)")
    _, ratio = verdict_inputs[(slow_label, "step")]
    _, wall_ratio = verdict_inputs[(slow_label, "wall")]
    print(f"{'PASS' if ratio <= 1 else 'MISS'}  <= 1 % on the {slow_label} asset: {ratio:+.2f} % step time "
          f"({wall_ratio:+.2f} % wall)")
    print(f"total {elapsed:.0f} s")


if __name__ == "__main__":
    main()
