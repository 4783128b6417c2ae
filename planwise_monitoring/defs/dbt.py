"""Monitoring a dbt build on DuckDB: one record per dbt node it builds, from dbt's own per-node timings.

Inside a ``@dbt_assets`` function decorated with ``@monitor_performance``:

    @dbt_assets(manifest=project.manifest_path, partitions_def=years)
    @monitor_performance("FULL_SIMULATION", component_name="multi_year_simulation")
    def simulation(context: AssetExecutionContext, dbt: DbtCliResource, monitoring: MonitoringResource):
        yield from monitored_dbt_build(context, dbt, monitoring, database_path="simulation.duckdb",
                                       dbt_vars={"simulation_year": int(context.partition_key)})

The step's own record is the whole invocation (the year's total). Each model, seed and snapshot
becomes a component record: dbt's execution time for the node, the rows it produced, and
``component_type`` from the node's ``meta`` (else ``DBT_MODEL``, ``DBT_SEED``, ``DBT_SNAPSHOT``),
so each materialization carries, and is judged on, its own figures. The dbt subprocess runs inside
the step's process tree, so its peak memory is the step's peak and is attributed to every node of
the invocation; CPU seconds are shared among the nodes in proportion to their duration (dbt does
not report either per node).

Row counts are our own read-only count after dbt exits, not dagster-dbt's ``fetch_row_counts()``:
that counts whole tables only (a node's record wants the rows of the simulated year), skips views,
queries the catalog the manifest was parsed against (DuckDB names the catalog after the file, so
a database file moved or renamed since ``dbt parse`` fails with an error per node), and loads the
dbt adapter in the step's process (4-6 s more per build, against milliseconds for ours).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
from dagster import AssetExecutionContext, Output

from ..recording.measure import ComponentTiming, current_meter
from ..recording.records import FAILED, SUCCESS
from ..redaction import redact
from .resource import MonitoringResource

DEFAULT_COMPONENT_TYPE = "DBT_MODEL"
# The nodes a build materializes as assets, and their component type when their meta names none
# (a model's comes from the caller, DEFAULT_COMPONENT_TYPE by default).
NODE_COMPONENT_TYPES = {"seed": "DBT_SEED", "snapshot": "DBT_SNAPSHOT"}


def model_timings(run_results: Mapping[str, Any], manifest: Mapping[str, Any],
                  row_counts: Mapping[str, int] | None = None,
                  output_names: Mapping[str, str] | None = None,
                  default_component_type: str = DEFAULT_COMPONENT_TYPE) -> list[ComponentTiming]:
    """The models, seeds and snapshots of a run_results.json as components (skipped ones are left out).

        manifest = {"nodes": {"seed.p.s": {"name": "s", "resource_type": "seed"}}}
        run_results = {"results": [{"unique_id": "seed.p.s", "status": "success", "execution_time": 0.2}]}
        [seed] = model_timings(run_results, manifest, row_counts={"seed.p.s": 3})
        assert (seed.component_name, seed.component_type, seed.output_records) == ("s", "DBT_SEED", 3)
    """
    row_counts = row_counts or {}
    output_names = output_names or {}
    types = {"model": default_component_type, **NODE_COMPONENT_TYPES}
    timings = []
    for result in run_results.get("results", []):
        unique_id = result["unique_id"]
        node = manifest["nodes"].get(unique_id)
        if not node or node.get("resource_type") not in types or result["status"] == "skipped":
            continue
        meta = {**(node.get("config", {}).get("meta") or {}), **(node.get("meta") or {})}
        failed = result["status"] not in ("success", "pass")
        timings.append(ComponentTiming(
            component_name=node["name"],
            component_type=str(meta.get("component_type") or types[node["resource_type"]]),
            duration_seconds=float(result.get("execution_time") or 0.0),
            started_at=_started_at(result),
            output_records=None if failed else row_counts.get(unique_id),
            status=FAILED if failed else SUCCESS,
            error_class=f"dbt.{result['status']}" if failed else None,
            error_message=result.get("message") if failed else None,
            output_name=output_names.get(unique_id),
        ))
    return timings


def _started_at(result: Mapping[str, Any]) -> datetime | None:
    starts = [t["started_at"] for t in result.get("timing", []) if t.get("started_at")]
    if not starts:
        return None
    started = datetime.fromisoformat(min(starts).replace("Z", "+00:00"))
    return started.astimezone(UTC).replace(tzinfo=None)


def count_rows(database_path: str, relations: Mapping[str, str], year: int | None,
               year_column: str = "simulation_year") -> tuple[dict[str, int], dict[str, int]]:
    """Rows each relation holds in all, and rows for ``year`` where it has a ``year_column``
    (otherwise all its rows). Read after dbt has exited, through a read-only connection."""
    totals: dict[str, int] = {}
    of_year: dict[str, int] = {}
    if not relations:
        return totals, of_year
    with duckdb.connect(database_path, read_only=True) as conn:
        for unique_id, relation in relations.items():
            totals[unique_id] = _count(conn, f"SELECT count(*) FROM {relation}")
            columns = {r[0] for r in conn.execute(f"DESCRIBE {relation}").fetchall()}
            if year is not None and year_column in columns:
                of_year[unique_id] = _count(conn, f'SELECT count(*) FROM {relation} WHERE "{year_column}" = ?', year)
            else:
                of_year[unique_id] = totals[unique_id]
    return totals, of_year


def _count(conn: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> int:
    row = conn.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


def monitored_dbt_build(context: AssetExecutionContext, dbt: Any, monitoring: MonitoringResource, *,
                        database_path: str, dbt_vars: Mapping[str, Any] | None = None,
                        args: Sequence[str] = ("build",), year_column: str = "simulation_year",
                        default_component_type: str = DEFAULT_COMPONENT_TYPE) -> Iterator[Any]:
    """Run ``dbt <args>`` through ``dbt`` (a ``DbtCliResource``), report each model, seed and
    snapshot to the monitored step, and yield the invocation's events with ``dagster/row_count``
    (the relation's rows in all) on each node it built.

        @dbt_assets(manifest=project.manifest_path, partitions_def=years)
        @monitor_performance("FULL_SIMULATION", component_name="multi_year_simulation")
        def simulation(context: AssetExecutionContext, dbt: DbtCliResource, monitoring: MonitoringResource):
            yield from monitored_dbt_build(context, dbt, monitoring, database_path="simulation.duckdb",
                                           dbt_vars={"simulation_year": int(context.partition_key)})

    Events of nodes that succeeded are yielded even when dbt fails, then dbt's error is raised.
    """
    cli_args = [*args]
    if dbt_vars:
        cli_args += ["--vars", json.dumps(dict(dbt_vars))]
    invocation = dbt.cli(cli_args, context=context, raise_on_error=False)
    events = list(invocation.stream())
    totals: dict[str, int] = {}
    meter = current_meter()
    try:  # monitoring must not mask dbt's own outcome
        with meter.overhead() if meter else contextlib.nullcontext():
            totals = _report_models(invocation, events, monitoring, dbt_vars, database_path, year_column,
                                    default_component_type)
    except Exception as exc:
        context.log.warning(f"planwise-monitoring: could not record the dbt nodes: {type(exc).__name__}: "
                            f"{redact(str(exc))}")
    for event in events:
        unique_id = _unique_id(event)
        if unique_id in totals:
            event = event.with_metadata({**event.metadata, "dagster/row_count": totals[unique_id]})
        yield event
    error = invocation.get_error()
    if error is not None:
        raise error


def _report_models(invocation: Any, events: list[Any], monitoring: MonitoringResource,
                   dbt_vars: Mapping[str, Any] | None, database_path: str, year_column: str,
                   default_component_type: str) -> dict[str, int]:
    output_names = {unique_id: e.output_name for e in events if (unique_id := _unique_id(e)) is not None}
    run_results = invocation.get_artifact("run_results.json")
    manifest = invocation.manifest
    # schema.alias, without the catalog: DuckDB names the catalog after the database file, which
    # may differ from the one the manifest was parsed against
    built = {
        r["unique_id"]: f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        for r in run_results.get("results", [])
        if r["status"] == "success"
        and (node := manifest["nodes"].get(r["unique_id"], {})).get("resource_type") in ("model", *NODE_COMPONENT_TYPES)
    }
    year = (dbt_vars or {}).get("simulation_year")
    totals, of_year = count_rows(database_path, built, int(year) if year is not None else None, year_column)
    if current_meter() is None:  # monitoring turned off: the row counts still go on the events
        return totals
    for timing in model_timings(run_results, manifest, of_year, output_names, default_component_type):
        monitoring.record_component(timing)
    # the invocation's own record counts what this build produced, not what the tables hold in all
    monitoring.set_record_counts(output_records=sum(of_year.values()))
    return totals


def _unique_id(event: Any) -> str | None:
    """The dbt node an Output of dagster-dbt stands for (its ``unique_id`` metadata)."""
    value = event.metadata.get("unique_id") if isinstance(event, Output) else None
    return str(value.value) if value is not None else None
