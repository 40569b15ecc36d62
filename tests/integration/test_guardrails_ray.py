"""Guardrails on a real Ray Serve app: model-holding checks in the Guardrails deployment (autoscaled),
rule checks in the ingress, through the official openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.ray

CONFIG = {
    "providers": {"sandbox": {"type": "mock"}}, "default_provider": "sandbox",
    "serve": {"ingress_replicas": 1},
    "guardrails": {
        "safety": [
            {"type": "keyword_filter", "blocklist": ["secret_key"], "stage": "input"},
            {"type": "pii_detector", "entities": ["email"], "action": "mask", "stage": "input"},
            {"type": "toxicity_check", "threshold": 0.8},
            {"type": "content_policy", "categories": ["violence"]},
        ],
    },
}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_model_checks_run_in_the_guardrails_deployment(deploy_gateway) -> None:
    from ray import serve

    app = deploy_gateway(CONFIG, name="guard")
    assert httpx.get(app.url + "/ready", timeout=60).status_code == 200  # the Guardrails replica answers
    deployments = serve.status().applications["guard"].deployments
    assert "Guardrails" in deployments
    client = openai.OpenAI(base_url=app.base_url, api_key="none", max_retries=0)
    safety = {"guardrails": ["safety"]}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="mock", messages=user("you stupid idiot"), extra_body=safety)
    assert err.value.body["code"] == "toxicity_check"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="mock", messages=user("I will stab you"), extra_body=safety)
    assert err.value.body["code"] == "content_policy" and "violence" in err.value.body["message"]
    resp = client.chat.completions.with_raw_response.create(
        model="mock", messages=user("mail ann@example.com about lunch"), extra_body=safety)
    # the mock echoes the question: it received the masked text; the output checks ran remotely too
    assert resp.parse().choices[0].message.content == "Mock reply to: mail <EMAIL_1> about lunch"
    summary = resp.headers["x-raygate-guardrails"]
    assert "output:safety/toxicity_check=pass" in summary and "output:safety/content_policy=pass" in summary
    stream = client.chat.completions.create(model="mock", stream=True, extra_body=safety,
                                            messages=user("tell me about tea"))
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Mock reply to: tell me about tea"
