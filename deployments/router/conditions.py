"""Routing conditions: a small, safe expression language, parsed once and evaluated without `eval`.

    request.messages[0].content.length > 4000
    request.user == 'code-assistant' and metadata.tier in ['pro', 'team']
    headers['x-team'] startswith 'ml-' or not (request.model matches '^gpt-4')
    default

Names: `request` (the chat body; `params` is an alias, as in Portkey), `metadata`, `headers`.
Access: `.key` and `[key]` on objects, `[i]` on arrays (negative counts from the end), `.length`
on strings, arrays and objects. Nothing else is reachable: values are plain JSON (dicts, lists,
strings, numbers), and a step is a dict lookup or a list index, never a Python attribute.
Operators: `== != < <= > >=`, `in`, `not in`, `contains`, `startswith`, `endswith`, `matches`
(regex, right side a string literal compiled at parse time), `and`, `or`, `not`, parentheses.
Literals: numbers, 'strings' or "strings", true/false/null, [lists]. `default` is always true.
A missing field (or a step into the wrong type) yields MISSING, and any comparison with MISSING
is false; nothing raises at evaluation time.

Limits: MAX_LENGTH characters of source, MAX_DEPTH nesting. Python's `re` has no timeout, so
`matches` refuses patterns that backtrack badly (nested unbounded repeats, backreferences,
alternatives or capturing groups inside an unbounded repeat) and looks at the first
MAX_MATCH_CHARS characters of its subject (a pattern starting with a repeat is quadratic in the
subject length). `contains`/`startswith`/`endswith` see the whole string.
"""

from __future__ import annotations

import re
import re._constants as _sre  # the regex parser's opcodes (Python 3.11+), to vet `matches` patterns
import re._parser as _sre_parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_REGEX = 512
MAX_MATCH_CHARS = 4096

ROOTS = {"request": "request", "params": "request", "metadata": "metadata", "headers": "headers"}


class ConditionError(ValueError):
    """The expression cannot be parsed; `pos` is the character offset."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        self.pos = pos
        super().__init__(message if pos is None else f"{message} (at character {pos + 1})")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


# --- AST ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Path:
    root: str  # request | metadata | headers
    steps: tuple[Any, ...]  # str (key), int (index), Length(), or an AST node (computed index)


@dataclass(frozen=True, slots=True)
class Length:
    pass


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Not:
    operand: Any


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Default:
    pass


# --- tokenizer ---------------------------------------------------------------------------------

KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "startswith", "endswith", "matches",
                      "true", "false", "null", "default"})
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\.|\[|\]|\(|\)|,|-)
  | (?P<str>'|")
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(slots=True)
class Token:
    kind: str  # num, str, name, kw, op, end
    value: Any
    pos: int


def tokenize(src: str) -> list[Token]:
    if not isinstance(src, str):
        raise ConditionError("a condition must be a string")
    if len(src) > MAX_LENGTH:
        raise ConditionError(f"condition is {len(src)} characters long; the limit is {MAX_LENGTH}")
    out: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        m = _TOKEN.match(src, i)
        if m is None:
            raise ConditionError(f"unexpected character {src[i]!r}", i)
        kind = m.lastgroup
        if kind == "ws":
            i = m.end()
            continue
        if kind == "str":
            value, i = _read_string(src, i)
            out.append(Token("str", value, m.start()))
            continue
        text = m.group()
        if kind == "num":
            out.append(Token("num", float(text) if any(c in text for c in ".eE") else int(text), i))
        elif kind == "name":
            if text in KEYWORDS:
                out.append(Token("kw", text, i))
            elif text in _CONSTANTS:
                out.append(Token("kw", text.lower() if text != "None" else "null", i))
            else:
                out.append(Token("name", text, i))
        else:
            out.append(Token("op", text, i))
        i = m.end()
    out.append(Token("end", None, n))
    return out


def _read_string(src: str, start: int) -> tuple[str, int]:
    quote = src[start]
    i = start + 1
    parts: list[str] = []
    while i < len(src):
        c = src[i]
        if c == quote:
            return "".join(parts), i + 1
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if nxt in _ESCAPES:
                parts.append(_ESCAPES[nxt])
            else:  # unknown escapes stay as written, so regexes like '\d+' read naturally
                parts.append("\\" + nxt)
            i += 2
            continue
        parts.append(c)
        i += 1
    raise ConditionError("unterminated string", start)


# --- parser ------------------------------------------------------------------------------------

_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})
_WORD_OPS = frozenset({"in", "contains", "startswith", "endswith", "matches"})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: Any = None) -> Token | None:
        tok = self.tokens[self.i]
        if tok.kind == kind and (value is None or tok.value == value):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, value: Any, what: str) -> Token:
        tok = self.accept(kind, value)
        if tok is None:
            raise ConditionError(f"expected {what}, found {_describe(self.peek())}", self.peek().pos)
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"condition is nested more than {MAX_DEPTH} levels deep", self.peek().pos)

    def parse(self) -> Any:
        if self.peek().kind == "kw" and self.peek().value == "default" and self.tokens[1].kind == "end":
            return Default()
        node = self.or_expr()
        if self.peek().kind != "end":
            raise ConditionError(f"unexpected {_describe(self.peek())}", self.peek().pos)
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.accept("kw", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.accept("kw", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Any:
        if self.accept("kw", "not"):
            self.enter()
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Any:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "op" and tok.value in _COMPARE:
            self.next()
            return Compare(tok.value, left, self.operand())
        if tok.kind == "kw" and tok.value == "not" and self.tokens[self.i + 1].kind == "kw" \
                and self.tokens[self.i + 1].value == "in":
            self.i += 2
            return Compare("not in", left, self.operand())
        if tok.kind == "kw" and tok.value in _WORD_OPS:
            self.next()
            right = self.operand()
            if tok.value == "matches":
                if not isinstance(right, Lit) or not isinstance(right.value, str):
                    raise ConditionError("the right side of `matches` must be a string literal", tok.pos)
                right = Lit(safe_regex(right.value))
            return Compare(tok.value, left, right)
        return left

    def operand(self) -> Any:
        tok = self.next()
        if tok.kind == "num":
            return Lit(tok.value)
        if tok.kind == "str":
            return Lit(tok.value)
        if tok.kind == "op" and tok.value == "-":
            num = self.next()
            if num.kind != "num":
                raise ConditionError("`-` must be followed by a number", tok.pos)
            return Lit(-num.value)
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            return Lit(_CONSTANTS[tok.value])
        if tok.kind == "op" and tok.value == "(":
            self.enter()
            node = self.or_expr()
            self.expect("op", ")", "`)`")
            self.depth -= 1
            return node
        if tok.kind == "op" and tok.value == "[":
            self.enter()
            items: list[Any] = []
            if not self.accept("op", "]"):
                while True:
                    items.append(self.or_expr())
                    if self.accept("op", "]"):
                        break
                    self.expect("op", ",", "`,` or `]`")
            self.depth -= 1
            return ListLit(tuple(items))
        if tok.kind == "name":
            root = ROOTS.get(tok.value)
            if root is None:
                raise ConditionError(f"unknown name {tok.value!r} (use request, metadata or headers)", tok.pos)
            return self.path(root)
        if tok.kind == "kw" and tok.value == "default":
            raise ConditionError("`default` must be the whole condition", tok.pos)
        raise ConditionError(f"unexpected {_describe(tok)}", tok.pos)

    def path(self, root: str) -> Path:
        steps: list[Any] = []
        while True:
            if self.accept("op", "."):
                tok = self.next()
                if tok.kind not in ("name", "kw"):
                    raise ConditionError(f"expected a field name after `.`, found {_describe(tok)}", tok.pos)
                steps.append(Length() if tok.value == "length" else str(tok.value))
            elif self.accept("op", "["):
                self.enter()
                index = self.or_expr()
                self.expect("op", "]", "`]`")
                self.depth -= 1
                if isinstance(index, Lit) and isinstance(index.value, (str, int)) \
                        and not isinstance(index.value, bool):
                    steps.append(index.value)
                else:
                    steps.append(index)
            else:
                break
            if len(steps) > MAX_DEPTH:
                raise ConditionError(f"path is longer than {MAX_DEPTH} steps", self.peek().pos)
        return Path(root, tuple(steps))


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of condition"
    if tok.kind == "str":
        return f"string {tok.value!r}"
    return f"{tok.value!r}"


def safe_regex(pattern: str) -> re.Pattern[str]:
    """Compile a regex for `matches`, refusing patterns prone to catastrophic backtracking."""
    if len(pattern) > MAX_REGEX:
        raise ConditionError(f"regex is {len(pattern)} characters long; the limit is {MAX_REGEX}")
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error as exc:
        raise ConditionError(f"invalid regex {pattern!r}: {exc}") from None
    _check_regex(parsed, inside_repeat=False)
    return re.compile(pattern)


_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)


def _check_regex(items: Any, inside_repeat: bool) -> None:
    for op, av in items:
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            raise ConditionError("regex backreferences are not allowed")
        if op in _REPEATS:
            _lo, hi, sub = av
            unbounded = hi == _sre.MAXREPEAT or hi > 100
            if unbounded and inside_repeat:
                raise ConditionError("regex has nested repeats (like `(a+)+`), which can take exponential time")
            _check_regex(sub, inside_repeat or unbounded)
        elif op is _sre.SUBPATTERN:
            if inside_repeat and av[0] is not None:
                raise ConditionError("regex has a capturing group inside a repeat; use (?:...) or a "
                                     "character class")
            _check_regex(av[-1], inside_repeat)
        elif op is _sre.BRANCH:
            if inside_repeat:
                raise ConditionError("regex has alternatives inside a repeat (like `(?:ab|a)*`), which "
                                     "can take quadratic time or worse; use a character class")
            for branch in av[1]:
                _check_regex(branch, inside_repeat)
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            _check_regex(av[1], inside_repeat)
        elif op is _sre.ATOMIC_GROUP:
            _check_regex(av, inside_repeat)


def parse(src: str) -> Any:
    """Source text -> AST (raises ConditionError)."""
    return _Parser(tokenize(src)).parse()


# --- evaluation --------------------------------------------------------------------------------
# The AST compiles to nested closures taking (request, metadata, headers); a closure per node is
# faster than walking the tree, and each step is a dict lookup or a list index on JSON values.

Fn = Callable[[Any, Any, Any], Any]


def _step(value: Any, key: Any) -> Any:
    if isinstance(key, str):
        if isinstance(value, dict):
            return value.get(key, MISSING)
        return MISSING
    if isinstance(key, int) and not isinstance(key, bool):
        if isinstance(value, list):
            if -len(value) <= key < len(value):
                return value[key]
        return MISSING
    if isinstance(key, Length):
        if isinstance(value, (str, list, dict)):
            return len(value)
        return MISSING
    return MISSING


def _compile_path(node: Path) -> Fn:
    root = node.root
    steps = tuple(s if isinstance(s, (str, int, Length)) else _compile(s) for s in node.steps)
    pick = {"request": lambda r, m, h: r, "metadata": lambda r, m, h: m, "headers": lambda r, m, h: h}[root]
    if all(not callable(s) for s in steps):
        def fn(r: Any, m: Any, h: Any) -> Any:
            value = pick(r, m, h)
            for s in steps:
                if value is MISSING:
                    return MISSING
                value = _step(value, s)
            return value
        return fn

    def fn_dyn(r: Any, m: Any, h: Any) -> Any:
        value = pick(r, m, h)
        for s in steps:
            if value is MISSING:
                return MISSING
            key = s(r, m, h) if callable(s) else s
            if isinstance(key, float) and key.is_integer():
                key = int(key)
            value = _step(value, key)
        return value
    return fn_dyn


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eq(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    return type(a) is type(b) and a == b


def _order(op: str, a: Any, b: Any) -> bool:
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _contains(container: Any, item: Any) -> bool:
    if container is MISSING or item is MISSING:
        return False
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        return any(_eq(x, item) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return False


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _eq(a, b)
    if op == "!=":
        return a is not MISSING and b is not MISSING and not _eq(a, b)
    if op in ("<", "<=", ">", ">="):
        return _order(op, a, b)
    if op == "in":
        return _contains(b, a)
    if op == "not in":
        return a is not MISSING and b is not MISSING and isinstance(b, (str, list, dict)) \
            and not _contains(b, a)
    if op == "contains":
        return _contains(a, b)
    if op == "startswith":
        return isinstance(a, str) and isinstance(b, str) and a.startswith(b)
    if op == "endswith":
        return isinstance(a, str) and isinstance(b, str) and a.endswith(b)
    return False


def _compile(node: Any) -> Fn:
    if isinstance(node, Lit):
        value = node.value
        return lambda r, m, h: value
    if isinstance(node, ListLit):
        items = tuple(_compile(i) for i in node.items)
        return lambda r, m, h: [f(r, m, h) for f in items]
    if isinstance(node, Path):
        return _compile_path(node)
    if isinstance(node, Default):
        return lambda r, m, h: True
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda r, m, h: not _truthy(inner(r, m, h))
    if isinstance(node, And):
        parts = tuple(_compile(i) for i in node.items)
        return lambda r, m, h: all(_truthy(f(r, m, h)) for f in parts)
    if isinstance(node, Or):
        parts = tuple(_compile(i) for i in node.items)
        return lambda r, m, h: any(_truthy(f(r, m, h)) for f in parts)
    if isinstance(node, Compare):
        left = _compile(node.left)
        op = node.op
        if op == "matches":
            search = node.right.value.search

            def match(r: Any, m: Any, h: Any) -> bool:
                v = left(r, m, h)
                return isinstance(v, str) and search(v[:MAX_MATCH_CHARS]) is not None
            return match
        right = _compile(node.right)
        return lambda r, m, h: _compare(op, left(r, m, h), right(r, m, h))
    raise ConditionError(f"cannot evaluate {node!r}")  # pragma: no cover - parser builds only the above


def _truthy(v: Any) -> bool:
    return v is not MISSING and bool(v)


class Condition:
    """A parsed condition: `.ast` (comparable), `.source`, and `evaluate(request, metadata, headers)`."""

    __slots__ = ("source", "ast", "_fn", "always")

    def __init__(self, source: str) -> None:
        self.source = source
        self.ast = parse(source)
        self.always = isinstance(self.ast, Default)
        self._fn = _compile(self.ast)

    def evaluate(self, request: Any, metadata: Any = None, headers: Any = None) -> bool:
        try:
            return _truthy(self._fn(request if request is not None else {}, metadata or {}, headers or {}))
        except RecursionError:  # pragma: no cover - depth is bounded at parse time
            return False

    def value(self, request: Any, metadata: Any = None, headers: Any = None) -> Any:
        """The expression's value (sticky keys); MISSING when absent."""
        return self._fn(request if request is not None else {}, metadata or {}, headers or {})

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.ast == self.ast

    def __hash__(self) -> int:
        return hash(self.ast)


def quote(text: str) -> str:
    """A string literal of this language that reads back as `text`."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") \
        .replace("\t", "\\t").replace("\r", "\\r") + "'"


__all__ = ["Condition", "ConditionError", "MISSING", "parse", "quote", "safe_regex", "tokenize"]
