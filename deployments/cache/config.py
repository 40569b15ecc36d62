"""Cache configuration (the `cache:` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    mode: Literal["exact", "semantic"] = "exact"
    ttl: float = Field(3600, gt=0, description="Seconds an entry lives.")
    max_size: int = Field(10000, ge=1, description="Entries; least recently used are evicted first.")
    similarity_threshold: float = Field(0.95, gt=0, le=1)
    backend: Literal["memory", "redis"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "raygate:cache:"
    share_across_keys: bool = False
