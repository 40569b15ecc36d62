"""The `guardrails:` section: named sets of checks, and where sets apply besides the request.

```yaml
guardrails:
  input-validation:              # a set: its checks, in order
    - type: keyword_filter
      blocklist: ["password", "ssn"]
      action: block
  output-validation:
    - type: response_format
      required_schema: {type: json_object}
      action: retry
  defaults: [input-validation]   # every request
  keys: {team-a: [output-validation]}        # requests with that gateway key id
  strategies: {production: [output-validation]}   # requests routed by that strategy
  targets: {openai-primary: [output-validation]}  # answers from that provider / route (output only)
  stream_window: 100             # characters of streamed text between two runs of the output checks
  deployment: {min_replicas: 1, max_replicas: 2}   # the guardrail deployment's autoscaling
```
Every other key is a set. A check's own fields are validated by its type's model (registry.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field

from serve_app.errors import ConfigError

from .registry import CHECK_TYPES, config_models

# one model per check type, chosen by `type`; built from the registry's rows
AnyCheck = Annotated[Union[tuple(config_models())], Field(discriminator="type")]  # noqa: UP007
RESERVED = ("defaults", "keys", "strategies", "targets", "stream_window", "deployment")


class DeploymentOptions(BaseModel):
    """The guardrail deployment's autoscaling (it holds the models, so it scales on its own)."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(2, ge=1)
    target_ongoing: int = Field(8, ge=1, description="Ongoing calls per replica the autoscaler aims for.")
    num_cpus: float = Field(0, ge=0, description="CPU reserved by each replica.")


class GuardrailsConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, list[AnyCheck]] = Field(init=False)  # the sets

    defaults: list[str] = Field(default_factory=list, description="Sets applied to every request.")
    keys: dict[str, list[str]] = Field(default_factory=dict, description="Gateway key id -> sets.")
    strategies: dict[str, list[str]] = Field(default_factory=dict, description="Strategy name -> sets.")
    targets: dict[str, list[str]] = Field(default_factory=dict,
                                          description="Provider name or route -> sets (output checks only: "
                                                      "the answering target is known once it answered).")
    stream_window: int = Field(100, ge=0, le=100_000,
                               description="Streamed characters between runs of the output checks; text is "
                                           "sent only once checked, so this is also the largest burst held.")

    deployment: DeploymentOptions = Field(default_factory=DeploymentOptions)

    @property
    def sets(self) -> dict[str, list[Any]]:
        return dict(self.__pydantic_extra__ or {})


def check_guardrails(cfg: Any) -> None:
    """Cross-references of the section, with the gateway config's paths in errors."""
    g: GuardrailsConfig = cfg.guardrails
    src, sets = cfg.source, g.sets
    for name, checks in sets.items():
        for i, check in enumerate(checks):
            path = f"guardrails.{name}[{i}]"
            spec = CHECK_TYPES[check.type]
            if check.action not in spec.actions:
                raise ConfigError(src, f"{path}.action", f"{check.type} cannot {check.action} "
                                                         f"(it can: {', '.join(sorted(spec.actions))})")
            if check.action == "retry" and (check.stage or spec.stage) != "output":
                raise ConfigError(src, f"{path}.action",
                                  "retry applies to output checks only (set stage: output)")
    key_ids = {k.id for k in cfg.gateway.api_keys}
    owners = {"keys": ("key", key_ids), "strategies": ("strategy", set(cfg.strategies)),
              "targets": ("target", None)}
    for i, name in enumerate(g.defaults):
        if name not in sets:
            raise ConfigError(src, f"guardrails.defaults[{i}]", f"unknown guardrail set {name!r}")
    for section, (what, known) in owners.items():
        for owner, names in getattr(g, section).items():
            if known is not None and owner not in known:
                raise ConfigError(src, f"guardrails.{section}.{owner}", f"no such {what} {owner!r}")
            for i, name in enumerate(names):
                if name not in sets:
                    raise ConfigError(src, f"guardrails.{section}.{owner}[{i}]",
                                      f"unknown guardrail set {name!r}")


def holds_models(g: GuardrailsConfig) -> bool:
    return any(CHECK_TYPES[c.type].holds_model for checks in g.sets.values() for c in checks)
