"""What a prompt version is: the deploy request checked into stored content, a compiled version ready
to render, and a replica's view of one prompt (versions, labels, tests) that resolves which version
a render uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from serve_app.errors import bad_request, not_found
from serve_app.protocol import check_chat_request

from . import versions as semver
from .renderer import MessagesTemplate, TemplateError, compile_messages
from .split import Split

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_LABEL = "production"
DEPLOY_FIELDS = frozenset({"version", "messages", "prompt", "model", "parameters", "provider", "config",
                           "description", "labels"})
# request fields a prompt version owns (or the render request sets), never its `parameters`
NOT_PARAMETERS = frozenset({"messages", "model", "stream", "stream_options", "metadata", "provider", "config",
                            "cache", "guardrails"})
MAX_LABELS = 20


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise bad_request(f"{what} {value!r} is not valid: 1-128 letters, digits, '_', '.', '-' "
                          "(starting with a letter or digit)", param=what, code=f"invalid_{what}")
    return value


def check_version(value: Any, param: str = "version") -> str:
    if not isinstance(value, str) or not semver.is_semver(value):
        raise bad_request(f"'{param}' must be a semantic version such as 1.2.0 or 1.3.0-beta, got {value!r}",
                          param=param, code="invalid_version")
    return value


def parse_deploy(body: dict[str, Any] | None) -> tuple[str, dict[str, Any], list[str]]:
    """(version, content to store, labels to move) from a deploy request; 400 naming the bad field."""
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    unknown = sorted(set(body) - DEPLOY_FIELDS)
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} in a prompt version", param=unknown[0],
                          code="unknown_parameter")
    version = check_version(body.get("version"))
    if "messages" in body and "prompt" in body:
        raise bad_request("send 'messages' or 'prompt' (the same thing), not both", param="prompt")
    messages = body.get("messages", body.get("prompt"))
    model, parameters = body.get("model"), body.get("parameters") or {}
    provider, config, description = body.get("provider"), body.get("config"), body.get("description")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array of messages", param="messages",
                          code="missing_required_parameter" if messages is None else "invalid_type")
    if model is not None and not isinstance(model, str):
        raise bad_request("'model' must be a string", param="model", code="invalid_type")
    if not isinstance(parameters, dict):
        raise bad_request("'parameters' must be an object of chat completion parameters", param="parameters",
                          code="invalid_type")
    owned = sorted(NOT_PARAMETERS & set(parameters))
    if owned:
        raise bad_request(f"'parameters.{owned[0]}' is not a parameter: set it as its own field or on the "
                          "render request", param=f"parameters.{owned[0]}")
    if provider is not None and not isinstance(provider, str):
        raise bad_request("'provider' must be a string", param="provider", code="invalid_type")
    if config is not None and not isinstance(config, dict | str):
        raise bad_request("'config' must be an object or a strategy name", param="config", code="invalid_type")
    if provider is not None and config is not None:
        raise bad_request("send 'provider' or 'config', not both", param="config")
    if description is not None and (not isinstance(description, str) or len(description) > 4000):
        raise bad_request("'description' must be a string of at most 4000 characters", param="description")
    labels = body.get("labels") or []
    if not isinstance(labels, list) or len(labels) > MAX_LABELS:
        raise bad_request(f"'labels' must be an array of at most {MAX_LABELS} names", param="labels")
    labels = list(dict.fromkeys(check_name(label, "label") for label in labels))
    check_chat_request({**parameters, "model": model, "messages": messages})  # the types a render will send
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(f"'messages[{i}].content' must be a string or an array of content parts",
                              param=f"messages[{i}].content", code="invalid_type")
    try:
        compile_messages(messages)
    except TemplateError as exc:
        raise bad_request(str(exc), param="messages", code="invalid_template") from None
    content = {"messages": messages, "model": model, "parameters": parameters, "provider": provider,
               "config": config, "description": description}
    return version, content, labels


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    version: str
    template: MessagesTemplate
    request: dict[str, Any]  # the chat request without messages: model, parameters, provider/config

    @classmethod
    def from_row(cls, name: str, version: str, row: dict[str, Any]) -> CompiledVersion:
        content = row["content"]
        request = {**(content.get("parameters") or {})}
        for key in ("model", "provider", "config"):
            if content.get(key) is not None:
                request[key] = content[key]
        return cls(version, compile_messages(content["messages"]), request)

    @property
    def variables(self) -> list[str]:
        return sorted(self.template.variables)


@dataclass(slots=True)
class PromptView:
    """One prompt as a replica holds it (deployments/prompts/cache.py)."""

    name: str
    revision: int
    versions: dict[str, CompiledVersion]
    labels: dict[str, str]
    tests: dict[str, dict[str, Any]]
    splits: dict[str, Split] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.splits = {test: Split.of(test, spec["versions"], spec.get("sticky_key"))
                       for test, spec in self.tests.items()}

    def version(self, version: str, param: str = "version") -> CompiledVersion:
        found = self.versions.get(version)
        if found is None:
            raise not_found(f"prompt {self.name!r} has no version {version!r}", code="prompt_version_not_found",
                            param=param)
        return found

    def base(self, version: str | None, label: str | None) -> str:
        """The version a render asked for: by `version`, by `label`, else the `production` label, else the
        latest release."""
        if version is not None:
            return self.version(version).version
        if label is not None:
            found = self.labels.get(label)
            if found is None:
                raise not_found(f"prompt {self.name!r} has no label {label!r}", code="prompt_label_not_found",
                                param="label")
            return found
        if DEFAULT_LABEL in self.labels:
            return self.labels[DEFAULT_LABEL]
        latest = semver.latest(self.versions)
        if latest is None:
            raise not_found(f"prompt {self.name!r} has no versions", code="prompt_version_not_found",
                            param="version")
        return latest
