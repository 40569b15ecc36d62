"""`{{name}}` templates: variables filled as plain text, nothing executed, bad tags refused at deploy."""

from __future__ import annotations

import pytest

from deployments.prompts.renderer import TemplateError, compile_messages, compile_template
from serve_app.errors import GatewayError


def render(text: str, allow_extra: bool = False, **values: object) -> str:
    return compile_messages([{"role": "user", "content": text}]).render(values, allow_extra)[0]["content"]


def test_variables_with_and_without_spaces_and_triple_braces() -> None:
    assert render("Hi {{name}}, {{ name }} / {{{name}}} / {{& name}}{{! a comment }}!", name="Ann") == \
        "Hi Ann, Ann / Ann / Ann!"
    assert compile_template("{{a}}{{b}} {{a}}").variables == {"a", "b"}
    assert render("no variables {here") == "no variables {here"


def test_values_are_inserted_as_text_never_parsed_again() -> None:
    out = render("Ticket: {{ticket}} ({{other}})", ticket="{{other}} {{#x}}{{/x}} {{{y}}} }}", other="B")
    assert out == "Ticket: {{other}} {{#x}}{{/x}} {{{y}}} }} (B)"
    assert render("{{a}}", a="<b>&amp;</b>") == "<b>&amp;</b>"  # no HTML escaping either: it is chat text


def test_non_string_values() -> None:
    assert render("{{n}} {{f}} {{b}} {{l}} {{o}}", n=3, f=0.5, b=True, l=[1, "x"], o={"k": "v"}) == \
        '3 0.5 true [1,"x"] {"k":"v"}'
    with pytest.raises(GatewayError) as err:
        render("{{n}}", n=None)
    assert err.value.status == 400 and err.value.param == "variables.n"


@pytest.mark.parametrize("tag", ["{{#items}}x{{/items}}", "{{^x}}", "{{> partial}}", "{{=<% %>=}}", "{{a.b}}",
                                 "{{1+1}}", "{{__import__('os').system('id')}}", "{{ }}", "{{a b}}"])
def test_anything_but_a_variable_tag_is_refused(tag: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(f"text {tag}")


def test_a_name_is_only_a_dict_key() -> None:
    # a name that would mean something to Python is just a key that was not sent
    with pytest.raises(GatewayError) as err:
        render("{{__class__}}")
    assert err.value.code == "missing_variable" and "__class__" in err.value.message


def test_missing_and_unknown_variables_are_400s_naming_them() -> None:
    with pytest.raises(GatewayError) as err:
        render("{{a}} {{b}}", a="x")
    assert (err.value.status, err.value.code, err.value.param) == (400, "missing_variable", "variables.b")
    assert "'b'" in err.value.message
    with pytest.raises(GatewayError) as err:
        render("{{a}}", a="x", zed="y")
    assert (err.value.code, err.value.param) == ("unknown_variable", "variables.zed")
    assert render("{{a}}", allow_extra=True, a="x", zed="y") == "x"


def test_content_parts_and_other_messages_untouched() -> None:
    messages = [{"role": "system", "content": "plain"},
                {"role": "user", "content": [{"type": "text", "text": "Q: {{q}}"},
                                             {"type": "image_url", "image_url": {"url": "http://x/{{q}}"}},
                                             {"type": "text", "text": "and {{q}}"}]}]
    template = compile_messages(messages)
    out = template.render({"q": "why"})
    assert out[0] == {"role": "system", "content": "plain"}
    assert out[1]["content"][0]["text"] == "Q: why" and out[1]["content"][2]["text"] == "and why"
    assert out[1]["content"][1]["image_url"]["url"] == "http://x/{{q}}"  # only text is a template
    assert messages[1]["content"][0]["text"] == "Q: {{q}}"  # the stored version is not changed


def test_template_errors_say_where() -> None:
    with pytest.raises(TemplateError, match=r"messages\[1\]\.content\[0\]\.text"):
        compile_messages([{"role": "system", "content": "ok"},
                          {"role": "user", "content": [{"type": "text", "text": "{{#s}}"}]}])
