"""The verification step on hand-written cases (not taken from bench/cache/eval_pairs.jsonl or
bench/cache/heldout_pairs.jsonl): one case per rule and kind of near miss, and paraphrases each rule
must let through."""

import pytest

from deployments.cache.verify import RULES, features, reasons, verify

SAME = [
    ("I need a car for a day", "I want to rent a car for a day"),
    ("How do I bake sourdough bread?", "What's the way to bake sourdough bread?"),
    ("Explain Kubernetes services.", "What is a Service in k8s?"),
    ("How many grams are in 3 pounds?", "How many grams are in three pounds?"),
    ("Why won't my Mac boot?", "My Mac doesn't boot, why?"),
    ("What is the biggest lake in Canada?", "Which lake in Canada is the largest?"),
    ("Set up nginx on Debian", "How to set up nginx on Debian"),
    # a question word inside a clause is not the question's type
    ("Why won't my script run when I double-click it?", "My script won't run when I double-click it, why?"),
    ("When was Ada Lovelace born?", "What year was Ada Lovelace born?"),  # both ask for a time
    ("How many miles is it from Oslo to Lima?", "How many miles from Oslo to Lima?"),
    # "and" joining the same two things on both sides, or joining clauses
    ("What's the difference between TCP and UDP?", "How do UDP and TCP differ?"),
    # swapped around "and"/"or" only: the same question
    ("Which is older, Oslo or Lima?", "Which is older, Lima or Oslo?"),
    ("Is the bank open today?", "Is the bank open today?"),
]
DIFFERENT = [
    # single letters used as names differ like numbers do ("a" only where it cannot be the article)
    ("What is vitamin A?", "What is vitamin B?", "letter"),
    ("warm up a", "warm up b", "letter"),
    ("How do I bake sourdough bread?", "How do I bake sourdough bread without yeast?", "negation"),
    ("Explain Kubernetes services.", "Explain Docker services.", "entity"),
    ("How many grams are in 3 pounds?", "How many grams are in 4 pounds?", "numbers"),
    ("How many grams are in 3 pounds?", "How many grams are in 3 ounces?", "contrast"),
    ("Why does my Mac boot?", "Why won't my Mac boot?", "negation"),
    ("What is the biggest lake in Canada?", "What is the smallest lake in Canada?", "contrast"),
    ("How do I mount a volume?", "How do I unmount a volume?", "prefix"),
    ("Ship from Oslo to Bergen", "Ship from Bergen to Oslo", "direction"),
    ("Is Rust safer than C++?", "Is C++ safer than Rust?", "direction"),
    ("Translate 'see you soon' to Dutch", "Translate 'see you soon' to Polish", "entity"),
    ("Summarize this report", "Translate this report", "action"),
    ("What changed in Java 21?", "What changed in Java 17?", "numbers"),
    ("Write a story about a dragon who learns to sing", "Write a story about a dragon who learns to dance",
     "substitution"),
    # numbers and dates
    ("How many calories are in 3 eggs?", "How many calories are in 4 eggs?", "numbers"),
    ("What day of the week was July 4, 1776?", "What day of the week was July 4, 1777?", "numbers"),
    ("What happened in March 1969?", "What happened in April 1969?", "entity"),
    ("Who won the Lakers game yesterday?", "Who won the Lakers game last week?", "contrast:day"),
    ("What's the weather in Oslo next week?", "What's the weather in Oslo this weekend?", "contrast:day"),
    # versions
    ("What's new in Python 3.11?", "What's new in Python 3.12?", "numbers"),
    ("Why does iOS 17 drain my battery?", "Why does iOS 18 drain my battery?", "numbers"),
    ("How do I install Docker on Ubuntu 22.04?", "How do I install Docker on Ubuntu 24.04?", "numbers"),
    # named entities, also typed in lower case
    ("How do I renew my US passport?", "How do I renew my UK passport?", "entity"),
    ("how do i renew my us passport", "how do i renew my uk passport", "entity"),
    ("Who is the CEO of Netflix?", "Who is the CEO of Spotify?", "entity"),
    # negation
    ("Can I renew my passport online?", "Can I not renew my passport online?", "negation"),
    ("How do I clean my oven?", "How do I clean my oven without chemicals?", "negation"),
    # swapped roles
    ("Why does my dog hate my cat?", "Why does my cat hate my dog?", "swap"),
    ("What time is it in Oslo when it's noon in Lima?", "What time is it in Lima when it's noon in Oslo?",
     "swap"),
    ("How do I call Rust code from Python?", "How do I call Python code from Rust?", "direction"),
    ("Did the Lakers beat the Celtics?", "Did the Celtics win against the Lakers?", "direction"),
    # another question word
    ("How do I renew my passport?", "How long does it take to renew my passport?", "question"),
    ("When was Ada Lovelace born?", "Where was Ada Lovelace born?", "question"),
    ("How do I clean my kettle?", "How often should I clean my kettle?", "question"),
    ("Why does my dog bark at night?", "How do I stop my dog barking at night?", "question"),
    # another object
    ("How do I get red wine out of a carpet?", "How do I get red wine out of a couch?", "substitution"),
    # "X" vs "X and Y"
    ("How did the Roman Empire fall?", "How did the Roman Empire rise and fall?", "conjunct"),
    ("How many calories are in 2 eggs?", "How many calories are in 2 eggs and toast?", "conjunct"),
    ("Why is Marie Curie famous?", "What is Marie Curie famous for and what were her failures?", "conjunct"),
]


@pytest.mark.parametrize("a,b", SAME)
def test_paraphrases_pass(a, b):
    assert verify(a, b) is None and verify(b, a) is None


@pytest.mark.parametrize("a,b,reason", DIFFERENT)
def test_near_duplicates_with_another_meaning_are_rejected(a, b, reason):
    got = verify(a, b)
    assert got is not None and got.startswith(reason), got
    assert verify(b, a) is not None


def test_number_words_and_units_are_normalised():
    assert features("twenty-five kg").numbers == features("25kg").numbers == {"25"}
    assert features("World War II").numbers == features("the second world war").numbers == {"2"}
    assert features("1,000,000 rows").numbers == features("one million rows").numbers


def test_question_types():
    assert features("How long does it take?").qtype == "duration"
    assert features("How many months does it take?").qtype == "duration"
    assert features("How many miles is it?").qtype == "distance"
    assert features("How many calories are in it?").qtype == "quantity"
    assert features("How do I do it?").qtype == "manner"
    assert features("What year was it built?").qtype == "time"
    assert features("What time is it in Oslo when it's noon in Lima?").qtype == "time"
    assert features("My car won't start when it's cold, why?").qtype == "reason"
    assert features("Is it safe?").qtype is None and features("What is Kubernetes?").qtype is None


def test_conjuncts_join_things_not_clauses():
    assert features("How did Rome rise and fall?").conjuncts == (("rise", "fall"),)
    famous = features("What is she famous for and what were her failures?")
    assert famous.conjuncts == (("famous", "failures"),)
    assert features("I have two offers and I can't decide").conjuncts == ()
    assert features("What are the pros and cons?").conjuncts == ()  # one phrase, compared as a contrast set


def test_reasons_lists_every_objecting_rule_and_check_stops_at_the_first():
    a, b = "How do I install Docker on Ubuntu 22.04?", "How do I uninstall Docker on Ubuntu 24.04?"
    found = reasons(features(a), features(b))
    assert found[0] == "numbers" and len(found) >= 2 and verify(a, b) == "numbers"
    assert len({r.__name__ for r in RULES}) == len(RULES)
