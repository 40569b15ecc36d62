"""`discover_models`: each provider type's listing request and how its body is read."""

from __future__ import annotations

import orjson
import pytest

from deployments.providers import registry


def adapter(ptype: str, **fields: object):  # noqa: ANN201
    spec = registry.get(ptype)
    assert spec is not None
    return spec.adapter(spec.config_model.model_validate({"name": "p", "type": ptype, "api_key": "k", **fields}))


@pytest.mark.parametrize(("ptype", "fields", "url", "auth", "body", "ids"), [
    ("openai", {}, "https://api.openai.com/v1/models", ("authorization", "Bearer k"),
     {"data": [{"id": "gpt-4o"}, {"id": "o3"}]}, ["gpt-4o", "o3"]),
    ("groq", {}, "https://api.groq.com/openai/v1/models", ("authorization", "Bearer k"),
     {"data": [{"id": "llama-3.3-70b"}]}, ["llama-3.3-70b"]),
    ("azure-openai", {"resource_name": "r", "deployment_id": "d", "api_version": "2024-10-21"},
     "https://r.openai.azure.com/openai/models?api-version=2024-10-21", ("api-key", "k"),
     {"data": [{"id": "gpt-4o"}]}, ["gpt-4o"]),
    ("anthropic", {}, "https://api.anthropic.com/v1/models?limit=1000", ("x-api-key", "k"),
     {"data": [{"id": "claude-sonnet-4", "type": "model"}], "has_more": False}, ["claude-sonnet-4"]),
    ("google", {}, "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000", ("x-goog-api-key", "k"),
     {"models": [{"name": "models/gemini-2.5-flash"}]}, ["gemini-2.5-flash"]),
    ("cohere", {}, "https://api.cohere.com/v1/models?page_size=1000", ("authorization", "Bearer k"),
     {"models": [{"name": "command-a-03-2025"}]}, ["command-a-03-2025"]),
    ("ollama", {}, "http://127.0.0.1:11434/api/tags", None,
     {"models": [{"name": "llama3.2:latest"}]}, ["llama3.2:latest"]),
])
def test_listing(ptype: str, fields: dict, url: str, auth: tuple[str, str] | None, body: dict, ids: list[str]) -> None:
    a = adapter(ptype, **fields)
    req = a.models_request()
    assert req is not None and req.method == "GET" and req.url == url
    if auth:
        assert {k.lower(): v for k, v in req.headers.items()}[auth[0]] == auth[1]
    assert a.models_response(orjson.dumps(body)) == ids


def test_types_without_a_listing() -> None:
    assert adapter("bedrock", region="us-east-1").models_request() is None
