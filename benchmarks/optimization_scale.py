"""Optimization tracking at scale: the tracker's cost per iteration, and the named queries, the KPI
asset's build and ``audit verify`` over 1 M iteration rows and 1 M audit entries, on both backends.

    .venv/bin/python benchmarks/optimization_scale.py              # 1 M rows, both backends (~3 min)
    .venv/bin/python benchmarks/optimization_scale.py --rows 100000 --backends duckdb

Targets (issue #10): tracking overhead <= 50 us per iteration on the optimizer's path; each named
query and the KPI build <= 1 s at 1 M rows; ``audit verify`` over 1 M entries <= 5 s.

The history is generated server-side (INSERT ... SELECT over a range) in both dialects: 10,000
runs of 100 iterations (1 M iteration rows) spread over 120 days, a third of them not converged,
two parameters each; the audit trail by ``audit_chain.load_audit_rows``. Figures are the best of 3.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_chain import load_audit_rows
from store_backends import Dialect, start_postgres, uniform

from planwise_monitoring import MonitoringResource
from planwise_monitoring.recording.measure import utcnow
from planwise_monitoring.reporting.queries import run_named
from planwise_monitoring.store import MonitoringStore

ITERATIONS_PER_RUN = 100
ALGORITHMS = ["Nelder-Mead", "L-BFGS-B", "Powell", "differential_evolution"]
REASONS = ["MAX_ITERATIONS", "TARGET_NOT_REACHED", "OPTIMIZER_STOPPED"]


def _id(expr: str) -> str:
    return f"CAST('00000000-0000-4000-8000-' || lpad(CAST({expr} AS VARCHAR), 12, '0') AS UUID)"


def history_sql(d: Dialect, runs: int, now: str) -> list[str]:
    """Runs i = 0..runs-1, finished i * (120 days / runs) before now; iterations (i, j)."""
    spacing = 120 * 86400 / runs
    finished = d.plus_seconds(now, f"-(i * {spacing})")
    algorithm = "CASE i % 4 " + " ".join(f"WHEN {k} THEN '{a}'" for k, a in enumerate(ALGORITHMS)) + " END"
    reason = "CASE WHEN i % 3 = 0 THEN CASE i % 9 " + " ".join(
        f"WHEN {3 * k} THEN '{r}'" for k, r in enumerate(REASONS)) + " END END"
    run_finished = f"({finished})"
    iteration_time = d.plus_seconds(now, f"-((i {d.div} {ITERATIONS_PER_RUN}) * {spacing}) - 3 "
                                         f"+ (i % {ITERATIONS_PER_RUN}) * 0.03")
    return [
        f"""INSERT INTO mon_optimization_runs (optimization_id, optimization_name, algorithm, scenario, status,
            converged, failure_reason, started_at, finished_at, duration_seconds, iterations, function_evaluations,
            max_iterations, objective_value, tolerance, target, optimizer_message, error_class, error_message,
            user_name, dagster_run_id, asset_key, partition_key)
        SELECT {_id('i')}, 'calibration_' || CAST(i % 7 AS VARCHAR), {algorithm}, 'baseline',
               CASE WHEN i % 3 = 0 THEN 'NOT_CONVERGED' ELSE 'CONVERGED' END, i % 3 <> 0, {reason},
               {d.plus_seconds(run_finished, '-3')}, {run_finished}, 3.0, {ITERATIONS_PER_RUN},
               {2 * ITERATIONS_PER_RUN}, 200, {uniform(7, 11)} / 1000, 1e-6, '{{"growth_rate": 0.03}}', 'ok', NULL,
               NULL, 'bench', 'run-' || CAST(i AS VARCHAR), 'calibration', NULL
        FROM {d.series(0, runs)}""",
        f"""INSERT INTO mon_optimization_parameters (optimization_id, parameter_name, initial_value, final_value)
        SELECT {_id(f'i {d.div} 2')}, CASE WHEN i % 2 = 0 THEN 'merit_rate' ELSE 'cola_rate' END, 0.03,
               0.02 + {uniform(3, 5)} / 50
        FROM {d.series(0, 2 * runs)}""",
        f"""INSERT INTO mon_optimization_iterations (optimization_id, iteration, recorded_at, objective_value,
            parameter_values, gradient_norm)
        SELECT {_id(f'i {d.div} {ITERATIONS_PER_RUN}')}, CAST(i % {ITERATIONS_PER_RUN} + 1 AS INTEGER),
               {iteration_time}, {uniform(13, 17)}, '[0.031,0.022]', NULL
        FROM {d.series(0, runs * ITERATIONS_PER_RUN)}""",
    ]


def load(store: MonitoringStore, d: Dialect, rows: int) -> float:
    started = time.perf_counter()
    store.write([])  # the schema
    with store.connect() as conn:
        now = conn.execute("SELECT CAST(? AS TIMESTAMP)", [utcnow()]).fetchone()[0]
        literal = f"CAST('{now.isoformat(sep=' ')}' AS TIMESTAMP)"
        for sql in history_sql(d, rows // ITERATIONS_PER_RUN, literal):
            conn.execute(d.render(sql))
        if not d.duck:
            conn.execute("ANALYZE")
    return time.perf_counter() - started


def best_of(fn: Any, n: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def reads(store: MonitoringStore) -> list[tuple[str, Any]]:
    def kpis() -> int:
        now = utcnow()
        with store.session() as s:
            windows = s.build_optimization_kpis(now)
            breakdown = s.optimization_breakdown(now - timedelta(days=30))
        return len(windows) + sum(len(r) for r in breakdown.values())

    return [("failed-optimizations", lambda: len(run_named(store, "failed-optimizations"))),
            ("parameter-trends", lambda: len(run_named(store, "parameter-trends"))),
            ("algorithm-comparison", lambda: len(run_named(store, "algorithm-comparison"))),
            ("KPI asset build", kpis),
            ("audit verify", lambda: store.verify_audit().rows)]


def overhead(tmp: Path, n: int = 200_000) -> dict[str, float]:
    """Microseconds per iteration: the optimizer's callback with and without the tracker, side by side."""
    monitoring = MonitoringResource(database_path=str(tmp / "overhead.duckdb"), json_log_path="")
    result = SimpleNamespace(x=np.array([0.03, 0.02, 0.1]), fun=1.5e-3)

    def bare(intermediate_result: Any) -> None:
        return None

    out: dict[str, float] = {}
    t = time.perf_counter()
    for _ in range(n):
        bare(result)
    out["bare callback"] = (time.perf_counter() - t) / n * 1e6
    with monitoring.optimization("bench", algorithm="none", initial_params=[0.0, 0.0, 0.0]) as opt:
        t = time.perf_counter()
        for _ in range(n):
            opt.scipy_callback(result)
        out["scipy_callback"] = (time.perf_counter() - t) / n * 1e6
        values = [0.03, 0.02, 0.1]
        t = time.perf_counter()
        for i in range(n):
            opt.iteration(i, values, 1.5e-3)
        out["iteration()"] = (time.perf_counter() - t) / n * 1e6
        opt.finish(converged=True, final_params=values, objective=1.5e-3)
    t = time.perf_counter()
    monitoring.flush(120)
    out["drain after the run (s, all rows)"] = time.perf_counter() - t
    return out


def scipy_side_by_side(tmp: Path) -> tuple[float, float]:
    """A real scipy Nelder-Mead (cheap objective, 2,000 iterations) untracked and tracked."""
    from scipy import optimize

    monitoring = MonitoringResource(database_path=str(tmp / "scipy.duckdb"), json_log_path="")
    f = lambda x: float(np.sum((x - 0.3) ** 2))  # noqa: E731
    x0 = np.full(8, 2.0)
    options = {"maxiter": 2000, "xatol": 0, "fatol": 0}
    plain, _ = best_of(lambda: optimize.minimize(f, x0, method="Nelder-Mead", callback=lambda xk: None,
                                                 options=options))

    def tracked():
        with monitoring.optimization("bench", algorithm="Nelder-Mead", initial_params=x0) as opt:
            opt.finish(optimize.minimize(f, x0, method="Nelder-Mead", callback=opt.scipy_callback, options=options))

    tracked_s, _ = best_of(tracked)
    monitoring.flush(60)
    return plain, tracked_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="iteration rows and audit entries")
    parser.add_argument("--backends", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        print("Tracking overhead on the optimizer's path (target <= 50 us per iteration):")
        for name, value in overhead(tmp).items():
            print(f"  {name:<36} {value:10.2f}" + ("" if "drain" in name else " us"))
        plain, tracked = scipy_side_by_side(tmp)
        print(f"  scipy Nelder-Mead, 2,000 iterations: untracked {plain * 1e3:.1f} ms, tracked {tracked * 1e3:.1f} ms "
              f"(ratio {tracked / plain:.2f}; {(tracked - plain) / 2000 * 1e6:.1f} us per iteration)")
        results: dict[str, dict[str, tuple[float, Any]]] = {}
        server = None
        try:
            for backend in args.backends:
                if backend == "postgres":
                    server = start_postgres({})
                    target = server.create_database()
                else:
                    target = str(tmp / "scale.duckdb")
                store = MonitoringStore(target, lock_timeout_seconds=60)
                loaded = load(store, Dialect(backend), args.rows)
                t = time.perf_counter()
                load_audit_rows(store, args.rows)
                print(f"\n{backend}: loaded {args.rows:,} iteration rows in {loaded:.1f}s and {args.rows:,} audit "
                      f"entries in {time.perf_counter() - t:.1f}s")
                results[backend] = {name: best_of(fn) for name, fn in reads(store)}
        finally:
            if server is not None:
                server.stop()
        print(f"\nAt {args.rows:,} rows (best of 3; target 1 s each, audit verify 5 s):")
        print(f"  {'':<22}" + "".join(f"{b:>16}" for b in results))
        for name in next(iter(results.values())):
            target = 5.0 if name == "audit verify" else 1.0
            cells = "".join(f"{results[b][name][0]:>11.3f}s {'ok' if results[b][name][0] <= target else 'MISS':>4}"
                            for b in results)
            print(f"  {name:<22}{cells}")


if __name__ == "__main__":
    main()
