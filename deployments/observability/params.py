"""Query parameters of the admin list endpoints (logs, audit): checked once, each failure a 400 naming it.

Cursors are opaque to clients: base64url of the last row's sort key, so the next page starts right
after it whatever was inserted meanwhile (the order is stable: newest first, ties broken by id).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from serve_app.errors import GatewayError

MAX_LIMIT = 1000
MAX_TEXT = 256


def invalid(param: str, reason: str) -> GatewayError:
    return GatewayError(
        400,
        f"invalid query parameter {param!r}: {reason}",
        param=param,
        code="invalid_parameter",
        type="invalid_request_error",
    )


def check_names(params: dict[str, str], allowed: tuple[str, ...]) -> None:
    for name in params:
        if name not in allowed:
            raise invalid(name, f"unknown parameter (allowed: {', '.join(allowed)})")


def limit(params: dict[str, str], default: int = 100) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return value


def text(params: dict[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise invalid(name, f"must be 1 to {MAX_TEXT} printable characters")
    return value


def choice(params: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in allowed:
        raise invalid(name, f"must be one of: {', '.join(allowed)}")
    return value


def timestamp(params: dict[str, str], name: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date-time (without a zone: UTC)."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(name, "must be epoch seconds or an ISO 8601 time, e.g. 2025-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(params: dict[str, str], shape: tuple[type, ...]) -> list[Any] | None:
    """The sort key a cursor carries, checked against `shape` (the key's types)."""
    raw = params.get("cursor")
    if raw is None:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid("cursor", "not a cursor this endpoint returned") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True))
    ):
        raise invalid("cursor", "not a cursor this endpoint returned")
    return key
