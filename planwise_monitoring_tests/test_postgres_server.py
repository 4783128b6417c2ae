"""The PostgreSQL test server itself: it is real, isolates databases, and can go away on demand."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, asset, materialize

from .postgres_server import PostgresServer, dagster_postgres_yaml, init_dagster_schema


def test_server_is_postgres_15(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url()) as conn:
        version = conn.execute("select version()").fetchone()
        setting = conn.execute("show server_version_num").fetchone()
    assert version is not None and version[0].startswith("PostgreSQL 15.")
    assert setting is not None and 150000 <= int(setting[0]) < 160000
    assert urlsplit(postgres_server.url()).hostname == "127.0.0.1"
    assert (
        postgres_server.url("x", driver="psycopg2")
        == f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_server.port}/x"
    )


def test_create_database_gives_isolated_databases(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    assert first != second
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (1)")
    with psycopg.connect(second) as conn:
        tables = conn.execute("select count(*) from pg_tables where tablename = 't'").fetchone()
    assert tables == (0,)


def test_create_database_with_a_name(postgres_server: PostgresServer) -> None:
    assert postgres_server.create_database("named_db").endswith("/named_db")
    with pytest.raises(ValueError, match="unsafe"):
        postgres_server.create_database('x"; drop database postgres; --')


def test_refuse_then_allow_connections(postgres_server: PostgresServer, postgres_url: str) -> None:
    database = urlsplit(postgres_url).path.lstrip("/")
    existing = psycopg.connect(postgres_url, autocommit=True)
    try:
        postgres_server.refuse_connections(database)

        with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
            psycopg.connect(postgres_url, connect_timeout=5)
        # The connection opened before was terminated, not merely left idle.
        with pytest.raises(psycopg.OperationalError):
            existing.execute("select 1")
    finally:
        existing.close()

    postgres_server.allow_connections(database)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_password_role_needs_its_password(postgres_server: PostgresServer, postgres_url: str, tmp_path: Path) -> None:
    postgres_server.create_role("alice", "s3cret-pw")
    database = urlsplit(postgres_url).path.lstrip("/")
    base = f"{postgres_server.host}:{postgres_server.port}/{database}"

    with psycopg.connect(f"postgresql://alice:s3cret-pw@{base}") as conn:
        assert conn.execute("select current_user").fetchone() == ("alice",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://alice:wrong@{base}", connect_timeout=5)
    empty_passfile = tmp_path / "pgpass"
    empty_passfile.touch(mode=0o600)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        # No password at all (and no ~/.pgpass to fall back on).
        psycopg.connect(f"postgresql://alice@{base}", connect_timeout=5, passfile=str(empty_passfile))


@asset
def trivial_asset() -> int:
    return 1


def test_dagster_instance_on_postgres(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_text = dagster_postgres_yaml(postgres_url)
    assert "postgres_url: postgresql+psycopg2://" in yaml_text
    (tmp_path / "dagster.yaml").write_text(yaml_text)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    init_dagster_schema(tmp_path)

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        result = materialize([trivial_asset], instance=instance)
        assert result.success
        run_id = result.run_id

    with DagsterInstance.from_config(str(tmp_path)) as again:
        run = again.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert again.get_latest_materialization_event(trivial_asset.key) is not None

    # It really is in PostgreSQL, not in some local SQLite file.
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("select status from runs where run_id = %s", (run_id,)).fetchone()
    assert row == ("SUCCESS",)
    assert not list(tmp_path.rglob("*.db"))
