"""Each check type on its own: positive and negative cases, evasions, masks, failures."""

from __future__ import annotations

import pytest

from deployments.guardrails import register
from deployments.guardrails.config import GuardrailsConfig
from deployments.guardrails.engine import Guardrails, evaluate_sequence


def check(spec: dict, action: str = "block"):
    cfg = GuardrailsConfig.model_validate({"s": [{"action": action, **spec}]})
    return Guardrails(cfg).sets["s"][0]


def run(spec: dict, *texts: str, action: str = "block", request: dict | None = None,
        response: dict | None = None):
    b = check(spec, action)
    subject = {"phase": "output" if response else "input", "texts": list(texts), "request": request or {},
               "response": response, "entities": {}}
    return evaluate_sequence([b], subject)[0], subject


KEYWORDS = {"type": "keyword_filter", "blocklist": ["password", "ssn", "credit_card", "secret_key"]}


@pytest.mark.parametrize("text", [
    "my password is hunter2", "PASSWORD: x", "the Pass word is", "p-a-s-s-w-o-r-d", "ｐａｓｓｗｏｒｄ",
    "p4ssw0rd please", "pass\u200bword", "pаssword",  # zero-width space; Cyrillic а
    "my SSN is", "credit card number", "creditcard", "credit_card", "the secret key",
])
def test_keyword_filter_finds_keywords_and_evasions(text: str) -> None:
    finding, _ = run(KEYWORDS, text)
    assert not finding.ok and "keyword" in finding.reason
    assert "hunter2" not in finding.reason and "password" not in finding.reason


@pytest.mark.parametrize("text", ["passwords are hashed", "a compass word", "bypassword", "lesson plan",
                                  "the passport office", "credit is due", "hello"])
def test_keyword_filter_whole_words_only(text: str) -> None:
    assert run(KEYWORDS, text)[0].ok


def test_keyword_allowlist_and_mask() -> None:
    spec = {**KEYWORDS, "allowlist": ["password reset"]}
    assert run(spec, "how does a password reset work")[0].ok
    assert not run(spec, "how does a password reset work? my password is x")[0].ok
    finding, _ = run(KEYWORDS, "my Pass word is x and ｐａｓｓｗｏｒｄ", action="mask")
    assert finding.texts == ["my [REDACTED] is x and [REDACTED]"]


PII = {"type": "pii_detector"}


@pytest.mark.parametrize("text, entity", [
    ("write to jane.doe+x@example.co.uk", "email"),
    ("write to jane [at] example [dot] com", "email"),
    ("write to jane at example dot com", "email"),
    ("call +44 20 7946 0958", "phone"),
    ("call (415) 555-0100", "phone"),
    ("call +1-415-555-0100", "phone"),
    ("call 06 12 34 56 78", "phone"),
    ("ssn 123-45-6789", "ssn"),
    ("ssn １２３-４５-６７８９", "ssn"),  # full-width digits
    ("card 4111 1111 1111 1111", "credit_card"),
    ("card 4111-1111-1111-1111", "credit_card"),
    ("card 5500005555555559", "credit_card"),
    ("host 192.168.10.7", "ip_address"),
    ("host 2001:db8::8a2e:370:7334", "ip_address"),
    ("iban GB82 WEST 1234 5698 7654 32", "iban"),
    ("iban DE89370400440532013000", "iban"),
])
def test_pii_detector_finds_each_entity(text: str, entity: str) -> None:
    finding, _ = run(PII, text)
    assert not finding.ok and entity in finding.reason


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails Luhn
    "ssn 000-12-3456", "ssn 666-12-3456", "ssn 123-00-6789",  # never issued
    "version 1.2.3.4.5", "ip 999.1.1.1", "iban DE00370400440532013000",  # bad check digits
    "the year 2024 had 365 days", "order #12345", "meet at home at 5",
])
def test_pii_detector_negatives(text: str) -> None:
    assert run(PII, text)[0].ok, text


def test_pii_mask_uses_typed_placeholders_reused_for_the_same_value() -> None:
    finding, subject = run(PII, "mail a@b.io or c@d.io", "again a@b.io, call +1 415 555 0100", action="mask")
    assert finding.texts == ["mail <EMAIL_1> or <EMAIL_2>", "again <EMAIL_1>, call <PHONE_1>"]
    assert subject["entities"] == {"<EMAIL_1>": "a@b.io", "<EMAIL_2>": "c@d.io",
                                   "<PHONE_1>": "+1 415 555 0100"}
    assert "a@b.io" not in finding.reason


def test_pii_entities_filter() -> None:
    assert run({"type": "pii_detector", "entities": ["email"]}, "call +1 415 555 0100")[0].ok


def test_regex_block_and_mask() -> None:
    spec = {"type": "regex", "patterns": [{"pattern": r"\bproject-[a-z]+\b", "name": "codename"}]}
    assert not run(spec, "about Project-Falcon")[0].ok
    assert run(spec, "about projects")[0].ok
    assert run(spec, "about Project-Falcon", action="mask")[0].texts == ["about [CODENAME]"]


def test_length_chars_and_tokens() -> None:
    assert not run({"type": "length", "max_chars": 10}, "0123456789", "x")[0].ok
    assert run({"type": "length", "max_chars": 11}, "0123456789", "x")[0].ok
    assert not run({"type": "length", "max_tokens": 3}, "one, two three")[0].ok
    assert run({"type": "length", "max_tokens": 4}, "one, two three")[0].ok


def answer(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_response_format_json_object_and_schema() -> None:
    obj = {"type": "response_format", "required_schema": {"type": "json_object"}}
    assert run(obj, '{"a": 1}', response=answer('{"a": 1}'))[0].ok
    finding, _ = run(obj, "Sure! {", response=answer("Sure! {"))
    assert not finding.ok and "not valid JSON" in finding.reason
    schema = {"type": "response_format", "required_schema": {
        "type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}}}
    assert run(schema, '{"score": 3}', response=answer(""))[0].ok
    finding, _ = run(schema, '{"score": "high"}', response=answer(""))
    assert not finding.ok and "score" in finding.reason


def test_response_format_follows_the_requests_own_schema() -> None:
    spec = {"type": "response_format"}
    asked = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "required": ["name"]}}}}
    assert run(spec, "not json", request={})[0].ok  # the request asked for no JSON
    assert not run(spec, '{"other": 1}', request=asked, response=answer(""))[0].ok
    assert run(spec, '{"name": "a"}', request=asked, response=answer(""))[0].ok


def test_custom_by_import_path_by_registration_and_failures() -> None:
    path = {"type": "custom", "function": "tests.unit.guardrails.checks_for_tests:confidence_check"}
    assert run(path, "", response=answer("it is 42"))[0].ok
    finding, _ = run(path, "", response=answer("I am not sure"))
    assert not finding.ok and finding.reason == "the answer is unsure" and not finding.error
    register("always-no", lambda request, response: False)
    assert not run({"type": "custom", "function": "always-no"}, "")[0].ok
    broken, _ = run({"type": "custom", "function": "tests.unit.guardrails.checks_for_tests:broken_check"}, "")
    assert not broken.ok and broken.error and "RuntimeError" in broken.reason
    register("wrong-shape", lambda request, response: {"ok": True})
    odd, _ = run({"type": "custom", "function": "wrong-shape"}, "")
    assert not odd.ok and odd.error


def test_toxicity_check_scores_against_the_threshold() -> None:
    spec = {"type": "toxicity_check", "threshold": 0.8}
    bad, _ = run(spec, "shut up you stupid worthless idiot")
    assert not bad.ok and bad.score >= 0.8
    good, _ = run(spec, "thanks, the report looks great")
    assert good.ok and good.score < 0.8


def test_content_policy_names_the_category() -> None:
    spec = {"type": "content_policy", "categories": ["violence", "self-harm", "hate"]}
    bad, _ = run(spec, "I will stab you if you come near me again")
    assert not bad.ok and "violence" in bad.reason
    assert run(spec, "how do I kill a stuck process in linux")[0].ok
    only_sexual = {"type": "content_policy", "categories": ["sexual"]}
    assert run(only_sexual, "I will stab you if you come near me again")[0].ok


def test_masks_feed_the_next_check_and_blocks_stop_the_sequence() -> None:
    cfg = GuardrailsConfig.model_validate({"s": [
        {"type": "pii_detector", "action": "mask"},
        {"type": "regex", "patterns": ["@"]},  # the email is masked by then: passes
        {"type": "keyword_filter", "blocklist": ["secret"]},
        {"type": "length", "max_chars": 1},  # never reached
    ]})
    bounds = Guardrails(cfg).sets["s"]
    subject = {"phase": "input", "texts": ["a@b.io secret"], "request": {}, "response": None, "entities": {}}
    findings = evaluate_sequence(bounds, subject)
    assert [f.ok for f in findings] == [False, True, False]
    assert subject["texts"] == ["<EMAIL_1> secret"]
