"""`raygate serve`'s start-up checks (no Ray): warnings and the port check."""

from __future__ import annotations

import socket

from serve_app.cli import port_in_use, startup_warnings
from serve_app.config import parse_config

KEYS = {"gateway": {"api_keys": [{"id": "a", "key": "k"}]}, "providers": {"p": {"type": "mock"}}}


def test_memory_cache_with_several_replicas_warns_once() -> None:
    cfg = parse_config({**KEYS, "cache": {"enabled": True, "backend": "memory"}})
    (line,) = startup_warnings(cfg, replicas=2)
    assert "memory with 2 ingress replicas" in line and "backend: redis" in line
    assert startup_warnings(cfg, replicas=1) == []


def test_no_cache_warning_for_redis_or_an_unused_cache() -> None:
    shared = parse_config({**KEYS, "cache": {"enabled": True, "backend": "redis"}})
    unused = parse_config(KEYS)
    assert startup_warnings(shared, replicas=2) == [] and startup_warnings(unused, replicas=2) == []


def test_a_strategy_cache_counts_as_a_cache_in_use() -> None:
    cfg = parse_config({**KEYS, "strategies": {"s": {"type": "fallback",
                                                     "targets": [{"provider": "p", "cache": "exact"}]}}})
    assert len(startup_warnings(cfg, replicas=2)) == 1


def test_auth_off_warns() -> None:
    (line,) = startup_warnings(parse_config({"providers": {"p": {"type": "mock"}}}), replicas=1)
    assert "client authentication is OFF" in line


def test_port_in_use() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)
