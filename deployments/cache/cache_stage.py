"""The response cache as a lifecycle stage: lookup before the upstream call, store after it.

`before` answers hits (a JSON body, or a stream replayed from the entry in this replica);
`after` stores a non-streamed answer, or wraps a stream so its chunks are collected and the
completed answer stored. A request for which caching is not in play costs the `applies` gate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from serve_app.lifecycle import CACHE_STATUS, Answer, Exchange, Reply, Stage, StreamReply, aclose

from .cache import ResponseCache, StreamRecorder


class CacheStage(Stage):
    name = "cache"

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def before(self, ex: Exchange) -> Answer | None:
        if ex.kind != "chat":
            return None
        cache, rec = self.cache, ex.record
        if not cache.applies(ex.cache_control, rec.headers, ex.plan.cache):
            return None
        lookup = await cache.lookup(ex.body, ex.plan, ex.cache_control, rec.headers, rec.key_id)
        if lookup is None:
            return None
        rec.cache = CACHE_STATUS[lookup.status]
        entry = lookup.entry
        if entry is None:
            ex.state["cache"] = lookup
            return None
        rec.provider, rec.model, rec.route = entry.provider, entry.model, "cache"
        if lookup.similarity is not None:
            rec.fact("cache", {"similarity": round(lookup.similarity, 4)})
        if ex.stream:  # replayed here: streams never cross a handle
            return StreamReply(cache.headers(lookup), cache.replay(lookup, ex.call.include_usage))
        return Reply(cache.hit_body(lookup), cache.headers(lookup))

    async def after(self, ex: Exchange, answer: Answer) -> Answer:
        lookup = ex.state.get("cache")
        if lookup is None:
            return answer
        cache, rec = self.cache, ex.record
        answer.headers.update(cache.headers(lookup))
        if isinstance(answer, Reply):
            await cache.store_result(lookup, answer.body, rec.provider or "", rec.model or "")
            return answer
        recorder = cache.recorder(lookup)
        if recorder is not None:
            answer.chunks = _recorded(answer.chunks, recorder, ex)
        return answer


async def _recorded(chunks: AsyncIterator[bytes], recorder: StreamRecorder, ex: Exchange) -> AsyncIterator[bytes]:
    rec = ex.record
    try:
        async for chunk in chunks:
            if recorder.feed(chunk):  # the stream completed: cache it before the last chunk goes out
                await recorder.store(rec.provider or "", rec.model or "", getattr(ex.upstream, "usage", None))
            yield chunk
    finally:
        await aclose(chunks)
