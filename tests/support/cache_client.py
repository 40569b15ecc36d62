"""Client-side helpers for the cache tests: ask through the openai SDK, wait for entries to show up."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai

ADMIN = {"authorization": "Bearer adm-key"}


def ask(url: str, text: str, **kw: Any) -> tuple[str | None, Any, Any]:
    """(x-raygate-cache, parsed completion, response headers) for one user question."""
    c = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="mock", messages=[{"role": "user", "content": text}], **kw)
    return raw.headers.get("x-raygate-cache"), raw.parse(), raw.headers


def vectors_within(url: str, want: int, within: float) -> float:
    """Seconds until the replica's semantic index holds `want` vectors (fails after `within`)."""
    start = time.time()
    while True:
        stats = httpx.get(url + "/v1/admin/cache/stats", headers=ADMIN).json()
        if stats["semantic"].get("vectors", 0) >= want:
            return time.time() - start
        assert time.time() - start < within, f"{stats['semantic']}"
        time.sleep(0.02)


def eventually(url: str, text: str, want: str, within: float = 1.0) -> float:
    """Seconds until `text` is answered with `want` (fails after `within`)."""
    start = time.time()
    while True:
        status = ask(url, text)[0]
        if status == want:
            return time.time() - start
        assert time.time() - start < within, f"{text!r}: still {status} after {within}s"
        time.sleep(0.05)
