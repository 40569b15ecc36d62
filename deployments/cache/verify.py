"""The cheap verification step after the vector search: reject near-duplicates that mean something else.

Sentence embeddings put "What is the capital of Austria?" right next to "...of Australia?", and
"Why does my car start?" next to "Why won't my car start?". A candidate above the similarity
threshold is accepted only if its last user turn and the request's agree on:

- numbers: digits, number words and ordinals ("3", "three", "3rd"), compared as sets (1 ignored);
- negation: both negated or neither ("not", "never", "without", "n't", ...);
- named entities and technical terms: every entity of one side (gazetteer of places, languages,
  technologies and companies with aliases such as k8s -> kubernetes; capitalised words inside a
  sentence; ACRONYMS, CamelCase, tokens with digits or + # .; quoted phrases) must occur in the other;
- contrast words: for each contrast set both sides use (largest/smallest, install/uninstall,
  poem/story, celsius/fahrenheit, ...), the same member; words that differ only by a flipping
  prefix (import/export, enable/disable) are a mismatch;
- direction: items shared by both sides that swap places around "to", "into", "than", "over",
  "vs", "from", "against" ("London to New York" vs "New York to London");
- question type: "how" vs "how long" vs "how much" vs "when" vs "where" vs "why" vs "who" ...;
- conjunct: "X" vs "X and Y" ("how did Rome fall" / "how did Rome rise and fall");
- swap: the same words with two parts swapped around a verb ("my dog hates my cat" / the reverse);
- substitution: the same sentence with one or two subject words swapped.

Each check is a rule in RULES; docs/cache.md has the table. Pure Python, no model: ~45 µs per text for
`features`, ~0.1 ms per pair. Measured by bench/cache/eval.py on held-out pairs (heldout_pairs.jsonl,
tuned on its dev split only) and the regression set eval_pairs.jsonl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexicon import (ACTIONS, ALIASES, AMBIGUOUS, AUXILIARIES, CONJUNCT_SKIP_LEFT, CONJUNCT_SKIP_RIGHT,
                      CONJUNCTIONS, DISTANCE_NOUNS, DURATION_NOUNS, FLIP_PAIRS, FLIP_PREFIXES, FRAME_WORDS,
                      GAZETTEER, GROUPS, HOW_TYPES, INFINITIVE_LEADS, LIGHT_VERBS, MULTI_WORD, NEG_PREPOSITIONS,
                      NEGATIONS, NUMBER_WORDS, ORDINALS, PHRASES, ROMAN, SCALE_WORDS, STOPWORDS, SUBJECT_PRONOUNS,
                      WH_TYPES, WHAT_TYPES)

_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|[A-Za-z0-9][A-Za-z0-9+#]*(?:[.'’\-][A-Za-z0-9+#]+)*\+*|[$€£%]|[=<>!&|^~*/]+")
# "4GB" -> "4 GB", "2-minute" -> "2 minute": the number is compared as a number, the unit as a word.
_DIGIT_UNIT = re.compile(r"\b(\d+(?:\.\d+)?)(?:-(?=[A-Za-z])|(?=(?:gb|mb|kb|tb|km|kg|cm|mm|ml|lbs?|oz|ft|px|ms|hrs?|mins?|"
                         r"k|m|g|s|h|x|st|nd|rd|th|am|pm)\b))", re.I)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r"[\"“”„]([^\"“”„]{2,80})[\"“”„]")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")
_UNIT_MARKS = ((re.compile(r"°\s*F\b"), " fahrenheit"), (re.compile(r"°\s*C\b"), " celsius"),
               (re.compile(r"°"), " degrees"))
DIRECTION_MARKERS = frozenset({"to", "into", "than", "over", "vs", "versus", "vs.", "from", "against"})
MAX_MARKER_GAP = 3


@dataclass(slots=True)
class Features:
    numbers: frozenset[str]
    negated: bool
    neg_prep: bool
    entities: frozenset[str]  # normalised names that must appear on the other side
    terms: frozenset[str]  # every normalised word and gazetteer phrase of the text
    groups: dict[str, frozenset[int]]  # contrast group -> members used
    content: frozenset[str]  # content words (lower case, no stopwords)
    words: tuple[str, ...]  # normalised tokens in order (direction check)
    quoted: tuple[str, ...]
    lowered: str
    action: int | None  # index of the action set of the request's leading imperative verb
    qtype: str | None  # what the question asks for: "duration", "place", "reason", ... (None: not typed)
    conjuncts: tuple[tuple[str, str], ...]  # content words joined by "and" ("rise and fall")


def _norm_word(tok: str) -> str:
    w = tok.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return w


def _num(s: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", s):
        s = s.replace(",", "")
    s = s.replace(",", ".")
    if "." in s:
        s = s.rstrip("0").rstrip(".") if re.fullmatch(r"\d+\.\d+", s) else s
    return s.lstrip("0") or "0"


def _numbers(tokens: list[str], lowered: list[str], text: str) -> set[str]:
    found = {_num(t) for t in tokens if _NUMBER.fullmatch(t)}  # "k8s", "ec2" are names, not numbers
    value = 0.0
    current = 0.0
    in_number = False
    for tok in tokens:
        if tok in ROMAN:
            found.add(str(ROMAN[tok]))
    words = [p for w in lowered for p in (w.split("-") if "-" in w else [w])]
    for i, w in enumerate(words):
        consumed = False
        for p in (w,):
            if p in NUMBER_WORDS:
                current += NUMBER_WORDS[p]
                in_number = consumed = True
            elif p in SCALE_WORDS and in_number:
                current = max(current, 1) * SCALE_WORDS[p]
                if SCALE_WORDS[p] >= 1000:
                    value += current
                    current = 0
                consumed = True
            elif p in SCALE_WORDS:
                current = SCALE_WORDS[p]
                in_number = consumed = True
        if not consumed and w == "and" and in_number:
            continue
        if not consumed:
            if in_number:
                found.add(_num(_fmt(value + current)))
            value = current = 0
            in_number = False
            if w in ORDINALS and (w != "second" or (i > 0 and words[i - 1] == "the")):
                found.add(str(ORDINALS[w]))
    if in_number:
        found.add(_num(_fmt(value + current)))
    found.discard("1")
    return found


def _singular(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ses", "xes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def features(text: str) -> Features:
    for pattern, repl in _UNIT_MARKS:
        text = pattern.sub(repl, text)
    text = _DIGIT_UNIT.sub(r"\1 ", text)
    spans = [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]
    tokens = [t for t, _ in spans]
    lowered = [_norm_word(t) for t in tokens]
    # phrases ("turn off") and aliases
    words: list[str] = []
    i = 0
    while i < len(lowered):
        pair = (lowered[i], lowered[i + 1]) if i + 1 < len(lowered) else None
        if pair in PHRASES:
            words.append(PHRASES[pair])  # type: ignore[index]
            i += 2
            continue
        words.append(ALIASES.get(lowered[i], lowered[i]) if lowered[i] not in AMBIGUOUS else lowered[i])
        i += 1
    negated = any(w in NEGATIONS or w.endswith("n't") for w in lowered)
    neg_prep = any(w in NEG_PREPOSITIONS for w in lowered)
    numbers = _numbers(tokens, lowered, text)
    # entities
    entities: set[str] = set()
    terms: set[str] = set(words) | set(lowered) | {ALIASES[w] for w in lowered if w in ALIASES}
    covered: set[int] = set()
    for n in (4, 3, 2):
        for j in range(len(lowered) - n + 1):
            phrase = " ".join(lowered[j:j + n])
            if phrase in MULTI_WORD:
                norm = ALIASES.get(phrase, phrase)
                entities.add(norm)
                terms.update((phrase, norm))
                covered.update(range(j, j + n))
    for idx, (tok, start) in enumerate(spans):
        low = lowered[idx]
        if idx in covered or not any(c.isalnum() for c in tok) or tok in ROMAN or low in NUMBER_WORDS \
                or low in ORDINALS or low in SCALE_WORDS:
            continue
        initial = idx == 0 or bool(_SENTENCE_END.search(text[:start]))
        if tok.isalpha() and tok.islower() and low not in GAZETTEER:
            continue
        if low in GAZETTEER:
            if low in AMBIGUOUS:
                if tok[:1].isupper() and not initial or (len(tok) > 1 and tok.isupper()):
                    entities.add(ALIASES.get(low, low))
                    terms.add(ALIASES.get(low, low))
            else:
                entities.add(ALIASES.get(low, low))
                terms.add(ALIASES.get(low, low))
            continue
        if low in STOPWORDS or low in NEGATIONS or low == "i" or tok in ("$", "€", "£", "%"):
            continue
        has_digit = any(c.isdigit() for c in tok)
        if has_digit and not any(c.isalpha() for c in tok):
            continue  # plain numbers are compared as numbers
        special = any(c in "+#." for c in tok.strip(".")) or has_digit
        caps = sum(c.isupper() for c in tok)
        acronym = caps >= 2 and len(tok) >= 2
        mixed = caps >= 1 and not tok[:1].isupper()
        if special or acronym or mixed or (tok[:1].isupper() and not initial):
            entities.add(ALIASES.get(low, low))
            terms.add(ALIASES.get(low, low))
    terms |= {_singular(t) for t in terms}
    quoted = tuple(q.strip().lower() for q in _QUOTED.findall(text))
    groups: dict[str, set[int]] = {}
    for w in words:
        for group, value in GROUPS.get(w, ()):
            groups.setdefault(group, set()).add(value)
    content = frozenset(w for w in words if w not in STOPWORDS and w not in NEGATIONS and len(w) > 1
                        and not w.isdigit())
    words_t = tuple(w for w in words if any(ch.isalnum() for ch in w))
    return Features(frozenset(numbers), negated, neg_prep, frozenset(entities), frozenset(terms),
                    {g: frozenset(v) for g, v in groups.items()}, content, words_t, quoted,
                    " ".join(lowered), _action(lowered), _question_type(lowered), _conjuncts(words_t))


def _question_type(lowered: list[str]) -> str | None:
    """The type of the first question word: "how long" -> duration, "where" -> place, "how" -> manner.
    "when"/"where"/"who" count only where they open the question ("when will ...", not "... when it's
    noon")."""
    for i, w in enumerate(lowered):
        nxt = lowered[i + 1] if i + 1 < len(lowered) else ""
        if w == "how" or w == "how's":
            kind = HOW_TYPES.get(nxt, "manner") if w == "how" else "manner"
            if kind == "quantity" and i + 2 < len(lowered):
                kind = ("duration" if lowered[i + 2] in DURATION_NOUNS else
                        "distance" if lowered[i + 2] in DISTANCE_NOUNS else kind)
            return kind
        if w == "why":
            return WH_TYPES[w]
        if w in WH_TYPES and (i == 0 or nxt in AUXILIARIES):
            return WH_TYPES[w]
        if w in ("what", "which") and _singular(nxt) in WHAT_TYPES:
            return WHAT_TYPES[_singular(nxt)]
    return None


def _is_content(w: str) -> bool:
    return w not in STOPWORDS and w not in NEGATIONS and len(w) > 1


def _conjuncts(words: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(left, right) content words around each "and" that joins two things, not two clauses: the word
    right before it ("famous for and" -> famous) and the first after it past determiners and question
    words ("and what were their failures" -> failures)."""
    out = []
    for i, w in enumerate(words):
        if w not in CONJUNCTIONS or i == 0 or i + 1 >= len(words) or words[i + 1] in SUBJECT_PRONOUNS:
            continue
        j = i - 1
        if words[j] in CONJUNCT_SKIP_LEFT and j > 0:
            j -= 1
        k = i + 1
        while k < len(words) - 1 and k < i + 4 and words[k] in CONJUNCT_SKIP_RIGHT:
            k += 1
        left, right = words[j], words[k]
        if _is_content(left) and _is_content(right) and left != right:
            out.append((left, right))
    return tuple(out)


def _action(lowered: list[str]) -> int | None:
    """The action of an imperative request: its first word, or the first after "please"/"can you"."""
    for i, w in enumerate(lowered[:4]):
        if w in ("please", "pls", "can", "could", "would", "you", "kindly", "me", "help"):
            continue
        if i and lowered[i - 1] not in ("please", "pls", "you", "kindly", "help"):
            return None
        if w in LIGHT_VERBS:
            for nxt in lowered[i + 1:i + 4]:
                if nxt in ("me", "us", "a", "an", "the", "some", "quick", "short", "brief"):
                    continue
                if nxt in ACTIONS and nxt not in LIGHT_VERBS:
                    return ACTIONS[nxt]
                break
        return ACTIONS.get(w)
    return None


def _flipped(a: str, b: str) -> bool:
    """True when a and b are one stem under two prefixes that flip its meaning (import/export)."""
    for pa in ("",) + FLIP_PREFIXES:
        if not a.startswith(pa):
            continue
        stem = a[len(pa):]
        for pb in ("",) + FLIP_PREFIXES:
            if pb == pa or b != pb + stem:
                continue
            if (pa, pb) in FLIP_PAIRS or (pb, pa) in FLIP_PAIRS:
                if len(stem) >= 4 and (pa and pb or len(stem) >= 5 or (pa or pb) not in ("in", "im")):
                    return True
    return False


def _direction_swapped(q: Features, c: Features, shared: set[str]) -> bool:
    def positions(words: tuple[str, ...]) -> dict[str, int]:
        pos: dict[str, int] = {}
        for i, w in enumerate(words):
            if w in shared and w not in pos:
                pos[w] = i
        return pos

    pq, pc = positions(q.words), positions(c.words)
    items = [w for w in pq if w in pc]
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if (pq[a] < pq[b]) == (pc[a] < pc[b]):
                continue
            for words, pos in ((q.words, pq), (c.words, pc)):
                lo, hi = sorted((pos[a], pos[b]))
                adjacent = not any(lo < p < hi for w, p in pos.items() if w in pq and w in pc)
                if adjacent and _marker_between(words, lo, hi, shared):
                    return True
    return False


def _marker_between(words: tuple[str, ...], lo: int, hi: int, shared: set[str]) -> bool:
    """A direction marker between positions lo and hi, with only stopwords and at most one other word
    around it ("to a", "than", "win against the", "move from")."""
    gap = words[lo + 1:hi]
    if not 0 < len(gap) <= MAX_MARKER_GAP:
        return False
    found = False
    loose = 0
    for k, w in enumerate(gap):
        if w in DIRECTION_MARKERS:
            prev = gap[k - 1] if k > 0 else words[lo]
            if w == "to" and prev in INFINITIVE_LEADS:
                return False
            found = True
        elif w not in STOPWORDS and w not in shared:
            loose += 1
            if loose > 1:
                return False
    return found


def _numbers_rule(q: Features, c: Features) -> str | None:
    return "numbers" if q.numbers != c.numbers else None


def _negation_rule(q: Features, c: Features) -> str | None:
    return "negation" if q.negated != c.negated or q.neg_prep != c.neg_prep else None


def _entity_rule(q: Features, c: Features) -> str | None:
    for e in q.entities:
        if e not in c.terms and _singular(e) not in c.terms:
            return "entity"
    for e in c.entities:
        if e not in q.terms and _singular(e) not in q.terms:
            return "entity"
    return None


def _quoted_rule(q: Features, c: Features) -> str | None:
    for phrase in q.quoted:
        if phrase not in c.lowered and phrase not in c.quoted:
            return "quoted"
    for phrase in c.quoted:
        if phrase not in q.lowered and phrase not in q.quoted:
            return "quoted"
    return None


def _contrast_rule(q: Features, c: Features) -> str | None:
    for group, values in q.groups.items():
        other = c.groups.get(group)
        if other is None or other == values:
            continue
        if group.endswith("_unit") or group == "currency" or not (other & values):  # units must match exactly
            return f"contrast:{group}"
    return None


def _action_rule(q: Features, c: Features) -> str | None:
    return "action" if q.action is not None and c.action is not None and q.action != c.action else None


def _prefix_rule(q: Features, c: Features) -> str | None:
    only_c = c.content - q.content
    for a in q.content - c.content:
        for b in only_c:
            if _flipped(a, b):
                return "prefix"
    return None


def _direction_rule(q: Features, c: Features) -> str | None:
    shared = (q.content & c.content) | (q.entities & c.entities) | set(q.numbers & c.numbers)
    return "direction" if len(shared) >= 2 and _direction_swapped(q, c, shared) else None


def _substitution_rule(q: Features, c: Features) -> str | None:
    return "substitution" if _substituted(q, c) else None


def _question_rule(q: Features, c: Features) -> str | None:
    """Another question word asks for another thing: "how" / "how long" / "where" to renew a passport."""
    return "question" if q.qtype and c.qtype and q.qtype != c.qtype else None


def _conjunct_rule(q: Features, c: Features) -> str | None:
    """"How did Rome rise and fall?" is not "How did Rome fall?": one side joins two things with "and"
    and the other has only one of them."""
    for a, b in ((q, c), (c, q)):
        if not a.conjuncts:
            continue
        other = {_canon(w) for w in b.content} | {_canon(w) for w in b.terms}
        for left, right in a.conjuncts:
            if (_canon(left) in other) != (_canon(right) in other):
                return "conjunct"
    return None


def _swap_rule(q: Features, c: Features) -> str | None:
    """The same words with two parts swapped around a verb or a preposition ("my dog hates my cat" /
    "my cat hates my dog", "time in Oslo when noon in Lima" / the reverse): the roles changed."""
    x, y = q.words, c.words
    if len(x) != len(y) or x == y:
        return None
    lo = 0
    while x[lo] == y[lo]:
        lo += 1
    hi = len(x)
    while x[hi - 1] == y[hi - 1]:
        hi -= 1
    xm, ym = x[lo:hi], y[lo:hi]
    n = len(xm)
    for a in range(1, n - 1):
        for b in range(1, n - a):
            gap = xm[a:n - b]
            if ym == xm[n - b:] + gap + xm[:a] and xm[:a] != xm[n - b:] and \
                    any(_is_content(w) or w in DIRECTION_MARKERS for w in gap):
                return "swap"
    return None


def _letters(words: tuple[str, ...]) -> frozenset[str]:
    """Single letters used as names ("vitamin b", "plan c", "warm up a"): not "i", and "a" only where it
    cannot be the article (last word)."""
    last = len(words) - 1
    return frozenset(w for i, w in enumerate(words)
                     if len(w) == 1 and w.isalpha() and w != "i" and (w != "a" or i == last))


def _letter_rule(q: Features, c: Features) -> str | None:
    return "letter" if _letters(q.words) != _letters(c.words) else None


# In order of cost; `check` stops at the first that objects, `reasons` (bench/cache/eval.py) runs all.
RULES = (_numbers_rule, _letter_rule, _negation_rule, _entity_rule, _quoted_rule, _contrast_rule, _action_rule,
         _question_rule, _prefix_rule, _conjunct_rule, _direction_rule, _swap_rule, _substitution_rule)


def check(q: Features, c: Features) -> str | None:
    """None when the candidate may answer the request; otherwise the reason it may not."""
    for rule in RULES:
        reason = rule(q, c)
        if reason is not None:
            return reason
    return None


def reasons(q: Features, c: Features) -> list[str]:
    """Every rule that objects (for measuring each rule's effect)."""
    return [r for r in (rule(q, c) for rule in RULES) if r is not None]


def _stem(w: str) -> str:
    """A crude stem that maps the forms of one word together ("offices" = "office", "hates" = "hate")."""
    w = _singular(w)
    for suffix in ("ing", "ed", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[:-len(suffix)]
            break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


_FRAME_STEMS = frozenset(_stem(w) for w in FRAME_WORDS)


def _canon(w: str) -> str:
    """Words of one contrast-set member count as the same word ("largest" = "biggest")."""
    groups = GROUPS.get(w)
    if groups:
        group, value = groups[0]
        return f"{group}:{value}"
    return _stem(w)


def _substituted(q: Features, c: Features) -> bool:
    """Mostly the same words with one or two swapped ("...learns to sing" / "...learns to dance"):
    in a near-identical request the swapped word is the subject, so the request is another one."""
    sq = {_canon(w) for w in q.content} - _FRAME_STEMS
    sc = {_canon(w) for w in c.content} - _FRAME_STEMS
    only_q, only_c = sq - sc, sc - sq
    shared = len(sq & sc)
    return 1 <= len(only_q) == len(only_c) <= 2 and shared >= 2 and shared >= 2 * len(only_q)


def verify(query: str, candidate: str) -> str | None:
    return check(features(query), features(candidate))
