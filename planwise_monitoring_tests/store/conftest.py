"""Fixtures of the store tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spool's fallback lives under the system temp dir: point that into this test's tmp_path."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    return system_tmp
