"""No secret of the config reaches a repr, a str, a JSON dump, a config error or the start-up logs.

One config holds a distinctive secret in every secret-bearing field: gateway and admin keys, every
provider type's `api_key` and its own secret fields (Azure's Entra token, Bedrock's AWS keys), the
password and token of `cache.url`, and the password of `storage.url`. A walk over the loaded models
checks that no secret field was left out, so a new secret field fails here until it is added.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from deployments.providers import registry
from serve_app.config import ConfigError, parse_config
from serve_app.secret_url import SecretUrl, masked_url
from tests.support.gateway_server import GatewayServer

MARK = "s3cr3t-7f3a9"  # every secret below contains it; nothing may print it
REQUIRED = {"azure-openai": {"resource_name": "res"}, "bedrock": {"region": "eu-west-1"},
            "ray-serve": {"app_name": "llm", "deployment_name": "LLMServer:m"}}
OWN_SECRETS = {"azure-openai": ("azure_ad_token",),
               "bedrock": ("access_key_id", "secret_access_key", "session_token")}


def secret(where: str) -> str:
    return f"{MARK}-{where}"


def raw_config(*, types: list[str] | None = None) -> dict[str, Any]:
    providers = {}
    for ptype in types if types is not None else sorted(registry.names()):
        section = {"type": ptype, "api_key": secret(f"{ptype}-api-key"), **REQUIRED.get(ptype, {})}
        section.update({name: secret(f"{ptype}-{name}") for name in OWN_SECRETS.get(ptype, ())})
        providers[f"p-{ptype}"] = section
    return {
        "gateway": {"api_keys": [{"id": "team-a", "key": secret("client-key")}],
                    "admin_keys": [{"id": "ops", "key": secret("admin-key")}]},
        "providers": providers,
        "default_provider": "p-mock",
        "cache": {"enabled": True, "url": f"redis://cache-user:{secret('redis-password')}@127.0.0.1:6379/7"
                                          f"?token={secret('redis-token')}"},
        "storage": {"enabled": False, "url": f"postgresql://rec:{secret('db-password')}@127.0.0.1:1/raygate"},
    }


def secret_fields(model: BaseModel, path: str = "") -> dict[str, Any]:
    """Every field typed as a secret anywhere in the model tree, with its value."""
    found: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{path}.{name}" if path else name
        if "Secret" in str(field.annotation):
            found[where] = value
        children: Any = value.items() if isinstance(value, dict) else ()
        if isinstance(value, list):
            children = enumerate(value)
        for key, child in children:
            if isinstance(child, BaseModel):
                found.update(secret_fields(child, f"{where}[{key}]"))
        if isinstance(value, BaseModel):
            found.update(secret_fields(value, where))
    return found


def test_every_secret_field_holds_a_secret_here() -> None:
    fields = secret_fields(parse_config(raw_config()))
    missing = [path for path, value in fields.items() if not (
        isinstance(value, SecretStr) and MARK in value.get_secret_value())]
    assert not missing, f"secret fields this test does not fill (add them to raw_config): {missing}"
    assert len(fields) >= len(registry.names()) + 2 + 2 + 3 + 1  # api_keys, keys, urls, bedrock, azure


def test_no_secret_in_repr_str_or_json() -> None:
    cfg = parse_config(raw_config())
    shown = [repr(cfg), str(cfg), cfg.model_dump_json(), repr(cfg.cache), str(cfg.cache.url),
             repr(cfg.providers), repr(cfg.gateway)]
    for text in shown:
        assert MARK not in text
    # the URL still says where the cache is
    assert str(cfg.cache.url) == "redis://cache-user:***@127.0.0.1:6379/7?token=***"
    assert cfg.cache.url.get_secret_value().startswith("redis://cache-user:" + MARK)


@pytest.mark.parametrize(("url", "hidden"), [
    ("redis://:pw@h/0", "pw"), ("redis://tokenonly@h", "tokenonly"),
    ("rediss://u:pw@h:1/2?password=pw&db=3", "pw"),
    ("unix:///tmp/redis.sock?password=pw", "pw"), ("redis://u:pw@[::1", "pw")])
def test_masked_url_keeps_no_credential(url: str, hidden: str) -> None:
    assert hidden not in masked_url(url)
    assert hidden not in repr(SecretUrl(url)) and hidden not in str(SecretUrl(url))


@pytest.mark.parametrize("edit", [
    lambda raw: raw["cache"].update(ttl=-1),  # a bad value beside them
    lambda raw: raw["providers"]["p-openai"].update(timeout="soon"),
    lambda raw: raw["providers"]["p-bedrock"].pop("secret_access_key"),  # a model-level check
    lambda raw: raw["gateway"]["api_keys"][0].update(scope="all"),  # an unknown key
    lambda raw: raw["cache"].update(url=f"http://u:{secret('bad-url')}@h"),  # the secret field itself
    lambda raw: raw["cache"].update(url=f"redis://u:{secret('ipv6')}@[::1"),
    lambda raw: raw["gateway"]["admin_keys"].append({"id": "ops", "key": secret("dup")}),
    lambda raw: raw.update(default_provider="nope"),
    lambda raw: raw.update(serve={"ingress_replicas": 0}),
    lambda raw: raw["storage"].update(url=f"rec:{secret('no-scheme')}@127.0.0.1/raygate"),
    lambda raw: raw["storage"].update(url=f"postgresql://rec:{secret('bad-host')}@[::1/raygate"),
    lambda raw: raw["storage"].update(url=f"mysql://rec:{secret('scheme')}@h/raygate"),
])
def test_no_secret_in_config_errors(edit: Any) -> None:
    raw = copy.deepcopy(raw_config())
    edit(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert MARK not in str(err.value) and MARK not in repr(err.value)
    assert err.value.path  # the error names the key


def test_no_secret_in_start_up_logs(caplog: pytest.LogCaptureFixture,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    """An in-process gateway started at DEBUG with every secret set (the redis cache backend included;
    the record store off: with an unreachable database its shutdown waits 10 s for the records) logs
    none of them while it starts, answers, reports its cache stats and stops."""
    raw = raw_config(types=[t for t in sorted(registry.names()) if t != "ray-serve"])  # that one needs Ray
    raw["cache"].update(backend="redis", prefix="rgtest:secrets:")
    caplog.set_level(logging.DEBUG)
    server = GatewayServer(raw).start()
    try:
        headers = {"authorization": f"Bearer {secret('client-key')}"}
        reply = httpx.post(server.base_url + "/chat/completions", headers=headers,
                           json={"model": "p-mock/m", "messages": [{"role": "user", "content": "hi"}]})
        stats = httpx.get(server.url + "/v1/admin/cache/stats",
                          headers={"authorization": f"Bearer {secret('admin-key')}"})
        metrics = httpx.get(server.url + "/metrics")
    finally:
        server.stop()
    # the redis password is refused by a Redis without auth: an error path that must not leak either
    assert reply.status_code in (200, 500, 502, 503), reply.text
    out, err = capfd.readouterr()
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    for text in (logged, out, err, reply.text, stats.text, metrics.text):
        assert MARK not in text
    assert caplog.records, "expected the start-up to log something at DEBUG"
