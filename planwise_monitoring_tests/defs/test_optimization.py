"""Optimization runs inside real Dagster assets, and the sensor that alerts on them, on both backends."""


import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    build_sensor_context,
    materialize,
)
from scipy import optimize

from planwise_monitoring import MonitoringResource, build_optimization_sensor
from planwise_monitoring.alerting.policy import parse_alert_config
from planwise_monitoring.defs.resource import USER_TAG

from ..store.backends import BACKENDS, Backend, open_backend

years = StaticPartitionsDefinition(["2025", "2026"])
PLAN = {"target": 0.03, "explode": False}


class SimulationDiverged(RuntimeError):
    pass


def growth(params) -> float:
    """A reduced workforce model: growth from hire and termination rates (hires capped at 20 %)."""
    hire, termination = params
    return min(max(hire, 0.0), 0.2) - max(termination, 0.0)


@asset(partitions_def=years)
def calibration(context: AssetExecutionContext, monitoring: MonitoringResource) -> None:
    def objective(x):
        if PLAN["explode"]:
            raise SimulationDiverged("the simulation diverged at hire_rate=" + str(x[0]))
        return (growth(x) - PLAN["target"]) ** 2

    with monitoring.optimization("hire_calibration", algorithm="Nelder-Mead", target={"growth_rate": PLAN["target"]},
                                 max_iterations=400, initial_params={"hire_rate": 0.1, "termination_rate": 0.12},
                                 tolerance=1e-10, fiscal_year=int(context.partition_key)) as opt:
        result = optimize.minimize(objective, opt.x0, method="Nelder-Mead", callback=opt.scipy_callback,
                                   options={"maxiter": 400, "xatol": 1e-8, "fatol": 1e-14})
        opt.finish(result)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_backend(request, tmp_path) as b:
        yield b


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    return tmp_path / "alerts.jsonl"


def run(monitoring: MonitoringResource, instance: DagsterInstance, target: float, explode: bool = False,
        year: str = "2026"):
    PLAN.update(target=target, explode=explode)
    return materialize([calibration], partition_key=year, resources={"monitoring": monitoring}, instance=instance,
                       raise_on_error=False, tags={USER_TAG: "ana"})


def tick(sensor, monitoring: MonitoringResource, instance: DagsterInstance, cursor: str | None):
    with build_sensor_context(instance=instance, cursor=cursor, resources={"monitoring": monitoring}) as context:
        return sensor.evaluate_tick(context)


def sent(alerts_file: Path) -> list[dict]:
    return [json.loads(line) for line in alerts_file.read_text().splitlines()] if alerts_file.exists() else []


def test_a_failing_optimization_in_an_asset_keeps_its_exception_and_is_recorded(backend: Backend):
    monitoring = backend.resource()
    with DagsterInstance.ephemeral() as instance:
        result = run(monitoring, instance, 0.03, explode=True)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error.cause is None or "SimulationDiverged" in str(error)
    assert "SimulationDiverged" in str(error) and "the simulation diverged at hire_rate=0.1" in str(error)
    [row] = backend.store().read_table("mon_optimization_runs").to_dict("records")
    assert (row["status"], row["failure_reason"]) == ("FAILED", "EXCEPTION")
    assert row["error_class"].endswith("SimulationDiverged")
    assert (row["dagster_run_id"], row["asset_key"], row["partition_key"], row["user_name"]) == (
        result.run_id, "calibration", "2026", "ana")


def test_a_calibrated_asset_records_its_run_and_audits_its_changes(backend: Backend):
    monitoring = backend.resource()
    with DagsterInstance.ephemeral() as instance:
        assert run(monitoring, instance, 0.03).success
    store = backend.store()
    [row] = store.read_table("mon_optimization_runs").to_dict("records")
    assert row["converged"] and row["asset_key"] == "calibration"
    changes = store.read_table("mon_parameter_changes")
    assert set(changes["fiscal_year"]) == {2026} and set(changes["dagster_run_id"]) == {row["dagster_run_id"]}
    assert set(changes["user_name"]) == {"ana"} and store.verify_audit().ok


def test_alerts_one_error_per_failure_type_per_hour_and_a_warning_for_an_extreme_parameter(
        backend: Backend, alerts_file: Path):
    monitoring = backend.resource()
    config = parse_alert_config({"channels": {"file": {"type": "file", "path": str(alerts_file)}},
                                 "default_channels": ["file"]}, "test alerts")
    sensor = build_optimization_sensor(alert_config=config, parameter_bounds={"hire_rate": (0.0, 0.15)})
    with DagsterInstance.ephemeral() as instance:
        assert run(monitoring, instance, 0.5).success  # growth above 8 % is out of reach: not converged
        cursor = tick(sensor, monitoring, instance, None).cursor
        # the unreachable target also ends with hire_rate at its 20 % cap or above, beyond the 15 % bound
        error, warning = sorted(sent(alerts_file), key=lambda a: a["severity"])
        assert (error["alert_type"], error["severity"]) == ("OPTIMIZATION_NOT_CONVERGED", "ERROR")
        assert error["component_name"] == "hire_calibration" and "TARGET_NOT_REACHED" in error["title"]
        assert (warning["alert_type"], warning["severity"]) == ("PARAMETER_EXTREME", "WARNING")
        for _ in range(2):
            assert run(monitoring, instance, 0.5, year="2025").success
        cursor = tick(sensor, monitoring, instance, cursor).cursor
        assert tick(sensor, monitoring, instance, cursor).cursor == cursor  # judged once
    assert len(sent(alerts_file)) == 2  # nothing more was sent
    alerts = backend.store().alerts(limit=100)
    by_type = alerts.groupby(["alert_type", "status"]).size().to_dict()
    assert by_type == {("OPTIMIZATION_NOT_CONVERGED", "sent"): 1, ("OPTIMIZATION_NOT_CONVERGED", "suppressed"): 2,
                       ("PARAMETER_EXTREME", "sent"): 1, ("PARAMETER_EXTREME", "suppressed"): 2}


def test_an_extreme_parameter_of_a_converged_run_is_one_warning(backend: Backend, alerts_file: Path):
    monitoring = backend.resource()
    config = parse_alert_config({"channels": {"file": {"type": "file", "path": str(alerts_file)}},
                                 "default_channels": ["file"]}, "test alerts")
    sensor = build_optimization_sensor(alert_config=config, parameter_bounds={"termination_rate": (None, 0.05)})
    with DagsterInstance.ephemeral() as instance:
        assert run(monitoring, instance, 0.03).success
        tick(sensor, monitoring, instance, None)
    [warning] = sent(alerts_file)
    assert (warning["alert_type"], warning["severity"]) == ("PARAMETER_EXTREME", "WARNING")
    assert "termination_rate" in warning["message"]


def test_a_run_that_converges_slowly_is_a_warning(backend: Backend, alerts_file: Path):
    monitoring = backend.resource()
    config = parse_alert_config({"channels": {"file": {"type": "file", "path": str(alerts_file)}},
                                 "default_channels": ["file"]}, "test alerts")
    sensor = build_optimization_sensor(alert_config=config, iteration_warning=5)
    with DagsterInstance.ephemeral() as instance:
        assert run(monitoring, instance, 0.03).success
        tick(sensor, monitoring, instance, None)
    [warning] = sent(alerts_file)
    assert (warning["alert_type"], warning["severity"]) == ("OPTIMIZATION_SLOW", "WARNING")


def test_bad_sensor_arguments_fail_at_definitions_load():
    with pytest.raises(ValueError, match="hire_rate"):
        build_optimization_sensor(parameter_bounds={"hire_rate": (0.2, 0.1)})
    with pytest.raises(ValueError, match="iteration_warning"):
        build_optimization_sensor(iteration_warning=0)
