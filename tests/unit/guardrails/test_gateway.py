"""Guardrails in the gateway, over HTTP with the official openai SDK (in-process app, no Ray).

The upstream is ScriptedUpstream (records what it received, answers scripted texts), so each test
can see whether the upstream was called, with what, and what the client got back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.gateway_server import GatewayServer
from tests.support.mockservers.scripted_openai import ScriptedUpstream

KEY = "gw-key"
ADMIN = "gw-admin"


class Captured:
    """A sink keeping finished records by request id."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def submit(self, rec: Any) -> None:
        self.records[rec.request_id] = rec.to_dict()


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    up = ScriptedUpstream(piece=4).start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def server(upstream: ScriptedUpstream) -> Iterator[GatewayServer]:
    config = {
        "gateway": {"api_keys": [{"id": "team-a", "key": KEY}], "admin_keys": [{"id": "ops", "key": ADMIN}]},
        "providers": {"up": {"type": "openai", "base_url": upstream.base_url, "api_key": "sk-x",
                             "models": ["m"]}},
        "default_provider": "up",
        "storage": {"enabled": False},
        "guardrails": {
            "input-validation": [
                {"type": "keyword_filter", "blocklist": ["password", "secret_key"], "action": "block",
                 "stage": "input"},
                {"type": "pii_detector", "entities": ["email", "phone", "ssn"], "action": "mask",
                 "unmask_output": True, "stage": "input"},
                {"type": "toxicity_check", "threshold": 0.8, "action": "block", "stage": "input"}],
            "output-validation": [
                {"type": "content_policy", "categories": ["violence"], "action": "block"},
                {"type": "response_format", "required_schema": {"type": "json_object"}, "action": "retry",
                 "max_retries": 2}],
            "warnings": [{"type": "keyword_filter", "blocklist": ["refund"], "action": "warn"},
                         {"type": "length", "max_chars": 5, "action": "log", "stage": "input"}],
            "redact-output": [{"type": "pii_detector", "entities": ["email", "credit_card"], "action": "mask",
                               "stage": "output"},
                              {"type": "keyword_filter", "blocklist": ["forbidden"], "action": "block",
                               "stage": "output"}],
            "custom": [{"type": "custom", "function": "tests.unit.guardrails.checks_for_tests:broken_check",
                        "action": "block", "name": "broken"}],
        },
    }
    srv = GatewayServer(config)
    srv.captured = Captured()  # type: ignore[attr-defined]
    srv.gateway.sinks.append(srv.captured)  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def record_of(server: GatewayServer, headers: Any) -> dict[str, Any]:
    return server.captured.records[headers["x-request-id"]]  # type: ignore[attr-defined]


def test_blocked_request_is_a_400_without_an_upstream_call(client, upstream, server) -> None:
    upstream.answer("never sent")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=user("my p4ss word is hunter2"),
                                       extra_body={"guardrails": ["input-validation"]})
    body = err.value.body
    assert err.value.status_code == 400
    assert body["type"] == "guardrail_violation" and body["code"] == "keyword_filter"
    assert "input-validation" in body["message"] and "hunter2" not in body["message"]
    assert "input:input-validation/keyword_filter=block" in err.value.response.headers["x-raygate-guardrails"]
    assert upstream.requests == []
    rec = record_of(server, err.value.response.headers)
    assert rec["status"] == 400 and rec["error_type"] == "guardrail_violation"
    assert rec["facts"]["guardrails"][0]["verdict"] == "block"


def test_toxic_request_is_blocked_by_the_classifier(client, upstream) -> None:
    upstream.answer("never sent")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=user("shut up you stupid worthless idiot"),
                                       extra_body={"guardrails": ["input-validation"]})
    assert err.value.body["code"] == "toxicity_check" and upstream.requests == []


def test_masked_request_reaches_the_upstream_masked_and_the_answer_is_unmasked(client, upstream,
                                                                               server) -> None:
    upstream.answer("I will write to <EMAIL_1> and call <PHONE_1>.")
    resp = client.chat.completions.with_raw_response.create(
        model="m", messages=user("email jane@example.com, phone +1 415 555 0100"),
        extra_headers={"x-raygate-guardrails": "input-validation"})
    sent = upstream.requests[0]["body"]["messages"][0]["content"]
    assert sent == "email <EMAIL_1>, phone <PHONE_1>"
    expected = "I will write to jane@example.com and call +1 415 555 0100."
    assert resp.parse().choices[0].message.content == expected
    assert "input:input-validation/pii_detector=mask" in resp.headers["x-raygate-guardrails"]
    rec = record_of(server, resp.headers)
    assert "jane@example.com" not in str(rec["facts"])


def test_warn_and_log_go_on_and_are_reported(client, upstream, server) -> None:
    upstream.answer("ok")
    resp = client.chat.completions.with_raw_response.create(model="m", messages=user("I want a refund now"),
                                                            extra_body={"guardrails": ["warnings"]})
    assert resp.parse().choices[0].message.content == "ok"
    summary = resp.headers["x-raygate-guardrails"]
    assert "input:warnings/keyword_filter=warn" in summary and "input:warnings/length=log" in summary
    assert "output:warnings/keyword_filter=pass" in summary
    verdicts = record_of(server, resp.headers)["facts"]["guardrails"]
    assert {(v["stage"], v["verdict"]) for v in verdicts} == {("input", "warn"), ("input", "log"),
                                                              ("output", "pass")}
    assert all(isinstance(v["latency_ms"], float) for v in verdicts)


def test_blocked_answer_is_a_422_and_keeps_the_upstream_usage(client, upstream, server) -> None:
    upstream.answer("I will stab you if you come near me again")
    with pytest.raises(openai.UnprocessableEntityError) as err:
        client.chat.completions.create(model="m", messages=user("hello"),
                                       extra_body={"guardrails": ["output-validation"]})
    assert err.value.body["type"] == "guardrail_violation" and err.value.body["code"] == "content_policy"
    assert "violence" in err.value.body["message"] and "stab" not in err.value.body["message"]
    rec = record_of(server, err.value.response.headers)
    assert rec["status"] == 422 and rec["usage"]["input"] == 3 and len(upstream.requests) == 1


def test_retry_until_the_answer_is_valid_json(client, upstream, server) -> None:
    upstream.answer("Sure! Here it is: {", '{"answer": 42}')
    resp = client.chat.completions.with_raw_response.create(model="m", messages=user("give me json"),
                                                            extra_body={"guardrails": ["output-validation"]})
    assert resp.parse().choices[0].message.content == '{"answer": 42}'
    assert len(upstream.requests) == 2
    retry = upstream.requests[1]["body"]["messages"]
    assert retry[1] == {"role": "assistant", "content": "Sure! Here it is: {"}
    assert retry[2]["role"] == "user" and "not valid JSON" in retry[2]["content"]
    assert "output:output-validation/response_format=retry" in resp.headers["x-raygate-guardrails"]
    rec = record_of(server, resp.headers)
    assert rec["usage"]["input"] == 6 and rec["usage"]["output"] == 4  # both calls are paid for
    assert len(rec["attempts"]) == 2


def test_retry_gives_up_after_max_retries(client, upstream) -> None:
    upstream.answer("not json")
    with pytest.raises(openai.UnprocessableEntityError) as err:
        client.chat.completions.create(model="m", messages=user("give me json"),
                                       extra_body={"guardrails": ["output-validation"]})
    assert "after 2 retries" in err.value.body["message"] and len(upstream.requests) == 3
    summary = err.value.response.headers["x-raygate-guardrails"]
    assert "output:output-validation/response_format=block" in summary


def test_failing_custom_check_is_a_guardrail_failure_not_a_crash(client, upstream, server) -> None:
    upstream.answer("fine")
    with pytest.raises(openai.UnprocessableEntityError) as err:
        client.chat.completions.create(model="m", messages=user("hello"),
                                       extra_body={"guardrails": ["custom"]})
    assert err.value.body["code"] == "custom" and "RuntimeError" in err.value.body["message"]
    assert record_of(server, err.value.response.headers)["facts"]["guardrails"][0]["verdict"] == "error"


def test_stream_masks_entities_split_across_chunks(client, upstream) -> None:
    upstream.answer("Contact bob.smith@example.com or use card 4111 1111 1111 1111 today, thanks for asking")
    stream = client.chat.completions.create(model="m", messages=user("hi"), stream=True,
                                            extra_body={"guardrails": ["redact-output"]})
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    text = "".join(pieces)
    assert text == "Contact <EMAIL_1> or use card <CREDIT_CARD_1> today, thanks for asking"
    assert not any("example" in p or "4111" in p for p in pieces)


def test_stream_restores_placeholders_split_across_chunks(client, upstream) -> None:
    upstream.answer("Sure, I will write to <EMAIL_1> about it later today, have a nice day")
    stream = client.chat.completions.create(model="m", messages=user("mail jo@example.org please"),
                                            stream=True, extra_body={"guardrails": ["input-validation"]})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Sure, I will write to jo@example.org about it later today, have a nice day"
    assert upstream.requests[0]["body"]["messages"][0]["content"] == "mail <EMAIL_1> please"


def test_stream_blocked_mid_way_ends_with_an_error_event(client, upstream, server) -> None:
    upstream.answer("this part is fine but then comes the forbidden word and more text after it")
    raw = httpx.post(server.base_url + "/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                     json={"model": "m", "stream": True, "messages": user("hi"),
                           "guardrails": ["redact-output"]},
                     timeout=10)
    assert raw.status_code == 200
    events = [e for e in raw.text.split("\n\n") if e]
    assert "[DONE]" not in events[-1] and '"guardrail_violation"' in events[-1]
    assert "forbidden" not in raw.text.replace('check \'keyword_filter\'', "")
    rec = server.captured.records[raw.headers["x-request-id"]]  # type: ignore[attr-defined]
    assert rec["status"] == 422 and rec["error_code"] == "keyword_filter"


def test_unknown_set_and_requests_without_guardrails(client, upstream) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=user("hi"), extra_body={"guardrails": ["nope"]})
    assert err.value.body["code"] == "unknown_guardrail_set"
    upstream.answer("plain")
    resp = client.chat.completions.with_raw_response.create(model="m", messages=user("my password"))
    assert "x-raygate-guardrails" not in resp.headers and resp.parse().choices[0].message.content == "plain"


def test_metrics_count_checks_by_check_and_verdict(server, client, upstream) -> None:
    upstream.answer("ok")
    client.chat.completions.create(model="m", messages=user("a refund"),
                                   extra_body={"guardrails": ["warnings"]})
    text = httpx.get(server.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10).text
    assert 'raygate_guardrail_checks_total{check="keyword_filter",verdict="warn"}' in text
