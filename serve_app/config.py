"""The gateway's configuration: one YAML file, validated once at start-up into pydantic models.

Loading expands `${VAR}` / `${VAR:-default}` from the environment, then validates; the failures are
one `ConfigError` that lists every problem found (`file: key.path: reason (got <value>)`, secrets
masked, what is allowed where the model knows it), not just the first. Provider sections are
validated by the config model their `type` declares in the provider registry, so a provider's
own fields live in its module. The request path reads plain attributes of these models.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deployments.cache.config import CacheConfig, check_strategy_cache_settings
from deployments.guardrails.config import GuardrailsConfig, check_guardrails
from deployments.observability.config import ObservabilityConfig, check_observability
from deployments.providers import registry as provider_registry
from deployments.prompts.config import PromptsConfig
from deployments.providers.base import ProviderConfig
from deployments.ratelimit.config import RateLimits
from deployments.router.config import StrategyConfig
from deployments.spend.config import AlertConfig, BudgetConfig, ModelPrice, SmtpConfig, check_spend_settings
from deployments.router.tree import check_strategies

from .errors import ConfigError
from .secret_url import SecretUrl, masked_url
from .storage.config import StorageConfig

__all__ = ["ConfigError", "GatewayConfig", "load_config", "parse_config", "resolve_config"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ApiKey(StrictModel):
    id: str = Field(description="Name of the key in logs and metrics; never the key itself.")
    key: SecretStr = Field(description="The bearer token clients send.")

    @field_validator("key")
    @classmethod
    def _not_empty(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("must not be empty")
        return v


class GatewaySection(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: list[ApiKey] = Field(default_factory=list)
    admin_keys: list[ApiKey] = Field(default_factory=list)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) whose X-Forwarded-For is believed for the client IP; empty: the peer.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an IP network (e.g. 10.0.0.0/8 or 127.0.0.1)") from None
        return v


class ModelTarget(StrictModel):
    provider: str
    model: str | None = None


Placement = Literal["in_process", "deployment"]


class PlacementSection(StrictModel):
    """Where each stage runs: inside its caller's replica (no hop) or as its own deployment."""

    router: Placement = "in_process"
    providers: Placement = "in_process"
    # auto: checks that hold a model in the Guardrails deployment, rule checks in-process
    guardrails: Literal["auto", "in_process", "deployment"] = "auto"


def _replica_count(value: Any) -> int | Literal["auto"]:
    """`auto` or a whole number of replicas, at least 1 (the message never echoes the value)."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be 'auto' or a whole number of replicas, at least 1")
    return value


ReplicaCount = Annotated[int | Literal["auto"], BeforeValidator(_replica_count)]


class StageScaling(StrictModel):
    """Serve autoscaling of one stage deployment (Router, Provider:<name>, SemanticCache).

    Defaults (reasoning in docs/architecture.md, "Stage deployments"): one replica when idle; at most
    one replica per CPU of the cluster (`auto`), as for the ingress; a new replica once a replica holds
    more than a quarter of `serve.max_ongoing_requests` in flight. The delays and the look-back window
    are Serve's own defaults.
    """

    min_replicas: int = Field(1, ge=1, description="Replicas kept when idle.")
    initial_replicas: int | None = Field(None, ge=1, description="At deploy time; default min_replicas.")
    max_replicas: ReplicaCount = Field("auto", description="`auto`: the cluster's CPUs when the app is built.")
    target_ongoing_requests: float | None = Field(
        None, gt=0, description="In-flight requests per replica Serve scales towards; "
                                "default a quarter of serve.max_ongoing_requests.")
    upscale_delay_s: float = Field(30, ge=0, description="Load above target this long adds a replica.")
    downscale_delay_s: float = Field(600, ge=0, description="Load below target this long removes one.")
    look_back_period_s: float = Field(
        30, gt=10, description="Window over which in-flight counts are averaged; longer than the 10 s at "
                               "which handles report them (Serve warns below that, and will refuse it).")

    @model_validator(mode="after")
    def _ordered(self) -> StageScaling:
        top = None if self.max_replicas == "auto" else self.max_replicas
        if self.initial_replicas is not None and self.initial_replicas < self.min_replicas:
            raise ValueError("initial_replicas must be at least min_replicas")
        for key in ("min_replicas", "initial_replicas"):
            value = getattr(self, key)
            if top is not None and value is not None and value > top:
                raise ValueError(f"{key} must not exceed max_replicas")
        return self


STAGE_NAME = re.compile(r"Router|SemanticCache|Provider:.+")


class ServeSection(StrictModel):
    """Serve options the builder applies; a Serve config's `deployments:` list can still override."""

    ingress_replicas: ReplicaCount = Field(
        "auto", description="A number: exactly that many ingress replicas. `auto`: autoscaled between 1 and "
                            "the cluster's CPU count when the app is built, starting at that count.")
    max_ongoing_requests: int = Field(256, ge=1)
    stages: StageScaling = Field(default_factory=StageScaling, description="Every stage deployment.")
    stage_overrides: dict[str, StageScaling] = Field(
        default_factory=dict, description="By deployment name (Router, SemanticCache, Provider:<name>): "
                                          "keys that replace those of `stages` for that deployment.")
    request_timeout_s: float = Field(900, gt=0)

    @field_validator("stage_overrides")
    @classmethod
    def _known_stage_names(cls, v: dict[str, StageScaling], info: ValidationInfo) -> dict[str, StageScaling]:
        stages = info.data.get("stages", StageScaling())
        for name, override in v.items():
            if not STAGE_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a stage deployment "
                                 "(Router, SemanticCache, Provider:<name>)")
            try:
                _merge(stages, override)
            except ValidationError as exc:
                raise ValueError(f"{name}: " + exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return v

    def scaling(self, deployment: str) -> StageScaling:
        """The autoscaling settings of one stage deployment: `stages`, then its override."""
        override = self.stage_overrides.get(deployment)
        return self.stages if override is None else _merge(self.stages, override)


def _merge(base: StageScaling, override: StageScaling) -> StageScaling:
    merged = {**base.model_dump(exclude_unset=True), **override.model_dump(exclude_unset=True)}
    return StageScaling.model_validate(merged)


class GatewayConfig(StrictModel):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, str | ModelTarget] = Field(default_factory=dict)
    default_provider: str | None = None
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    placement: PlacementSection = Field(default_factory=PlacementSection)
    serve: ServeSection = Field(default_factory=ServeSection)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    pricing: dict[str, dict[str, ModelPrice]] = Field(default_factory=dict, description=(
        "USD per million tokens by provider (name or type) and upstream model ('*': any); see docs/spend.md."))
    budgets: list[BudgetConfig] = Field(default_factory=list)
    alerts: dict[str, AlertConfig] = Field(default_factory=dict)
    smtp: SmtpConfig | None = None
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    source: str = Field("<dict>", exclude=True, description="Where the config came from.")

    def __repr_args__(self):  # SecretStr already masks keys; keep the source path visible
        return [(k, v) for k, v in super().__repr_args__() if k != "source"] + [("source", self.source)]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def expand_env(value: Any, source: str, path: str = "", env: dict[str, str] | None = None,
               errors: list[tuple[str, str]] | None = None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string of a YAML tree.

    A missing variable is appended to `errors` when given (the caller reports them all), else raised."""
    env = os.environ if env is None else env
    own = errors is None
    errors = [] if errors is None else errors
    out = _expand(value, path, env, errors)
    if own and errors:
        raise ConfigError.collected(source, errors)
    return out


def _expand(value: Any, path: str, env: Mapping[str, str], errors: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, _join(path, k), env, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", env, errors) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        errors.append((path, f"environment variable {name} is not set"))
        return ""

    return _VAR.sub(sub, value)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, part)
    return out


_SECRET_KEY = re.compile(r"(^|_)(key|secret|password|token|credentials?)$|api_key", re.IGNORECASE)


def _shown(path: str, value: Any, field_type: Any = None) -> str:
    """The bad value for an error line. Masked when the key names a secret or the field is a secret
    type (a SecretUrl shows its URL with the credentials masked); an object or an array is only
    named (a section that failed as a whole holds its secrets too); anything else shortened."""
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    secret = _secret_type(field_type)
    if secret is SecretUrl and isinstance(value, str):
        return repr(masked_url(value))
    if secret is not None or _SECRET_KEY.search(leaf):
        return "'****'"
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _secret_type(field_type: Any) -> type | None:
    """SecretUrl or SecretStr when `field_type` is (or, as `X | None`, holds) one."""
    import typing

    for candidate in (field_type, *typing.get_args(field_type)):
        if isinstance(candidate, type) and issubclass(candidate, SecretStr):
            return SecretUrl if issubclass(candidate, SecretUrl) else SecretStr
    return None


def _type_at(model: Any, loc: tuple[Any, ...]) -> Any:
    """The declared type at `loc` under `model`, when it can tell (None otherwise)."""
    import typing

    node: Any = model
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return None
            node = field.annotation
        else:  # dict[str, X] or list[X] (or X | None): step into the value type
            args = [a for a in typing.get_args(node) if a is not type(None)]
            if not args:
                return None
            node = args[-1]
        args = [a for a in typing.get_args(node) if isinstance(a, type) and issubclass(a, BaseModel)]
        if args and not (isinstance(node, type) and issubclass(node, BaseModel)):
            node = args[0] if len(args) == 1 else node
    return node


def _allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys the model accepts at `loc` (the parent of an unknown key), when it can tell."""
    node = _type_at(model, loc)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [name for name in node.model_fields if name not in ("source", "name")]
    return None


def _validation_errors(prefix: str, exc: ValidationError, model: Any) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        path = _join(prefix, _loc(err["loc"])) if err["loc"] else prefix
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, tuple(err["loc"][:-1]))
            msg = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif err["type"] == "missing":
            msg = err["msg"]
        else:
            field_type = _type_at(model, tuple(err["loc"]))
            msg = f"{err['msg']} (got {_shown(path, err.get('input'), field_type)})"
        out.append((path, msg))
    return out


def parse_config(raw: Any, source: str = "<dict>") -> GatewayConfig:
    """Validate an already-loaded YAML tree (env vars expanded here) into a GatewayConfig.

    Every problem is collected and raised as one ConfigError; reference checks run only on a
    config that validated (they would repeat its errors)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, "", "the top level must be a mapping")
    errors: list[tuple[str, str]] = []
    raw = expand_env(raw, source, errors=errors)
    providers_raw = raw.get("providers") or {}
    if not isinstance(providers_raw, dict):
        errors.append(("providers", "must be a mapping of provider name to settings"))
        providers_raw = {}
    providers: dict[str, ProviderConfig] = {}
    for name, section in providers_raw.items():
        parsed = _parse_provider(str(name), section, errors)
        if parsed is not None:
            providers[str(name)] = parsed
    rest = {k: v for k, v in raw.items() if k != "providers"}
    cfg = None
    try:
        cfg = GatewayConfig.model_validate({**rest, "source": source})
    except ValidationError as exc:
        errors.extend(_validation_errors("", exc, GatewayConfig))
    if cfg is not None:
        cfg.providers = providers
        errors.extend(_reference_errors(cfg, {str(n) for n in providers_raw}))
    if errors:
        unset = {path for path, reason in errors if reason.startswith("environment variable ")}
        # A value left empty by an unset variable fails validation too: report the variable only.
        raise ConfigError.collected(source, [(path, reason) for path, reason in errors if path not in unset
                                             or reason.startswith("environment variable ")])
    assert cfg is not None
    return cfg


def _parse_provider(name: str, section: Any, errors: list[tuple[str, str]]) -> ProviderConfig | None:
    path = f"providers.{name}"
    if not isinstance(section, dict):
        errors.append((path, "must be a mapping"))
        return None
    ptype = section.get("type")
    if ptype is None:
        known = ", ".join(sorted(provider_registry.names()))
        errors.append((f"{path}.type", f"is required (one of: {known})"))
        return None
    spec = provider_registry.get(ptype)
    if spec is None:
        known = ", ".join(sorted(provider_registry.names()))
        errors.append((f"{path}.type", f"unknown provider type {ptype!r} (known: {known})"))
        return None
    try:
        return spec.config_model.model_validate({**section, "name": name})
    except ValidationError as exc:
        errors.extend(_validation_errors(path, exc, spec.config_model))
        return None


def _reference_errors(cfg: GatewayConfig, declared: set[str]) -> list[tuple[str, str]]:
    """Names that point nowhere. `declared` includes providers that failed to parse (already
    reported), so a reference to one of them is not reported twice."""
    errors = _duplicate_key_errors(cfg)
    if cfg.default_provider is not None and cfg.default_provider not in declared:
        errors.append(("default_provider", f"unknown provider {cfg.default_provider!r} "
                                           f"(configured: {', '.join(sorted(declared)) or 'none'})"))
    for model, target in cfg.models.items():
        path = f"models.{model}"
        if isinstance(target, str):
            if target not in declared and target not in cfg.strategies:
                errors.append((path, f"{target!r} is neither a provider nor a strategy"))
        elif target.provider not in declared:
            errors.append((f"{path}.provider", f"unknown provider {target.provider!r}"))
    if declared != set(cfg.providers):
        return errors  # strategy checks would name the providers that failed to parse again
    for check in (check_strategies, check_strategy_cache_settings, check_guardrails,
                  check_spend_settings, check_observability):  # each reports its first problem
        try:
            check(cfg)
        except ConfigError as exc:
            errors.extend(exc.errors)
    return errors


def _duplicate_key_errors(cfg: GatewayConfig) -> list[tuple[str, str]]:
    errors = []
    for section in ("api_keys", "admin_keys"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(cfg.gateway, section)):
            if entry.id in seen:
                errors.append((f"gateway.{section}[{i}].id", f"duplicate id {entry.id!r}"))
            seen.add(entry.id)
    return errors


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read, expand and validate a gateway config file."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(source, "", f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_config(raw, source)


def resolve_config(config: GatewayConfig | dict[str, Any] | str | os.PathLike[str]) -> GatewayConfig:
    """Accept a loaded config, a raw dict or a file path (the builder's and the CLI's inputs)."""
    if isinstance(config, GatewayConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)
