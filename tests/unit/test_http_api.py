"""The HTTP API and its error matrix, through the official openai SDK, against the in-process app.

The app here is the same HttpApp + Gateway that a Serve ingress replica runs (no Ray); the Ray
versions of the important paths are in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.gateway_server import GatewayServer
from tests.support.mockservers.recording_openai import LEAKY_MESSAGE, RecordingUpstream

KEY = "gw-test-key"
ADMIN = "gw-admin-key"


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def server(upstream: RecordingUpstream) -> Iterator[GatewayServer]:
    config: dict[str, Any] = {
        "gateway": {"api_keys": [{"id": "team-a", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}],
                    "max_body_bytes": 2048},
        "providers": {
            "sandbox": {"type": "mock"},
            "up": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-test-secret",
                   "timeout": 1.0, "models": ["ok", "cut", "m?", "status-*", "slow-*", "meta-llama/*"]},
            "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k", "connect_timeout": 1},
        },
        "models": {"alias": {"provider": "up", "model": "ok"}},
        "default_provider": "sandbox",
    }
    srv = GatewayServer(config).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, _strict_response_validation=True)


MSG = [{"role": "user", "content": "hello gateway"}]


def raw(server: GatewayServer, body: Any = None, *, content: bytes | None = None, key: str | None = KEY,
        path: str = "/v1/chat/completions", method: str = "POST", headers: dict[str, str] | None = None) -> httpx.Response:
    h = dict(headers or {})
    if key:
        h["authorization"] = f"Bearer {key}"
    return httpx.request(method, server.url + path, json=body if content is None else None, content=content,
                         headers=h, timeout=10)


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# -- happy paths ---------------------------------------------------------------------------------

def test_chat_mock_provider(client: openai.OpenAI) -> None:
    resp = client.chat.completions.with_raw_response.create(model="mock", messages=MSG)
    completion = resp.parse()
    assert completion.choices[0].message.content == "Mock reply to: hello gateway"
    assert resp.headers["x-raygate-provider"] == "sandbox"
    assert resp.headers["x-request-id"]


def test_request_id_is_echoed(client: openai.OpenAI) -> None:
    resp = client.chat.completions.with_raw_response.create(model="mock", messages=MSG,
                                                           extra_headers={"x-request-id": "req-42"})
    assert resp.headers["x-request-id"] == "req-42"


def test_stream_strips_usage_unless_asked(client: openai.OpenAI, upstream: RecordingUpstream) -> None:
    chunks = list(client.chat.completions.create(model="up/ok", messages=MSG, stream=True))
    assert all(c.choices for c in chunks), "usage-only chunk leaked to a client that did not ask"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "recorded stream reply"
    # ...but the gateway asked upstream for usage (accounting)
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    with_usage = list(client.chat.completions.create(model="up/ok", messages=MSG, stream=True,
                                                     stream_options={"include_usage": True}))
    assert with_usage[-1].usage is not None and with_usage[-1].usage.total_tokens == 6


async def test_async_client(server: GatewayServer) -> None:
    aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    completion = await aclient.chat.completions.create(model="mock", messages=MSG)
    assert completion.choices[0].message.content.startswith("Mock reply")
    text = ""
    async for chunk in await aclient.chat.completions.create(model="mock", messages=MSG, stream=True):
        text += chunk.choices[0].delta.content or ""
    assert text == "Mock reply to: hello gateway"
    await aclient.close()


def test_routing_forms(client: openai.OpenAI, upstream: RecordingUpstream) -> None:
    # <provider>/<model>, model names may contain slashes
    client.chat.completions.create(model="up/meta-llama/Llama-3.1-8B", messages=MSG)
    assert upstream.requests[-1]["body"]["model"] == "meta-llama/Llama-3.1-8B"
    # models: alias -> {provider, model}
    resp = client.chat.completions.with_raw_response.create(model="alias", messages=MSG)
    assert upstream.requests[-1]["body"]["model"] == "ok" and resp.headers["x-raygate-provider"] == "up"
    # provider field in the body and as a header; removed before going upstream
    client.chat.completions.create(model="m1", messages=MSG, extra_body={"provider": "up"})
    assert upstream.requests[-1]["body"]["model"] == "m1"
    assert "provider" not in upstream.requests[-1]["body"]
    client.chat.completions.create(model="m2", messages=MSG, extra_headers={"x-raygate-provider": "up"})
    assert upstream.requests[-1]["body"]["model"] == "m2"


def test_metadata_is_the_gateways(client: openai.OpenAI, upstream: RecordingUpstream) -> None:
    client.chat.completions.create(model="up/ok", messages=MSG, metadata={"team": "a"})
    assert "metadata" not in upstream.requests[-1]["body"]
    client.chat.completions.create(model="up/ok", messages=MSG, metadata={"team": "a"}, store=True,
                                   extra_headers={"x-raygate-metadata": '{"session": "s1"}'})
    assert upstream.requests[-1]["body"]["metadata"] == {"session": "s1", "team": "a"}


def test_params_pass_through(client: openai.OpenAI, upstream: RecordingUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    client.chat.completions.create(model="up/ok", messages=MSG, tools=tools, tool_choice="auto", seed=3, n=1,
                                   stop=["x"], response_format={"type": "json_object"}, user="u1",
                                   logprobs=True, temperature=0.2, extra_body={"top_k": 5})
    body = upstream.requests[-1]["body"]
    assert body["tools"] == tools and body["seed"] == 3 and body["stop"] == ["x"] and body["top_k"] == 5
    assert body["response_format"] == {"type": "json_object"} and body["user"] == "u1"
    assert body["tool_choice"] == "auto" and body["n"] == 1 and body["logprobs"] is True
    assert body["temperature"] == 0.2
    assert upstream.requests[-1]["headers"]["Authorization"] == "Bearer sk-test-secret"


def test_embeddings(server: GatewayServer, client: openai.OpenAI) -> None:
    out = client.embeddings.create(model="mock", input=["a", "b"], encoding_format="float")
    assert [d.index for d in out.data] == [0, 1] and len(out.data[0].embedding) == 16
    again = client.embeddings.create(model="mock", input=["a", "b"], encoding_format="float")
    assert again.data[0].embedding == out.data[0].embedding  # deterministic
    # the SDK's default call asks for base64 (strict validation types vectors as floats, so lenient)
    lenient = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    default = lenient.embeddings.create(model="mock", input=["a", "b"])
    assert default.data[1].embedding == pytest.approx(out.data[1].embedding, rel=1e-6)


def test_models_and_health(server: GatewayServer, client: openai.OpenAI) -> None:
    ids = {m.id: m.owned_by for m in client.models.list()}
    assert ids["sandbox/mock"] == "sandbox" and ids["up/ok"] == "up" and ids["alias"] == "alias:up"
    assert ids["mock"] == "sandbox"  # the default (pass-through) provider's own model, by its bare name
    assert ids["ok"] == "up" and "up/m?" not in ids
    assert client.models.retrieve("up/ok").owned_by == "up"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "healthy" and health["version"] and health["uptime"] >= 0
    assert httpx.get(server.url + "/ready").status_code == 200


def test_metrics(server: GatewayServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="mock", messages=MSG)
    text = httpx.get(server.url + "/metrics").text  # no key needed
    assert 'raygate_requests_total{provider="sandbox",model="mock",status="200"}' in text
    assert "raygate_request_duration_seconds_bucket" in text
    assert "sk-test-secret" not in text and KEY not in text


# -- the error matrix ------------------------------------------------------------------------------

def test_malformed_json(server: GatewayServer) -> None:
    resp = raw(server, content=b'{"model": "mock", "messages": [')
    assert resp.status_code == 400 and error_of(resp)["code"] == "invalid_json"
    resp = raw(server, content=b"[1, 2]")
    assert resp.status_code == 400


@pytest.mark.parametrize(("field", "value"), [("temperature", "hot"), ("max_tokens", 1.5), ("stream", "yes"),
                                              ("messages", "hi"), ("n", True), ("metadata", {"a": 1})])
def test_wrong_types_name_the_field(server: GatewayServer, field: str, value: Any) -> None:
    body = {"model": "mock", "messages": MSG, field: value}
    resp = raw(server, body)
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["param"].startswith(field) and field in err["message"]


def test_auth(server: GatewayServer) -> None:
    assert raw(server, {"model": "mock", "messages": MSG}, key=None).status_code == 401
    resp = raw(server, {"model": "mock", "messages": MSG}, key="wrong")
    assert resp.status_code == 401 and error_of(resp)["type"] == "authentication_error"
    assert raw(server, key=None, path="/v1/models", method="GET").status_code == 401
    # admin routes need an admin key, not a client key
    assert raw(server, key=KEY, path="/v1/admin/anything", method="GET").status_code == 401
    assert raw(server, key=ADMIN, path="/v1/admin/anything", method="GET").status_code == 404
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(server.url + path).status_code == 200


def test_unknown_model_and_provider(client: openai.OpenAI, server: GatewayServer) -> None:
    resp = raw(server, {"model": "m", "messages": MSG, "provider": "nope"})
    assert resp.status_code == 404 and error_of(resp)["code"] == "provider_not_found"


def test_unknown_model_without_default(tmp_path: Any) -> None:
    srv = GatewayServer({"providers": {"p": {"type": "mock"}}}).start()
    try:
        resp = httpx.post(srv.base_url + "/chat/completions", json={"model": "gpt-9", "messages": MSG})
        assert resp.status_code == 404 and error_of(resp)["code"] == "model_not_found"
    finally:
        srv.stop()


def test_body_too_large(server: GatewayServer) -> None:
    resp = raw(server, {"model": "mock", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert resp.status_code == 413 and error_of(resp)["code"] == "request_too_large"


def test_unknown_path_and_method(server: GatewayServer) -> None:
    assert raw(server, path="/v1/nope", method="GET").status_code == 404
    assert raw(server, path="/v1/chat/completions", method="GET").status_code == 405


def test_upstream_timeout_is_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="up/slow-3", messages=MSG)
    assert err.value.status_code == 504 and err.value.body["code"] == "upstream_timeout"


def test_unreachable_upstream_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="dead/x", messages=MSG)
    assert err.value.status_code == 502 and err.value.body["code"] == "upstream_unreachable"


@pytest.mark.parametrize(("upstream_status", "client_status"),
                         [(400, 400), (404, 404), (413, 413), (422, 422), (500, 500), (502, 502), (503, 503),
                          (504, 504), (529, 503), (498, 503), (409, 400), (501, 502)])
def test_upstream_status_mapping(client: openai.OpenAI, upstream_status: int, client_status: int) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=f"up/status-{upstream_status}", messages=MSG)
    assert err.value.status_code == client_status


def test_upstream_429_keeps_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="up/status-429", messages=MSG)
    assert err.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_is_502_and_never_echoed(client: openai.OpenAI, status: int) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=f"up/status-{status}", messages=MSG)
    assert err.value.status_code == 502
    assert err.value.body["code"] == "upstream_auth_error"
    assert LEAKY_MESSAGE not in err.value.response.text and "cret" not in err.value.response.text


def test_stream_cut_sends_one_error_event_and_no_done(server: GatewayServer, client: openai.OpenAI) -> None:
    with httpx.stream("POST", server.base_url + "/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                      json={"model": "up/cut", "messages": MSG, "stream": True}, timeout=10) as resp:
        assert resp.status_code == 200
        text = "".join(resp.iter_text())
    events = [line for line in text.split("\n\n") if line.startswith("data: ")]
    assert events[-1].startswith('data: {"error"') and "upstream_stream_cut" in events[-1]
    assert sum(1 for e in events if '"error"' in e) == 1
    assert "[DONE]" not in text
    with pytest.raises(openai.APIError):  # the SDK raises on the error event
        list(client.chat.completions.create(model="up/cut", messages=MSG, stream=True))


def test_stream_error_before_first_byte_is_a_plain_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        list(client.chat.completions.create(model="up/status-429", messages=MSG, stream=True))


def test_gateway_stays_healthy_after_bad_input(server: GatewayServer, client: openai.OpenAI) -> None:
    for bad in (b"", b"{", b"null", b'{"model": 1}', b"\xff\xfe"):
        assert raw(server, content=bad).status_code == 400
    assert httpx.get(server.url + "/health").status_code == 200
    assert client.chat.completions.create(model="mock", messages=MSG).choices[0].message.content


class _SlowTransport:
    """Records whether the gateway cancelled its upstream call."""

    def __init__(self) -> None:
        import asyncio

        self.cancelled = asyncio.Event()
        self.started = 0

    async def _wait(self) -> None:
        import asyncio

        self.started += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def request(self, req: Any, timeouts: Any, provider: str) -> Any:
        await self._wait()

    async def open_stream(self, req: Any, timeouts: Any, provider: str) -> Any:
        await self._wait()


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_the_upstream_call(stream: bool) -> None:
    import time

    srv = GatewayServer({"providers": {"slow": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
                         "default_provider": "slow"}).start()
    try:
        fake = _SlowTransport()
        srv.gateway.providers["slow"].transport = fake
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.base_url + "/chat/completions", timeout=0.5,
                       json={"model": "m", "messages": MSG, "stream": stream})
        deadline = time.time() + 5
        while not fake.cancelled.is_set() and time.time() < deadline:
            time.sleep(0.05)
        assert fake.started == 1
        assert fake.cancelled.is_set(), "the upstream call kept running after the client went away"
    finally:
        srv.stop()


def test_ready_is_503_with_the_reason_until_every_deployment_answers() -> None:
    class Handle:
        def __init__(self, ok: bool) -> None:
            self.ok = ok
            self.ping = self

        async def remote(self) -> bool:
            if not self.ok:
                raise ConnectionError("replica still starting")
            return True

    srv = GatewayServer({"providers": {"p": {"type": "mock"}}, "default_provider": "p"}).start()
    try:
        srv.gateway.remote_stages = {"SemanticCache": Handle(False)}
        resp = httpx.get(srv.url + "/ready")
        assert resp.status_code == 503
        assert "SemanticCache" in resp.json()["reason"]
        srv.gateway.remote_stages = {"SemanticCache": Handle(True)}
        assert httpx.get(srv.url + "/ready").status_code == 200
    finally:
        srv.stop()


def test_model_discovery(upstream: RecordingUpstream) -> None:
    srv = GatewayServer({"providers": {
        "up": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-test-secret",
               "models": ["ok", "up-a*"], "discover_models": True},
        "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "discover_models": True,
                 "models": ["configured"], "connect_timeout": 1},
        "quiet": {"type": "openai", "base_url": upstream.base_url, "models": ["only-this"]},
    }}).start()
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        listed = lambda: {m.id: m.owned_by for m in client.models.list()}  # noqa: E731
        before = sum(1 for r in upstream.requests if r["path"] == "/v1/models")
        ids = listed()
        # configured + discovered for `up` (only what its `models` accept: up-b is not);
        # a failing listing leaves `dead` with its configured models
        assert {"up/ok", "up/up-a", "dead/configured", "quiet/only-this"} <= set(ids)
        assert ids["up/up-a"] == "up" and "quiet/up-a" not in ids and "up/up-b" not in ids
        assert "up-a*" not in ids and "up/up-a*" not in ids  # a glob is a pattern, not a name
        # bare declared names reach their provider (no default_provider here)
        assert ids["ok"] == "up" and ids["configured"] == "dead" and ids["only-this"] == "quiet"
        listed()  # within discovery_ttl: no second upstream listing
        calls = [r for r in upstream.requests if r["path"] == "/v1/models"]
        assert len(calls) - before == 1
        assert calls[-1]["headers"]["Authorization"] == "Bearer sk-test-secret"
        assert client.models.retrieve("up/up-a").owned_by == "up"
    finally:
        srv.stop()
