"""Which model names reach which provider, what goes upstream, and GET /v1/models.

- a provider that declares `models` (globs allowed) receives only those names, however it is
  reached (`default_provider`, the `provider` field, a `<provider>/` prefix, a strategy); a name
  mapped under `models:` is always accepted; a provider without a list receives any name;
- anything no one accepts is 404 model_not_found naming the model and what was tried;
- through an alias or a strategy's name, a target sends its own model, never the alias, also
  after a fallback;
- /v1/models lists every name a request may use, and each of them routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from serve_app.config import ConfigError, parse_config
from tests.support.mockservers.recording_openai import RecordingUpstream
from tests.support.providers import strict_client

ROOT = Path(__file__).resolve().parents[2]
MSG = [{"role": "user", "content": "hi"}]


def _provider(up: RecordingUpstream, **fields: Any) -> dict[str, Any]:
    return {"type": "openai", "base_url": up.base_url, "api_key": "sk-x", **fields}


@pytest.fixture
def dev(gateway: Any) -> openai.OpenAI:
    """The README's quickstart config, as shipped."""
    return strict_client(gateway(yaml.safe_load((ROOT / "configs" / "dev.yaml").read_text())))


def test_dev_config_unknown_model_is_404(dev: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        dev.chat.completions.create(model="no-such-model", messages=MSG)
    err = exc.value
    assert (err.status_code, err.type, err.code, err.param) == (
        404,
        "not_found_error",
        "model_not_found",
        "model",
    )
    body = err.body["message"]  # type: ignore[index]
    assert "'no-such-model'" in body and "default_provider 'sandbox' serves only mock" in body
    with pytest.raises(openai.NotFoundError):
        dev.chat.completions.create(model="sandbox/no-such-model", messages=MSG)
    with pytest.raises(openai.NotFoundError):
        dev.embeddings.create(model="no-such-model", input="x", encoding_format="float")


def test_dev_config_listing_routes(dev: openai.OpenAI) -> None:
    cards = {m.id: m.owned_by for m in dev.models.list()}
    assert cards == {"gpt-4o-mini": "alias:sandbox", "mock": "sandbox", "sandbox/mock": "sandbox"}
    for model in cards:  # every listed name answers
        resp = dev.chat.completions.with_raw_response.create(model=model, messages=MSG)
        assert resp.headers["x-raygate-provider"] == "sandbox"
        assert resp.parse().model == "mock"  # the mock's own model went upstream, not the alias


@pytest.fixture
def routed(gateway: Any, upstream: RecordingUpstream) -> openai.OpenAI:
    return strict_client(
        gateway(
            {
                "providers": {
                    "strict": _provider(upstream, models=["gpt-4o", "gpt-4o-mini-*"]),
                    "open": _provider(upstream),
                    "flaky": _provider(upstream, model="status-503"),
                    "backup": _provider(upstream, model="backup-model"),
                },
                "strategies": {
                    "chain": {"type": "fallback", "targets": [{"provider": "flaky"}, {"provider": "backup"}]},
                    "pick": {"type": "fallback", "targets": [{"provider": "strict"}, {"provider": "open"}]},
                },
                "models": {"smart": "chain", "mapped": "strict"},
                "default_provider": "open",
            }
        )
    )


def _route(client: openai.OpenAI, upstream: RecordingUpstream, **body: Any) -> tuple[str, str]:
    resp = client.chat.completions.with_raw_response.create(messages=MSG, **body)
    return resp.headers["x-raygate-provider"], upstream.requests[-1]["body"]["model"]


def test_declared_names_and_pass_through(routed: openai.OpenAI, upstream: RecordingUpstream) -> None:
    assert _route(routed, upstream, model="gpt-4o") == ("strict", "gpt-4o")  # its declared name
    assert _route(routed, upstream, model="gpt-4o-mini-2024") == ("strict", "gpt-4o-mini-2024")  # a glob
    assert _route(routed, upstream, model="llama-3") == ("open", "llama-3")  # default_provider, no list
    assert _route(routed, upstream, model="mapped") == ("strict", "mapped")  # an alias is always accepted
    assert _route(routed, upstream, model="llama-3", extra_body={"provider": "open"}) == ("open", "llama-3")
    for body in ({"model": "strict/llama-3"}, {"model": "llama-3", "extra_body": {"provider": "strict"}}):
        with pytest.raises(openai.NotFoundError) as exc:
            routed.chat.completions.create(messages=MSG, **body)
        assert (
            exc.value.code == "model_not_found" and "serves only gpt-4o, gpt-4o-mini-*" in exc.value.message
        )
    # a strategy picked with `config` sends the request's model only to targets that accept it
    resp = routed.chat.completions.with_raw_response.create(
        model="llama-3", messages=MSG, extra_body={"config": "pick"}
    )
    assert (
        resp.headers["x-raygate-provider"] == "open" and resp.headers["x-raygate-route"] == "pick.targets[1]"
    )
    # a pass-through's upstream 404 is passed on as it is
    with pytest.raises(openai.NotFoundError) as exc:
        routed.chat.completions.create(model="status-404", messages=MSG)
    assert "provider 'open'" in exc.value.message


def test_nothing_accepts_is_404(gateway: Any, upstream: RecordingUpstream) -> None:
    client = strict_client(
        gateway(
            {
                "providers": {
                    "a": _provider(upstream, models=["m1"]),
                    "b": _provider(upstream, models=["m2"]),
                },
                "strategies": {"ab": {"type": "fallback", "targets": [{"provider": "a"}, {"provider": "b"}]}},
            }
        )
    )
    assert _route(client, upstream, model="m2") == ("b", "m2")
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="m3", messages=MSG)
    assert exc.value.code == "model_not_found"
    assert exc.value.message.endswith("no `models:` alias, no provider declares it, no default_provider")
    before = len(upstream.requests)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="m3", messages=MSG, extra_body={"config": "ab"})
    assert "no target of 'ab' accepts it" in exc.value.message and len(upstream.requests) == before


def test_alias_and_fallback_send_the_targets_own_model(
    routed: openai.OpenAI, upstream: RecordingUpstream
) -> None:
    for name in ("smart", "chain"):  # an alias of the strategy, and the strategy's own name
        before = len(upstream.requests)
        resp = routed.chat.completions.with_raw_response.create(model=name, messages=MSG)
        sent = [r["body"]["model"] for r in upstream.requests[before:]]
        assert sent == [
            "status-503",
            "backup-model",
        ]  # each target's own model; the alias never went upstream
        assert (
            resp.headers["x-raygate-route"] == "chain.targets[1]"
            and resp.headers["x-raygate-attempts"] == "2"
        )
        assert resp.parse().model == "backup-model"


def test_alias_to_a_strategy_without_models_stops_start_up(upstream: RecordingUpstream) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "providers": {"p": _provider(upstream)},
                "strategies": {"s": {"type": "fallback", "targets": [{"provider": "p"}]}},
                "models": {"fast": "s"},
            },
            "gw.yaml",
        )
    assert str(exc.value).startswith(
        "gw.yaml: models.fast: strategy 's' has targets without a model (s.targets[0])"
    )


def test_listing_is_every_routable_name(routed: openai.OpenAI, upstream: RecordingUpstream) -> None:
    cards = {m.id: m.owned_by for m in routed.models.list()}
    assert (
        cards["smart"] == "alias:chain" and cards["mapped"] == "alias:strict" and cards["chain"] == "strategy"
    )
    assert "pick" not in cards  # its targets send the request's model: it is picked with `config`, not named
    assert cards["gpt-4o"] == "strict" and cards["strict/gpt-4o"] == "strict"
    assert not any("*" in c for c in cards)  # a glob is a pattern, not a name
    assert (
        "backup-model" not in cards
    )  # a bare request for it would go to `open` (default_provider), not backup
    assert cards["backup/backup-model"] == "backup" and cards["flaky/status-503"] == "flaky"
    for model, owner in cards.items():
        if "status-" in model:
            continue  # the recording upstream fails that one on purpose
        provider = routed.chat.completions.with_raw_response.create(model=model, messages=MSG).headers[
            "x-raygate-provider"
        ]
        if owner != "strategy" and not owner.startswith("alias:"):
            assert provider == owner, model
