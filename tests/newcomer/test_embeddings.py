"""`encoding_format` both ways, for every provider type that serves embeddings, through the official SDKs.

Both SDKs ask for base64 by default and decode it themselves (the Node SDK decodes whatever comes
back, so floats sent for a base64 request decode to garbage). For each type, behind its mock
upstream: the Node SDK's default call, its explicit float and base64 calls, and the Python SDK's
default and float calls all give the upstream's own vectors (float32 precision), and a base64
answer is a string. `openai` runs in front of an upstream that only returns floats.
"""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any

import openai
import pytest

from tests.support.mockservers import bedrock as mockbedrock
from tests.support.mockservers.cohere import create_app as cohere_app
from tests.support.mockservers.common import MockServer, load_json
from tests.support.mockservers.google import API_KEY as GOOGLE_KEY
from tests.support.mockservers.google import serve as google_serve
from tests.support.mockservers.ollama import OllamaMock
from tests.support.mockservers.openai_like import OpenAILikeMock
from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.providers import lenient_client, strict_client

INPUTS = ["hello", "goodbye"]
KEY = "test-key"


@dataclass(frozen=True)
class Case:
    """One provider type behind its mock: `serve()` a context manager yielding the mock, `provider(mock)`
    the provider's config, `vectors(inputs)` what the upstream returns for them."""

    serve: Callable[[], Any]
    provider: Callable[[Any], dict[str, Any]]
    model: str
    vectors: Callable[[list[str]], list[list[float]]]
    inputs: tuple[str, ...] = tuple(INPUTS)


def _data(folder: str) -> Callable[[list[str]], list[list[float]]]:
    """The vectors of an OpenAI-shaped fixture the mock replays whatever the input."""
    return lambda inputs: [d["embedding"] for d in load_json(folder, "embeddings.json")["data"]]


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _mock_vectors(inputs: list[str]) -> list[list[float]]:
    from deployments.providers.mock import _vector

    return [_vector(text, 16) for text in inputs]


def _ray_serve_vectors(inputs: list[str]) -> list[list[float]]:
    from tests.support.ray_serve_llm_stub import EchoLLM

    return [d["embedding"] for d in EchoLLM(model_id="echo-1")._embeddings({"input": inputs})["data"]]


def _cycled(vectors: list[list[float]]) -> Callable[[list[str]], list[list[float]]]:
    return lambda inputs: list(islice(cycle(vectors), len(inputs)))


AWS = {
    "region": mockbedrock.REGION,
    "access_key_id": mockbedrock.ACCESS_KEY,
    "secret_access_key": mockbedrock.SECRET_KEY,
}

CASES: dict[str, Case] = {
    "mock": Case(_nothing, lambda _: {"type": "mock"}, "mock", _mock_vectors),
    # an OpenAI-compatible upstream that ignores encoding_format and always returns floats
    "openai": Case(
        RecordingUpstream,
        lambda up: {"type": "openai", "base_url": up.base_url, "api_key": KEY},
        "emb",
        lambda inputs: [[0.1, 0.2] for _ in inputs],
    ),
    "azure-openai": Case(
        lambda: OpenAILikeMock("azure-openai", api_key=KEY),
        lambda m: {"type": "azure-openai", "base_url": m.base_url, "api_key": KEY},
        "emb",
        _data("azure-openai"),
    ),
    "vllm": Case(
        lambda: OpenAILikeMock("vllm", api_key=None),
        lambda m: {"type": "vllm", "base_url": m.base_url},
        "emb",
        _data("vllm"),
    ),
    "mistral": Case(
        lambda: OpenAILikeMock("mistral", api_key=KEY),
        lambda m: {"type": "mistral", "base_url": m.base_url, "api_key": KEY},
        "mistral-embed",
        _data("mistral"),
    ),
    "together": Case(
        lambda: OpenAILikeMock("together", api_key=KEY),
        lambda m: {"type": "together", "base_url": m.base_url, "api_key": KEY},
        "emb",
        _data("together"),
    ),
    "ollama": Case(
        OllamaMock,
        lambda m: {"type": "ollama", "base_url": m.base_url},
        "all-minilm",
        lambda inputs: load_json("ollama", "embeddings.json")["embeddings"],
    ),
    "ollama-openai-api": Case(
        lambda: OpenAILikeMock("ollama-openai", api_key=None),
        lambda m: {"type": "ollama", "api": "openai", "base_url": m.base_url[: -len("/v1")]},
        "all-minilm",
        _data("ollama/openai"),
    ),
    "cohere": Case(
        lambda: MockServer(cohere_app(KEY)),
        lambda m: {"type": "cohere", "base_url": m.base_url, "api_key": KEY},
        "embed-v4.0",
        _cycled(load_json("cohere", "embed", "float.json")["embeddings"]["float"]),
    ),
    "google": Case(
        google_serve,
        lambda m: {"type": "google", "base_url": m.base_url, "api_key": GOOGLE_KEY},
        "text-embedding-004",
        _cycled([e["values"] for e in load_json("google", "embeddings", "batch.json")["embeddings"]]),
    ),
    "bedrock-cohere": Case(
        mockbedrock.serve,
        lambda m: {"type": "bedrock", "base_url": m.base_url, **AWS},
        "cohere.embed-english-v3",
        _cycled(load_json("bedrock", "embeddings", "cohere.json")["embeddings"]),
    ),
    "bedrock-titan": Case(
        mockbedrock.serve,
        lambda m: {"type": "bedrock", "base_url": m.base_url, **AWS},
        "amazon.titan-embed-text-v2:0",
        lambda inputs: [load_json("bedrock", "embeddings", "titan.json")["embedding"]],
        inputs=("hello",),
    ),
    "ray-serve": Case(
        _nothing,
        lambda _: {"type": "ray-serve", "app_name": "llm", "deployment_name": "EchoLLM", "model": "echo-1"},
        "echo-embed",
        _ray_serve_vectors,
    ),
}

@pytest.fixture(params=sorted(CASES))
def case(
    request: pytest.FixtureRequest, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Case, str]]:
    spec = CASES[request.param]
    if (
        request.param == "ray-serve"
    ):  # the stub model behind a fake handle, as tests/conformance/test_ray_serve.py
        from ray import serve

        from tests.support.ray_serve_llm_stub import EchoLLM, FakeHandle

        monkeypatch.setattr(
            serve,
            "get_deployment_handle",
            lambda deployment_name, app_name: FakeHandle(EchoLLM(model_id="echo-1")),
        )
    with spec.serve() as mock:
        url = gateway({"providers": {"p": spec.provider(mock)}, "default_provider": "p"})
        yield spec, url


def decode(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def assert_vectors(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == pytest.approx(w, rel=1e-6, abs=1e-7)  # float32 on the wire


def test_python_sdk(case: tuple[Case, str]) -> None:
    spec, url = case
    inputs = list(spec.inputs)
    want = spec.vectors(inputs)
    # the SDK's default call: base64 on the wire, decoded by the SDK (lenient: its strict validation
    # types the vectors as floats and rejects real OpenAI's base64 answers too)
    default = lenient_client(url).embeddings.create(model=spec.model, input=inputs)
    assert_vectors([d.embedding for d in default.data], want)
    floats = strict_client(url).embeddings.create(model=spec.model, input=inputs, encoding_format="float")
    assert_vectors([d.embedding for d in floats.data], want)
    raw = lenient_client(url).embeddings.with_raw_response.create(
        model=spec.model, input=inputs, encoding_format="base64"
    )
    encoded = [d["embedding"] for d in raw.http_response.json()["data"]]
    assert all(isinstance(e, str) for e in encoded)
    assert_vectors([decode(e) for e in encoded], want)


def test_node_sdk(case: tuple[Case, str], node_sdk: Callable[..., dict[str, Any]]) -> None:
    spec, url = case
    inputs = list(spec.inputs)
    want = spec.vectors(inputs)
    got = node_sdk(url, "embeddings", {"model": spec.model, "input": inputs})
    assert_vectors(got["default"], want)  # the Node SDK's default call (base64, decoded by the SDK)
    assert_vectors(got["float"], want)
    assert all(isinstance(e, str) for e in got["base64"])
    assert_vectors([decode(e) for e in got["base64"]], want)


def test_a_float_request_to_a_base64_answer_gets_floats(gateway: Any) -> None:
    """The other way round: an upstream that answers base64 though floats were asked (conform_list)."""
    from deployments.providers.base import CallContext
    from deployments.providers.openai import OpenAIAdapter, OpenAIConfig

    adapter = OpenAIAdapter(OpenAIConfig(name="o", type="openai"))
    ctx = CallContext("o", "emb", "r1")
    adapter.embeddings_request({"input": "x", "encoding_format": "float"}, ctx)
    vec = [0.5, -0.25]
    body = (
        '{"object":"list","data":[{"object":"embedding","index":0,"embedding":"%s"}],"model":"emb",'
        '"usage":{"prompt_tokens":1,"total_tokens":1}}' % base64.b64encode(struct.pack("<2f", *vec)).decode()
    )
    out = openai.types.CreateEmbeddingResponse.model_validate_json(
        adapter.embeddings_response(200, body.encode(), ctx)
    )
    assert out.data[0].embedding == vec
