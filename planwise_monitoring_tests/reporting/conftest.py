"""Fixtures of the reporting tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..store.backends import BACKENDS, Backend, open_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The monitoring database, once a DuckDB file and once a fresh PostgreSQL database."""
    with open_backend(request, tmp_path) as b:
        yield b
