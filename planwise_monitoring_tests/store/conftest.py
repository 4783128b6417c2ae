"""Fixtures of the store tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .backends import BACKENDS, Backend, open_backend


@pytest.fixture(autouse=True)
def private_system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spool's fallback lives under the system temp dir: point that into this test's tmp_path."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    return system_tmp


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, private_system_tmp: Path) -> Iterator[Backend]:
    """The monitoring database, once a DuckDB file and once a fresh PostgreSQL database."""
    with open_backend(request, tmp_path) as b:
        yield b


@pytest.fixture
def postgres(request: pytest.FixtureRequest, tmp_path: Path, private_system_tmp: Path) -> Iterator[Backend]:
    """A fresh PostgreSQL database only, for the tests of what is PostgreSQL's own."""
    with open_backend(request, tmp_path, "postgres") as b:
        yield b
