"""Fixtures for the storage unit tests: a SQLite storage config in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.storage import StorageConfig


@pytest.fixture
def sqlite_config(tmp_path: Path) -> StorageConfig:
    return StorageConfig(url=f"sqlite:///{tmp_path}/db/raygate.db", spool_dir=str(tmp_path / "spool"),
                         batch_size=50, flush_interval_s=0.01)


def record(i: int, **extra: object) -> dict:
    """A request record shaped like the gateway's."""
    return {"request_id": f"req-{i}", "kind": "chat", "received_at": 1700000000.0 + i, "done_at": 1700000000.5 + i,
            "key_id": "team-a", "client_ip": "127.0.0.1", "metadata": {"user": f"u{i}"}, "stream": False,
            "requested_model": "gpt-x", "provider": "openai", "model": "gpt-x-1", "route": "default",
            "attempts": [{"provider": "openai", "status": 200}], "cache": "miss",
            "usage": {"input": 10, "cached_input": 0, "cache_write": 0, "output": 5, "reasoning": 0},
            "status": 200, "error_type": None, "error_code": None, "error_message": None, "latency_ms": 12.5,
            "ttft_ms": None, "facts": {}, "via": "http", **extra}
