import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import optimize

from planwise_monitoring import MonitoringResource
from planwise_monitoring.recording import optimization as tracking
from planwise_monitoring.recording.optimization import IterationChunk, OptimizationRun


def bowl(x):
    return float((x[0] - 0.5) ** 2 + (x[1] + 1.0) ** 2)


def minimize_tracked(monitoring: MonitoringResource, fun=bowl, method="Nelder-Mead", max_iterations=200,
                     tolerance=None, x0=None, **kwargs):
    """scipy's minimize under the tracker, counting its callbacks ourselves."""
    calls = []
    with monitoring.optimization("merit_calibration", algorithm=method, target={"growth_rate": 0.03},
                                 max_iterations=max_iterations, initial_params=x0 or {"merit": 1.0, "cola": 2.0},
                                 tolerance=tolerance) as opt:
        def callback(intermediate_result):
            calls.append(intermediate_result)
            opt.scipy_callback(intermediate_result)

        result = optimize.minimize(fun, opt.x0, method=method, callback=callback,
                                   options={} if method == "TNC" else {"maxiter": max_iterations}, **kwargs)
        opt.finish(result)
    assert monitoring.flush(10)
    return opt, result, calls


def stored(monitoring: MonitoringResource, table: str):
    df = monitoring.get_store().read_table(table)
    return df.sort_values("iteration", ignore_index=True) if table == "mon_optimization_iterations" else df


def test_every_callback_is_an_iteration_and_the_run_matches_scipys_result(monitoring):
    _, result, calls = minimize_tracked(monitoring, tolerance=1e-6)
    runs, iterations = stored(monitoring, "mon_optimization_runs"), stored(monitoring, "mon_optimization_iterations")
    assert len(iterations) == len(calls) > 10
    assert list(iterations["iteration"]) == list(range(1, len(calls) + 1))
    assert list(iterations["objective_value"]) == [c.fun for c in calls]
    assert json.loads(iterations["parameter_values"].iloc[-1]) == calls[-1].x.tolist()
    [run] = runs.to_dict("records")
    assert (run["iterations"], run["function_evaluations"]) == (result.nit, result.nfev)
    assert run["objective_value"] == result.fun and run["optimizer_message"] == result.message
    assert run["converged"] == bool(result.success) and run["status"] == "CONVERGED" and run["failure_reason"] is None
    assert json.loads(run["target"]) == {"growth_rate": 0.03} and run["max_iterations"] == 200
    parameters = stored(monitoring, "mon_optimization_parameters").set_index("parameter_name")
    assert parameters.loc["merit", "final_value"] == result.x[0] and parameters.loc["cola", "initial_value"] == 2.0
    assert run["duration_seconds"] > 0 and run["finished_at"] > run["started_at"]


def test_a_converged_run_logs_its_parameter_changes_to_the_audit_trail(monitoring):
    opt, result, _ = minimize_tracked(monitoring)
    changes = stored(monitoring, "mon_parameter_changes").sort_values("parameter_name")
    assert list(changes["parameter_name"]) == ["cola", "merit"]
    assert list(changes["new_value"]) == [result.x[1], result.x[0]] and list(changes["old_value"]) == [2.0, 1.0]
    assert set(changes["change_source"]) == {"optimization"} and set(changes["optimization_target"]) == {0.03}
    assert {str(s) for s in changes["session_id"]} == {opt.optimization_id}
    assert monitoring.get_store().verify_audit().ok


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"tolerance": 1e-12, "fun": lambda x: bowl(x) + 1.0}, "TARGET_NOT_REACHED"),  # the best is 1.0: unreachable
    ({"max_iterations": 5}, "MAX_ITERATIONS"),
    ({"fun": lambda x: math.nan}, "NON_FINITE"),
])
def test_a_run_that_does_not_converge_says_why_and_changes_no_parameter(monitoring, kwargs, reason):
    minimize_tracked(monitoring, **kwargs)
    [run] = stored(monitoring, "mon_optimization_runs").to_dict("records")
    assert (run["status"], run["converged"], run["failure_reason"]) == ("NOT_CONVERGED", False, reason)
    assert stored(monitoring, "mon_parameter_changes").empty


def test_an_exception_in_the_block_is_recorded_and_raised_unchanged(monitoring):
    error = ZeroDivisionError("the simulation diverged")

    def explode(x):
        if x[0] > 1.05:
            raise error
        return bowl(x)

    with pytest.raises(ZeroDivisionError) as raised:
        minimize_tracked(monitoring, fun=explode, x0={"merit": 1.0, "cola": 2.0})
    assert raised.value is error
    assert monitoring.flush(10)
    [run] = stored(monitoring, "mon_optimization_runs").to_dict("records")
    assert (run["status"], run["failure_reason"], run["error_class"]) == ("FAILED", "EXCEPTION", "ZeroDivisionError")
    assert run["error_message"] == "the simulation diverged"
    assert stored(monitoring, "mon_parameter_changes").empty


def test_a_block_left_without_finish_is_not_finished(monitoring):
    with monitoring.optimization("manual", algorithm="grid", initial_params=[0.1, 0.2],
                                 param_names=["hire_rate", "cola"]) as opt:
        for i, rate in enumerate([0.1, 0.2, 0.3], start=1):
            opt.iteration(i, np.array([rate, 0.2]), objective=rate, gradient=np.array([3.0, 4.0]))
    assert monitoring.flush(10)
    [run] = stored(monitoring, "mon_optimization_runs").to_dict("records")
    assert run["failure_reason"] == "NOT_FINISHED" and run["iterations"] == 3 and run["objective_value"] == 0.3
    iterations = stored(monitoring, "mon_optimization_iterations")
    assert set(iterations["gradient_norm"]) == {5.0}
    parameters = stored(monitoring, "mon_optimization_parameters").set_index("parameter_name")
    assert parameters.loc["hire_rate", "final_value"] == 0.3  # the last iteration's


def test_methods_that_pass_only_xk_are_tracked_without_an_objective(monitoring):
    _, result, calls = minimize_tracked(monitoring, method="TNC", bounds=[(-2, 2), (-2, 2)])
    iterations = stored(monitoring, "mon_optimization_iterations")
    assert len(iterations) == len(calls) > 0 and iterations["objective_value"].isna().all()
    [run] = stored(monitoring, "mon_optimization_runs").to_dict("records")
    assert run["objective_value"] == result.fun


def test_iterations_go_to_the_spool_in_chunks_while_the_optimizer_runs(monitoring):
    n = tracking.CHUNK_ITERATIONS + 10
    with monitoring.optimization("long", algorithm="custom", initial_params=[0.0]) as opt:
        for i in range(1, n + 1):
            opt.iteration(i, [i / n], objective=1.0 / i)
        store = monitoring.get_store()
        # the first thousand are already out of memory: in the spool or in the database
        assert len(opt._iterations) == 10
        assert store.spool.count() + (len(store.read_table("mon_optimization_iterations")) if store.exists() else 0) >= 1
        opt.finish(converged=True, final_params=[1.0], objective=1.0 / n)
    assert monitoring.flush(10)
    iterations = stored(monitoring, "mon_optimization_iterations")
    assert sorted(iterations["iteration"]) == list(range(1, n + 1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_iterations": 0}, "max_iterations"),
    ({"initial_params": {"a": 1.0}, "param_names": ["b"]}, "param_names"),
    ({"initial_params": [1.0, 2.0], "param_names": ["a"]}, "param_names"),
    ({"target": {"growth": "high"}}, "target"),
    ({"tolerance": -1}, "tolerance"),
    ({"algorithm": ""}, "algorithm"),
])
def test_bad_arguments_fail_at_once_with_a_clear_error(monitoring, kwargs, message):
    arguments = {"algorithm": "Nelder-Mead", **kwargs}
    with pytest.raises(ValueError, match=message):
        monitoring.optimization("calibration", **arguments)


def test_records_read_back_from_the_spool_strictly(monitoring):
    opt, _, _ = minimize_tracked(monitoring)
    run = opt.run
    assert OptimizationRun.from_json(run.to_json()) == run
    chunk = IterationChunk(run.optimization_id, ("a",), ((1, 1.5, 0.25, (0.5,), None),))
    assert IterationChunk.from_json(chunk.to_json()) == chunk
    data = json.loads(run.to_json())
    for change, problem in [({"iterations": "7"}, "iterations"), ({"surprise": 1}, "surprise"),
                            ({"optimization_id": "nope"}, "UUID|badly formed"), ({"status": "MAYBE"}, "status"),
                            ({"duration_seconds": -1.0}, "negative")]:
        with pytest.raises(ValueError, match=problem):
            OptimizationRun.from_json(json.dumps({**data, **change}))
    with pytest.raises(ValueError):
        IterationChunk.from_json(dataclasses.replace(chunk, iterations=()).to_json())


def test_the_finished_run_is_an_event_of_the_structured_log(tmp_path):
    log_path = tmp_path / "events.jsonl"
    monitoring = MonitoringResource(database_path=str(tmp_path / "m.duckdb"), json_log_path=str(log_path))
    minimize_tracked(monitoring, max_iterations=5)
    monitoring.get_event_log().close()
    [event] = [e for e in map(json.loads, log_path.read_text().splitlines()) if e["event"] == "optimization_finished"]
    assert (event["level"], event["fields"]["failure_reason"], event["component"]) == ("WARNING", "MAX_ITERATIONS",
                                                                              "merit_calibration")
