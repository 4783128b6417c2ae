"""Jobs loaded by Dagster's step processes for the multiprocess-executor tests: four independent
monitored assets, and a job whose second step fails. The monitoring database comes from
PLANWISE_TEST_DB."""

from __future__ import annotations

import os
import time

from dagster import AssetExecutionContext, Definitions, StaticPartitionsDefinition, asset, define_asset_job

from planwise_monitoring import MonitoringResource, monitor_performance

years = StaticPartitionsDefinition(["2025", "2026"])


def _make(name: str):
    @asset(name=name, partitions_def=years)
    @monitor_performance("EVENT_GENERATION")
    def _asset(context: AssetExecutionContext) -> int:
        time.sleep(2.0)  # long enough that steps started by the executor overlap
        return os.getpid()

    return _asset


assets = [_make(f"events_{i}") for i in range(4)]
parallel_job = define_asset_job("parallel_job", selection=[a.key for a in assets])


@asset
@monitor_performance("SCD")
def snapshot_ok(context: AssetExecutionContext) -> int:
    return 1


@asset(deps=[snapshot_ok])
@monitor_performance("SCD")
def snapshot_broken(context: AssetExecutionContext) -> int:
    raise ValueError("snapshot failed")


failing_job = define_asset_job("failing_job", selection=[snapshot_ok.key, snapshot_broken.key])

defs = Definitions(
    assets=[*assets, snapshot_ok, snapshot_broken],
    jobs=[parallel_job, failing_job],
    resources={"monitoring": MonitoringResource(database_path=os.environ.get("PLANWISE_TEST_DB", "unused.duckdb"),
                                                lock_timeout_seconds=0.5)},
)


def get_parallel_job():
    return defs.resolve_job_def("parallel_job")


def get_failing_job():
    return defs.resolve_job_def("failing_job")
