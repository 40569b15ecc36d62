"""Which buckets a request counts against: the configured rules, compiled once, matched per request.

A rule's dimension is read off the record: `key` (the gateway key's id), `ip` (the client IP,
which already honours `gateway.trusted_proxies`), `metadata.<k>` (the request's metadata), and
`user`: the metadata's `user_id`, or else the OpenAI `user` field of the body. A per-value rule
(`scope: key`) gives each value its own bucket; a fixed rule (`scope: {key: batch-jobs}`) holds
one value to its own limit and replaces the per-value rule of its dimension for that value. A
request with no value for a dimension (no key configured, a handle call without an IP) is not
limited on it.
"""

from __future__ import annotations

from typing import Any

from .config import RateLimitRule, RateLimits


def _user(rec: Any, body: dict[str, Any]) -> Any:
    user = rec.metadata.get("user_id")
    return user if user else body.get("user")


def _reader(dimension: str) -> Any:
    if dimension == "key":
        return lambda rec, body: rec.key_id
    if dimension == "ip":
        return lambda rec, body: rec.client_ip
    if dimension == "user":
        return _user
    field = dimension[len("metadata."):]
    return lambda rec, body: rec.metadata.get(field)


class Limit:
    """One configured rule: its limits and the prefix of its bucket ids."""

    __slots__ = ("dimension", "label", "requests", "tokens", "prefix", "requests_lease", "tokens_lease")

    def __init__(self, rule: RateLimitRule, lease_fraction: float) -> None:
        self.dimension = rule.dimension
        self.label = rule.dimension  # the metric label: the dimension, never a key, user or address
        self.requests = rule.requests_per_minute
        self.tokens = rule.tokens_per_minute
        fixed = "*" if rule.value is None else "="
        # the limits are part of the id: a changed limit starts a new bucket, never a half-old one
        self.prefix = f"{rule.dimension}{fixed}{self.requests or 0}/{self.tokens or 0}|"
        # what a replica leases at a time: a share of the capacity, at least one request's worth
        self.requests_lease = max(1.0, (self.requests or 0) * lease_fraction)
        self.tokens_lease = max(1.0, (self.tokens or 0) * lease_fraction)


class Dimension:
    __slots__ = ("read", "each", "fixed")

    def __init__(self, name: str) -> None:
        self.read = _reader(name)
        self.each: Limit | None = None  # the per-value rule
        self.fixed: dict[str, Limit] = {}  # value -> its own rule


class Rules:
    def __init__(self, settings: RateLimits) -> None:
        dims: dict[str, Dimension] = {}
        for rule in settings.rules:
            dim = dims.get(rule.dimension)
            if dim is None:
                dim = dims[rule.dimension] = Dimension(rule.dimension)
            if rule.value is None:
                dim.each = Limit(rule, settings.lease_fraction)
            else:
                dim.fixed[rule.value] = Limit(rule, settings.lease_fraction)
        self.dimensions = list(dims.values())
        self.counts_tokens = any(r.tokens_per_minute for r in settings.rules)

    def match(self, rec: Any, body: dict[str, Any]) -> list[tuple[Limit, str]]:
        """The (rule, value) pairs this request counts against."""
        out = []
        for dim in self.dimensions:
            value = dim.read(rec, body)
            if not value or not isinstance(value, str):
                continue
            limit = dim.fixed.get(value) or dim.each
            if limit is not None:
                out.append((limit, value))
        return out


__all__ = ["Limit", "Rules"]
