"""Rate-limit configuration (the `rate_limits:` section of the gateway config).

```yaml
rate_limits:
  - scope: key                  # each gateway key gets its own bucket; also user | ip | metadata.<k>
    requests_per_minute: 600
    tokens_per_minute: 200000
  - scope: {key: batch-jobs}    # one key (or {user: ...}, {ip: ...}, {metadata.<k>: ...}) with its own limit
    requests_per_minute: 60
```
The list is the short form of `rate_limits: {rules: [...], shards: 1, lease_fraction: 0.05, ...}`,
which also holds the tuning knobs below; errors name the key as written in either form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DIMENSIONS = ("key", "user", "ip")  # plus metadata.<k>
ALIASES = {"user_id": "user"}  # `{user_id: alice}` reads like the metadata field it comes from


def dimension_of(name: str) -> str:
    """The canonical dimension for a scope name, or ValueError naming the allowed ones."""
    name = ALIASES.get(name, name)
    if name in DIMENSIONS or (name.startswith("metadata.") and len(name) > len("metadata.")):
        return name
    raise ValueError(f"unknown scope {name!r} (one of key, user, ip, metadata.<key>)")


class RateLimitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str | dict[str, str] = Field(description="A dimension (each value its own bucket) or "
                                                    "{dimension: value} (that one value, its own limit).")
    requests_per_minute: int | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(v, str):
            return dimension_of(v)
        if len(v) != 1:
            raise ValueError("a fixed scope names exactly one dimension and value, e.g. {key: batch-jobs}")
        (name, value), = v.items()
        if not value:
            raise ValueError("the scope's value must not be empty")
        return {dimension_of(name): value}

    @model_validator(mode="after")
    def _some_limit(self) -> RateLimitRule:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("set requests_per_minute, tokens_per_minute or both")
        return self

    @property
    def dimension(self) -> str:
        return self.scope if isinstance(self.scope, str) else next(iter(self.scope))

    @property
    def value(self) -> str | None:
        """The one value a fixed scope applies to; None for a per-value scope."""
        return None if isinstance(self.scope, str) else next(iter(self.scope.values()))


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RateLimitRule] = Field(default_factory=list)
    shards: int = Field(1, ge=1, le=64, description="Bucket actors; buckets are spread over them by name.")
    lease_fraction: float = Field(0.05, gt=0, le=0.5,
                                  description="Share of a bucket's capacity a replica leases at a time.")
    lease_ttl_s: float = Field(5.0, gt=0, le=300, description="A lease unused this long is void.")
    sync_interval_s: float = Field(0.05, gt=0, le=5,
                                   description="Least time between a replica's background syncs.")
    reserve_output_tokens: int = Field(1024, ge=0, description="Output tokens reserved for a request "
                                                               "without max_tokens (settled at the end).")

    @model_validator(mode="wrap")
    @classmethod
    def _short_form(cls, value: Any, handler: Any) -> RateLimits:
        if not isinstance(value, list):
            return handler(value)
        try:
            return handler({"rules": value})
        except ValidationError as exc:  # report `rate_limits[0].scope`, as written, not `rules[0]`
            details = [{"type": e["type"], "loc": e["loc"][1:] if e["loc"][:1] == ("rules",) else e["loc"],
                        "input": e["input"], **({"ctx": e["ctx"]} if "ctx" in e else {})}
                       for e in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, details) from None

    @model_validator(mode="after")
    def _no_duplicates(self) -> RateLimits:
        seen: set[tuple[str, str | None]] = set()
        for rule in self.rules:
            ident = (rule.dimension, rule.value)
            if ident in seen:
                where = rule.dimension if rule.value is None else f"{{{rule.dimension}: {rule.value}}}"
                raise ValueError(f"scope {where} appears twice; put both limits in one rule")
            seen.add(ident)
        return self


__all__ = ["DIMENSIONS", "RateLimitRule", "RateLimits", "dimension_of"]
