"""The guardrails section: validated at load, errors as `file: key.path: reason`."""

from __future__ import annotations

import pytest

from serve_app.config import ConfigError, parse_config

BASE = {"providers": {"m": {"type": "mock"}}, "gateway": {"api_keys": [{"id": "team-a", "key": "k"}]}}


def load(guardrails: dict, **extra):
    return parse_config({**BASE, "guardrails": guardrails, **extra}, "gw.yaml")


def test_the_issues_seed_shape_loads() -> None:
    cfg = load({
        "input-validation": [
            {"type": "keyword_filter", "blocklist": ["password", "ssn", "credit_card", "secret_key"],
             "action": "block"},
            {"type": "pii_detector", "entities": ["email", "phone", "ssn"], "action": "mask"},
            {"type": "toxicity_check", "threshold": 0.8, "action": "block"}],
        "output-validation": [
            {"type": "content_policy", "categories": ["hate", "violence", "self-harm"], "action": "block"},
            {"type": "response_format", "required_schema": {"type": "json_object"}, "action": "retry"}],
        "defaults": ["input-validation"], "keys": {"team-a": ["output-validation"]},
    })
    assert list(cfg.guardrails.sets) == ["input-validation", "output-validation"]
    assert cfg.placement.guardrails == "auto"


@pytest.mark.parametrize("guardrails, path, reason", [
    ({"s": [{"type": "keyword_filter"}]}, "guardrails.s[0].keyword_filter.blocklist", "required"),
    ({"s": [{"type": "nope"}]}, "guardrails.s[0]", "does not match"),
    ({"s": [{"type": "toxicity_check", "action": "mask"}]}, "guardrails.s[0].action", "cannot mask"),
    ({"s": [{"type": "keyword_filter", "blocklist": ["x"], "action": "retry"}]}, "guardrails.s[0].action",
     "output checks only"),
    ({"s": [{"type": "pii_detector", "entities": ["person"]}]}, "guardrails.s[0].pii_detector.entities",
     "NER model"),
    ({"s": [{"type": "regex", "patterns": ["("]}]}, "guardrails.s[0].regex.patterns", "does not compile"),
    ({"s": [{"type": "response_format", "required_schema": {"type": 5}}]},
     "guardrails.s[0].response_format.required_schema", "not a valid JSON Schema"),
    ({"s": [{"type": "custom", "function": "no.such.module:fn"}]}, "guardrails.s[0].custom", "cannot import"),
    ({"s": [{"type": "length"}]}, "guardrails.s[0].length", "max_chars"),
    ({"defaults": ["missing"]}, "guardrails.defaults[0]", "unknown guardrail set"),
    ({"s": [{"type": "length", "max_chars": 5}], "keys": {"team-b": ["s"]}}, "guardrails.keys.team-b",
     "no such key"),
    ({"s": [{"type": "length", "max_chars": 5}], "strategies": {"prod": ["s"]}}, "guardrails.strategies.prod",
     "no such strategy"),
])
def test_errors_name_the_key_path(guardrails: dict, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(guardrails)
    assert err.value.source == "gw.yaml"
    assert err.value.path == path, err.value
    assert reason in err.value.reason


def test_the_deployment_is_bound_only_when_a_check_runs_there() -> None:
    from deployments.guardrails.deployment import guardrail_app
    from serve_app.builder import stage_options

    rules = load({"s": [{"type": "keyword_filter", "blocklist": ["x"]}]})
    assert guardrail_app(rules, stage_options(rules, "Guardrails")) is None
    model = load({"s": [{"type": "toxicity_check"}], "deployment": {"max_replicas": 3}})
    assert guardrail_app(model, stage_options(model, "Guardrails")) is not None
    inproc = load({"s": [{"type": "toxicity_check"}]}, placement={"guardrails": "in_process"})
    assert guardrail_app(inproc, stage_options(inproc, "Guardrails")) is None
    everything = load({"s": [{"type": "keyword_filter", "blocklist": ["x"]}]},
                      placement={"guardrails": "deployment"})
    assert guardrail_app(everything, stage_options(everything, "Guardrails")) is not None


async def test_a_gateway_without_sets_has_no_guardrail_stage_and_refuses_the_field() -> None:
    from serve_app.errors import GatewayError
    from serve_app.ingress import assemble_gateway

    gateway = assemble_gateway(parse_config({**BASE, "default_provider": "m", "storage": {"enabled": False}}))
    assert "guardrails" not in gateway.chain.names and "guardrails_output" not in gateway.chain.names
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "guardrails": ["safety"]}
    with pytest.raises(GatewayError) as err:
        await gateway.chat(body, gateway.begin("chat", {}))
    assert err.value.status == 400 and err.value.code == "unknown_guardrail_set"
    ok = await gateway.chat({"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
                            gateway.begin("chat", {}))
    assert ok.status == 200
