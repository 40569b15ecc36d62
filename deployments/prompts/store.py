"""`PromptStore`: prompts, versions, labels and tests in the gateway's database, and per-version stats
from the stored request records.

Every write to a prompt runs in one transaction that first bumps the prompt's `revision` (an
UPDATE, which also serialises concurrent writers of one prompt on PostgreSQL; SQLite's
`BEGIN IMMEDIATE` serialises every writer). Replicas compare revisions to refresh their copies
(deployments/prompts/cache.py), so a read of an unchanged prompt is one indexed lookup.

Errors are `GatewayError`s (404 unknown, 409 conflicts) with messages built from names only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from serve_app.errors import GatewayError, not_found
from serve_app.storage import Storage
from serve_app.storage import schema as s

from . import versions as semver


def digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def conflict(message: str, code: str) -> GatewayError:
    return GatewayError(409, message, code=code)


def _missing(name: str, version: str | None = None) -> GatewayError:
    if version is None:
        return not_found(f"prompt {name!r} does not exist", code="prompt_not_found", param="name")
    return not_found(f"prompt {name!r} has no version {version!r}", code="prompt_version_not_found",
                     param="version")


def _cost(value: Any) -> float | None:
    """A record's `facts.cost`: a number, or an object with the amount under `usd`/`total_usd`/`total`."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("usd", "total_usd", "total") if k in value), None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class PromptStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._started = False

    async def ready(self) -> None:
        if not self._started:
            await self.storage.start()
            self._started = True

    def _insert(self, table: sa.Table) -> Any:
        return self.storage.backend.insert(table)

    async def _begin_write(self, conn: Any, name: str) -> None:
        """Create the prompt row if needed and bump its revision (the row stays locked until commit)."""
        now = time.time()
        await conn.execute(self._insert(s.prompt).values(name=name, revision=0, created_at=now, updated_at=now)
                           .on_conflict_do_nothing(index_elements=["name"]))
        await conn.execute(sa.update(s.prompt).where(s.prompt.c.name == name)
                           .values(revision=s.prompt.c.revision + 1, updated_at=now))

    @asynccontextmanager
    async def _writing(self, name: str) -> AsyncIterator[Any]:
        """A write transaction on an existing prompt (404 if there is none), its revision bumped."""
        await self.ready()
        async with self.storage.engine.begin() as conn:
            await self._require_prompt(conn, name)
            await self._begin_write(conn, name)
            yield conn

    # -- writes ------------------------------------------------------------------------------------
    async def deploy(self, name: str, version: str, content: dict[str, Any], labels: list[str],
                     actor: str | None, retry: bool = True) -> dict[str, Any]:
        """Store a version (or find the identical one) and move `labels` to it. 409 if the version exists
        with other content."""
        await self.ready()
        d = digest(content)
        now = time.time()
        try:
            async with self.storage.engine.begin() as conn:
                await self._begin_write(conn, name)
                found = (await conn.execute(sa.select(s.prompt_version.c.digest).where(
                    s.prompt_version.c.name == name, s.prompt_version.c.version == version))).scalar()
                if found is not None and found != d:
                    raise conflict(f"prompt {name!r} version {version!r} already exists with different content; "
                                   "versions are immutable: deploy a new version", "prompt_version_exists")
                created = found is None
                if created:
                    await conn.execute(sa.insert(s.prompt_version).values(
                        name=name, version=version, digest=d, content=content, created_at=now, created_by=actor))
                moved = {}
                for label in labels:
                    moved[label] = await self._move_label(conn, name, label, version, actor, now)
        except IntegrityError:  # a concurrent deploy of this version won the insert: compare with it
            if not retry:
                raise
            return await self.deploy(name, version, content, labels, actor, retry=False)
        return {"name": name, "version": version, "created": created, "digest": d, "labels": moved}

    async def _move_label(self, conn: Any, name: str, label: str, version: str, actor: str | None,
                          now: float) -> str | None:
        """Point `label` at `version`; returns the version it pointed at before (None: new label)."""
        t = s.prompt_label
        before = (await conn.execute(sa.select(t.c.version).where(t.c.name == name, t.c.label == label))).scalar()
        if before is None:
            await conn.execute(sa.insert(t).values(name=name, label=label, version=version, updated_at=now,
                                                   updated_by=actor))
        elif before != version:
            await conn.execute(sa.update(t).where(t.c.name == name, t.c.label == label)
                               .values(version=version, updated_at=now, updated_by=actor))
        return before

    async def _require_version(self, conn: Any, name: str, version: str) -> None:
        t = s.prompt_version
        if (await conn.execute(sa.select(t.c.version).where(t.c.name == name, t.c.version == version))).first() is None:
            raise _missing(name, version)

    async def set_label(self, name: str, label: str, version: str, actor: str | None) -> dict[str, Any]:
        async with self._writing(name) as conn:
            await self._require_version(conn, name, version)
            before = await self._move_label(conn, name, label, version, actor, time.time())
        return {"name": name, "label": label, "version": version, "previous": before}

    async def _delete_named(self, name: str, table: sa.Table, what: str, value: str) -> Any:
        """Delete the prompt's row whose column `what` (label, test) is `value`; 404 naming it if none."""
        async with self._writing(name) as conn:
            gone = (await conn.execute(sa.delete(table).where(table.c.name == name, table.c[what] == value)
                                       .returning(*table.c))).mappings().first()
            if gone is None:
                raise not_found(f"prompt {name!r} has no {what} {value!r}", code=f"prompt_{what}_not_found",
                                param=what)
        return gone

    async def delete_label(self, name: str, label: str) -> dict[str, Any]:
        gone = await self._delete_named(name, s.prompt_label, "label", label)
        return {"name": name, "label": label, "deleted": True, "previous": gone["version"]}

    async def delete_version(self, name: str, version: str) -> dict[str, Any]:
        """Delete a version no label or test points at (409 naming what does)."""
        async with self._writing(name) as conn:
            await self._require_version(conn, name, version)
            labels = (await conn.execute(sa.select(s.prompt_label.c.label).where(
                s.prompt_label.c.name == name, s.prompt_label.c.version == version))).scalars().all()
            if labels:
                raise conflict(f"version {version!r} of prompt {name!r} has label(s) {', '.join(sorted(labels))}; "
                               "move them first", "prompt_version_in_use")
            tests = (await conn.execute(sa.select(s.prompt_test.c.test, s.prompt_test.c.weights)
                                        .where(s.prompt_test.c.name == name))).all()
            using = sorted(t for t, weights in tests if version in weights)
            if using:
                raise conflict(f"version {version!r} of prompt {name!r} is in test(s) {', '.join(using)}; "
                               "delete them first", "prompt_version_in_use")
            t = s.prompt_version
            await conn.execute(sa.delete(t).where(t.c.name == name, t.c.version == version))
        return {"name": name, "version": version, "deleted": True}

    async def put_test(self, name: str, test: str, weights: dict[str, float], sticky_key: str | None,
                       actor: str | None) -> dict[str, Any]:
        """Create or replace a stored A/B test; every version must exist."""
        t = s.prompt_test
        async with self._writing(name) as conn:
            for version in weights:
                await self._require_version(conn, name, version)
            replaced = (await conn.execute(sa.delete(t).where(t.c.name == name, t.c.test == test)
                                           .returning(t.c.test))).first() is not None
            await conn.execute(sa.insert(t).values(name=name, test=test, weights=weights, sticky_key=sticky_key,
                                                   created_at=time.time(), created_by=actor))
        return {"name": name, "test": test, "versions": weights, "sticky_key": sticky_key, "replaced": replaced}

    async def delete_test(self, name: str, test: str) -> dict[str, Any]:
        await self._delete_named(name, s.prompt_test, "test", test)
        return {"name": name, "test": test, "deleted": True}

    async def _require_prompt(self, conn: Any, name: str) -> None:
        if (await conn.execute(sa.select(s.prompt.c.name).where(s.prompt.c.name == name))).first() is None:
            raise _missing(name)

    # -- reads -------------------------------------------------------------------------------------
    async def list(self) -> list[dict[str, Any]]:
        await self.ready()
        async with self.storage.engine.connect() as conn:
            prompts = (await conn.execute(sa.select(s.prompt).order_by(s.prompt.c.name))).mappings().all()
            names = (await conn.execute(sa.select(s.prompt_version.c.name, s.prompt_version.c.version))).all()
            labels = (await conn.execute(sa.select(s.prompt_label.c.name, s.prompt_label.c.label,
                                                   s.prompt_label.c.version))).all()
        by_name: dict[str, list[str]] = {}
        for n, v in names:
            by_name.setdefault(n, []).append(v)
        label_map: dict[str, dict[str, str]] = {}
        for n, label, v in labels:
            label_map.setdefault(n, {})[label] = v
        return [{"name": p["name"], "versions": len(by_name.get(p["name"], [])),
                 "latest": semver.latest(by_name.get(p["name"], [])), "labels": label_map.get(p["name"], {}),
                 "revision": p["revision"], "updated_at": p["updated_at"]} for p in prompts]

    async def get(self, name: str) -> dict[str, Any]:
        """Versions (semver order, without content), labels and tests of one prompt; 404 if unknown."""
        snap = await self.snapshot(name, None, ())
        if snap is None:
            raise _missing(name)
        versions = [{"version": v, "created_at": row["created_at"], "created_by": row["created_by"],
                     "digest": row["digest"], "model": row["content"].get("model"),
                     "description": row["content"].get("description"),
                     "labels": sorted(label for label, lv in snap["labels"].items() if lv == v)}
                    for v, row in ((v, snap["versions"][v]) for v in semver.ordered(snap["versions"]))]
        return {"name": name, "revision": snap["revision"], "versions": versions,
                "latest": semver.latest(snap["versions"]), "labels": snap["labels"], "tests": snap["tests"]}

    async def get_version(self, name: str, version: str) -> dict[str, Any]:
        await self.ready()
        t = s.prompt_version
        async with self.storage.engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.name == name, t.c.version == version))).mappings().first()
            if row is None:
                await self._require_prompt(conn, name)
                raise _missing(name, version)
            labels = (await conn.execute(sa.select(s.prompt_label.c.label).where(
                s.prompt_label.c.name == name, s.prompt_label.c.version == version))).scalars().all()
        return {"name": name, "version": version, **row["content"], "digest": row["digest"],
                "created_at": row["created_at"], "created_by": row["created_by"], "labels": sorted(labels)}

    async def snapshot(self, name: str, revision: int | None, known: Any) -> dict[str, Any] | None:
        """What a replica needs to render `name`: None if the prompt does not exist, {"revision"} alone if
        it is still at `revision`, else its labels, tests, the names of all versions and the rows of
        those not in `known` (versions are immutable, so a replica never fetches one twice)."""
        await self.ready()
        async with self.storage.engine.connect() as conn:
            current = (await conn.execute(sa.select(s.prompt.c.revision).where(s.prompt.c.name == name))).scalar()
            if current is None:
                return None
            if current == revision:
                return {"revision": current}
            t = s.prompt_version
            all_versions = (await conn.execute(sa.select(t.c.version).where(t.c.name == name))).scalars().all()
            wanted = [v for v in all_versions if v not in set(known)]
            rows = (await conn.execute(sa.select(t.c.version, t.c.digest, t.c.content, t.c.created_at, t.c.created_by)
                                       .where(t.c.name == name, t.c.version.in_(wanted)))).mappings().all() if wanted else []
            labels = (await conn.execute(sa.select(s.prompt_label.c.label, s.prompt_label.c.version)
                                         .where(s.prompt_label.c.name == name))).all()
            tests = (await conn.execute(sa.select(s.prompt_test.c.test, s.prompt_test.c.weights,
                                                  s.prompt_test.c.sticky_key)
                                        .where(s.prompt_test.c.name == name))).all()
        return {"revision": current, "all_versions": list(all_versions),
                "versions": {r["version"]: dict(r) for r in rows},
                "labels": {label: v for label, v in labels},
                "tests": {test: {"versions": weights, "sticky_key": key} for test, weights, key in tests}}

    async def stats(self, name: str, test: str, since: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per-version outcomes of the stored chat records that one test of `name` served (request_log)."""
        await self.ready()
        rl = s.request_log
        fact = rl.c.record[("facts", "prompt", "name")].as_string()
        test_of = rl.c.record[("facts", "prompt", "test")].as_string()
        query = sa.select(rl.c.record["facts"], rl.c.record["usage"], rl.c.status, rl.c.latency_ms).where(
            rl.c.kind == "chat", fact == name, test_of == test)
        if since is not None:
            query = query.where(rl.c.received_at >= since)
        per: dict[str, dict[str, Any]] = {}
        async with self.storage.engine.connect() as conn:
            result = await conn.stream(query)
            async for facts, usage, status, latency in result:
                version = str(((facts or {}).get("prompt") or {}).get("version"))
                row = per.setdefault(version, {"requests": 0, "errors": 0, "latencies": [], "input_tokens": 0,
                                               "output_tokens": 0, "cost": None})
                row["requests"] += 1
                if status is None or status >= 400:
                    row["errors"] += 1
                if latency is not None:
                    row["latencies"].append(latency)
                if isinstance(usage, dict):
                    row["input_tokens"] += usage.get("input") or 0
                    row["output_tokens"] += usage.get("output") or 0
                cost = _cost((facts or {}).get("cost"))
                if cost is not None:
                    row["cost"] = (row["cost"] or 0.0) + cost
        out = []
        for version in semver.ordered(v for v in per if semver.is_semver(v)) + sorted(
                v for v in per if not semver.is_semver(v)):
            row = per[version]
            lat = sorted(row.pop("latencies"))
            n = row["requests"]
            out.append({"version": version, **row, "error_rate": row["errors"] / n if n else 0.0,
                        "latency_ms": {"mean": sum(lat) / len(lat) if lat else None,
                                       "p50": _percentile(lat, 0.5), "p95": _percentile(lat, 0.95)}})
        return {"versions": out}

    async def close(self) -> None:
        await self.storage.close()
        self._started = False
