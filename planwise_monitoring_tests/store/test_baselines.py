"""Performance baselines (store/baselines.py), on DuckDB and PostgreSQL: the figures against numpy over
the same generated runs, versions, rollbacks, their errors, and two processes updating at once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from planwise_monitoring.recording.records import FAILED, PerformanceRecord
from planwise_monitoring.store import MonitoringStore, StoreError

from ..factories import make_record
from .backends import Backend

COMPONENT = "scd_workforce_state"
KEYS = [(2025, "baseline"), (2026, "baseline"), (2025, "high_growth"), (None, "baseline")]
NOW = datetime(2026, 6, 1, 8, 30)
FIGURES = ["sample_size", "p50_seconds", "p95_seconds", "p99_seconds", "mad_seconds", "mean_seconds",
           "p50_peak_memory_mb", "p95_peak_memory_mb", "first_run_at", "last_run_at", "window_runs"]


def generated_runs(seed: int = 7, per_key: int = 35, component: str = COMPONENT,
                   start: datetime = datetime(2026, 1, 1)) -> list[PerformanceRecord]:
    """``per_key`` runs of the component per (year, scenario), in shuffled order, each ending at its own
    time; about one in five failed (and far slower or faster, so that counting one would show), and
    some without a memory figure."""
    rng = np.random.default_rng(seed)
    records = []
    for k, (year, scenario) in enumerate(KEYS):
        for i in range(per_key):
            failed = rng.random() < 0.2
            seconds = float(rng.choice([0.5, 900.0])) if failed else float(rng.lognormal(3 + k / 4, 0.4))
            memory = None if rng.random() < 0.1 else float(rng.normal(400, 60))
            begins = start + timedelta(minutes=97 * i + 13 * k, seconds=int(rng.integers(0, 50)))
            records.append(make_record(
                component_name=component, simulation_year=year, scenario=scenario,
                partition_key=None if year is None else str(year), execution_start_time=begins,
                execution_time_seconds=seconds, memory_usage_mb=memory,
                **({"status": FAILED, "sla_status": None, "error_class": "KeyError"} if failed else {})))
    return [records[i] for i in rng.permutation(len(records))]


def expected(records: list[PerformanceRecord], runs: int) -> dict[tuple[int | None, str], dict]:
    """The figures computed with numpy: per (year, scenario), the last ``runs`` successful runs by end time."""
    out = {}
    for year, scenario in KEYS:
        mine = sorted((r for r in records if r.status == "SUCCESS" and r.component_name == COMPONENT
                       and r.simulation_year == year and r.scenario == scenario),
                      key=lambda r: r.execution_end_time, reverse=True)[:runs]
        seconds = np.array([r.execution_time_seconds for r in mine])
        memory = np.array([r.memory_usage_mb for r in mine if r.memory_usage_mb is not None])
        p50, p95, p99 = np.percentile(seconds, [50, 95, 99])
        out[(year, scenario)] = {
            "sample_size": len(mine), "p50_seconds": p50, "p95_seconds": p95, "p99_seconds": p99,
            "mad_seconds": float(np.median(np.abs(seconds - np.median(seconds)))), "mean_seconds": seconds.mean(),
            "p50_peak_memory_mb": np.percentile(memory, 50), "p95_peak_memory_mb": np.percentile(memory, 95),
            "first_run_at": min(r.execution_end_time for r in mine),
            "last_run_at": max(r.execution_end_time for r in mine), "window_runs": runs}
    return out


def by_key(rows: list[dict]) -> dict[tuple[int | None, str], dict]:
    return {(r["simulation_year"], r["scenario"]): r for r in rows}


def figures(row: dict) -> dict:
    return {c: row[c] for c in FIGURES}


def matches(row: dict, want: dict) -> bool:
    """The row's figures are numpy's: the numbers to 12 digits (the two compute them in another order),
    the times exactly."""
    got = figures(row)
    numbers = [c for c, v in want.items() if isinstance(v, float)]
    return ({c: got[c] for c in numbers} == pytest.approx({c: want[c] for c in numbers}, rel=1e-12)
            and {c: v for c, v in got.items() if c not in numbers} == {c: v for c, v in want.items() if c not in numbers})


def stored(backend: Backend) -> list[tuple]:
    """Every row of mon_baselines as stored, in a fixed order."""
    with backend.raw() as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT * FROM mon_baselines ORDER BY component_name, version, scenario, simulation_year NULLS FIRST"
        ).fetchall()]


def test_baselines_are_the_percentiles_and_mad_of_the_last_n_successful_runs(backend: Backend):
    store = backend.store()
    records = generated_runs()
    store.write(records + generated_runs(seed=8, component="fct_yearly_events"))
    assert store.update_baselines(COMPONENT, now=NOW, by="ana") == 1
    assert store.update_baselines(COMPONENT, runs=5, now=NOW + timedelta(hours=1), by="ana") == 2
    for version, runs in [(1, 20), (2, 5)]:
        rows = by_key(store.baselines(COMPONENT, version=version).dicts())
        assert set(rows) == set(KEYS)
        for key, want in expected(records, runs).items():
            assert want["sample_size"] == runs  # each key has more successful runs than the window
            got = rows[key]
            assert matches(got, want), (version, key, figures(got), want)
            assert (got["component_name"], got["version"], got["method"], got["created_by"]) == (
                COMPONENT, version, "percentile", "ana")
    assert {r["component_name"] for r in store.baselines().dicts()} == {COMPONENT}  # no other component's


def test_a_window_larger_than_the_history_takes_every_successful_run(backend: Backend):
    store = backend.store()
    records = generated_runs(per_key=6)
    store.write(records)
    store.update_baselines(COMPONENT, runs=1000, now=NOW)
    rows = by_key(store.baselines(COMPONENT).dicts())
    for key, want in expected(records, 1000).items():
        assert matches(rows[key], want) and rows[key]["sample_size"] <= 6


def test_runs_ending_at_the_same_moment_are_ranked_by_their_id(backend: Backend):
    store = backend.store()
    ends = datetime(2026, 2, 1, 12, 0, 30)
    ids_and_seconds = [("aaaaaaaa", 10.0), ("ffffffff", 30.0), ("11111111", 20.0)]
    store.write([make_record(performance_id=f"{prefix}-0000-4000-8000-000000000000", execution_time_seconds=s,
                             execution_start_time=ends - timedelta(seconds=s)) for prefix, s in ids_and_seconds])
    store.update_baselines(COMPONENT, runs=1, now=NOW)  # ffffffff…
    store.update_baselines(COMPONENT, runs=2, now=NOW)  # ffffffff… and aaaaaaaa…
    assert [r["p50_seconds"] for r in store.baselines(COMPONENT, all_versions=True).dicts()] == [20.0, 30.0]


def test_a_new_version_never_changes_the_old_ones(backend: Backend):
    store = backend.store()
    records = generated_runs()
    store.write(records)
    store.update_baselines(COMPONENT, now=NOW)
    first = stored(backend)
    later = generated_runs(seed=9, start=datetime(2026, 3, 1))  # slower runs, later
    store.write(later)
    assert store.update_baselines(COMPONENT, now=NOW + timedelta(days=1)) == 2
    assert stored(backend)[:len(first)] == first and len(stored(backend)) == 2 * len(first)

    current = store.baselines(COMPONENT).dicts()
    assert {r["version"] for r in current} == {2} and len(current) == len(KEYS)
    assert by_key(current)[(2025, "baseline")]["p50_seconds"] == pytest.approx(
        expected(records + later, 20)[(2025, "baseline")]["p50_seconds"], rel=1e-12)
    every = store.baselines(COMPONENT, all_versions=True).dicts()
    assert [r["version"] for r in every] == [2] * len(KEYS) + [1] * len(KEYS)  # newest first
    assert store.baselines("no_such_component").rows == []


def test_the_current_baseline_of_a_year_and_scenario(backend: Backend):
    store = backend.store()
    records = generated_runs()
    store.write(records)
    with store.session(read_only=True) as s:
        assert s.current_baseline(COMPONENT, 2025, "baseline") is None  # none computed yet
    store.update_baselines(COMPONENT, runs=10, now=NOW)
    store.update_baselines(COMPONENT, runs=20, now=NOW)
    with store.session(read_only=True) as s:
        row = s.current_baseline(COMPONENT, 2025, "baseline")
        unpartitioned = s.current_baseline(COMPONENT, None, "baseline")
        assert s.current_baseline(COMPONENT, 2027, "baseline") is None
        assert s.current_baseline(COMPONENT, None, "high_growth") is None
        assert s.current_baseline("fct_yearly_events", 2025, "baseline") is None
    assert row is not None and unpartitioned is not None
    assert (row["version"], row["window_runs"], row["simulation_year"]) == (2, 20, 2025)
    assert matches(row, expected(records, 20)[(2025, "baseline")])
    assert (unpartitioned["simulation_year"], unpartitioned["version"]) == (None, 2)


def test_a_version_is_a_whole_set_so_a_pair_without_runs_left_has_no_current_baseline(backend: Backend):
    store = backend.store()
    store.write([make_record(scenario="old_scenario", execution_start_time=datetime(2020, 1, 1)),
                 make_record(scenario="baseline", execution_start_time=datetime(2026, 1, 1))])
    store.update_baselines(COMPONENT, now=NOW)
    store.prune(timedelta(days=365), now=datetime(2026, 2, 1))  # the 2020 run goes; version 1 keeps its baseline
    store.update_baselines(COMPONENT, now=NOW)
    with store.session(read_only=True) as s:
        assert s.current_baseline(COMPONENT, 2025, "old_scenario") is None
        assert s.current_baseline(COMPONENT, 2025, "baseline") is not None
    assert [(r["version"], r["scenario"]) for r in store.baselines(COMPONENT, all_versions=True).dicts()] == [
        (2, "baseline"), (1, "baseline"), (1, "old_scenario")]


def test_the_current_baseline_of_a_database_no_write_has_migrated_yet(backend: Backend):
    with backend.raw() as conn:  # an older schema: no mon_baselines yet
        conn.execute("CREATE TABLE mon_schema_version (version INTEGER, applied_at TIMESTAMP)")
        conn.execute("INSERT INTO mon_schema_version VALUES (8, now())")
    store = backend.store()
    with store.session(read_only=True) as s:
        assert s.current_baseline(COMPONENT, 2025, "baseline") is None
    assert store.baselines().rows == []


def test_a_rollback_appends_a_copy_of_an_earlier_version(backend: Backend):
    store = backend.store()
    store.write(generated_runs())
    store.update_baselines(COMPONENT, runs=20, now=NOW, by="ana")
    store.update_baselines(COMPONENT, runs=5, now=NOW, by="ana")
    before = stored(backend)
    v1, v2 = (by_key(store.baselines(COMPONENT, version=v).dicts()) for v in (1, 2))
    assert v1 != v2

    rolled_at = datetime(2026, 6, 2, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # 08:00 UTC
    assert store.rollback_baselines(COMPONENT, now=rolled_at, by="ben") == 3  # to the version before the current
    assert stored(backend)[:len(before)] == before  # versions 1 and 2 untouched
    v3 = by_key(store.baselines(COMPONENT).dicts())
    assert {k: figures(r) for k, r in v3.items()} == {k: figures(r) for k, r in v1.items()}
    assert {(r["version"], r["method"], r["created_by"], r["computed_at"]) for r in v3.values()} == {
        (3, "rollback:v1", "ben", datetime(2026, 6, 2, 8, 0))}
    assert {r["baseline_id"] for r in v3.values()}.isdisjoint(r["baseline_id"] for r in v1.values())

    assert store.rollback_baselines(COMPONENT, to_version=2, now=NOW) == 4
    v4 = by_key(store.baselines(COMPONENT).dicts())
    assert {k: figures(r) for k, r in v4.items()} == {k: figures(r) for k, r in v2.items()}
    assert {r["method"] for r in v4.values()} == {"rollback:v2"}
    with store.session(read_only=True) as s:
        row = s.current_baseline(COMPONENT, 2026, "baseline")
        assert row is not None and (row["version"], row["window_runs"]) == (4, 5)


@pytest.mark.parametrize("versions, to_version, message", [
    (0, None, "component 'scd_workforce_state' has no baselines in"),
    (1, None, "has only baseline version 1: no earlier version to roll back to"),
    (2, 2, "baseline version 2 of component 'scd_workforce_state' is the current one already"),
    (2, 3, "component 'scd_workforce_state' has no baseline version 3 (its versions are 1 to 2)"),
    (2, 0, "component 'scd_workforce_state' has no baseline version 0 (its versions are 1 to 2)"),
    (2, -1, "has no baseline version -1"),
], ids=["none", "only-one", "current", "unknown", "zero", "negative"])
def test_a_rollback_without_a_version_to_copy_is_refused(backend: Backend, versions: int, to_version: int | None,
                                                        message: str):
    store = backend.store()
    store.write(generated_runs(per_key=3))
    for _ in range(versions):
        store.update_baselines(COMPONENT, now=NOW)
    before = stored(backend)
    with pytest.raises(StoreError) as refused:
        store.rollback_baselines(COMPONENT, to_version=to_version, now=NOW)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert stored(backend) == before


def test_a_component_without_successful_runs_has_no_baseline(backend: Backend):
    store = backend.store()
    store.write([make_record(component_name="broken", status=FAILED, sla_status=None, error_class="KeyError")])
    for component in ("broken", "never_ran", "x'; DROP TABLE mon_baselines; --"):
        with pytest.raises(StoreError, match=r"no successful runs of component .* nothing to compute a baseline from"):
            store.update_baselines(component, now=NOW)
    with pytest.raises(ValueError, match="at least 1 run"):
        store.update_baselines("broken", runs=0)
    assert stored(backend) == []
    store.write([make_record(component_name="broken")])
    assert store.update_baselines("broken", now=NOW) == 1  # the refused attempts took no version number


def test_a_hostile_component_name_is_a_value_not_sql(backend: Backend):
    name = "x'; DROP TABLE mon_baselines; --"
    store = backend.store()
    store.write([make_record(component_name=name, execution_time_seconds=s) for s in (1.0, 2.0, 4.0)])
    assert store.update_baselines(name, now=NOW, by="'); DELETE FROM mon_baselines; --") == 1
    assert store.update_baselines(name, runs=2, now=NOW) == 2
    assert store.rollback_baselines(name, to_version=1, now=NOW) == 3
    [row] = store.baselines(name).dicts()
    assert (row["component_name"], row["p50_seconds"], row["mad_seconds"], row["method"]) == (
        name, 2.0, 1.0, "rollback:v1")
    assert len(stored(backend)) == 3


def _update_repeatedly(target: str, times: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = MonitoringStore(target, lock_timeout_seconds=120)
    barrier.wait(timeout=120)
    for _ in range(times):
        store.update_baselines(COMPONENT, by=f"process-{multiprocessing.current_process().name}")


def test_processes_updating_at_once_get_distinct_versions(backend: Backend):
    store = backend.store()
    store.write(generated_runs(per_key=40))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_update_repeatedly, args=(backend.target, 4, barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with backend.raw() as conn:
        versions = conn.execute("SELECT version, count(*), count(DISTINCT created_by) FROM mon_baselines "
                                "GROUP BY version ORDER BY version").fetchall()
    assert [tuple(v) for v in versions] == [(v, len(KEYS), 1) for v in range(1, 13)]


def test_postgres_refuses_a_version_computed_twice(postgres: Backend):
    """The guard behind the advisory lock: were two writers ever to compute one version, the second fails."""
    import psycopg

    store = postgres.store()
    store.write(generated_runs(per_key=3))
    store.update_baselines(COMPONENT, now=datetime.now(UTC).replace(tzinfo=None))
    with postgres.raw() as conn:
        for year in (2025, None):
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("INSERT INTO mon_baselines SELECT gen_random_uuid(), component_name, simulation_year, "
                             "scenario, version, computed_at, method, window_runs, sample_size, p50_seconds, "
                             "p95_seconds, p99_seconds, mad_seconds, mean_seconds, p50_peak_memory_mb, "
                             "p95_peak_memory_mb, first_run_at, last_run_at, created_by FROM mon_baselines "
                             "WHERE simulation_year IS NOT DISTINCT FROM ? AND scenario = 'baseline'", [year])
