"""W3C trace context strings (https://www.w3.org/TR/trace-context/), checked without importing OpenTelemetry:
the gateway passes a client's well-formed `traceparent` upstream even when its own tracing is off."""

from __future__ import annotations

import re

_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def valid_traceparent(value: str | None) -> str | None:
    """`value` if it is a well-formed version-00 traceparent, else None."""
    if value is None or len(value) != 55 or _TRACEPARENT.fullmatch(value) is None:
        return None
    return value
