from deployments.cache.scope import build_scope, key_scope


def body(**kw):
    b = {"model": "m", "messages": [{"role": "system", "content": "You are terse."},
                                    {"role": "user", "content": "What is Ray?"}], "temperature": 0}
    b.update(kw)
    return b


def scope(b, provider="p", model="m", key="k"):
    return build_scope(b, provider, model, key)


def test_stream_and_bookkeeping_fields_do_not_change_the_key():
    base = scope(body())
    same = scope(body(stream=True, stream_options={"include_usage": True}, user="u1", metadata={"a": "b"},
                      n=1, store=True))
    assert base.exact_key == same.exact_key and base.semantic_scope == same.semantic_scope


def test_whitespace_around_messages_is_normalised():
    b = body()
    b["messages"][1]["content"] = "  What is Ray?\n"
    assert scope(b).exact_key == scope(body()).exact_key


def test_everything_that_changes_the_answer_changes_the_scope():
    base = scope(body())
    variants = [
        body(temperature=0.7),
        body(max_tokens=5),
        body(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        body(tool_choice="none"),
        body(response_format={"type": "json_object"}),
        body(seed=3),
    ]
    system = body()
    system["messages"][0]["content"] = "You are verbose."
    variants.append(system)
    history = body()
    history["messages"][1:1] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    variants.append(history)
    for v in variants:
        s = scope(v)
        assert s.exact_key != base.exact_key and s.semantic_scope != base.semantic_scope, v
    assert scope(body(), model="other").semantic_scope != base.semantic_scope
    assert scope(body(), provider="q").semantic_scope != base.semantic_scope
    assert scope(body(), key="other-key").semantic_scope != base.semantic_scope


def test_last_user_turn_is_not_part_of_the_semantic_scope():
    other = body()
    other["messages"][1]["content"] = "Explain Ray."
    a, b = scope(body()), scope(other)
    assert a.semantic_scope == b.semantic_scope and a.exact_key != b.exact_key
    assert (a.text, b.text) == ("What is Ray?", "Explain Ray.")


def test_requests_not_ending_in_a_text_user_turn_are_exact_only():
    tool = body()
    tool["messages"].append({"role": "tool", "tool_call_id": "c1", "content": "42"})
    image = body()
    image["messages"][1]["content"] = [{"type": "image_url", "image_url": {"url": "data:x"}}]
    assert scope(tool).semantic_scope is None and scope(image).semantic_scope is None
    parts = body()
    parts["messages"][1]["content"] = [{"type": "text", "text": "What is Ray?"}]
    assert scope(parts).text == "What is Ray?"


def test_key_scope():
    assert key_scope("team-a", False) == "team-a"
    assert key_scope(None, False) == "-"
    assert key_scope("team-a", True) == key_scope("team-b", True)


def test_prompt_text_has_every_message():
    assert "terse" in scope(body()).prompt and "Ray" in scope(body()).prompt
