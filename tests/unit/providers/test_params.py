"""The one mechanism for OpenAI fields a provider type's API does not take (deployments/providers/params.py):
what is dropped, what is refused and with which error, per-model rules, and the registry's view of it."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.providers import registry
from deployments.providers.params import Params, apply_params
from serve_app.errors import GatewayError

RULES = Params(drop=frozenset({"store"}), reject=frozenset({"logprobs", "parallel_tool_calls"}), max_n=1,
               models=(("big-", Params(reject=frozenset({"stop"}))),))


def apply(body: dict[str, Any], model: str = "small") -> dict[str, Any]:
    apply_params(RULES, body, "p", "sometype", model)
    return body


@pytest.mark.parametrize("body, param, tail", [
    ({"logprobs": True}, "logprobs", ""),
    ({"parallel_tool_calls": False}, "parallel_tool_calls", ""),  # on by default: false asks for something
    ({"n": 2}, "n", " above 1"),
    ({"stop": ["x"]}, "stop", " for model 'big-1'"),
])
def test_refused_with_the_field_and_the_type_named(body: dict[str, Any], param: str, tail: str) -> None:
    with pytest.raises(GatewayError) as exc:
        apply(body, "big-1")
    err = exc.value
    assert (err.status, err.type, err.param, err.code) == (400, "invalid_request_error", param,
                                                           "unsupported_parameter")
    assert err.message == f"provider 'p' (type sometype) does not support '{param}'{tail}"


def test_values_asking_for_nothing_are_dropped_not_refused() -> None:
    body = apply({"model": "m", "logprobs": False, "parallel_tool_calls": None, "store": True, "n": 1,
                  "stop": ["x"]})
    assert body == {"model": "m", "n": 1, "stop": ["x"]}  # `stop` is refused for big-* only


def test_the_registry_entry_shows_what_each_type_does_with_a_field() -> None:
    groq = registry.get("groq")
    assert groq is not None and groq.unsupported_params["logit_bias"] == "reject"
    assert groq.unsupported_params["store"] == "drop"
    assert registry.get("anthropic").unsupported_params == {}  # type: ignore[union-attr]
