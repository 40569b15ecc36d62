"""RemoteChatStream: a provider deployment's stream as the ingress reads it (bytes, plus a usage report)."""

from __future__ import annotations

from deployments.providers.stage import RemoteChatStream

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


async def _gen(items):  # noqa: ANN001, ANN202
    for item in items:
        yield item


async def test_the_usage_report_is_read_not_relayed() -> None:
    stream = RemoteChatStream(_gen([{"usage": USAGE}, b"data: [DONE]\n\n"]), b"data: {\"a\": 1}\n\n")
    assert [c async for c in stream] == [b"data: {\"a\": 1}\n\n", b"data: [DONE]\n\n"]
    assert stream.usage == USAGE


async def test_a_one_chunk_stream_whose_first_item_is_the_usage_report() -> None:
    stream = RemoteChatStream(_gen([b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"]), {"usage": USAGE})
    assert [c async for c in stream] == [b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"]
    assert stream.usage == USAGE
