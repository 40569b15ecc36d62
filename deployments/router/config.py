"""Routing configuration: the `strategies:` section (and inline configs in the same shape).

    strategies:
      production-fallback:
        type: fallback                 # single | fallback | load_balance | conditional
        targets:
          - provider: azure-gpt4
            timeout: 10                # seconds for one attempt (streams: to first byte)
            retry: 2                   # extra attempts on this target before moving on
          - provider: anthropic-primary
            model: claude-sonnet-4

A target is a provider (`provider`, optional `model`), a reference to another strategy
(`strategy: <name>`), or an inline strategy (`type` with `targets`/`providers`/`rules`). The
knobs (`timeout`, `retry`, `on_status_codes`, `override_params`, `backoff`, `circuit_breaker`,
`idle_timeout`) set on a strategy or a nested target are inherited by everything below it
unless overridden there. `tree.check_strategies` compiles every strategy once at start-up (so bad
references, cycles and unparsable conditions stop start-up with the key path).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

StrategyType = Literal["single", "fallback", "load_balance", "loadbalance", "conditional"]
Algorithm = Literal["weighted", "weighted_random", "round_robin", "least_latency", "least_busy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackoffConfig(_Strict):
    """Waits between retries on one target: exponential with jitter; Retry-After up to a cap."""

    base: float = Field(0.5, ge=0, description="Seconds before the first retry (doubles each time).")
    cap: float = Field(8.0, ge=0, description="Longest backoff wait, seconds.")
    retry_after_cap: float = Field(30.0, ge=0, description="Longest Retry-After honoured; 0 ignores it.")


class CircuitBreakerConfig(_Strict):
    """Per target: `failures` within `window` seconds open the circuit for `cooldown` seconds."""

    enabled: bool = True
    failures: int = Field(5, ge=1, le=10_000)
    window: float = Field(30.0, gt=0)
    cooldown: float = Field(30.0, gt=0)


class _Knobs(_Strict):
    timeout: float | None = Field(None, gt=0, description="Seconds per attempt (streams: to first byte).")
    idle_timeout: float | None = Field(None, gt=0, description="Streams: longest gap between chunks.")
    retry: int | None = Field(None, ge=0, le=10, description="Extra attempts on a target before moving on.")
    on_status_codes: list[int] | None = Field(None, description="Statuses that retry/move on (default: "
                                                                 "retryable errors).")
    override_params: dict[str, Any] | None = None
    backoff: BackoffConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None

    @field_validator("on_status_codes")
    @classmethod
    def _codes(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            for code in v:
                if not 100 <= code <= 599:
                    raise ValueError(f"{code} is not an HTTP status code")
        return v


def _bad(message: str) -> PydanticCustomError:
    return PydanticCustomError("route_shape", message)  # no "Value error, " prefix in the message


class RuleConfig(_Strict):
    condition: str = Field(description="An expression (see conditions.py), or `default`.")
    target: TargetConfig


class TargetConfig(_Knobs):
    # a provider ...
    provider: str | None = None
    model: str | None = None
    # ... or a named strategy ...
    strategy: str | None = None
    # ... or an inline strategy
    type: StrategyType | None = None
    targets: list[TargetConfig] | None = None
    providers: list[TargetConfig] | None = Field(None, description="load_balance: same as targets.")
    rules: list[RuleConfig] | None = None
    algorithm: Algorithm = "weighted"
    sticky_key: str | None = Field(None, description="load_balance: an expression, e.g. metadata.session_id.")
    failover: bool = Field(False, description="load_balance: on failure, try the other members too.")
    cache: Any = Field(None, description="A cache setting for requests routed here (passed to the cache stage).")
    # as a member of its parent
    weight: float = Field(1.0, ge=0)
    name: str | None = Field(None, description="A label (Portkey conditional `then` refers to it).")

    @model_validator(mode="after")
    def _shape(self) -> TargetConfig:
        kinds = [k for k in ("provider", "strategy", "type") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none of them"
            raise _bad(f"a target needs exactly one of provider, strategy or type (found {found})")
        inner = [k for k in ("targets", "providers", "rules") if getattr(self, k) is not None]
        if self.type is None:
            if inner:
                raise _bad(f"{inner[0]} needs `type` (an inline strategy)")
            return self
        if self.model is not None:
            raise _bad("`model` belongs on a provider target, not on a strategy")
        kind = "load_balance" if self.type == "loadbalance" else self.type
        if kind == "conditional":
            if not self.rules:
                raise _bad("a conditional strategy needs `rules`")
            if self.targets or self.providers:
                raise _bad("a conditional strategy lists `rules`, not targets")
        else:
            if self.rules is not None:
                raise _bad(f"`rules` belong to conditional strategies, not {kind}")
            if self.targets is not None and self.providers is not None:
                raise _bad("give `targets` or `providers`, not both")
            if not (self.targets or self.providers):
                raise _bad(f"a {kind} strategy needs `targets`"
                                 + (" (or `providers`)" if kind == "load_balance" else ""))
            if self.providers is not None and kind != "load_balance":
                raise _bad("`providers` is the load_balance spelling; use `targets`")
        return self

    def members(self) -> tuple[str, list[TargetConfig]]:
        """(`targets` or `providers`, the list) as written."""
        if self.providers is not None:
            return "providers", self.providers
        return "targets", self.targets or []


class StrategyConfig(TargetConfig):
    """A named strategy: an inline-strategy target that must have `type`."""

    type: StrategyType  # type: ignore[assignment]


RuleConfig.model_rebuild()


__all__ = ["BackoffConfig", "CircuitBreakerConfig", "RuleConfig", "StrategyConfig", "TargetConfig"]
