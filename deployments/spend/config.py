"""The spend sections of the gateway config: `pricing`, `budgets`, `alerts`, `smtp` (docs/spend.md).

Validated once at start-up. Scopes say which requests a budget or an alert counts; periods and
windows are calendar periods (`daily`, `weekly`, `monthly`, `total`) or durations (`30s`, `5m`,
`1h`, `1d`). Channel secrets (webhook URLs, PagerDuty keys, the SMTP password) are SecretStr, so
they never show in a repr, a log line or an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from serve_app.errors import ConfigError

from .periods import parse_period

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelPrice(_Strict):
    """USD per million tokens. Cached input and cache writes default to the input price, reasoning
    tokens to the output price (what a provider charges when it names no separate rate)."""

    input: float = Field(ge=0)
    output: float = Field(0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    reasoning: float | None = Field(None, ge=0)


class Scope(_Strict):
    """Which requests count: every field given must match; none given is the global scope."""

    key: str | None = Field(None, description="A gateway key id (gateway.api_keys[].id).")
    user_id: str | None = Field(None, description="The request's metadata.user_id.")
    provider: str | None = Field(None, description="A provider name of the config.")
    metadata: dict[str, str] | None = Field(None, description="Metadata values that must all match.")

    @property
    def is_global(self) -> bool:
        return not (self.key or self.user_id or self.provider or self.metadata)

    def matches(self, key: str | None, provider: str | None, metadata: dict[str, Any]) -> bool:
        """Does a request of this gateway key, provider and metadata count toward the scope?"""
        if self.key is not None and self.key != key:
            return False
        if self.provider is not None and self.provider != provider:
            return False
        if self.user_id is not None and metadata.get("user_id") != self.user_id:
            return False
        return not self.metadata or all(metadata.get(k) == v for k, v in self.metadata.items())

    def metadata_keys(self) -> set[str]:
        return set(self.metadata or ()) | ({"user_id"} if self.user_id is not None else set())

    def label(self) -> str:
        if self.is_global:
            return "global"
        parts = [f"{k}={v}" for k, v in (("key", self.key), ("user_id", self.user_id),
                                          ("provider", self.provider)) if v is not None]
        parts += [f"metadata.{k}={v}" for k, v in sorted((self.metadata or {}).items())]
        return ",".join(parts)


class _Scoped(_Strict):
    scope: Scope = Field(default_factory=Scope, description="`global` (the default) or a Scope mapping.")

    @field_validator("scope", mode="before")
    @classmethod
    def _global(cls, v: Any) -> Any:
        return {} if v is None or v == "global" else v


class _Periodic(_Scoped):
    period: str = Field("daily", description="daily | weekly | monthly | total | a duration (30s, 5m, 1h, 1d).")

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        parse_period(v)  # ValueError naming the accepted forms
        return v


class BudgetConfig(_Periodic):
    name: str | None = Field(None, description="Shown in /v1/admin/budgets and refusals; default from the scope.")
    limit: float = Field(gt=0, description="USD per period.")
    action: Literal["block", "alert_only"] = "block"
    max_output_tokens: int = Field(4096, ge=1, description=(
        "Output tokens assumed for the worst-case reservation when a request sets no max_tokens."))

    @model_validator(mode="after")
    def _named(self) -> BudgetConfig:
        if self.name is None:
            self.name = f"{self.scope.label()}/{self.period}"
        return self


class WebhookChannel(_Strict):
    type: Literal["webhook"]
    url: SecretStr = Field(description="Receives a JSON POST; may hold a token, so it is never logged.")
    retries: int = Field(3, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _http(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class EmailChannel(_Strict):
    type: Literal["email"]
    address: str | list[str]
    retries: int = Field(3, ge=0, le=10)

    @property
    def recipients(self) -> list[str]:
        return [self.address] if isinstance(self.address, str) else list(self.address)


class PagerDutyChannel(_Strict):
    type: Literal["pagerduty"]
    integration_key: SecretStr = Field(description="The Events API v2 routing key.")
    url: str = Field(PAGERDUTY_URL, description="Events API v2 enqueue endpoint (set for a local receiver).")
    severity: Literal["critical", "error", "warning", "info"] = "warning"
    retries: int = Field(3, ge=0, le=10)


Channel = Annotated[WebhookChannel | EmailChannel | PagerDutyChannel, Field(discriminator="type")]


class BudgetAlertConfig(_Periodic):
    type: Literal["budget"]
    threshold: float = Field(gt=0, description="USD in one period.")
    notify_at: list[float] = Field(default_factory=lambda: [1.0], description="Fractions of the threshold.")
    channels: list[Channel] = Field(default_factory=list)

    @field_validator("notify_at")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < f <= 10 for f in v):
            raise ValueError("must list fractions of the threshold, each in (0, 10]")
        return sorted(set(v))


class AnomalyAlertConfig(_Scoped):
    type: Literal["anomaly"]
    baseline_multiplier: float = Field(gt=0)
    window: str = "1h"
    baseline_windows: int = Field(24, ge=1, le=1000, description="How many preceding windows are averaged.")
    min_spend: float = Field(0.0, ge=0, description="The window's spend must also exceed this (USD).")
    channels: list[Channel] = Field(default_factory=list)

    @field_validator("window")
    @classmethod
    def _duration(cls, v: str) -> str:
        if parse_period(v).calendar:
            raise ValueError("must be a duration such as 30s, 5m, 1h or 1d")
        return v


AlertConfig = Annotated[BudgetAlertConfig | AnomalyAlertConfig, Field(discriminator="type")]


class SmtpConfig(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    from_: str = Field(alias="from")
    timeout_s: float = Field(10.0, gt=0)


def check_spend_settings(cfg: Any) -> None:
    """Cross-references: pricing and scopes name configured providers and keys; email needs `smtp`."""
    src = cfg.source
    providers = cfg.providers
    types = {p.type for p in providers.values()}
    for name in cfg.pricing:
        if name not in providers and name not in types:
            raise ConfigError(src, f"pricing.{name}", "is neither a configured provider nor a provider type")
    key_ids = {k.id for k in cfg.gateway.api_keys}
    seen: set[str] = set()
    for i, budget in enumerate(cfg.budgets):
        _check_scope(cfg, f"budgets[{i}].scope", budget.scope, key_ids)
        if budget.name in seen:
            raise ConfigError(src, f"budgets[{i}].name", f"duplicate budget name {budget.name!r}")
        seen.add(budget.name)  # type: ignore[arg-type]
    for name, alert in cfg.alerts.items():
        _check_scope(cfg, f"alerts.{name}.scope", alert.scope, key_ids)
        for j, channel in enumerate(alert.channels):
            if channel.type == "email" and cfg.smtp is None:
                raise ConfigError(src, f"alerts.{name}.channels[{j}]", "an email channel needs the smtp: section")


def _check_scope(cfg: Any, path: str, scope: Scope, key_ids: set[str]) -> None:
    if scope.provider is not None and scope.provider not in cfg.providers:
        raise ConfigError(cfg.source, f"{path}.provider", f"unknown provider {scope.provider!r}")
    if scope.key is not None and key_ids and scope.key not in key_ids:
        raise ConfigError(cfg.source, f"{path}.key", f"unknown gateway key id {scope.key!r}")


__all__ = ["AlertConfig", "AnomalyAlertConfig", "BudgetAlertConfig", "BudgetConfig", "Channel", "EmailChannel",
           "ModelPrice", "PAGERDUTY_URL", "PagerDutyChannel", "Scope", "SmtpConfig", "WebhookChannel",
           "check_spend_settings"]
