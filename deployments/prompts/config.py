"""`prompts:` in the gateway config: prompt management (docs/prompts.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PromptsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Serve /v1/prompts (prompts are kept in storage.url).")
    cache_ttl_s: float = Field(2.0, ge=0, le=300, description=(
        "How long a replica uses its copy of a prompt before it checks the prompt's revision again: the "
        "bound on how stale another replica's view of a deploy or label move can be (the replica that "
        "took the write sees it at once)."))
