"""One node of the multi-node tests (``defs/test_multi_node.py``): an OS process of its own, like a
pod, that materializes monitored, year-partitioned assets against the shared Dagster instance
(``DAGSTER_HOME``, on PostgreSQL) and the shared monitoring store (PostgreSQL, the URL in
``PLANWISE_TEST_MONITORING_URL``).

    python -m planwise_monitoring_tests.multi_node_worker --node n0 \\
        --run component_0,component_1@2025 --run broken_component@2026

Each ``--run`` is one ``materialize()`` (one Dagster run) of the named assets for one partition,
tagged with the node and the process id. The last line on stdout is ``RESULT <json>``: per run its
id, whether it succeeded and whether every asset returned what it returns unmonitored.

The test imports this module too, for the asset definitions its sensor is built over.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    materialize,
    mem_io_manager,
)

from planwise_monitoring import MonitoringResource, monitor_performance

YEARS = ("2025", "2026", "2027")
years = StaticPartitionsDefinition(list(YEARS))
NODE_TAG = "test/node"
PID_TAG = "test/pid"
MONITORING_URL_ENV = "PLANWISE_TEST_MONITORING_URL"
# Set for the outage that begins inside a step: the server's port and the monitoring database.
OUTAGE_PORT_ENV = "PLANWISE_TEST_OUTAGE_PORT"
OUTAGE_DATABASE_ENV = "PLANWISE_TEST_OUTAGE_DATABASE"
FAILURE_MESSAGE = "broken_component failed on purpose"


def expected_frame(name: str, year: str) -> pd.DataFrame:
    """What the asset ``name`` returns for ``year``, monitored or not: a few rows, distinct per asset and year."""
    index = int(name.rsplit("_", 1)[-1]) if name[-1].isdigit() else 99
    rows = 3 + index + YEARS.index(year)
    return pd.DataFrame({"employee_id": range(rows), "year": [int(year)] * rows, "asset": [name] * rows})


def _component(index: int) -> AssetsDefinition:
    @asset(name=f"component_{index}", partitions_def=years)
    @monitor_performance("EVENT_GENERATION")
    def _asset(context: AssetExecutionContext) -> pd.DataFrame:
        return expected_frame(context.asset_key.path[-1], context.partition_key)

    return _asset


COMPONENTS = [_component(i) for i in range(6)]


@asset(partitions_def=years)
@monitor_performance("EVENT_GENERATION")
def broken_component(context: AssetExecutionContext) -> pd.DataFrame:
    raise ValueError(FAILURE_MESSAGE)


@asset(partitions_def=years)
@monitor_performance("EVENT_GENERATION")
def outage_component(context: AssetExecutionContext) -> pd.DataFrame:
    """The monitoring database goes away while this step runs (its connections are terminated)."""
    from .postgres_server import PostgresServer

    server = PostgresServer()  # the session's running server, administered by its port only
    server.port = int(os.environ[OUTAGE_PORT_ENV])
    server.refuse_connections(os.environ[OUTAGE_DATABASE_ENV])
    return expected_frame("outage_component", context.partition_key)


ALL_ASSETS = [*COMPONENTS, broken_component, outage_component]
_BY_NAME = {a.key.path[-1]: a for a in ALL_ASSETS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True)
    parser.add_argument("--run", action="append", required=True, help="asset[,asset...]@partition")
    args = parser.parse_args(argv)
    # A refused connection fails at once whatever the timeout; a generous one keeps a loaded test
    # machine from turning a healthy direct write into a spooled one.
    monitoring = MonitoringResource(database_url=os.environ[MONITORING_URL_ENV], lock_timeout_seconds=5.0)
    report = []
    with DagsterInstance.get() as instance:  # DAGSTER_HOME: the shared instance on PostgreSQL
        for spec in args.run:
            names, partition = spec.split("@")
            selected = [_BY_NAME[n] for n in names.split(",")]
            result = materialize(
                selected, partition_key=partition, instance=instance, raise_on_error=False,
                resources={"monitoring": monitoring, "io_manager": mem_io_manager},
                tags={NODE_TAG: args.node, PID_TAG: str(os.getpid())},
            )
            unchanged = {}
            for a in selected:
                name = a.key.path[-1]
                if name == "broken_component":
                    continue
                unchanged[name] = bool(result.output_for_node(name).equals(expected_frame(name, partition)))
            report.append({"run_id": result.run_id, "success": result.success, "partition": partition,
                           "assets": names.split(","), "unchanged": unchanged})
    print("RESULT " + json.dumps({"node": args.node, "pid": os.getpid(), "runs": report}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
