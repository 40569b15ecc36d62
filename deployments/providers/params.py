"""The OpenAI chat fields a provider type's API does not take: declared as data, applied in one place.

An OpenAI-like type declares `params = Params(...)` on its adapter (presets through `Preset.params`);
`OpenAICompatAdapter.prepare_chat` applies it to every chat request, before anything else in the
translation, so a field the API would answer with a 4xx never reaches it as an upstream error that
reads as the gateway's fault. Native adapters (anthropic, cohere, google, bedrock, ollama native)
build their bodies from the fields they know, so nothing unknown reaches their APIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from serve_app import errors as E

# Flags whose OpenAI default is on: there `false` asks for something (no parallel tool calls), so it
# can be refused; for every other field null and false ask for nothing and are just dropped.
_ON_BY_DEFAULT = frozenset({"parallel_tool_calls"})

UnsupportedAction = Literal["drop", "reject"]


@dataclass(frozen=True)
class Params:
    """What happens to OpenAI request fields the API does not take.

    `drop`: removed before sending (the API ignores them, or they change nothing the client gets).
    `reject`: a 400 `unsupported_parameter` naming the field and the type, before any upstream call
    (the API refuses them, and dropping them would silently change the answer); a value that asks
    for nothing (null, or false for a flag that is off by default) is dropped instead.
    `max_n`: the most choices (`n`) one request may ask for (None: no limit).
    `models`: rules for some models only, by model-name prefix (the first match applies, on top).
    """

    drop: frozenset[str] = frozenset()
    reject: frozenset[str] = frozenset()
    max_n: int | None = None
    models: tuple[tuple[str, Params], ...] = ()

    def actions(self) -> dict[str, UnsupportedAction]:
        """Field -> what happens to it for every model (the per-model rules aside)."""
        return {**dict.fromkeys(self.drop, "drop"), **dict.fromkeys(self.reject, "reject")}


NO_PARAMS = Params()


def apply_params(params: Params, body: dict[str, Any], name: str, provider_type: str, model: str) -> None:
    """Drop or refuse, in `body`, what `params` (and its first rule matching `model`) declares."""
    _apply(params, body, name, provider_type, "")
    for prefix, rules in params.models:
        if model.startswith(prefix):
            _apply(rules, body, name, provider_type, f" for model {model!r}")
            break


def _apply(params: Params, body: dict[str, Any], name: str, provider_type: str, scope: str) -> None:
    for key in params.reject:
        if key in body:
            value = body.pop(key)
            if value is not None and (value is not False or key in _ON_BY_DEFAULT):
                raise _unsupported(name, provider_type, key, scope)
    n = body.get("n")
    if params.max_n is not None and isinstance(n, int) and n > params.max_n:
        raise _unsupported(name, provider_type, "n", f" above {params.max_n}{scope}")
    for key in params.drop:
        body.pop(key, None)


def _unsupported(name: str, provider_type: str, key: str, detail: str) -> E.GatewayError:
    return E.bad_request(f"provider {name!r} (type {provider_type}) does not support {key!r}{detail}",
                         param=key, code="unsupported_parameter")
