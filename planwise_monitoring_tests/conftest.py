from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from planwise_monitoring import MonitoringResource

from .postgres_server import PostgresServer, PostgresServerError


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 server on 127.0.0.1, started once per session. Fails (never skips) if it cannot start."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresServerError as exc:
        pytest.fail(f"could not start the PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql://`` URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database()
