"""A request record shaped like the gateway's, for the storage and record-writing tests."""

from __future__ import annotations

from typing import Any


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{i}", "kind": "chat", "received_at": 1700000000.0 + i, "first_byte_at": None,
        "done_at": 1700000000.5 + i, "key_id": "team-a", "client_ip": "127.0.0.1",
        "metadata": {"user": f"u{i}"}, "stream": False, "requested_model": "gpt-x", "provider": "openai",
        "model": "gpt-x-1", "route": "default",
        "attempts": [{"provider": "openai", "status": 200}], "cache": "miss",
        "usage": {"input": 10, "cached_input": 0, "cache_write": 0, "output": 5, "reasoning": 0},
        "status": 200, "error_type": None, "error_code": None, "error_message": None, "latency_ms": 12.5,
        "ttft_ms": None, "facts": {}, "via": "http", **extra,
    }
