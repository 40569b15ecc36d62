"""Parameters a provider type does not support are dropped or rejected as its registry entry states
(`unsupported_params` in deployments/providers/spec.py), before translation: never forwarded into an
upstream 400 that reads as the gateway's fault. The mocks reject those fields as the real APIs do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from deployments.providers import registry
from tests.support.mockservers.openai_like import OpenAILikeMock
from tests.support.providers import strict_client

KEY = "test-key"
MSG = [{"role": "user", "content": "chat"}]


@pytest.fixture(params=["groq", "mistral"])
def served(
    request: pytest.FixtureRequest, gateway: Any
) -> Iterator[tuple[str, OpenAILikeMock, openai.OpenAI]]:
    with OpenAILikeMock(request.param, api_key=KEY) as mock:
        url = gateway(
            {
                "providers": {"p": {"type": request.param, "base_url": mock.base_url, "api_key": KEY}},
                "default_provider": "p",
            }
        )
        yield request.param, mock, strict_client(url)


@pytest.mark.parametrize(
    "field,value", [("logprobs", True), ("top_logprobs", 3), ("logit_bias", {"50256": -100})]
)
def test_rejected_with_the_field_named(
    served: tuple[str, OpenAILikeMock, openai.OpenAI], field: str, value: Any
) -> None:
    kind, mock, client = served
    assert registry.get(kind).unsupported_params[field] == "reject"  # type: ignore[union-attr]
    before = len(mock.requests)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="m", messages=MSG, stream=stream, **{field: value})
        err = exc.value
        assert (err.type, err.param, err.code) == ("invalid_request_error", field, "unsupported_parameter")
        assert f"(type {kind}) does not support '{field}'" in err.message
    assert len(mock.requests) == before  # no upstream call


def test_unset_values_are_dropped_not_rejected(served: tuple[str, OpenAILikeMock, openai.OpenAI]) -> None:
    _, mock, client = served
    resp = client.chat.completions.create(
        model="m", messages=MSG, logprobs=False, extra_body={"logit_bias": None}
    )
    assert resp.choices[0].message.content
    assert not {"logprobs", "logit_bias"} & set(mock.last("/chat/completions").json)
