"""Gateway errors and their OpenAI wire form: {"error": {"message", "type", "param", "code"}}.

Every failure on the request path is a `GatewayError`; the ingress turns it into a body and a
status, or into one SSE error event once a stream has started. Messages never carry secrets:
they are built from request fields and provider names, never from config values.
"""

from __future__ import annotations

from typing import Any

import orjson

# OpenAI's error `type` for each status the gateway emits.
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",  # what OpenAI answers for a method a route does not allow
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}

# Error classes shared with routing: which failures are worth another attempt.
RATE_LIMITED = "rate_limited"
OVERLOADED = "overloaded"
TIMEOUT = "timeout"
CONNECTION = "connection"
AUTH = "auth"
BAD_REQUEST = "bad_request"
CONTEXT_LENGTH = "context_length_exceeded"
CONTENT_FILTER = "content_filtered"
NOT_FOUND = "not_found"
SERVER = "server_error"
STREAM_CUT = "stream_cut"

RETRYABLE_CLASSES = frozenset({RATE_LIMITED, OVERLOADED, TIMEOUT, CONNECTION, SERVER, STREAM_CUT})


class ConfigError(ValueError):
    """Configuration problems, one line each: `file: key.path: reason` (here so stages can raise it).

    `.source/.path/.reason` describe the first; `.errors` holds every `(path, reason)` found."""

    def __init__(self, source: str, path: str, reason: str,
                 more: list[tuple[str, str]] | None = None) -> None:
        self.source, self.path, self.reason = source, path, reason
        self.errors = [(path, reason), *(more or [])]
        super().__init__("\n".join(f"{source}: {p}: {r}" if p else f"{source}: {r}" for p, r in self.errors))

    @classmethod
    def collected(cls, source: str, errors: list[tuple[str, str]]) -> ConfigError:
        (path, reason), *more = errors
        return cls(source, path, reason, more)


class GatewayError(Exception):
    """A failure that the client sees as an OpenAI error body with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,  # noqa: A002 - the OpenAI field is called `type`
        param: str | None = None,
        code: str | None = None,
        error_class: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(status, "api_error")
        self.param = param
        self.code = code
        self.error_class = error_class
        self.retry_after = retry_after
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        return self.error_class in RETRYABLE_CLASSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None and self.status in (429, 503):
            headers["retry-after"] = str(max(0, int(self.retry_after + 0.999)))
        return headers

    def __reduce__(self):  # picklable across Ray handles with all fields intact
        return (_rebuild, (self.__class__, self.__dict__.copy()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r}, code={self.code!r})"


def _rebuild(cls: type[GatewayError], state: dict[str, Any]) -> GatewayError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class UpstreamError(GatewayError):
    """A provider answered with an error, or could not be reached; carries its error class."""

    def __init__(self, status: int, message: str, *, provider: str | None = None, **kw: Any) -> None:
        super().__init__(status, message, **kw)
        self.provider = provider


def bad_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code, error_class=BAD_REQUEST)


def not_found(message: str, code: str = "model_not_found", param: str | None = "model") -> GatewayError:
    return GatewayError(404, message, param=param, code=code, error_class=NOT_FOUND)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key", error_class=AUTH)


def sse_error_event(err: GatewayError) -> bytes:
    """The single event that ends a stream that failed after it started (no [DONE] follows)."""
    return b"data: " + err.to_json() + b"\n\n"
