"""Fixtures for the storage unit tests: a SQLite storage config in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.storage import StorageConfig


@pytest.fixture
def sqlite_config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(url=f"sqlite:///{tmp_path}/db/raygate.db", spool_dir=str(tmp_path / "spool"),
                         batch_size=50, flush_interval_s=0.01)

