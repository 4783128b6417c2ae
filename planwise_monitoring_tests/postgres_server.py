"""A throwaway, real PostgreSQL 15 server for the test suite.

Usage::

    from planwise_monitoring_tests.postgres_server import PostgresServer, dagster_postgres_yaml, init_dagster_schema

    with PostgresServer() as server:
        url = server.create_database()          # postgresql://postgres@127.0.0.1:PORT/t_<hex>
        server.refuse_connections("t_...")      # simulate the database going away
        server.allow_connections("t_...")       # ... and coming back
        (home / "dagster.yaml").write_text(dagster_postgres_yaml(url))
        init_dagster_schema(home)               # create Dagster's tables once, before processes race

In pytest, use the ``postgres_server`` (session) and ``postgres_url`` (fresh database per test)
fixtures from ``conftest.py`` instead of starting a server yourself.

The server runs as the OS user ``postgres`` (``initdb`` refuses root) from a temporary directory
that holds the data directory, the unix socket and the server log. It listens on 127.0.0.1 only,
on a free port. The superuser ``postgres`` is trusted; every other role must authenticate with
``scram-sha-256`` over TCP, so tests can check that a password in a URL really matters.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
import yaml
from psycopg import sql

__all__ = [
    "DEFAULT_BIN_DIR",
    "PostgresServer",
    "PostgresServerError",
    "dagster_postgres_yaml",
    "init_dagster_schema",
]

DEFAULT_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
_OS_USER = "postgres"
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Written after initdb (initdb itself refuses a password-based --auth-host without a superuser
# password). The first matching line wins, so the superuser is trusted and everyone else needs a password.
_PG_HBA = """\
local all all                       trust
host  all postgres 127.0.0.1/32     trust
host  all all      127.0.0.1/32     scram-sha-256
"""

# Durability is pointless for a throwaway test server; several test processes connect at once.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "password_encryption": "'scram-sha-256'",
}


class PostgresServerError(RuntimeError):
    """The server could not be installed, initialised or started."""


def _run(args: list[str], *, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_name(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe PostgreSQL identifier: {name!r} (use lower-case letters, digits and _)")
    return name


class PostgresServer:
    """A PostgreSQL server in a temporary directory; ``start()`` it, ``stop()`` it, or use ``with``."""

    superuser = "postgres"

    def __init__(self, bin_dir: Path = DEFAULT_BIN_DIR, host: str = "127.0.0.1", startup_timeout: float = 30.0) -> None:
        self.bin_dir = Path(bin_dir)
        self.host = host
        self.port: int = 0
        self.startup_timeout = startup_timeout
        self.tmp_dir: Path | None = None
        self.startup_seconds: float | None = None  # how long start() took, for curiosity

    # -- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._tmp / "data"

    @property
    def socket_dir(self) -> Path:
        return self._tmp / "sock"

    @property
    def log_file(self) -> Path:
        return self._tmp / "server.log"

    @property
    def _tmp(self) -> Path:
        if self.tmp_dir is None:
            raise PostgresServerError("server not started")
        return self.tmp_dir

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Initialise a cluster and start the server; raises PostgresServerError saying why it could not."""
        began = time.monotonic()
        self._ensure_binaries()
        # In /tmp itself: a test may have pointed tempfile's directory into its own tmp_path,
        # which user postgres cannot enter.
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="planwise-pg-", dir="/tmp"))
        try:
            self.socket_dir.mkdir()
            shutil.chown(self._tmp, _OS_USER, _OS_USER)
            shutil.chown(self.socket_dir, _OS_USER, _OS_USER)
            self._initdb()
            self._start_server()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it needs to survive) and remove the temp dir. Idempotent."""
        if self.tmp_dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- URLs and administration -----------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str | None = None) -> str:
        """``postgresql://postgres@HOST:PORT/DATABASE``; ``driver="psycopg2"`` gives ``postgresql+psycopg2://``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.superuser}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """An autocommit superuser connection (admin statements such as CREATE DATABASE refuse transactions)."""
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (``t_<hex>`` when unnamed) and return its ``postgresql://`` URL."""
        name = _check_name(name or f"t_{secrets.token_hex(6)}")
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def refuse_connections(self, database: str) -> None:
        """Make ``database`` unreachable: new connections are refused and existing ones are terminated."""
        with self.connect() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database)))
            # The timeout (ms) makes pg_terminate_backend wait until each backend has really gone.
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )

    def allow_connections(self, database: str) -> None:
        """Undo ``refuse_connections``."""
        with self.connect() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(database)))

    def create_role(self, name: str, password: str) -> None:
        """Create a LOGIN role that owns nothing and must give ``password`` (scram-sha-256) to connect."""
        with self.connect() as conn:
            # Utility statements take no bound parameters, hence a quoted literal.
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(_check_name(name)), sql.Literal(password)
                )
            )

    # -- internals -------------------------------------------------------------------------------

    def _pg(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # cwd inside our temp dir: user postgres may not be able to read root's working directory.
        return _run(
            ["runuser", "-u", _OS_USER, "--", str(self.bin_dir / program), *args], cwd=self._tmp, timeout=timeout
        )

    def _ensure_binaries(self) -> None:
        if (self.bin_dir / "initdb").exists():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = subprocess.run(
            "apt-get update && apt-get install -y postgresql",
            shell=True,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if not (self.bin_dir / "initdb").exists():
            raise PostgresServerError(
                f"PostgreSQL binaries not found in {self.bin_dir}, and `apt-get install -y postgresql` did not"
                f" provide them (exit {install.returncode}):\n{install.stdout[-2000:]}{install.stderr[-2000:]}"
            )

    def _initdb(self) -> None:
        result = self._pg(
            "initdb", "-D", str(self.data_dir), "-U", self.superuser, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresServerError(f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
        (self.data_dir / "pg_hba.conf").write_text(_PG_HBA)
        settings = {**_SERVER_SETTINGS, "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# planwise-monitoring test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self) -> None:
        # The free port can be taken between our probe and the server's bind; try a few.
        for _attempt in range(3):
            self.port = _free_port()
            result = self._pg(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", f"-p {self.port}", "-w", "-t", str(int(self.startup_timeout)),
                timeout=self.startup_timeout + 10,
            )  # fmt: skip
            if result.returncode == 0:
                return
            if "Address already in use" not in self._log_tail():
                break
        raise PostgresServerError(
            f"PostgreSQL did not start (pg_ctl exit {result.returncode}): {result.stdout}{result.stderr}\n"
            f"--- server log tail ---\n{self._log_tail()}"
        )

    def _wait_until_ready(self) -> None:
        # pg_ctl -w already waited via the socket; also prove the TCP listener and trust rule work.
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresServerError(
                        f"PostgreSQL on {self.host}:{self.port} never accepted connections: {exc}\n"
                        f"--- server log tail ---\n{self._log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


# -- Dagster on PostgreSQL ---------------------------------------------------------------------------


def dagster_postgres_yaml(url: str) -> str:
    """dagster.yaml text putting run, event-log and schedule storage in PostgreSQL via dagster-postgres.

    A bare ``postgresql://`` URL is rewritten to ``postgresql+psycopg2://``: SQLAlchemy 2.1 maps the bare
    scheme to psycopg 3, on which dagster-postgres's ``NOTIFY`` with a bound parameter fails.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    config = {
        "storage": {"postgres": {"postgres_url": url}},
        "telemetry": {"enabled": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def init_dagster_schema(home: Path) -> None:
    """Open the Dagster instance in ``home`` once, so its tables exist before several processes race on CREATE TABLE."""
    from dagster import DagsterInstance  # imported late: dagster is slow to import

    with DagsterInstance.from_config(str(home)):
        pass
