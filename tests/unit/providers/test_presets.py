"""The OpenAI-compatible presets (deployments/providers/presets.py): each request golden against the
preset's default `base_url` and headers, and the per-model rules. No network, no Ray; the presets'
responses, streams and errors go through tests/conformance/test_presets.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.providers import presets, registry
from serve_app.errors import GatewayError
from tests.support.mockservers.common import FIXTURES
from tests.support.providers import ProviderKit

GOLDENS = sorted(FIXTURES.glob("*/requests/*.json"))
PRESET_GOLDENS = [p for p in GOLDENS if registry.get(p.parents[1].name) is not None
                  and registry.get(p.parents[1].name).adapter.__module__ == presets.__name__]


def kit(path: Path) -> ProviderKit:
    return ProviderKit(path.parents[1].name, name=path.parents[1].name, model="m")


@pytest.mark.parametrize("path", PRESET_GOLDENS, ids=lambda p: p.parents[1].name)
def test_request_golden_default_url_and_headers(path: Path) -> None:
    case, req = kit(path).check_request_golden(path)
    headers = {k.lower(): v for k, v in req.headers.items()}  # the golden names them as HTTP does
    for name, value in case["headers"].items():
        assert headers[name] == value, name
    for name in case["absent_headers"]:
        assert name not in headers


def test_every_preset_has_a_golden() -> None:
    assert len({p.parents[1].name for p in PRESET_GOLDENS}) == 12


def _deepseek(body: dict) -> dict:
    adapter = ProviderKit("deepseek", "ds", "deepseek-chat", {"api_key": "k"}).adapter()
    return adapter.prepare_chat(body, ProviderKit("deepseek", "ds", body["model"]).ctx(), stream=False)


def test_model_rules_apply_to_their_models_only() -> None:
    chat = _deepseek({"model": "deepseek-chat", "messages": [], "logprobs": True, "temperature": 0.3})
    assert chat["logprobs"] is True and chat["temperature"] == 0.3
    reasoner = _deepseek({"model": "deepseek-reasoner", "messages": [], "temperature": 0.3})
    assert "temperature" not in reasoner
    with pytest.raises(GatewayError) as exc:
        _deepseek({"model": "deepseek-reasoner", "messages": [], "logprobs": True})
    assert (exc.value.status, exc.value.param, exc.value.code) == (400, "logprobs", "unsupported_parameter")
    assert "deepseek-reasoner" in exc.value.message


def test_a_refused_field_set_to_null_is_not_refused() -> None:
    adapter = ProviderKit("cerebras", "c", "llama-3.3-70b", {"api_key": "k"}).adapter()
    body = adapter.prepare_chat({"model": "m", "messages": [], "frequency_penalty": None},
                                ProviderKit("cerebras", "c", "m").ctx(), stream=False)
    assert "frequency_penalty" not in body  # nor forwarded: the API refuses the field whatever its value


def test_cached_tokens_from_a_vendor_usage_key() -> None:
    out = ProviderKit("deepseek", "ds", "deepseek-reasoner", {"api_key": "k"}).completion("chat.json")
    assert out["usage"]["prompt_cache_hit_tokens"] == 8
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 8
