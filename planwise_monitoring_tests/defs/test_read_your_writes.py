"""A run's records are readable from the store when the run returns: no flush(), no waiting.

The store is read with ``read_performance()`` alone, which never replays the spool, so what it
returns is what the run itself got into DuckDB before returning."""

import logging
import os
from pathlib import Path

import pytest
from dagster import (
    AssetExecutionContext,
    DagsterEventType,
    DagsterInstance,
    asset,
    execute_job,
    instance_for_test,
    materialize,
    reconstructable,
)

from planwise_monitoring import MonitoringResource, monitor_performance

from ..factories import lock_held_by_another_process
from ..parallel_job import get_failing_job, get_parallel_job
from .test_decorator import logged, scd_workforce_state


@asset
@monitor_performance("EVENT_GENERATION")
def hire_events(context: AssetExecutionContext) -> int:
    return 1


@asset(deps=[hire_events])
@monitor_performance("EVENT_GENERATION")
def termination_events(context: AssetExecutionContext) -> int:
    return 2


@asset(deps=[termination_events])
@monitor_performance("SCD")
def broken_snapshot(context: AssetExecutionContext) -> int:
    raise ValueError("snapshot failed")


def test_fifty_runs_in_a_row_each_readable_at_once(db_path: Path, instance: DagsterInstance):
    """The issue: the last step's row was missing right after materialize() returned."""
    monitoring = MonitoringResource(database_path=str(db_path))
    store = monitoring.get_store()
    for i in range(50):
        year = ["2025", "2026", "2027"][i % 3]
        result = materialize([scd_workforce_state], partition_key=year, instance=instance,
                             resources={"monitoring": monitoring})
        assert result.success
        stored = store.read_performance()
        assert len(stored) == i + 1, f"run {i}: {len(stored)} rows"
        assert stored["simulation_run_id"].iloc[-1] == result.run_id


def test_a_run_whose_last_step_fails_has_every_step_readable_at_once(db_path: Path, instance: DagsterInstance):
    monitoring = MonitoringResource(database_path=str(db_path))
    result = materialize([hire_events, termination_events, broken_snapshot], instance=instance,
                         resources={"monitoring": monitoring}, raise_on_error=False)
    assert not result.success
    stored = monitoring.get_store().read_performance().set_index("component_name")
    assert stored["status"].to_dict() == {"hire_events": "SUCCESS", "termination_events": "SUCCESS",
                                          "broken_snapshot": "FAILED"}
    assert set(stored["simulation_run_id"]) == {result.run_id}


def test_the_multiprocess_executor_run_is_readable_when_execute_job_returns(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "monitoring.duckdb"
    monkeypatch.setenv("PLANWISE_TEST_DB", str(db))  # read by parallel_job.py in each step process
    with instance_for_test() as instance:
        result = execute_job(reconstructable(get_parallel_job), instance=instance, tags={"dagster/partition": "2026"})
        assert result.success
        step_pids = {e.dagster_event.pid for e in instance.all_logs(result.run_id)
                     if e.dagster_event and e.dagster_event.event_type is DagsterEventType.STEP_START}
    assert len(step_pids) == 4 and os.getpid() not in step_pids  # each step in a process of its own
    stored = MonitoringResource(database_path=str(db)).get_store().read_performance()
    assert sorted(stored["component_name"]) == [f"events_{i}" for i in range(4)]


def test_a_failed_step_in_its_own_process_is_readable_when_execute_job_returns(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "monitoring.duckdb"
    monkeypatch.setenv("PLANWISE_TEST_DB", str(db))
    with instance_for_test() as instance:
        result = execute_job(reconstructable(get_failing_job), instance=instance, raise_on_error=False)
        assert not result.success
    stored = MonitoringResource(database_path=str(db)).get_store().read_performance().set_index("component_name")
    assert stored["status"].to_dict() == {"snapshot_ok": "SUCCESS", "snapshot_broken": "FAILED"}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_flush_comes_after_the_step_not_inside_it(db_path: Path, instance: DagsterInstance):
    """The run-end flush is the resource's teardown: after STEP_SUCCESS, so never in the step's time."""
    events_logger = logging.getLogger("planwise_monitoring.events")
    capture, level = _Capture(), events_logger.level
    events_logger.addHandler(capture)
    events_logger.setLevel(logging.DEBUG)
    try:
        monitoring = MonitoringResource(database_path=str(db_path), json_log_path=str(db_path.parent / "ev.jsonl"))
        result = materialize([scd_workforce_state], partition_key="2025", instance=instance,
                             resources={"monitoring": monitoring})
    finally:
        events_logger.removeHandler(capture)
        events_logger.setLevel(level)
    assert len(monitoring.get_store().read_performance()) == 1
    [step_success] = [e for e in instance.all_logs(result.run_id)
                      if e.dagster_event and e.dagster_event.event_type is DagsterEventType.STEP_SUCCESS]
    written = [r.created for r in capture.records if r.getMessage() == "records_written"]
    assert written, [r.getMessage() for r in capture.records]
    assert min(written) >= step_success.timestamp


def test_a_locked_database_at_run_end_leaves_the_record_spooled_and_says_so(db_path: Path,
                                                                           instance: DagsterInstance):
    monitoring = MonitoringResource(database_path=str(db_path), lock_timeout_seconds=0.2)
    materialize([scd_workforce_state], partition_key="2025", instance=instance, resources={"monitoring": monitoring})
    with lock_held_by_another_process(db_path):
        result = materialize([scd_workforce_state], partition_key="2026", instance=instance,
                             resources={"monitoring": monitoring})
        assert result.success
        assert "1 record(s) of this process are not in" in logged(instance, result.run_id)
    assert monitoring.flush()
    assert sorted(monitoring.get_store().read_performance()["simulation_year"]) == [2025, 2026]
