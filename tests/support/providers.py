"""Helpers for the provider adapter tests (tests/unit/providers) and the conformance suites
(tests/conformance).

Unit tests: `ProviderKit` builds a type's adapter from the registry and its call contexts, reads its
fixtures (tests/fixtures/providers/<type>/) and runs its stream translator over bytes fed in pieces;
`strict_chunks` / `parse_chunk_sse` / `done_chunks` read the translator's OpenAI SSE the way a strict
client does (every chunk validated with the `openai` SDK's own model), `assemble` rebuilds the
message from the chunks.

Conformance: `strict_client` is the official `openai` SDK with strict response validation and no
retries, `gateway_config` the one-provider gateway config, `collect_stream` reads an SDK stream,
`provider_fixtures` makes a suite's mock / url / client fixtures.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from deployments.providers import registry
from deployments.providers.base import CallContext
from tests.support.mockservers.common import FIXTURES
from tests.support.mockservers.openai_like import parse_sse

CREATED = 1700000000  # every test context's `created`
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="  # 1x1 PNG


# --- unit tests: one provider type -----------------------------------------------------------------

@dataclass(frozen=True)
class ProviderKit:
    """A provider type under test: `name` is the provider's name in its config and call contexts,
    `model` the contexts' default model, `config` the config fields besides name and type."""

    type: str
    name: str
    model: str
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fix(self) -> Path:
        return FIXTURES / self.type

    def paths(self, pattern: str) -> list[Path]:
        """The type's fixture files matching `pattern` (e.g. "requests/*.json"), sorted."""
        return sorted(self.fix.glob(pattern))

    def fixture(self, *parts: str) -> bytes:
        return self.fix.joinpath(*parts).read_bytes()

    def adapter(self, **extra: Any) -> Any:
        spec = registry.get(self.type)
        assert spec is not None
        return spec.adapter(spec.config_model.model_validate({"name": self.name, "type": self.type,
                                                             **self.config, **extra}))

    def ctx(self, model: str | None = None, include_usage: bool = False) -> CallContext:
        return CallContext(self.name, model or self.model, "req-1", include_usage=include_usage, created=CREATED)

    def request_case(self, path: Path, make: Callable[..., Any] | None = None) -> tuple[dict[str, Any], Any]:
        """(the golden, the UpstreamRequest) of an OpenAI-like request golden: `config` for the
        adapter (built by `make`, default `adapter`), `model`, `openai` (the client body), `stream`."""
        case = orjson.loads(path.read_bytes())
        adapter = (make or self.adapter)(**case["config"])
        return case, adapter.chat_request(copy.deepcopy(case["openai"]), self.ctx(case["model"]), case["stream"])

    def check_request_golden(self, path: Path, make: Callable[..., Any] | None = None) -> tuple[dict[str, Any], Any]:
        """`request_case`, asserting the golden's `url` and `upstream` body; returns both for more checks."""
        case, req = self.request_case(path, make)
        assert req.url == case["url"]
        assert orjson.loads(req.body) == case["upstream"]
        return case, req

    def completion(self, *parts: str, model: str | None = None) -> dict[str, Any]:
        """The chat.completion the adapter makes of a response fixture, checked by the SDK's model."""
        out = orjson.loads(self.adapter().chat_response(200, self.fixture(*parts), self.ctx(model)))
        ChatCompletion.model_validate(out)
        return out

    def stream(self, data: bytes, include_usage: bool = False, piece: int = 0, **extra: Any) -> tuple[bytes, Any]:
        """(all output, the translator) of a new stream translator fed `data` (see `feed`)."""
        translator = self.adapter(**extra).chat_stream(self.ctx(include_usage=include_usage))
        return feed(translator, data, piece), translator

    def stream_fixture(self, *parts: str, include_usage: bool = False, piece: int = 0,
                       crlf: bool = False) -> tuple[bytes, Any]:
        """`stream` over a fixture file (`crlf`: with CRLF line ends)."""
        raw = self.fixture(*parts)
        if crlf:
            raw = raw.replace(b"\n", b"\r\n")
        return self.stream(raw, include_usage, piece)

    def run_stream(self, name: str, piece: int = 0, include_usage: bool = False,
                   crlf: bool = False) -> tuple[Any, bytes]:
        """(the translator, its output) for `stream/<name>.sse` fed in `piece`-byte reads."""
        out, translator = self.stream_fixture("stream", f"{name}.sse", include_usage=include_usage, piece=piece,
                                              crlf=crlf)
        return translator, out

    def error(self, name: str, **headers: str) -> tuple[dict[str, Any], Any]:
        """(the fixture, the adapter's error) for `errors/<name>.json` ({"status", "headers", "body"});
        `headers` are added to the fixture's."""
        fx = orjson.loads(self.fixture("errors", f"{name}.json"))
        err = self.adapter().error(fx["status"], {**fx["headers"], **headers}, orjson.dumps(fx["body"]), self.ctx())
        return fx, err


def feed(translator: Any, data: bytes, piece: int = 0) -> bytes:
    """What `translator` returns for `data` read `piece` bytes at a time (0: at once), finish() included."""
    step = piece or len(data)
    out = b"".join(translator.feed(data[i:i + step]) for i in range(0, len(data), step))
    return out + translator.finish()


def assert_error_fixtures_covered(paths: list[Path], expected: Mapping[str, Any]) -> None:
    """Every error fixture has an expectation and every expectation a fixture."""
    assert {p.stem for p in paths} == set(expected)


# --- reading a translator's OpenAI SSE -------------------------------------------------------------

def strict_chunks(out: bytes) -> list[dict[str, Any]]:
    """The chunks of a stream that ended with [DONE], each valid for the SDK."""
    events, done = parse_sse(out)
    assert done
    for ev in events:
        ChatCompletionChunk.model_validate(ev)  # what the SDK's strict parsing does
    return events


def parse_chunk_sse(out: bytes) -> tuple[list[dict[str, Any]], bool]:
    """(chunks, whether [DONE] ended it) of exact `data: ...\\n\\n` output, each chunk valid for the SDK."""
    assert out.endswith(b"\n\n")
    events = [e for e in out.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    done = events[-1] == b"data: [DONE]"
    chunks = [orjson.loads(e[6:]) for e in (events[:-1] if done else events)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks, done


def done_chunks(out: bytes) -> list[dict[str, Any]]:
    """The chunks of output that must end with `data: [DONE]`, each valid for the SDK."""
    events = out.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]", "ends with [DONE]"
    chunks = []
    for event in events[:-2]:
        assert event.startswith(b"data: ")
        obj = orjson.loads(event[6:])
        ChatCompletionChunk.model_validate(obj)
        chunks.append(obj)
    return chunks


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild the message the way OpenAI clients do (tool calls keyed by index), checking that a
    tool call's id and name come once and that there is one finish chunk."""
    content, calls, finish, roles = "", {}, None, []
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "role" in delta:
                roles.append(delta["role"])
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
                if tc.get("id"):
                    assert call["id"] is None, "tool-call id sent twice"
                    call["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    assert call["name"] is None, "tool-call name sent twice"
                    call["name"] = fn["name"]
                call["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                assert finish is None, "two finish chunks"
                finish = choice["finish_reason"]
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish": finish, "roles": roles}


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the deltas of every choice: text, tool calls by index (id once), last finish reason, roles."""
    text, calls, finish, roles = "", {}, None, []
    for c in chunks:
        for ch in c["choices"]:
            d = ch["delta"]
            if "role" in d:
                roles.append(d["role"])
            text += d.get("content") or ""
            for tc in d.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
                if tc.get("id"):
                    assert slot["id"] is None, "id sent once"
                    slot["id"] = tc["id"]
                if (tc.get("function") or {}).get("name"):
                    slot["name"] = tc["function"]["name"]
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            if ch.get("finish_reason"):
                finish = ch["finish_reason"]
    return {"text": text, "calls": calls, "finish": finish, "roles": roles}


# --- conformance: the SDK against the in-process gateway -------------------------------------------

def strict_client(url: str) -> openai.OpenAI:
    """The official SDK as a strict client: responses validated against its models, no retries."""
    return openai.OpenAI(base_url=url, api_key="unused", _strict_response_validation=True, max_retries=0)


def lenient_client(url: str) -> openai.OpenAI:
    """The SDK as most users run it: default (lenient) parsing, no retries."""
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def gateway_config(name: str, provider_type: str, **fields: Any) -> dict[str, Any]:
    """A gateway config with one provider, the default."""
    return {"providers": {name: {"type": provider_type, **fields}}, "default_provider": name}


def ask(text: str) -> list[dict[str, Any]]:
    """One user message (the OpenAI-like mocks pick their fixture by it)."""
    return [{"role": "user", "content": text}]


def drain(stream: Any) -> None:
    for _ in stream:
        pass


def stream_error(stream: Any) -> tuple[openai.APIError, str]:
    """(the error, the content that arrived before it) of an SDK stream the gateway ends with an
    OpenAI error event. The error is exactly `openai.APIError` (what the SDK raises for an error
    event), not a subclass: a refused connection (APIConnectionError) or an HTTP status error
    (APIStatusError) is a different failure and fails the test."""
    content = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                content += choice.delta.content or ""
    assert type(info.value) is openai.APIError, f"not an in-stream error event: {info.value!r}"
    return info.value, content


def collect_stream(stream: Any) -> dict[str, Any]:
    """Read an SDK stream: content, tool calls by index (id once), finish reason, usage (on a chunk
    with no choices), chunk ids, roles, and every tool-call delta as sent (`raw_calls`)."""
    content, calls, finish, usage, ids, roles, raw_calls = "", {}, None, None, set(), [], []
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                roles.append(delta.role)
            content += delta.content or ""
            for tc in delta.tool_calls or []:
                raw_calls.append(tc)
                call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    assert call["id"] is None, "a tool call's id is sent once"
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)], "finish": finish,
            "usage": usage, "ids": ids, "roles": roles, "raw_calls": raw_calls}


def provider_fixtures(serve: Callable[[], Any], name: str, provider_type: str,
                      **fields: Any) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The `mock`, `url` and `client` fixtures of a provider's conformance suite, for
    `mock, url, client = provider_fixtures(...)` at module level:

    - `mock` (module scope): `serve()`'s mock server (a context manager that starts it), running;
    - `url`: an in-process gateway whose one provider, `name` of `provider_type` with `fields`, has
      the mock as its `base_url`;
    - `client`: the strict SDK client on that gateway.
    """

    @pytest.fixture(scope="module")
    def mock() -> Iterator[Any]:
        with serve() as server:
            yield server

    @pytest.fixture
    def url(gateway: Any, mock: Any) -> str:
        return gateway(gateway_config(name, provider_type, base_url=mock.base_url, **fields))

    @pytest.fixture
    def client(url: str) -> openai.OpenAI:
        return strict_client(url)

    return mock, url, client


VISION_PARTS = [
    {"type": "text", "text": "chat"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUl"
                                              "EQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "detail": "low"}},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
]


def assert_vision_parts_unchanged(client: openai.OpenAI, mock: Any, model: str,
                                  answer: str = "The capital of France is Paris.") -> None:
    """Image parts (a data URL with detail, an https URL) reach an OpenAI-like provider as sent."""
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": VISION_PARTS}])
    assert resp.choices[0].message.content == answer
    assert mock.last("/chat/completions").json["messages"] == [{"role": "user", "content": VISION_PARTS}]


__all__ = [
    "CREATED",
    "PNG",
    "VISION_PARTS",
    "ProviderKit",
    "accumulate",
    "ask",
    "assemble",
    "assert_error_fixtures_covered",
    "assert_vision_parts_unchanged",
    "collect_stream",
    "done_chunks",
    "drain",
    "feed",
    "gateway_config",
    "lenient_client",
    "provider_fixtures",
    "parse_chunk_sse",
    "stream_error",
    "strict_chunks",
    "strict_client",
]
