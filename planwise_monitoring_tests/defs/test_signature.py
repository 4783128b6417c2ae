"""What Dagster sees of a monitored asset and of a sensor given the resource: pinned here, since
Dagster decides what to pass (context, inputs, resources) from the signature alone."""

import inspect
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    RunFailureSensorContext,
    asset,
    run_failure_sensor,
)

from planwise_monitoring import MonitoringResource, monitor_performance
from planwise_monitoring.defs.metadata import with_metadata
from planwise_monitoring.defs.resource import with_resource_parameter

P = inspect.Parameter


def seen(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.annotation) for p in inspect.signature(fn).parameters.values()]


def test_context_is_added_first_and_the_resource_keyword_only_last():
    def scd_workforce_state(employees: pd.DataFrame, year_config: int = 2025): ...

    assert seen(monitor_performance("SCD")(scd_workforce_state)) == [
        ("context", P.POSITIONAL_OR_KEYWORD, AssetExecutionContext),
        ("employees", P.POSITIONAL_OR_KEYWORD, pd.DataFrame),
        ("year_config", P.POSITIONAL_OR_KEYWORD, int),
        ("monitoring", P.KEYWORD_ONLY, MonitoringResource),
    ]


def test_what_the_asset_declares_is_kept_as_declared():
    def scd(_context: AssetExecutionContext, employees: pd.DataFrame, *, perf: MonitoringResource): ...

    assert seen(monitor_performance("SCD", resource_key="perf")(scd)) == [
        ("_context", P.POSITIONAL_OR_KEYWORD, AssetExecutionContext),
        ("employees", P.POSITIONAL_OR_KEYWORD, pd.DataFrame),
        ("perf", P.KEYWORD_ONLY, MonitoringResource),
    ]


def test_a_var_keyword_is_not_shown_to_dagster():
    def scd(context: AssetExecutionContext, **kwargs: object): ...

    assert seen(monitor_performance("SCD")(scd)) == [
        ("context", P.POSITIONAL_OR_KEYWORD, AssetExecutionContext),
        ("monitoring", P.KEYWORD_ONLY, MonitoringResource),
    ]


def test_the_asset_requires_the_resource_under_its_key():
    @asset
    @monitor_performance("SCD", resource_key="perf")
    def scd_workforce_state(employees: pd.DataFrame) -> pd.DataFrame:
        return employees

    assert scd_workforce_state.required_resource_keys == {"perf", "io_manager"}
    assert set(scd_workforce_state.keys_by_input_name) == {"employees"}  # the resource is not an input
    assert scd_workforce_state.keys_by_input_name["employees"] == AssetKey("employees")


def test_a_sensor_sees_the_same_signature():
    def on_failure(context: RunFailureSensorContext, **resources: MonitoringResource) -> None: ...

    sensor = run_failure_sensor(name="s")(with_resource_parameter(on_failure, RunFailureSensorContext, "perf"))
    assert seen(on_failure) == [("context", P.POSITIONAL_OR_KEYWORD, RunFailureSensorContext),
                                ("perf", P.KEYWORD_ONLY, MonitoringResource)]
    assert sensor.required_resource_keys == {"perf"}  # not also a resource called "resources"


def test_a_materialize_result_keeps_every_field_when_metadata_is_added():
    """with_metadata copies MaterializeResult through its public constructor: if Dagster adds an
    argument, this fails rather than the new field silently vanishing."""
    assert list(inspect.signature(MaterializeResult).parameters) == [
        "asset_key", "metadata", "check_results", "data_version", "tags", "value"]
    original = MaterializeResult(asset_key="a", metadata={"x": 1}, tags={"t": "1"}, value=3)
    copy = with_metadata(original, {"y": 2})
    assert (copy.asset_key, copy.tags, copy.value, copy.check_results, copy.data_version) == \
        (original.asset_key, original.tags, original.value, original.check_results, original.data_version)
    assert set(copy.metadata) == {"y"}


def test_the_package_uses_dagster_through_its_public_api_only():
    """No dagster._core imports (MaterializeResult._replace is covered by the test above)."""
    import ast

    import planwise_monitoring

    root = Path(planwise_monitoring.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._"):
                found.append(f"{path.relative_to(root)}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Import):
                found += [f"{path.relative_to(root)}:{node.lineno} import {a.name}"
                          for a in node.names if a.name.startswith("dagster._")]
    assert found == []
