"""The history columns (year over year, cumulative time) that writing a record derives, on both backends."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from planwise_monitoring.recording.records import FAILED, SUCCESS, PerformanceRecord

from ..factories import make_record
from .backends import Backend

T0 = datetime(2026, 1, 1)


def history(store) -> dict[str, tuple[float | None, float]]:
    df = store.read_performance()
    return {str(r.performance_id): (None if r.year_over_year_change_pct != r.year_over_year_change_pct
                                    else r.year_over_year_change_pct, r.cumulative_execution_time_seconds)
            for r in df.itertuples()}


def ended(minutes: float, **fields) -> PerformanceRecord:
    """A record that ends ``minutes`` after T0 (and took ``execution_time_seconds``)."""
    seconds = fields.pop("execution_time_seconds", 10.0)
    end = T0 + timedelta(minutes=minutes)
    return make_record(execution_start_time=end - timedelta(seconds=seconds), execution_time_seconds=seconds, **fields)


def test_a_late_earlier_year_updates_the_later_years_that_ended_after_it(backend: Backend):
    store = backend.store()
    year_2026 = ended(10, simulation_year=2026, execution_time_seconds=15)
    year_2027 = ended(20, simulation_year=2027, execution_time_seconds=30)
    before_it = ended(1, simulation_year=2027, simulation_id="sim-0", execution_time_seconds=40)
    store.write([year_2026, year_2027, before_it])
    assert history(store)[year_2026.performance_id] == (None, 15)
    # replayed late: 2025 ended before the 2026 and 2027 runs of sim-1, after sim-0's 2027 run
    year_2025 = ended(5, simulation_year=2025, execution_time_seconds=10)
    store.write([year_2025])
    got = history(store)
    assert got[year_2025.performance_id] == (None, 10)
    assert got[year_2026.performance_id] == (pytest.approx(50.0), 25)
    assert got[year_2027.performance_id] == (pytest.approx(100.0), 55)
    assert got[before_it.performance_id] == (None, 40)  # ended before the late row: its history is unchanged


def test_year_over_year_takes_another_simulation_only_when_its_own_has_no_earlier_run(backend: Backend):
    store = backend.store()
    store.write([ended(1, simulation_id="a", simulation_year=2025, execution_time_seconds=10),
                 ended(2, simulation_id="b", simulation_year=2025, execution_time_seconds=20),
                 ended(3, simulation_id="c", simulation_year=2025, execution_time_seconds=30),
                 ended(9, simulation_id="a", simulation_year=2025, execution_time_seconds=99)])  # after a's 2026 run
    a = ended(5, simulation_id="a", simulation_year=2026, execution_time_seconds=11)
    d = ended(6, simulation_id="d", simulation_year=2026, execution_time_seconds=33)
    store.write([a, d])
    got = history(store)
    assert got[a.performance_id][0] == pytest.approx(10.0)  # a's own 2025 run, not c's later one
    assert got[d.performance_id][0] == pytest.approx(10.0)  # d has none: the latest of any simulation (c's)
    assert got[d.performance_id][1] == 33  # nor does any of c's years count in d's cumulative time


def test_a_failed_year_and_a_tie_on_the_end_time(backend: Backend):
    store = backend.store()
    tied = [ended(1, simulation_year=2025, execution_time_seconds=s, performance_id=str(uuid.UUID(int=i)))
            for i, s in ((1, 10.0), (2, 20.0))]
    failed = ended(2, simulation_year=2025, execution_time_seconds=5, status=FAILED, sla_status=None)
    late = ended(3, simulation_year=2026, execution_time_seconds=30)
    store.write([*tied, failed, late])
    assert history(store)[late.performance_id] == (pytest.approx(50.0), 50)  # the tie goes to the larger id


def _reference(records: list[PerformanceRecord]) -> dict[str, tuple[float | None, float]]:
    """The history columns as the comment in store/performance.py defines them, over a finished history."""
    def latest(candidates: list[PerformanceRecord]) -> PerformanceRecord | None:
        return max(candidates, key=lambda r: (r.execution_end_time, r.performance_id), default=None)

    out = {}
    for t in records:
        eligible = [p for p in records if p.status == SUCCESS and p.execution_end_time <= t.execution_end_time]
        previous_year = [p for p in eligible if p.component_name == t.component_name and p.scenario == t.scenario
                         and p.simulation_year == t.simulation_year - 1]
        previous = latest([p for p in previous_year if p.simulation_id == t.simulation_id]) or latest(previous_year)
        yoy = None
        if t.status == SUCCESS and previous is not None and previous.execution_time_seconds > 0:
            yoy = (t.execution_time_seconds - previous.execution_time_seconds) / previous.execution_time_seconds * 100
        own = [p for p in eligible if p.simulation_id == t.simulation_id and p.component_name == t.component_name
               and p.simulation_year < t.simulation_year]
        cumulative = t.execution_time_seconds + sum(
            latest([p for p in own if p.simulation_year == y]).execution_time_seconds  # type: ignore[union-attr]
            for y in {p.simulation_year for p in own})
        out[t.performance_id] = (yoy, cumulative)
    return out


def _simulations(rng: random.Random) -> list[PerformanceRecord]:
    """Simulations of two components in two scenarios, with re-runs, failures and ties on the end time."""
    records = []
    for s in range(6):
        scenario = "baseline" if s % 2 else "high_growth"
        minute = rng.randrange(0, 30)
        for year in range(2025, 2029):
            for component in ("scd_workforce_state", "event_generation"):
                for _ in range(rng.choice((1, 1, 2))):  # a re-run of the year now and then
                    minute += rng.choice((0, 1, 2))  # 0: ties on the end time
                    records.append(ended(minute, simulation_id=f"sim-{s}", scenario=scenario, simulation_year=year,
                                         component_name=component, execution_time_seconds=rng.choice((4.0, 8.0, 12.5)),
                                         **({"status": FAILED, "sla_status": None} if rng.random() < 0.1 else {})))
    return records


def assert_history_is_the_reference(store: Any, records: list[PerformanceRecord]) -> None:
    """Every stored row's year-over-year change and cumulative time are those of _reference."""
    got = history(store)
    want = _reference(records)
    assert set(got) == set(want)
    for performance_id, (yoy, cumulative) in want.items():
        assert got[performance_id] == ((None if yoy is None else pytest.approx(yoy)), pytest.approx(cumulative)), \
            performance_id


def test_any_order_of_arrival_gives_the_history_of_the_finished_store(backend: Backend):
    """Written in shuffled batches (late years among them): every row ends as if written in order."""
    rng = random.Random(7)
    records = _simulations(rng)
    shuffled = records[:]
    rng.shuffle(shuffled)
    store = backend.store()
    for i in range(0, len(shuffled), 7):
        store.write(shuffled[i:i + 7])
    assert_history_is_the_reference(store, records)


def test_concurrent_writers_of_the_same_histories_give_the_history_of_the_finished_store(backend: Backend):
    """Four writers at once (threads, each on its own connection; PostgreSQL lets them interleave),
    each writing its share of the shuffled records in small batches: the rows one writer derived
    without another's uncommitted rows are derived again by whichever derives second."""
    rng = random.Random(11)
    records = _simulations(rng)
    shuffled = records[:]
    rng.shuffle(shuffled)
    store = backend.store(lock_timeout_seconds=30.0)
    store.write([])
    shares = [shuffled[w::4] for w in range(4)]

    def write(share: list[PerformanceRecord]) -> None:
        for i in range(0, len(share), 3):
            store.write(share[i:i + 3])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, shares))
    assert_history_is_the_reference(store, records)
