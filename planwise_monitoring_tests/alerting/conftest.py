"""Fixtures of the alerting tests: servers on 127.0.0.1 only, a DuckDB file, a captured logger."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from planwise_monitoring.store.duckdb import MonitoringStore

from .helpers import LOGGER, MailBox, RecordingServer, free_port


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Nothing may leave 127.0.0.1: no proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    servers = [RecordingServer()]
    yield servers[0]
    servers[0].stop()


@pytest.fixture
def mailbox():
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> MonitoringStore:
    return MonitoringStore(tmp_path / "monitoring.duckdb")


@pytest.fixture
def log(caplog) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return logging.getLogger(LOGGER)
