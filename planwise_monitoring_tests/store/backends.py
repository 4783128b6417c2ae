"""The two store backends, for the tests that are about the store's behaviour and so run on both.

    @pytest.fixture(params=BACKENDS)
    def backend(request, tmp_path):
        with open_backend(request, tmp_path) as b:
            yield b

    def test_write_ignores_ids_it_already_has(backend):     # test ids: [duckdb], [postgres]
        store = backend.store()
        ...
        assert backend.row_counts()["mon_multi_year_performance"] == 1

A DuckDB backend is a file in the test's tmp_path; a PostgreSQL backend a fresh database on the
session's real server (``postgres_server``, which fails the suite, never skips, when it cannot
start), dropped afterwards. Either way the system temp dir (where a PostgreSQL store's spool and
every spool's fallback live) points into the test's tmp_path, and :meth:`Backend.env` hands it to
subprocesses. :meth:`Backend.raw` is a connection of the driver's own: it neither migrates nor
pools, so a test sees what is really stored.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import psycopg
import pytest
from psycopg import sql

from planwise_monitoring.store import MonitoringStore
from planwise_monitoring.store.duckdb import DuckDBConnection
from planwise_monitoring.store.postgres import PostgresConnection

from ..postgres_server import PostgresServer

BACKENDS = ["duckdb", "postgres"]


@dataclass
class Backend:
    """One monitoring database of either kind: ``target`` is what ``--db`` and ``MonitoringStore`` take."""

    name: str
    target: str
    server: PostgresServer | None = None

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"

    @property
    def database(self) -> str:
        """The PostgreSQL database's name."""
        return urlsplit(self.target).path.lstrip("/")

    def store(self, **kwargs: Any) -> MonitoringStore:
        return MonitoringStore(self.target, **kwargs)

    def resource(self, **kwargs: Any) -> Any:
        """A MonitoringResource on this database (Dagster imported only by the tests that need it)."""
        from planwise_monitoring import MonitoringResource

        if self.is_postgres:
            return MonitoringResource(database_url=self.target, **kwargs)
        return MonitoringResource(database_path=self.target, **kwargs)

    def env(self) -> dict[str, str]:
        """The environment of a subprocess that must find the same spool (under the system temp dir)."""
        return {**os.environ, "TMPDIR": tempfile.gettempdir()}

    @contextlib.contextmanager
    def raw(self) -> Iterator[Any]:
        """The backend connection (``?`` parameters on both) on a connection of the driver's own."""
        if self.is_postgres:
            conn = psycopg.connect(self.target, autocommit=True, options="-c TimeZone=UTC")
            try:
                yield PostgresConnection(conn, "public")
            finally:
                conn.close()
        else:
            dconn = duckdb.connect(self.target)
            try:
                dconn.execute("SET TimeZone = 'UTC'")
                yield DuckDBConnection(dconn)
            finally:
                dconn.close()

    def tables(self, conn: Any) -> list[str]:
        """The mon_* base tables in the connection's schema."""
        schema = "current_schema()" if self.is_postgres else "'main'"
        return [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            f"AND table_schema = {schema} AND table_name LIKE 'mon%' ORDER BY 1").fetchall()]

    def row_counts(self) -> dict[str, int]:
        """Rows in each mon_* table (none at all before the schema exists)."""
        with self.raw() as conn:
            return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in self.tables(conn)}

    def columns(self, table: str) -> set[str]:
        with self.raw() as conn:
            return {c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}

    def performance_ids(self) -> list[str]:
        """Every stored record id, as stored (duplicates would show), sorted."""
        with self.raw() as conn:
            return sorted(str(i) for (i,) in conn.execute(
                "SELECT performance_id FROM mon_multi_year_performance").fetchall())


@contextlib.contextmanager
def open_backend(request: pytest.FixtureRequest, tmp_path: Path, name: str | None = None) -> Iterator[Backend]:
    """The backend ``name`` (default: the fixture's param); the PostgreSQL server is asked for only
    when it is needed, so ``-k duckdb`` starts none."""
    name = name or request.param
    server: PostgresServer | None = None
    if name == "postgres":
        # The session's server makes its directory with tempfile (for user postgres to enter):
        # in the real temp dir, not in a test's, whatever a fixture pointed tempfile at already.
        pointed, tempfile.tempdir = tempfile.tempdir, None
        try:
            server = request.getfixturevalue("postgres_server")
        finally:
            tempfile.tempdir = pointed
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    if server is None:
        yield Backend("duckdb", str(tmp_path / "monitoring.duckdb"))
        return
    backend = Backend("postgres", server.create_database(), server)
    try:
        yield backend
    finally:
        drop_database(server, backend.target)


def drop_database(server: PostgresServer, url: str) -> None:
    """Drop a test database and close this process's idle store connections to it: tests create
    hundreds of databases, the server takes 200 connections."""
    from planwise_monitoring.store import postgres

    with postgres._pool_lock:
        idle = [conn for key, conns in list(postgres._pool.items()) if key[1] == url for conn in conns]
        for key in [key for key in postgres._pool if key[1] == url]:
            del postgres._pool[key]
    for conn in idle:
        with contextlib.suppress(Exception):
            conn.close()
    with server.connect() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(urlsplit(url).path.lstrip("/"))))
