"""The verification step on hand-written cases (not taken from bench/cache/eval_pairs.jsonl)."""

import pytest

from deployments.cache.verify import features, verify

SAME = [
    ("How do I bake sourdough bread?", "What's the way to bake sourdough bread?"),
    ("Explain Kubernetes services.", "What is a Service in k8s?"),
    ("How many grams are in 3 pounds?", "How many grams are in three pounds?"),
    ("Why won't my Mac boot?", "My Mac doesn't boot, why?"),
    ("What is the biggest lake in Canada?", "Which lake in Canada is the largest?"),
    ("Set up nginx on Debian", "How to set up nginx on Debian"),
]
DIFFERENT = [
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
