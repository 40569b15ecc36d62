"""The `rate_limits:` section (errors as `file: key.path: reason`), which buckets a request counts
against, and the token estimate it reserves."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.ratelimit.estimate import estimate_tokens, used_tokens
from deployments.ratelimit.scope import Rules
from serve_app.config import ConfigError, parse_config
from serve_app.lifecycle import RequestRecord


def rules(raw: Any) -> Rules:
    return Rules(parse_config({"rate_limits": raw}, "gw.yaml").rate_limits)


@pytest.mark.parametrize(("raw", "message"), [
    ([{"scope": "team", "requests_per_minute": 1}],
     "gw.yaml: rate_limits[0].scope: Value error, unknown scope 'team'"),
    ([{"scope": "key"}],
     "gw.yaml: rate_limits[0]: Value error, set requests_per_minute, tokens_per_minute or both"),
    ([{"scope": "ip", "requests_per_minute": 0}],
     "gw.yaml: rate_limits[0].requests_per_minute: Input should be greater than 0"),
    ([{"scope": {"key": "a", "ip": "b"}, "requests_per_minute": 1}],
     "gw.yaml: rate_limits[0].scope: Value error, a fixed scope names exactly one"),
    ([{"scope": "key", "requests_per_minute": 1}, {"scope": "key", "tokens_per_minute": 5}],
     "gw.yaml: rate_limits: Value error, scope key appears twice"),
    ([{"scope": "key", "rpm": 1}], "gw.yaml: rate_limits[0].rpm: unknown key"),
    ({"rules": [], "shards": 0}, "gw.yaml: rate_limits.shards: Input should be greater than or equal to 1"),
])
def test_config_errors_name_the_key_as_written(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"rate_limits": raw}, "gw.yaml")
    assert str(err.value).startswith(message)


def test_no_section_no_rules() -> None:
    assert parse_config({}).rate_limits.rules == []


def rec(key: str | None = "team-a", ip: str | None = "10.0.0.7", **metadata: str) -> RequestRecord:
    r = RequestRecord("r1", client_ip=ip)
    r.key_id, r.metadata = key, metadata
    return r


def test_each_value_its_own_bucket_and_a_fixed_value_replaces_the_per_value_rule() -> None:
    r = rules([{"scope": "key", "requests_per_minute": 600, "tokens_per_minute": 200000},
               {"scope": {"key": "batch-jobs"}, "requests_per_minute": 60},
               {"scope": "ip", "requests_per_minute": 100},
               {"scope": "metadata.project", "tokens_per_minute": 5000}])
    [(limit, value), (ip_limit, ip)] = r.match(rec(), {})
    assert (limit.requests, limit.tokens, value) == (600, 200000, "team-a") and ip == "10.0.0.7"
    [(batch, value), _] = r.match(rec("batch-jobs"), {})
    assert (batch.requests, batch.tokens, value) == (60, None, "batch-jobs")
    assert batch.prefix != limit.prefix and limit.label == batch.label == "key"
    assert [lim.label for lim, _ in r.match(rec(project="apollo"), {})] == ["key", "ip", "metadata.project"]
    assert r.match(rec(key=None, ip=None), {}) == []  # no value for a dimension: not limited on it
    assert r.counts_tokens


def test_user_is_the_metadata_user_id_else_the_openai_user_field() -> None:
    r = rules([{"scope": "user", "requests_per_minute": 10},
               {"scope": {"user_id": "vip"}, "requests_per_minute": 99}])
    assert r.match(rec(user_id="alice"), {"user": "bob"})[0][1] == "alice"
    assert r.match(rec(), {"user": "bob"})[0][1] == "bob"
    assert r.match(rec(), {"user": "vip"})[0][0].requests == 99
    assert r.match(rec(), {}) == [] and not r.counts_tokens


def test_the_estimate_counts_prompt_characters_and_the_output_allowance() -> None:
    parts = [{"type": "text", "text": "y" * 21}, {"type": "image_url"}]
    body = {"messages": [{"role": "system", "content": "x" * 40}, {"role": "user", "content": parts}],
            "max_tokens": 100, "n": 2}
    assert estimate_tokens(body, "chat", 1024) == 16 + 2 * 3 + 200
    assert estimate_tokens({"messages": [{"role": "user", "content": "hi"}]}, "chat", 1024) == 1 + 3 + 1024
    assert estimate_tokens({"messages": [], "max_completion_tokens": 7}, "chat", 1024) == 7
    assert estimate_tokens({"input": ["abcd", "efgh1"]}, "embeddings", 1024) == 3
    assert estimate_tokens({"input": [1, 2, 3]}, "embeddings", 1024) == 3
    assert used_tokens({"input": 10, "cached_input": 4, "output": 5, "reasoning": 2}) == 15
    assert used_tokens(None) == 0
