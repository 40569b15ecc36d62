"""Prompt management over HTTP, against the in-process app (the same HttpApp + Gateway a replica runs),
with the official openai SDK where the answer is OpenAI's shape (render, streamed render)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from deployments.prompts.split import Selector
from tests.support.gateway_server import GatewayServer

KEY, ADMIN = "pr-key", "pr-admin"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}
AS_CLIENT = {"authorization": f"Bearer {KEY}"}
TRIAGE = [{"role": "system", "content": "You sort support tickets."},
          {"role": "user", "content": "Ticket: {{ticket_content}}"}]


class Audits:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def submit(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def server() -> Iterator[GatewayServer]:
    srv = GatewayServer({
        "gateway": {"api_keys": [{"id": "team-a", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}]},
        "providers": {"mock": {"type": "mock"}},
        "default_provider": "mock",
        "cache": {"enabled": True, "mode": "exact"},
    }).start()
    srv.audits = Audits()  # type: ignore[attr-defined]
    srv.gateway.auditors.append(srv.audits)  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sdk(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)


HTTP = httpx.Client(timeout=10)  # one client: a new one per call costs ~50 ms (its TLS context)


def call(server: GatewayServer, method: str, path: str, body: Any = None, admin: bool = False,
         headers: dict[str, str] | None = None) -> httpx.Response:
    h = {**(AS_ADMIN if admin else AS_CLIENT), **(headers or {})}
    return HTTP.request(method, f"{server.url}/v1/prompts{path}", json=body, headers=h)


def deploy(server: GatewayServer, name: str, version: str, messages: list[dict[str, Any]] | None = None,
           **fields: Any) -> httpx.Response:
    return call(server, "POST", f"/{name}/versions",
                {"version": version, "messages": messages or TRIAGE, "model": "mock", **fields}, admin=True)


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def render(sdk: openai.OpenAI, name: str, **body: Any) -> ChatCompletion:
    return sdk.post(f"/prompts/{name}/render", body=body, cast_to=ChatCompletion)


def render_raw(sdk: openai.OpenAI, name: str, **body: Any) -> tuple[ChatCompletion, httpx.Headers]:
    """Through the SDK's transport, keeping the response headers."""
    resp = sdk.post(f"/prompts/{name}/render", body=body, cast_to=httpx.Response)
    return ChatCompletion.model_validate(resp.json()), resp.headers


def stored_record(server: GatewayServer, request_id: str) -> dict[str, Any]:
    deadline = time.time() + 10
    while time.time() < deadline:
        resp = HTTP.get(f"{server.url}/v1/admin/logs/{request_id}", headers=AS_ADMIN)
        if resp.status_code == 200:
            return resp.json()
        time.sleep(0.05)
    raise AssertionError(f"record {request_id} was never stored")


# -- deploy, read, delete ------------------------------------------------------------------------

def test_deploy_list_get_delete_and_audit(server: GatewayServer) -> None:
    resp = deploy(server, "crud", "1.2.0", parameters={"temperature": 0.2, "max_tokens": 50},
                  description="first", labels=["production"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["created"] is True and resp.json()["labels"] == {"production": None}
    assert deploy(server, "crud", "1.10.0").status_code == 201
    assert deploy(server, "crud", "1.3.0-beta").status_code == 201

    listed = {p["name"]: p for p in call(server, "GET", "").json()["data"]}
    assert listed["crud"]["versions"] == 3 and listed["crud"]["latest"] == "1.10.0"
    doc = call(server, "GET", "/crud").json()
    assert [v["version"] for v in doc["versions"]] == ["1.2.0", "1.3.0-beta", "1.10.0"]  # semver order
    assert doc["labels"] == {"production": "1.2.0"} and doc["versions"][0]["labels"] == ["production"]
    one = call(server, "GET", "/crud/versions/1.2.0").json()
    assert one["messages"] == TRIAGE and one["parameters"] == {"temperature": 0.2, "max_tokens": 50}
    assert one["description"] == "first" and one["created_by"] == "ops"

    assert call(server, "DELETE", "/crud/versions/1.3.0-beta", admin=True).status_code == 200
    gone = call(server, "GET", "/crud/versions/1.3.0-beta")
    assert gone.status_code == 404 and error_of(gone)["code"] == "prompt_version_not_found"
    assert error_of(call(server, "GET", "/nope"))["code"] == "prompt_not_found"

    actions = [(e["action"], e["outcome"], e.get("version")) for e in server.audits.events  # type: ignore[attr-defined]
               if e.get("prompt") == "crud"]
    assert ("prompt.deploy", "ok", "1.2.0") in actions and ("prompt.delete_version", "ok", "1.3.0-beta") in actions
    deploy_event = next(e for e in server.audits.events if e["action"] == "prompt.deploy")  # type: ignore[attr-defined]
    assert deploy_event["actor"] == "ops" and "messages" not in deploy_event


def test_writes_need_the_admin_key_and_reads_the_gateway_key(server: GatewayServer) -> None:
    denied = call(server, "POST", "/auth/versions", {"version": "1.0.0", "messages": TRIAGE})
    assert denied.status_code == 401 and error_of(denied)["type"] == "authentication_error"
    assert any(e["action"] == "prompt.deploy" and e["outcome"] == "denied 401"
               for e in server.audits.events)  # type: ignore[attr-defined]
    anonymous = httpx.get(f"{server.url}/v1/prompts")
    assert anonymous.status_code == 401
    assert call(server, "PATCH", "/auth").status_code == 405
    assert error_of(call(server, "GET", "/auth/elsewhere/x/y"))["code"] == "unknown_url"


def test_versions_are_immutable(server: GatewayServer) -> None:
    assert deploy(server, "immut", "1.0.0").status_code == 201
    again = deploy(server, "immut", "1.0.0")
    assert again.status_code == 200 and again.json()["created"] is False  # the same content: idempotent
    changed = deploy(server, "immut", "1.0.0", parameters={"temperature": 1})
    assert changed.status_code == 409 and error_of(changed)["code"] == "prompt_version_exists"
    assert call(server, "GET", "/immut/versions/1.0.0").json()["parameters"] == {}


@pytest.mark.parametrize("body, param", [
    ({"version": "1.0", "messages": TRIAGE}, "version"),
    ({"version": "1.0.0"}, "messages"),
    ({"version": "1.0.0", "messages": TRIAGE, "parameters": {"temperature": "hot"}}, "temperature"),
    ({"version": "1.0.0", "messages": TRIAGE, "parameters": {"stream": True}}, "parameters.stream"),
    ({"version": "1.0.0", "messages": [{"role": "user", "content": "{{#each x}}"}]}, "messages"),
    ({"version": "1.0.0", "messages": TRIAGE, "labels": ["bad label"]}, "label"),
    ({"version": "1.0.0", "messages": TRIAGE, "colour": "red"}, "colour"),
])
def test_bad_deploys_are_400s_naming_the_field(server: GatewayServer, body: dict[str, Any], param: str) -> None:
    resp = call(server, "POST", "/bad/versions", body, admin=True)
    assert resp.status_code == 400, resp.text
    assert error_of(resp)["param"] == param


def test_labels_move_and_protect_versions(server: GatewayServer, sdk: openai.OpenAI) -> None:
    one = [{"role": "user", "content": "one {{x}}"}]
    two = [{"role": "user", "content": "two {{x}}"}]
    deploy(server, "lab", "1.0.0", one, labels=["production", "staging"])
    assert render(sdk, "lab", variables={"x": "a"}).choices[0].message.content == "Mock reply to: one a"
    moved = deploy(server, "lab", "2.0.0", two, labels=["production"])
    assert moved.json()["labels"] == {"production": "1.0.0"}
    # the write went through this replica: its copy was dropped, the next render sees the move at once
    assert render(sdk, "lab", variables={"x": "a"}).choices[0].message.content == "Mock reply to: two a"
    assert render(sdk, "lab", label="staging", variables={"x": "a"}).choices[0].message.content == \
        "Mock reply to: one a"
    in_use = call(server, "DELETE", "/lab/versions/1.0.0", admin=True)
    assert in_use.status_code == 409 and "staging" in error_of(in_use)["message"]
    assert call(server, "PUT", "/lab/labels/staging", {"version": "2.0.0"}, admin=True).json()["previous"] == "1.0.0"
    assert call(server, "PUT", "/lab/labels/staging", {"version": "9.9.9"}, admin=True).status_code == 404
    assert call(server, "DELETE", "/lab/versions/1.0.0", admin=True).status_code == 200
    assert call(server, "DELETE", "/lab/labels/staging", admin=True).status_code == 200
    assert error_of(call(server, "POST", "/lab/render", {"label": "staging", "variables": {"x": "a"}}))["code"] == \
        "prompt_label_not_found"
    actions = {e["action"] for e in server.audits.events if e.get("prompt") == "lab"}  # type: ignore[attr-defined]
    assert {"prompt.deploy", "prompt.set_label", "prompt.delete_label", "prompt.delete_version"} <= actions


# -- render --------------------------------------------------------------------------------------

def test_render_runs_a_chat_completion_and_records_the_version(server: GatewayServer, sdk: openai.OpenAI) -> None:
    deploy(server, "rend", "1.2.0", parameters={"temperature": 0.2, "max_tokens": 50}, labels=["production"])
    deploy(server, "rend", "1.3.0", [{"role": "user", "content": "static"}])
    completion, headers = render_raw(sdk, "rend", variables={"ticket_content": "printer on fire"},
                                     metadata={"user_id": "u1"})
    assert completion.choices[0].message.content == "Mock reply to: Ticket: printer on fire"
    assert headers["x-raygate-prompt-version"] == "1.2.0"  # the production label, not the latest
    assert completion.model_extra["prompt"] == {"name": "rend", "version": "1.2.0"}
    record = stored_record(server, headers["x-request-id"])
    assert record["kind"] == "chat" and record["status"] == 200 and record["requested_model"] == "mock"
    assert record["facts"]["prompt"] == {"name": "rend", "version": "1.2.0"}
    assert record["metadata"] == {"user_id": "u1"}
    # a prompt without variables; a version asked for by number
    assert render(sdk, "rend", version="1.3.0").choices[0].message.content == "Mock reply to: static"


def test_missing_extra_and_injected_variables(server: GatewayServer, sdk: openai.OpenAI) -> None:
    deploy(server, "vars", "1.0.0", [{"role": "user", "content": "A={{a}} B={{b}}"}])
    with pytest.raises(openai.BadRequestError) as err:
        render(sdk, "vars", variables={"a": "1"})
    assert err.value.body["code"] == "missing_variable" and "'b'" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        render(sdk, "vars", variables={"a": "1", "b": "2", "c": "3"})
    assert err.value.body["code"] == "unknown_variable" and err.value.body["param"] == "variables.c"
    ok = render(sdk, "vars", variables={"a": "1", "b": "2", "c": "3"}, allow_extra=True)
    assert ok.choices[0].message.content == "Mock reply to: A=1 B=2"
    injected = render(sdk, "vars", variables={"a": "{{b}}", "b": "}}{{{a}}} {{#x}}"})
    assert injected.choices[0].message.content == "Mock reply to: A={{b}} B=}}{{{a}}} {{#x}}"
    # a failed render is a recorded chat request, with the version it was for
    resp = call(server, "POST", "/vars/render", {"variables": {}})
    assert resp.status_code == 400 and resp.headers["x-raygate-prompt-version"] == "1.0.0"
    record = stored_record(server, resp.headers["x-request-id"])
    assert record["status"] == 400 and record["error_code"] == "missing_variable"
    assert record["facts"]["prompt"]["version"] == "1.0.0"
    assert error_of(call(server, "POST", "/vars/render", {"variables": {"a": 1}, "tempo": 1}))["param"] == "tempo"


def test_dry_run_renders_without_a_model_call(server: GatewayServer) -> None:
    deploy(server, "dry", "1.0.0", parameters={"temperature": 0.2})
    resp = call(server, "POST", "/dry/render?dry_run=true", {"variables": {"ticket_content": "x"}})
    assert resp.status_code == 200 and resp.headers["x-raygate-prompt-version"] == "1.0.0"
    body = resp.json()
    assert body["object"] == "prompt.render" and body["prompt"] == {"name": "dry", "version": "1.0.0"}
    assert body["messages"][1] == {"role": "user", "content": "Ticket: x"}
    assert body["request"] == {"temperature": 0.2, "model": "mock", "messages": body["messages"]}
    time.sleep(0.2)
    assert HTTP.get(f"{server.url}/v1/admin/logs/{resp.headers['x-request-id']}", headers=AS_ADMIN).status_code == 404


def test_streaming_render_through_the_sdk(server: GatewayServer, sdk: openai.OpenAI) -> None:
    deploy(server, "strm", "1.0.0", [{"role": "user", "content": "stream {{what}}"}])
    stream = sdk.post("/prompts/strm/render", body={"variables": {"what": "this"}, "stream": True},
                      cast_to=ChatCompletionChunk, stream=True, stream_cls=openai.Stream[ChatCompletionChunk])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Mock reply to: stream this"
    assert chunks[0].model_extra["prompt"] == {"name": "strm", "version": "1.0.0"}
    assert all("prompt" not in (c.model_extra or {}) for c in chunks[1:])
    request_id = stream.response.headers["x-request-id"]
    assert stream.response.headers["x-raygate-prompt-version"] == "1.0.0"
    record = stored_record(server, request_id)
    assert record["stream"] is True and record["status"] == 200 and record["facts"]["prompt"]["version"] == "1.0.0"


def test_render_goes_through_the_cache(server: GatewayServer, sdk: openai.OpenAI) -> None:
    deploy(server, "cached", "1.0.0", [{"role": "user", "content": "cache {{k}}"}])
    _, first = render_raw(sdk, "cached", variables={"k": "me"}, cache={"mode": "exact"})
    second, headers = render_raw(sdk, "cached", variables={"k": "me"}, cache={"mode": "exact"})
    assert first.get("x-raygate-cache") == "MISS" and headers.get("x-raygate-cache") == "HIT"
    assert second.model_extra["prompt"]["version"] == "1.0.0"


# -- A/B tests -----------------------------------------------------------------------------------

def test_inline_split_holds_within_tolerance_with_a_fixed_seed(server: GatewayServer) -> None:
    deploy(server, "ab", "1.2.0", labels=["production"])
    deploy(server, "ab", "1.3.0-beta", [{"role": "user", "content": "beta {{ticket_content}}"}])
    api = server.gateway.prompts
    seeded, api.selector = api.selector, Selector(random.Random(20240601))
    try:
        n = 400
        served = Counter(call(server, "POST", "/ab/render?dry_run=true",
                              {"variables": {"ticket_content": "t"}, "test_version": "1.3.0-beta", "split": 0.3}
                              ).headers["x-raygate-prompt-version"] for _ in range(n))
    finally:
        api.selector = seeded
    assert set(served) == {"1.2.0", "1.3.0-beta"}
    assert abs(served["1.3.0-beta"] / n - 0.3) < 0.06, served


def test_stored_test_is_sticky_and_reports_per_version_stats(server: GatewayServer, sdk: openai.OpenAI) -> None:
    deploy(server, "sticky", "1.2.0", labels=["production"])
    long = "beta: {{ticket_content}} " + " ".join(f"word{i}" for i in range(30))
    deploy(server, "sticky", "1.3.0-beta", [{"role": "user", "content": long}])
    created = call(server, "POST", "/sticky/tests", {"name": "exp1", "versions": {"1.2.0": 0.5, "1.3.0-beta": 0.5},
                                                     "sticky_key": "metadata.user_id"}, admin=True)
    assert created.status_code == 201, created.text
    assert error_of(call(server, "DELETE", "/sticky/versions/1.2.0", admin=True))["code"] == "prompt_version_in_use"
    # one user, one version
    for user in ("alice", "bob"):
        versions = {render(sdk, "sticky", test="exp1", variables={"ticket_content": "x"},
                           metadata={"user_id": user}).model_extra["prompt"]["version"] for _ in range(8)}
        assert len(versions) == 1
    # many users split by the weights; some requests fail upstream; the stats count what clients saw
    seen: Counter[tuple[str, int]] = Counter()
    ids = []
    for i in range(120):
        fail = {"x-raygate-mock-fail": "400"} if i % 10 == 0 else {}
        resp = call(server, "POST", "/sticky/render", {"test": "exp1", "variables": {"ticket_content": f"t{i}"},
                                                       "metadata": {"user_id": f"user-{i}"}}, headers=fail)
        seen[(resp.headers["x-raygate-prompt-version"], resp.status_code)] += 1
        assert resp.headers["x-raygate-prompt-test"] == "exp1"
        ids.append(resp.headers["x-request-id"])
    beta = sum(n for (v, _), n in seen.items() if v == "1.3.0-beta")
    assert 30 <= beta <= 90, seen  # 50% of 120 users; the hash split is fixed, the bound is wide
    deadline = time.time() + 10
    while True:
        stats = call(server, "GET", "/sticky/tests/exp1").json()
        total = sum(v["requests"] for v in stats["versions"])
        if total >= 120 + 16 or time.time() > deadline:
            break
        time.sleep(0.05)
    by_version = {v["version"]: v for v in stats["versions"]}
    assert stats["weights"] == {"1.2.0": 0.5, "1.3.0-beta": 0.5} and stats["sticky_key"] == "metadata.user_id"
    for version in ("1.2.0", "1.3.0-beta"):
        ours = {s: n for (v, s), n in seen.items() if v == version}
        row = by_version[version]
        # the 16 sticky renders above add to the counts; errors come only from this loop
        assert row["errors"] == sum(n for s, n in ours.items() if s >= 400)
        assert row["requests"] >= sum(ours.values())
        assert row["error_rate"] == pytest.approx(row["errors"] / row["requests"])
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["latency_ms"]["p50"] is not None
    assert sum(v["requests"] for v in stats["versions"]) == 120 + 16
    # the beta prompt is longer: more input tokens per request
    assert by_version["1.3.0-beta"]["input_tokens"] / by_version["1.3.0-beta"]["requests"] > \
        by_version["1.2.0"]["input_tokens"] / by_version["1.2.0"]["requests"]
    assert call(server, "DELETE", "/sticky/tests/exp1", admin=True).status_code == 200
    assert call(server, "POST", "/sticky/render", {"test": "exp1"}).status_code == 404


def test_render_argument_conflicts(server: GatewayServer) -> None:
    deploy(server, "conf", "1.0.0")
    deploy(server, "conf", "1.1.0")
    call(server, "POST", "/conf/tests", {"name": "t", "versions": {"1.0.0": 1, "1.1.0": 1}}, admin=True)
    v = {"ticket_content": "x"}
    assert error_of(call(server, "POST", "/conf/render", {"test": "t", "version": "1.0.0", "variables": v}))["param"] \
        == "version"
    assert error_of(call(server, "POST", "/conf/render", {"split": 0.5, "variables": v}))["param"] == "split"
    assert error_of(call(server, "POST", "/conf/render", {"test_version": "7.0.0", "variables": v}))["code"] == \
        "prompt_version_not_found"
    assert call(server, "POST", "/conf/tests", {"name": "u", "versions": {"1.0.0": 1, "9.0.0": 1}},
                admin=True).status_code == 404


class BrokenStore:
    def __getattr__(self, method: str) -> Any:
        async def fail(*args: Any) -> Any:
            raise ConnectionRefusedError("database is down")
        return fail


def test_storage_down_is_a_503_and_prompts_can_be_disabled(server: GatewayServer) -> None:
    api = server.gateway.prompts
    saved = api.store, api.cache.store
    api.store = api.cache.store = BrokenStore()
    try:
        resp = call(server, "POST", "/never-seen/render", {"variables": {}})
        assert resp.status_code == 503 and error_of(resp)["code"] == "storage_unavailable"
        assert "database is down" not in resp.text
        assert deploy(server, "never-seen", "1.0.0").status_code == 503
    finally:
        api.store, api.cache.store = saved
    off = GatewayServer({"providers": {"mock": {"type": "mock"}}, "prompts": {"enabled": False}}).start()
    try:
        resp = HTTP.get(f"{off.url}/v1/prompts")
        assert resp.status_code == 404 and error_of(resp)["code"] == "prompts_disabled"
    finally:
        off.stop()
