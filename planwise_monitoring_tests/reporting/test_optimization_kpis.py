"""The optimization KPIs asset and the named queries, against a hand computation, on both backends."""

from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from planwise_monitoring.recording.measure import utcnow
from planwise_monitoring.reporting.assets import build_optimization_kpis
from planwise_monitoring.reporting.queries import run_named

from ..factories import make_optimization_run
from ..store.backends import Backend

# (hours ago, algorithm, converged, iterations, seconds, failure reason)
RUNS = [
    (1, "Nelder-Mead", True, 40, 2.0, None),
    (2, "Nelder-Mead", False, 200, 9.0, "MAX_ITERATIONS"),
    (30, "L-BFGS-B", True, 10, 1.0, None),            # 7d (and the 24h window's previous window)
    (100, "L-BFGS-B", False, 12, 1.0, "TARGET_NOT_REACHED"),  # 7d
    (24 * 10, "Nelder-Mead", True, 60, 4.0, None),    # 30d (and 7d's previous window)
    (24 * 60, "Nelder-Mead", False, 80, 5.0, "TARGET_NOT_REACHED"),  # 90d (and 30d's previous window)
]


@pytest.fixture
def stored_runs(backend: Backend):
    now = utcnow()
    runs = [make_optimization_run(i, started_at=now - timedelta(hours=hours, seconds=seconds), duration_seconds=seconds,
                                  algorithm=algorithm, converged=converged, iterations=iterations,
                                  status="CONVERGED" if converged else "NOT_CONVERGED", failure_reason=reason)
            for i, (hours, algorithm, converged, iterations, seconds, reason) in enumerate(RUNS)]
    backend.store().write(runs)
    return runs


def test_the_kpis_per_window_match_a_hand_computation(backend: Backend, stored_runs):
    with DagsterInstance.ephemeral() as instance:
        result = materialize([build_optimization_kpis()], instance=instance,
                             resources={"monitoring": backend.resource()})
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    windows = backend.store().read_table("mon_optimization_kpis").set_index("window_name")
    assert list(windows["runs"]) == [2, 4, 5, 6]  # 24h, 7d, 30d, 90d
    assert list(windows["success_rate_pct"].astype(float)) == [50.0, 50.0, 60.0, 50.0]
    assert windows.loc["24h", "previous_runs"] == 1 and float(windows.loc["24h", "previous_success_rate_pct"]) == 100.0
    assert float(windows.loc["24h", "success_rate_change_pts"]) == -50.0
    assert float(windows.loc["7d", "avg_iterations"]) == (40 + 200 + 10 + 12) / 4
    assert float(windows.loc["30d", "avg_seconds_to_converge"]) == round((2 + 1 + 4) / 3, 3)
    assert metadata["planwise/success_rate_pct_24h"] == 50.0 and metadata["planwise/runs_90d"] == 6.0
    # the breakdown covers the last 30 days
    assert metadata["planwise/failures_max_iterations"] == 1 and metadata["planwise/failures_target_not_reached"] == 1
    assert metadata["planwise/param_merit_rate_last"] == 0.035
    assert "**Algorithms (30 days)**" in metadata["preview"] and "L-BFGS-B" in metadata["preview"]


def test_the_named_queries(backend: Backend, stored_runs):
    store = backend.store()
    failed = run_named(store, "failed-optimizations").dicts()
    assert [r["failure_reason"] for r in failed] == ["MAX_ITERATIONS", "TARGET_NOT_REACHED"]  # last 7 days, newest first
    algorithms = {r["algorithm"]: r for r in run_named(store, "algorithm-comparison").dicts()}
    assert algorithms["Nelder-Mead"]["runs"] == 4 and float(algorithms["Nelder-Mead"]["success_rate_pct"]) == 50.0
    assert float(algorithms["L-BFGS-B"]["avg_iterations"]) == 11.0
    trends = run_named(store, "parameter-trends").dicts()
    assert {r["parameter_name"] for r in trends} == {"merit_rate", "cola_rate"}
    assert sum(r["runs"] for r in trends if r["parameter_name"] == "cola_rate") == 3  # the converged runs
