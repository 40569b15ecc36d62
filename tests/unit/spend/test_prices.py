"""Cost of each usage shape against hand-computed values (USD per million tokens -> per request)."""

from __future__ import annotations

import pytest

from deployments.providers.anthropic.response import openai_usage as anthropic_usage
from deployments.providers.bedrock.response import usage as bedrock_usage
from deployments.providers.google.response import usage as google_usage
from deployments.spend.prices import PriceBook, genai_price
from serve_app.config import parse_config
from serve_app.errors import ConfigError
from serve_app.lifecycle import usage_counts

M = 1e-6


def _book(pricing: dict | None = None) -> PriceBook:
    cfg = parse_config({"providers": {"oa": {"type": "openai", "api_key": "k"}, "an": {"type": "anthropic", "api_key": "k"},
                                      "gg": {"type": "google", "api_key": "k"}, "local": {"type": "vllm",
                                                                                    "base_url": "http://x/v1"}},
                        "pricing": pricing or {}})
    from deployments.spend.prices import build_price_book

    return build_price_book(cfg)


def test_plain_usage_at_the_genai_prices_rate() -> None:
    # gpt-4o: $2.50 input, $10 output per million tokens
    usage = usage_counts({"prompt_tokens": 1000, "completion_tokens": 500})
    assert _book().get("oa", "gpt-4o").cost(usage) == pytest.approx(1000 * 2.5 * M + 500 * 10 * M)


def test_openai_cached_tokens_are_part_of_prompt_tokens_and_priced_once() -> None:
    # OpenAI: prompt_tokens 1000 includes 400 cached ($1.25): 600 x 2.5 + 400 x 1.25 + 200 x 10
    usage = usage_counts({"prompt_tokens": 1000, "completion_tokens": 200,
                          "prompt_tokens_details": {"cached_tokens": 400}})
    assert _book().get("oa", "gpt-4o").cost(usage) == pytest.approx((600 * 2.5 + 400 * 1.25 + 200 * 10) * M)


def test_anthropic_cache_reads_and_writes_are_priced_separately() -> None:
    # Anthropic's input_tokens excludes cache reads/writes; the adapter adds them into prompt_tokens.
    # claude-sonnet-4-5: input $3, cache read $0.30, cache write $3.75, output $15
    usage = usage_counts(anthropic_usage({"input_tokens": 100, "cache_read_input_tokens": 400,
                                          "cache_creation_input_tokens": 200, "output_tokens": 50}))
    assert usage["input"] == 700
    expected = (100 * 3 + 400 * 0.30 + 200 * 3.75 + 50 * 15) * M
    assert _book().get("an", "claude-sonnet-4-5").cost(usage) == pytest.approx(expected)


def test_bedrock_cache_reads_are_not_double_counted() -> None:
    usage = usage_counts(bedrock_usage({"inputTokens": 100, "cacheReadInputTokens": 300, "outputTokens": 10}))
    price = genai_price("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert price is not None
    assert price.cost(usage) == pytest.approx((100 * 3 + 300 * 0.3 + 10 * 15) * M)


def test_reasoning_tokens_are_inside_output_and_priced_at_their_own_rate() -> None:
    # Gemini: completion = candidates (100) + thoughts (300); config prices reasoning at 20, output at 10
    usage = usage_counts(google_usage({"promptTokenCount": 50, "candidatesTokenCount": 100,
                                       "thoughtsTokenCount": 300}))
    assert (usage["output"], usage["reasoning"]) == (400, 300)
    book = _book({"gg": {"gemini-2.5-flash": {"input": 1, "output": 10, "reasoning": 20}}})
    assert book.get("gg", "gemini-2.5-flash").cost(usage) == pytest.approx((50 * 1 + 100 * 10 + 300 * 20) * M)
    # without a reasoning rate, reasoning tokens pay the output rate: 400 x 10, not 700 x 10
    book = _book({"gg": {"gemini-2.5-flash": {"input": 1, "output": 10}}})
    assert book.get("gg", "gemini-2.5-flash").cost(usage) == pytest.approx((50 * 1 + 400 * 10) * M)


def test_tiered_price_applies_to_the_whole_request_above_the_threshold() -> None:
    # claude-sonnet-4-5 above 200k input tokens: input $6, output $22.50
    price = _book().get("an", "claude-sonnet-4-5")
    small = usage_counts({"prompt_tokens": 200_000, "completion_tokens": 1000})
    large = usage_counts({"prompt_tokens": 200_001, "completion_tokens": 1000})
    assert price.cost(small) == pytest.approx((200_000 * 3 + 1000 * 15) * M)
    assert price.cost(large) == pytest.approx((200_001 * 6 + 1000 * 22.5) * M)


def test_config_overrides_by_name_then_type_then_genai_prices_and_self_hosted_can_be_free() -> None:
    usage = usage_counts({"prompt_tokens": 1000, "completion_tokens": 1000})
    book = _book({"oa": {"gpt-4o": {"input": 1, "output": 2}}, "openai": {"gpt-4o": {"input": 5, "output": 5}},
                  "local": {"*": {"input": 0, "output": 0}}})
    assert book.get("oa", "gpt-4o").cost(usage) == pytest.approx(3000 * M)
    assert book.get("oa", "gpt-4o").source == "config"
    assert book.get("oa", "gpt-4o-mini").source == "genai-prices"
    assert book.get("local", "any-model").cost(usage) == 0.0


def test_unknown_models_have_no_price_rather_than_zero() -> None:
    book = _book()
    assert book.get("oa", "no-such-model-xyz") is None
    assert book.get("local", "llama-3-8b") is None  # self-hosted without a config price


def test_pricing_must_name_a_provider_or_type() -> None:
    with pytest.raises(ConfigError, match=r"pricing\.nope: is neither"):
        _book({"nope": {"m": {"input": 1, "output": 1}}})
    with pytest.raises(ConfigError, match=r"pricing\.oa\.gpt-4o\.input"):
        _book({"oa": {"gpt-4o": {"input": -1, "output": 1}}})
