from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from planwise_monitoring import MonitoringResource


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitoring.duckdb"


@pytest.fixture
def monitoring(db_path: Path) -> MonitoringResource:
    return MonitoringResource(database_path=str(db_path))


@pytest.fixture(scope="session")
def instance() -> DagsterInstance:
    with DagsterInstance.ephemeral() as inst:
        yield inst
