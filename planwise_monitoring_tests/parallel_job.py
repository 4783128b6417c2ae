"""A job of four independent monitored assets, loaded by Dagster's step processes for the
multiprocess-executor test. The monitoring database comes from PLANWISE_TEST_DB."""

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

defs = Definitions(
    assets=assets,
    jobs=[parallel_job],
    resources={"monitoring": MonitoringResource(database_path=os.environ.get("PLANWISE_TEST_DB", "unused.duckdb"),
                                                lock_timeout_seconds=0.5)},
)


def get_parallel_job():
    return defs.resolve_job_def("parallel_job")
