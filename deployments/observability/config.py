"""The `observability:` section: request-log bodies and retention, traces, metrics, the audit log.

```yaml
observability:
  logging:
    bodies: false              # store request and response bodies in the log record (all keys)
    keys: {team-a: {bodies: true}}   # per gateway key id (gateway.api_keys[].id), overrides `bodies`
    max_body_bytes: 16384      # each body is cut at this many bytes (UTF-8 safe)
    retention:
      max_age_days: 30         # rows older than this are deleted (null: kept)
      max_rows: 10000000       # beyond this many rows the oldest are deleted (null: no limit)
      interval_s: 300          # how often the writer actor enforces it
  tracing:
    enabled: false
    exporter: otlp
    endpoint: http://jaeger-collector:4317   # gRPC; http/protobuf on 4318 (or a URL ending /v1/traces)
    protocol: auto             # grpc | http/protobuf; auto: http/protobuf for port 4318 or a /v1/traces path
    sample_rate: 1.0
    service_name: raygate
    export_interval_ms: 1000   # batch exporter delay
  metrics:
    enabled: true
    exporter: prometheus
    prefix: raygate            # metric names start with `<prefix>_` (e.g. portkey)
    port: null                 # optional separate metrics port; /metrics on the main port always works
    host: 0.0.0.0
  audit:
    enabled: true              # store audit events (append-only) when storage is enabled
```
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve_app.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyLogging(_Strict):
    bodies: bool = Field(False, description="Store this key's request and response bodies.")


class RetentionConfig(_Strict):
    max_age_days: float | None = Field(30, gt=0, description="Delete log rows older than this (null: keep).")
    max_rows: int | None = Field(None, ge=1, description="Keep at most this many log rows (the newest).")
    interval_s: float = Field(300, gt=0, le=86400, description="How often retention runs (in the writer).")


class LoggingConfig(_Strict):
    bodies: bool = Field(False, description="Store request and response bodies for every key.")
    keys: dict[str, KeyLogging] = Field(default_factory=dict, description="Per gateway key id.")
    max_body_bytes: int = Field(16384, ge=256, le=16 << 20, description="Each stored body is cut here.")
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    def bodies_for(self, key_id: str | None) -> bool:
        per_key = self.keys.get(key_id) if key_id is not None else None
        return per_key.bodies if per_key is not None else self.bodies

    @property
    def any_bodies(self) -> bool:
        return self.bodies or any(k.bodies for k in self.keys.values())


Protocol = Literal["auto", "grpc", "http/protobuf"]


class TracingConfig(_Strict):
    enabled: bool = False
    exporter: Literal["otlp"] = "otlp"
    endpoint: str = Field("http://127.0.0.1:4317", description="The OTLP collector.")
    protocol: Protocol = "auto"
    sample_rate: float = Field(
        1.0, ge=0, le=1, description="Share of new traces kept (a client's sampled flag is honoured)."
    )
    service_name: str = Field("raygate", min_length=1)
    export_interval_ms: int = Field(1000, ge=10, le=60000)
    headers: dict[str, str] = Field(default_factory=dict, description="Sent to the collector (e.g. auth).")

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://otel-collector:4317")
        return v

    @property
    def wire(self) -> str:
        """grpc or http/protobuf (auto: http/protobuf on port 4318 or for a /v1/traces URL)."""
        if self.protocol != "auto":
            return self.protocol
        parts = urlsplit(self.endpoint)
        return (
            "http/protobuf" if parts.port == 4318 or parts.path.rstrip("/").endswith("/v1/traces") else "grpc"
        )


_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class MetricsConfig(_Strict):
    enabled: bool = True
    exporter: Literal["prometheus"] = "prometheus"
    prefix: str = Field("raygate", description="Metric names start with `<prefix>_`.")
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Also serve /metrics on this port (every replica binds it with SO_REUSEPORT).",
    )
    host: str = "0.0.0.0"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX.match(v):
            raise ValueError("must be a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        return v


class AuditConfig(_Strict):
    enabled: bool = Field(True, description="Store audit events (needs storage.enabled).")


class ObservabilityConfig(_Strict):
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)


def check_observability(cfg: object) -> None:
    """Cross-section checks: per-key logging names keys that exist; a metrics port not the gateway's."""
    obs: ObservabilityConfig = cfg.observability  # type: ignore[attr-defined]
    gateway = cfg.gateway  # type: ignore[attr-defined]
    known = {k.id for k in gateway.api_keys}
    for key_id in obs.logging.keys:
        if key_id not in known:
            raise ConfigError(
                cfg.source,
                f"observability.logging.keys.{key_id}",  # type: ignore[attr-defined]
                f"unknown gateway key id {key_id!r} (known: {', '.join(sorted(known)) or 'none'})",
            )
    if obs.metrics.port is not None and obs.metrics.port == gateway.port:
        raise ConfigError(
            cfg.source,
            "observability.metrics.port",  # type: ignore[attr-defined]
            f"is gateway.port ({gateway.port}); /metrics is served there already",
        )
