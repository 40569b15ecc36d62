import orjson

from deployments.cache.collect import StreamCollector, rebuild, storable
from deployments.cache.replay import hit_body, replay_stream, split_text

COMPLETION = {
    "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-x", "system_fingerprint": "fp",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, this is a longer answer "
                                                                         "that is split into several chunks.",
                                         "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 12, "total_tokens": 15},
}


def events(data: bytes) -> list:
    return [orjson.loads(e[6:]) for e in data.split(b"\n\n") if e.startswith(b"data: {")]


def test_split_text_round_trips():
    text = COMPLETION["choices"][0]["message"]["content"]
    pieces = split_text(text, 10)
    assert "".join(pieces) == text and len(pieces) > 2


def test_replay_is_a_proper_stream():
    data = replay_stream(COMPLETION, "chatcmpl-new", 5, include_usage=True)
    assert data.endswith(b"data: [DONE]\n\n")
    evs = events(data)
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"
    assert evs[-1]["choices"] == [] and evs[-1]["usage"]["total_tokens"] == 15
    assert all(e["id"] == "chatcmpl-new" and e["object"] == "chat.completion.chunk" for e in evs)
    no_usage = events(replay_stream(COMPLETION, "x", 5, include_usage=False))
    assert all("usage" not in e for e in no_usage)


def test_replay_and_rebuild_round_trip_with_tool_calls():
    comp = orjson.loads(orjson.dumps(COMPLETION))
    comp["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}
    comp["choices"][0]["finish_reason"] = "tool_calls"
    back = rebuild(replay_stream(comp, "id2", 5, include_usage=True))
    assert back["choices"][0]["message"]["tool_calls"] == comp["choices"][0]["message"]["tool_calls"]
    assert back["choices"][0]["finish_reason"] == "tool_calls" and back["usage"] == comp["usage"]
    plain = rebuild(replay_stream(COMPLETION, "id3", 5, include_usage=False), usage={"total_tokens": 1})
    assert plain["choices"][0]["message"]["content"] == COMPLETION["choices"][0]["message"]["content"]
    assert plain["usage"] == {"total_tokens": 1}


def test_hit_body_has_a_new_id_and_the_original_usage():
    out = orjson.loads(hit_body(COMPLETION, "chatcmpl-new", 99))
    assert out["id"] == "chatcmpl-new" and out["created"] == 99 and out["usage"] == COMPLETION["usage"]


def test_what_is_not_storable():
    assert storable(COMPLETION)
    for finish in ("length", "content_filter", None):
        c = orjson.loads(orjson.dumps(COMPLETION))
        c["choices"][0]["finish_reason"] = finish
        assert not storable(c)
    two = orjson.loads(orjson.dumps(COMPLETION))
    two["choices"].append(dict(two["choices"][0], index=1))
    assert not storable(two)
    assert not storable({"error": {"message": "x"}})


def test_streams_that_fail_or_are_cut_are_not_rebuilt():
    data = replay_stream(COMPLETION, "x", 1)
    assert rebuild(data.replace(b"data: [DONE]\n\n", b"")) is None  # cut
    assert rebuild(data.replace(b"data: [DONE]", b'data: {"error": {"message": "boom"}}')) is None
    truncated = data.replace(b'"finish_reason":"stop"', b'"finish_reason":"length"')
    assert rebuild(truncated) is None


def test_collector_reports_completion_and_respects_the_size_limit():
    data = replay_stream(COMPLETION, "x", 1)
    col = StreamCollector(10_000)
    done = [col.feed(data[i:i + 50]) for i in range(0, len(data), 50)]
    assert done[-1] is True and not any(done[:-1])
    assert col.completion()["choices"][0]["message"]["content"].startswith("Hello")
    small = StreamCollector(100)
    small.feed(data)
    assert small.completion() is None
