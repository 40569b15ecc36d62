"""Prompts on a real Serve app (two ingress replicas, the prompt-store actor, SQLite storage): the Python
client's `prompts` over handle calls, renders over HTTP through the openai SDK, stats from the stored
records, and a label move seen by every replica within `prompts.cache_ttl_s`."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from serve_app.errors import GatewayError

pytestmark = pytest.mark.ray

KEY, ADMIN = "pr-ray-key", "pr-ray-admin"
TTL = 0.5
TRIAGE = [{"role": "system", "content": "Sort tickets."}, {"role": "user", "content": "Ticket: {{ticket}}"}]


@pytest.fixture(scope="module")
def app(deploy_gateway: Any) -> Any:
    return deploy_gateway({
        "gateway": {"api_keys": [{"id": "team", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}]},
        "providers": {"mock": {"type": "mock"}},
        "default_provider": "mock",
        "serve": {"ingress_replicas": 2},
        "prompts": {"cache_ttl_s": TTL},
    }, name="itprompts")


def test_client_and_http(app: Any) -> None:
    from serve_app.client import RaygateClient

    gw = RaygateClient(app_name=app.name, api_key=KEY, admin_key=ADMIN)
    made = gw.prompts.deploy(name="triage", version="1.2.0", prompt=TRIAGE, model="mock",
                             parameters={"temperature": 0.2, "max_tokens": 50}, labels=["production"])
    assert made["created"] is True
    gw.prompts.deploy(name="triage", version="1.3.0-beta", prompt=[{"role": "user", "content": "B: {{ticket}}"}],
                      model="mock")
    assert [v["version"] for v in gw.prompts.get("triage")["versions"]] == ["1.2.0", "1.3.0-beta"]

    reply = gw.prompts.render(name="triage", variables={"ticket": "disk full"})
    assert reply["choices"][0]["message"]["content"] == "Mock reply to: Ticket: disk full"
    assert reply["prompt"] == {"name": "triage", "version": "1.2.0"}
    beta = gw.prompts.render(name="triage", variables={"ticket": "x"}, test_version="1.3.0-beta", split=1.0)
    assert beta["prompt"] == {"name": "triage", "version": "1.3.0-beta", "test": "1.2.0_vs_1.3.0-beta"}
    chunks = list(gw.prompts.render(name="triage", variables={"ticket": "streamed"}, stream=True))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "Mock reply to: Ticket: streamed"
    assert chunks[0]["prompt"]["version"] == "1.2.0"
    dry = gw.prompts.render(name="triage", variables={"ticket": "t"}, dry_run=True)
    assert dry["messages"][1]["content"] == "Ticket: t" and dry["request"]["max_tokens"] == 50

    with pytest.raises(GatewayError) as err:
        gw.prompts.render(name="triage", variables={})
    assert (err.value.status, err.value.code) == (400, "missing_variable")
    with pytest.raises(GatewayError) as err:
        RaygateClient(app_name=app.name, api_key=KEY, admin_key="").prompts.deploy(
            name="triage", version="9.0.0", prompt=TRIAGE)
    assert err.value.status == 401

    # a stored, sticky test; renders over HTTP (both replicas) through the openai SDK
    gw.prompts.create_test("triage", "exp", {"1.2.0": 0.5, "1.3.0-beta": 0.5}, sticky_key="metadata.user_id")
    sdk = openai.OpenAI(base_url=app.base_url, api_key=KEY, max_retries=0)
    seen: Counter[str] = Counter()
    for i in range(40):
        resp = sdk.post("/prompts/triage/render", cast_to=httpx.Response,
                        body={"test": "exp", "variables": {"ticket": f"t{i}"}, "metadata": {"user_id": f"u{i % 8}"}})
        completion = ChatCompletion.model_validate(resp.json())
        seen[resp.headers["x-raygate-prompt-version"]] += 1
        assert completion.model_extra["prompt"]["test"] == "exp"
    assert set(seen) == {"1.2.0", "1.3.0-beta"} and all(n % 5 == 0 for n in seen.values())  # 8 users, sticky
    deadline = time.time() + 30
    while True:
        stats = {v["version"]: v["requests"] for v in gw.prompts.test_stats("triage", "exp")["versions"]}
        if stats == dict(seen) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert stats == dict(seen)

    # a label move: the replica that took it sees it at once, the other within cache_ttl_s
    gw.prompts.set_label("triage", "production", "1.3.0-beta")
    time.sleep(TTL + 0.3)
    served = {sdk.post("/prompts/triage/render", cast_to=httpx.Response, body={"variables": {"ticket": "n"}})
              .headers["x-raygate-prompt-version"] for _ in range(20)}
    assert served == {"1.3.0-beta"}
