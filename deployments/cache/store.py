"""Where cache entries live: `memory` (per replica) or `redis` (shared, survives restarts).

Both backends keep the same bookkeeping: TTL (an entry is never served after it expires), LRU
eviction at `max_size`, byte and hit/miss counters overall and per provider and model, and an
audit log of invalidations. The semantic index (index.py) lives elsewhere; the store reports the
keys it removes so the index can drop their vectors.

Redis layout — every key under `prefix` (nothing outside it is ever read, written or deleted):

    {prefix}e:{key}   hash: body, provider, model, scope, text, prompt, created, expires, size[, vec]
    {prefix}lru       zset: key -> last access time (LRU order; its size is the entry count)
    {prefix}exp       zset: key -> expiry time (swept on every insert and on stats)
    {prefix}stats     hash: hits, semantic_hits, misses, evictions, expirations, bytes, and
                      "<counter>\\t<provider>\\t<model>" per provider and model
    {prefix}log       stream of index changes (op=add|del|clear, key) that index replicas follow
    {prefix}audit     list of invalidation records (newest first, last 1000)

Multi-key updates are Lua scripts, so concurrent replicas never see half an insert or eviction.
Entry hashes also get a Redis expiry (TTL + 60 s) as a safety net.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .expiry import due

COUNTERS = ("hits", "semantic_hits", "misses")
REMOVALS = ("evictions", "expirations")
GRACE_S = 60
LOG_MAXLEN = 100_000
AUDIT_KEEP = 1000

Matcher = Callable[[str, str, str], bool]  # (provider, model, prompt) -> remove?


@dataclass(slots=True)
class Entry:
    key: str
    body: bytes  # the stored chat.completion JSON
    provider: str
    model: str
    scope: str = ""  # semantic scope ("" when the entry has no vector)
    text: str = ""  # last user turn
    prompt: str = ""  # all message text (invalidation by pattern)
    created: float = 0.0
    expires: float = 0.0

    @property
    def size(self) -> int:
        return len(self.body) + len(self.text) + len(self.prompt) + 160


def _summary(counters: Counter, entries: dict[tuple[str, str], list[int]], backend: str) -> dict[str, Any]:
    def rate(h: float, s: float, m: float) -> float:
        total = h + s + m
        return round((h + s) / total, 4) if total else 0.0

    pairs = set(entries) | {(p, m) for (_, p, m) in counters if p is not None}
    rows = []
    for provider, model in sorted(pairs):
        h, s, m = (counters.get((c, provider, model), 0) for c in COUNTERS)
        ev, ex = (counters.get((c, provider, model), 0) for c in REMOVALS)
        n, b = entries.get((provider, model), [0, 0])
        rows.append({"provider": provider, "model": model, "entries": n, "bytes": b, "hits": h,
                     "semantic_hits": s, "misses": m, "hit_rate": rate(h, s, m), "evictions": ev,
                     "expirations": ex})
    by_provider: dict[str, dict[str, Any]] = {}
    fields = ("entries", "bytes", "hits", "semantic_hits", "misses", "evictions", "expirations")
    for row in rows:
        agg = by_provider.setdefault(row["provider"], {"provider": row["provider"], **dict.fromkeys(fields, 0)})
        for k in fields:
            agg[k] += row[k]
    for agg in by_provider.values():
        agg["hit_rate"] = rate(agg["hits"], agg["semantic_hits"], agg["misses"])
    h, s, m = (counters.get((c, None, None), 0) for c in COUNTERS)
    return {
        "backend": backend,
        "entries": sum(v[0] for v in entries.values()),
        "bytes": sum(v[1] for v in entries.values()),
        "hits": h, "semantic_hits": s, "misses": m, "hit_rate": rate(h, s, m),
        "evictions": counters.get(("evictions", None, None), 0),
        "expirations": counters.get(("expirations", None, None), 0),
        "by_provider": list(by_provider.values()),
        "by_provider_model": rows,
    }


SWEEP_PER_PUT = 64  # heap items swept per put: far more than the one entry a put adds, so it keeps up


class MemoryStore:
    """Per-replica store: an OrderedDict in LRU order plus a heap of expiry times."""

    backend = "memory"
    shared = False

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.expiry: list[tuple[float, str]] = []
        self.counters: Counter = Counter()
        self.audit: deque[dict[str, Any]] = deque(maxlen=AUDIT_KEEP)

    def _count(self, name: str, provider: str, model: str) -> None:
        self.counters[(name, None, None)] += 1
        self.counters[(name, provider, model)] += 1

    def _drop(self, key: str, reason: str | None) -> Entry | None:
        entry = self.entries.pop(key, None)
        if entry is not None and reason:
            self._count(reason, entry.provider, entry.model)
        return entry

    def _sweep(self, now: float, limit: int | None = None) -> list[str]:
        """Drop expired entries, at most `limit` heap items per call (None: all). A put sweeps a bounded
        slice: after an idle hour the whole cache may be due at once, and removing 10,000 entries
        blocks the event loop ~20 ms (bench/loop_blocking.py); `get` already ignores expired ones."""
        removed = []
        for expires, key in due(self.expiry, now, limit):
            entry = self.entries.get(key)
            if entry is not None and entry.expires == expires:
                self._drop(key, "expirations")
                removed.append(key)
        return removed

    async def get(self, key: str, now: float, min_created: float, result: str,
                  miss: tuple[str, str] | None = None) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None and entry.expires <= now:
            self._drop(key, "expirations")
            entry = None
        if entry is None or entry.created < min_created:
            if miss is not None:
                self._count("misses", *miss)
            return None
        self.entries.move_to_end(key)
        self._count(result, entry.provider, entry.model)
        return entry

    async def count_miss(self, provider: str, model: str) -> None:
        self._count("misses", provider, model)

    async def put(self, entry: Entry) -> list[str]:
        removed = self._sweep(entry.created, SWEEP_PER_PUT)
        self.entries[entry.key] = entry
        self.entries.move_to_end(entry.key)
        heapq.heappush(self.expiry, (entry.expires, entry.key))
        while len(self.entries) > self.max_size:
            key, old = self.entries.popitem(last=False)
            self._count("evictions", old.provider, old.model)
            removed.append(key)
        if len(self.expiry) > 2 * len(self.entries) + 64:  # drop stale heap items (replaced/evicted)
            self.expiry = [(e.expires, k) for k, e in self.entries.items()]
            heapq.heapify(self.expiry)
        return removed

    async def invalidate(self, match: Matcher | None) -> list[str]:
        keys = [k for k, e in self.entries.items() if match is None or match(e.provider, e.model, e.prompt)]
        for key in keys:
            self._drop(key, None)
        return keys

    async def stats(self) -> dict[str, Any]:
        self._sweep(time.time())
        entries: dict[tuple[str, str], list[int]] = {}
        for e in self.entries.values():
            slot = entries.setdefault((e.provider, e.model), [0, 0])
            slot[0] += 1
            slot[1] += e.size
        return _summary(self.counters, entries, self.backend)

    async def record_invalidation(self, record: dict[str, Any]) -> None:
        self.audit.appendleft(record)

    async def invalidations(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.audit)[:limit]

    async def close(self) -> None:
        return None


# -- redis ------------------------------------------------------------------------------------------

_GET = """
local v = redis.call('HMGET', KEYS[1], 'body', 'provider', 'model', 'created', 'expires', 'scope', 'text')
if v[1] and tonumber(v[5]) > tonumber(ARGV[1]) and tonumber(v[4]) >= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[7])
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. '\\t' .. v[2] .. '\\t' .. v[3], 1)
  return v
end
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[3], 'misses', 1)
  redis.call('HINCRBY', KEYS[3], 'misses\\t' .. ARGV[4] .. '\\t' .. ARGV[5], 1)
end
return false
"""

_DROP_FN = """
local removed = {}
local function drop(k, reason, log)
  local ek = ARGV[1] .. k
  local meta = redis.call('HMGET', ek, 'size', 'provider', 'model')
  local sz = meta[1]
  if sz then redis.call('HINCRBY', KEYS[3], 'bytes', -tonumber(sz)) end
  redis.call('DEL', ek)
  local was = redis.call('ZREM', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
  if was == 1 or sz then
    if reason ~= '' then
      redis.call('HINCRBY', KEYS[3], reason, 1)
      if meta[2] then redis.call('HINCRBY', KEYS[3], reason .. '\\t' .. meta[2] .. '\\t' .. meta[3], 1) end
    end
    if log then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'op', 'del', 'key', k) end
    removed[#removed + 1] = k
  end
end
local function sweep(now)
  local exp = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 256)
  for _, k in ipairs(exp) do drop(k, 'expirations', true) end
end
"""

# KEYS: lru, exp, stats, log, entry   ARGV: eprefix, maxlen, key, now, expires, max_size, size, pexpireat, fields...
_PUT = _DROP_FN + """
sweep(ARGV[4])
local old = redis.call('HGET', KEYS[5], 'size')
if old then redis.call('HINCRBY', KEYS[3], 'bytes', -tonumber(old)) end
redis.call('HSET', KEYS[5], unpack(ARGV, 9))
redis.call('PEXPIREAT', KEYS[5], ARGV[8])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
redis.call('HINCRBY', KEYS[3], 'bytes', tonumber(ARGV[7]))
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[6])
while n > max do
  local victim = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if (not victim) or victim == ARGV[3] then break end
  drop(victim, 'evictions', true)
  n = n - 1
end
return removed
"""

# KEYS: lru, exp, stats, log   ARGV: eprefix, maxlen, mode ('keys'|'sweep'|'clear'), now, keys...
_REMOVE = _DROP_FN + """
if ARGV[3] == 'sweep' then sweep(ARGV[4]) return removed end
local log = ARGV[3] == 'keys'
for i = 5, #ARGV do drop(ARGV[i], '', log) end
if ARGV[3] == 'clear' then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'op', 'clear', 'key', '') end
return removed
"""

# KEYS: entry, log   ARGV: vec, maxlen, key
_SET_VECTOR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'vec', ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'op', 'add', 'key', ARGV[3])
return 1
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else ("" if v is None else str(v))


class RedisStore:
    """Shared store in Redis: visible to every replica at once, survives gateway restarts."""

    backend = "redis"
    shared = True

    def __init__(self, url: str, prefix: str, max_size: int, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.client = client or aioredis.Redis.from_url(url, decode_responses=False)
        self.prefix = prefix
        self.max_size = max_size
        self.k_lru, self.k_exp, self.k_stats = prefix + "lru", prefix + "exp", prefix + "stats"
        self.k_log, self.k_audit, self.e_prefix = prefix + "log", prefix + "audit", prefix + "e:"
        self._get = self.client.register_script(_GET)
        self._put = self.client.register_script(_PUT)
        self._remove = self.client.register_script(_REMOVE)
        self._set_vector = self.client.register_script(_SET_VECTOR)

    def ekey(self, key: str) -> str:
        return self.e_prefix + key

    async def get(self, key: str, now: float, min_created: float, result: str,
                  miss: tuple[str, str] | None = None) -> Entry | None:
        mp, mm = miss or ("", "")
        v = await self._get(keys=[self.ekey(key), self.k_lru, self.k_stats],
                            args=[repr(now), repr(min_created), result, mp, mm, "1" if miss else "0", key])
        if not v:
            return None
        body, provider, model, created, expires, scope, text = v
        return Entry(key, body, _s(provider), _s(model), _s(scope), _s(text), "", float(created), float(expires))

    async def count_miss(self, provider: str, model: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.k_stats, "misses", 1)
        pipe.hincrby(self.k_stats, f"misses\t{provider}\t{model}", 1)
        await pipe.execute()

    async def put(self, entry: Entry) -> list[str]:
        fields = ["body", entry.body, "provider", entry.provider, "model", entry.model, "scope", entry.scope,
                  "text", entry.text, "prompt", entry.prompt, "created", repr(entry.created),
                  "expires", repr(entry.expires), "size", str(entry.size)]
        removed = await self._put(
            keys=[self.k_lru, self.k_exp, self.k_stats, self.k_log, self.ekey(entry.key)],
            args=[self.e_prefix, LOG_MAXLEN, entry.key, repr(entry.created), repr(entry.expires),
                  self.max_size, entry.size, int((entry.expires + GRACE_S) * 1000), *fields])
        return [_s(k) for k in removed or []]

    async def _remove_keys(self, mode: str, keys: list[str]) -> list[str]:
        removed = await self._remove(keys=[self.k_lru, self.k_exp, self.k_stats, self.k_log],
                                     args=[self.e_prefix, LOG_MAXLEN, mode, repr(time.time()), *keys])
        return [_s(k) for k in removed or []]

    async def sweep(self) -> list[str]:
        return await self._remove_keys("sweep", [])

    async def members(self, batch: int = 500) -> AsyncIterator[list[str]]:
        """Every entry key (LRU order), in batches."""
        start = 0
        while True:
            keys = await self.client.zrange(self.k_lru, start, start + batch - 1)
            if not keys:
                return
            yield [_s(k) for k in keys]
            if len(keys) < batch:
                return
            start += batch

    async def fields(self, keys: list[str], names: tuple[str, ...]) -> list[list[Any]]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(self.ekey(key), *names)
        return await pipe.execute()

    async def invalidate(self, match: Matcher | None) -> list[str]:
        doomed: list[str] = []
        async for keys in self.members():
            if match is None:
                doomed.extend(keys)
                continue
            for key, (provider, model, prompt) in zip(keys, await self.fields(keys, ("provider", "model", "prompt")),
                                                      strict=True):
                if provider is not None and match(_s(provider), _s(model), _s(prompt)):
                    doomed.append(key)
        removed: list[str] = []
        mode = "clear" if match is None else "keys"
        for i in range(0, len(doomed), 1000):
            removed.extend(await self._remove_keys(mode, doomed[i:i + 1000]))
        if match is None and not doomed:
            await self._remove_keys("clear", [])
        return removed

    async def stats(self) -> dict[str, Any]:
        await self.sweep()
        raw = await self.client.hgetall(self.k_stats)
        counters: Counter = Counter()
        for name, value in raw.items():
            parts = _s(name).split("\t")
            if len(parts) == 3:
                counters[(parts[0], parts[1], parts[2])] = int(value)
            else:
                counters[(parts[0], None, None)] = int(value)
        entries: dict[tuple[str, str], list[int]] = {}
        async for keys in self.members():
            for provider, model, size in await self.fields(keys, ("provider", "model", "size")):
                if provider is None:
                    continue
                slot = entries.setdefault((_s(provider), _s(model)), [0, 0])
                slot[0] += 1
                slot[1] += int(size or 0)
        return _summary(counters, entries, self.backend)

    async def record_invalidation(self, record: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(self.k_audit, orjson.dumps(record))
        pipe.ltrim(self.k_audit, 0, AUDIT_KEEP - 1)
        await pipe.execute()

    async def invalidations(self, limit: int = 100) -> list[dict[str, Any]]:
        return [orjson.loads(r) for r in await self.client.lrange(self.k_audit, 0, limit - 1)]

    # -- what the semantic index needs ---------------------------------------------------------------
    async def set_vector(self, key: str, vec: bytes) -> bool:
        return bool(await self._set_vector(keys=[self.ekey(key), self.k_log], args=[vec, LOG_MAXLEN, key]))

    async def vectors(self, keys: list[str]) -> list[tuple[str, str, str, float, bytes] | None]:
        """(key, scope, text, expires, vec) for each key that has a vector."""
        out: list[tuple[str, str, str, float, bytes] | None] = []
        for key, (scope, text, expires, vec) in zip(keys, await self.fields(keys, ("scope", "text", "expires", "vec")),
                                                    strict=True):
            out.append((key, _s(scope), _s(text), float(expires), vec) if vec and scope else None)
        return out

    async def log_position(self) -> str:
        last = await self.client.xrevrange(self.k_log, count=1)
        return _s(last[0][0]) if last else "0-0"

    async def log_since(self, position: str, block_ms: int) -> tuple[str, list[tuple[str, str]]]:
        """Changes after `position` (waits up to block_ms for the first): (new position, [(op, key)])."""
        res = await self.client.xread({self.k_log: position}, count=1000, block=block_ms)
        events: list[tuple[str, str]] = []
        for _, items in res or []:
            for event_id, fields in items:
                position = _s(event_id)
                events.append((_s(fields.get(b"op")), _s(fields.get(b"key"))))
        return position, events

    async def close(self) -> None:
        await self.client.aclose()


def make_store(config: Any) -> MemoryStore | RedisStore:
    if config.backend == "redis":
        return RedisStore(config.url.get_secret_value(), config.prefix, config.max_size)
    return MemoryStore(config.max_size)
