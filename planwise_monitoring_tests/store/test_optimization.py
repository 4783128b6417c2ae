"""Optimization runs in the store, on both backends: idempotent, durable through the spool, concurrent."""

from __future__ import annotations

import logging
import multiprocessing
import socket

import pytest
from scipy import optimize

from planwise_monitoring import MonitoringResource
from planwise_monitoring.recording.optimization import IterationChunk, OptimizationRun

from ..factories import make_optimization_run
from .backends import Backend


def chunk(run: OptimizationRun, first: int, n: int) -> IterationChunk:
    return IterationChunk(run.optimization_id, ("merit_rate", "cola_rate"),
                          tuple((i, 1.7e9 + i, 1.0 / i, (0.03 + i / 1e4, 0.02), None) for i in range(first, first + n)))


def counts(backend: Backend) -> dict[str, int]:
    with backend.raw() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("mon_optimization_runs", "mon_optimization_parameters", "mon_optimization_iterations",
                          "mon_parameter_changes")}


def test_runs_and_iterations_are_stored_once_however_often_they_arrive(backend: Backend):
    store = backend.store()
    run = make_optimization_run()
    items = [run, chunk(run, 1, 1000), chunk(run, 1001, 5)]
    assert store.write(items) == 1 + 1005
    for item in items:  # a replayed spool: every file again
        store.spool.put(item.spool_id, item.to_json())
    assert store.replay_spool() == 0 and store.write(items) == 0
    assert counts(backend) == {"mon_optimization_runs": 1, "mon_optimization_parameters": 2,
                               "mon_optimization_iterations": 1005, "mon_parameter_changes": 0}
    [row] = store.read_table("mon_optimization_runs").to_dict("records")
    assert row["finished_at"] == run.finished_at and row["target"] == run.target and row["converged"] is True


def test_a_spooled_file_that_is_not_a_record_is_set_aside_and_the_others_stored(backend: Backend):
    store = backend.store()
    run = make_optimization_run()
    store.spool.put(run.spool_id, run.to_json())
    store.spool.put("broken", run.to_json().replace('"iterations":40', '"iterations":"forty"'))
    store.spool.put("unknown", '{"x":1,"kind":"horoscope"}')
    assert store.replay_spool() == 1
    assert store.spool.quarantined_count() == 2 and store.spool.count() == 0


def _optimize(target: str, worker: int, runs: int) -> None:
    monitoring = (MonitoringResource(database_url=target) if target.startswith("postgresql")
                  else MonitoringResource(database_path=target, lock_timeout_seconds=10))
    for r in range(runs):
        with monitoring.optimization(f"calibration-{worker}", algorithm="Nelder-Mead", user=f"worker-{worker}",
                                     initial_params={"merit_rate": 0.5 + r, "cola_rate": 0.1}) as opt:
            result = optimize.minimize(lambda x: (x[0] - 0.03) ** 2 + (x[1] - 0.02) ** 2, opt.x0,
                                       method="Nelder-Mead", callback=opt.scipy_callback)
            opt.finish(result)
        monitoring.log_parameter_change("hire_rate", 0.1, 0.1 + worker / 100, user=f"worker-{worker}",
                                        reason=f"run {r}")
    assert monitoring.flush(60)


def test_four_processes_optimizing_at_once_lose_nothing_and_keep_one_chain(backend: Backend):
    store = backend.store()
    store.write([])  # the schema, before the processes race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_optimize, args=(backend.target, w, 3)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * 4
    assert store.replay_spool() == 0  # nothing was left behind
    runs = store.read_table("mon_optimization_runs")
    assert len(runs) == 12 and set(runs["user_name"]) == {f"worker-{w}" for w in range(4)}
    iterations = store.read_table("mon_optimization_iterations")
    assert iterations.groupby("optimization_id")["iteration"].max().sort_index().tolist() == \
        iterations.groupby("optimization_id").size().sort_index().tolist()  # no gaps, no repeats
    # each converged run changed two parameters, and each run was followed by one manual change
    assert counts(backend)["mon_parameter_changes"] == 12 * 2 + 12
    verdict = store.verify_audit()
    assert verdict.ok and verdict.rows == 36, str(verdict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_store_delays_the_records_but_loses_none(backend: Backend, tmp_path, caplog):
    spool = str(tmp_path / "spool")
    if backend.is_postgres:
        down = MonitoringResource(database_url=f"postgresql://nobody@127.0.0.1:{_free_port()}/none",
                                  spool_dir=spool, lock_timeout_seconds=0.5)
    else:  # a directory where the DuckDB file should be: it cannot be opened
        (tmp_path / "blocked.duckdb").mkdir()
        down = MonitoringResource(database_path=str(tmp_path / "blocked.duckdb"), spool_dir=spool,
                                  lock_timeout_seconds=0.5)
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        with down.optimization("calibration", algorithm="Nelder-Mead", initial_params=[1.0]) as opt:
            opt.finish(optimize.minimize(lambda x: (x[0] - 2) ** 2, opt.x0, method="Nelder-Mead",
                                         callback=opt.scipy_callback))
        change_id = down.log_parameter_change("cola_rate", 0.02, 0.03, user="ana")
        assert not down.flush(1)
    assert "spooled" in caplog.text or "wait in" in caplog.text
    up = backend.store(spool_dir=spool)
    assert up.replay_spool() > 0
    assert counts(backend)["mon_optimization_runs"] == 1
    [change] = up.read_table("mon_parameter_changes").query("parameter_name == 'cola_rate'").to_dict("records")
    assert str(change["change_id"]) == change_id and up.verify_audit().ok


@pytest.mark.parametrize("bad", [{"change_source": "gut feeling"}, {"user": ""}])
def test_a_bad_parameter_change_fails_at_once_and_stores_nothing(backend: Backend, bad):
    monitoring = backend.resource()
    arguments = {"change_source": "manual", "user": "ana", **bad}
    with pytest.raises(ValueError):
        monitoring.log_parameter_change("cola_rate", 0.02, 0.03, **arguments)
    assert monitoring.flush(5)
    assert not backend.store().exists() or counts(backend)["mon_parameter_changes"] == 0
