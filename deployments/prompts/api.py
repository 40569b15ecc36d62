"""`/v1/prompts/...`: the prompt-management API, for the HTTP app (serve_app/http.py) and the handle
methods of the ingress (serve_app/ingress.py) alike.

    GET    /v1/prompts                              list                    gateway key
    GET    /v1/prompts/{name}                       versions, labels, tests gateway key
    POST   /v1/prompts/{name}/versions              deploy a version        admin key
    GET    /v1/prompts/{name}/versions/{version}    one version             gateway key
    DELETE /v1/prompts/{name}/versions/{version}    delete (if unused)      admin key
    PUT    /v1/prompts/{name}/labels/{label}        move a label            admin key
    DELETE /v1/prompts/{name}/labels/{label}        remove a label          admin key
    POST   /v1/prompts/{name}/tests                 store an A/B test       admin key
    GET    /v1/prompts/{name}/tests/{test}          per-version stats       gateway key
    DELETE /v1/prompts/{name}/tests/{test}          delete a test           admin key
    POST   /v1/prompts/{name}/render[?dry_run=true] render and run it       gateway key

A render is a chat completion: the rendered request goes through `Gateway.chat` / `chat_stream`
with the request's record, so routing, caching, guardrails, spend and logs apply as to any chat
call, and the record carries the fact `prompt: {name, version, test?, label?}`, from which
`GET .../tests/{test}` computes its per-version stats. Every write is an audit event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from serve_app.errors import GatewayError, bad_request, not_found
from serve_app.lifecycle import Reply, StreamReply, aclose
from serve_app.protocol import pop_metadata

from .cache import PromptCache
from .prompt import PromptView, check_name, check_version, parse_deploy
from .split import Selector, Split, check_sticky_key, check_weights, inline_split

log = logging.getLogger("raygate.prompts")

PREFIX = "/v1/prompts"
_SEG = r"([^/]+)"
# (method, path after PREFIX, action, needs the admin key)
ROUTES: list[tuple[str, re.Pattern[str], str, bool]] = [
    (method, re.compile(f"^{pattern}$"), action, admin) for method, pattern, action, admin in [
        ("GET", "", "list", False),
        ("GET", f"/{_SEG}", "get", False),
        ("POST", f"/{_SEG}/versions", "deploy", True),
        ("GET", f"/{_SEG}/versions/{_SEG}", "get_version", False),
        ("DELETE", f"/{_SEG}/versions/{_SEG}", "delete_version", True),
        ("PUT", f"/{_SEG}/labels/{_SEG}", "set_label", True),
        ("DELETE", f"/{_SEG}/labels/{_SEG}", "delete_label", True),
        ("POST", f"/{_SEG}/tests", "put_test", True),
        ("GET", f"/{_SEG}/tests/{_SEG}", "test_stats", False),
        ("DELETE", f"/{_SEG}/tests/{_SEG}", "delete_test", True),
        ("POST", f"/{_SEG}/render", "render", False),
    ]
]
RENDER_FIELDS = frozenset({"variables", "version", "label", "test", "test_version", "split", "sticky_key",
                           "allow_extra", "stream", "metadata", "cache", "guardrails", "stream_options", "user"})
PASS_THROUGH = ("metadata", "cache", "guardrails", "stream_options", "user")  # to the chat request as sent
TRUE = frozenset({"1", "true", "yes"})
RECHECK_S = 0.05  # a render naming what the replica's copy lacks re-checks the store at most this often


@dataclass(frozen=True, slots=True)
class Route:
    action: str
    args: tuple[str, ...]
    admin: bool
    dry_run: bool = False
    since: float | None = None

    @property
    def records(self) -> bool:
        """A render that calls a model is a chat request: recorded like one."""
        return self.action == "render" and not self.dry_run


def storage_unavailable(exc: BaseException) -> GatewayError:
    return GatewayError(503, f"prompt storage is unavailable ({type(exc).__name__})", code="storage_unavailable")


class PromptsApi:
    def __init__(self, gateway: Any, store: Any, ttl: float, selector: Selector | None = None) -> None:
        self.gateway = gateway
        self.store = store
        self.cache = PromptCache(store, ttl)
        self.selector = selector or Selector()

    # -- routing and access ------------------------------------------------------------------------
    def route(self, method: str, rest: str, query: str = "") -> Route:
        """The route for a path below /v1/prompts; 404 / 405 otherwise."""
        rest = rest.rstrip("/")
        allowed = False
        for m, pattern, action, admin in ROUTES:
            match = pattern.match(rest)
            if match is None:
                continue
            if m != method:
                allowed = True
                continue
            params = parse_qs(query) if query else {}
            dry_run = (params.get("dry_run") or [""])[-1].lower() in TRUE
            since = (params.get("since") or [None])[-1]
            try:
                since_value = float(since) if since is not None else None
            except ValueError:
                raise bad_request("'since' must be epoch seconds", param="since") from None
            return Route(action, match.groups(), admin, dry_run, since_value)
        if allowed:
            raise GatewayError(405, f"method {method} is not allowed on {PREFIX}{rest}", code="method_not_allowed")
        raise GatewayError(404, f"unknown path {PREFIX}{rest}", code="unknown_url", type="invalid_request_error")

    def identify(self, route: Route, auth: Any, authorization: str | None, rec: Any,
                 client_ip: str | None) -> str | None:
        """The admin id for writes (a denied attempt is audited), else the gateway key's check."""
        if route.admin:
            try:
                return auth.admin(authorization)
            except GatewayError as err:
                self.gateway.audit(None, f"prompt.{route.action}", f"denied {err.status}", client_ip=client_ip,
                                   prompt=route.args[0] if route.args else None)
                raise
        rec.key_id = auth.client(authorization)
        return None

    async def call(self, route: Route, body: Any, rec: Any, actor: str | None, client_ip: str | None,
                   via: str = "http") -> Reply | StreamReply:
        if route.action == "render":
            return await self.render(route.args[0], body, rec, route.dry_run)
        handler = getattr(self, route.action)
        if not route.admin:
            return _json(await self._stored(handler(*route.args, since=route.since) if route.action == "test_stats"
                                            else handler(*route.args)))
        details = dict(zip(("prompt", _SECOND_ARG.get(route.action, "item")), route.args, strict=False))
        try:
            result, status = await handler(*route.args, body=body, actor=actor)
        except GatewayError as err:
            self.gateway.audit(actor, f"prompt.{route.action}", f"error {err.status}", client_ip=client_ip, via=via,
                               **details)
            raise
        self.gateway.audit(actor, f"prompt.{route.action}", "ok", client_ip=client_ip, via=via,
                           **{**details, **_audit_details(result)})
        return _json(result, status)

    async def _stored(self, work: Any) -> Any:
        try:
            return await work
        except GatewayError:
            raise
        except Exception as exc:  # the database or its actor is unreachable
            # the type and first line only: a driver's message may quote SQL, never the URL's password
            log.warning("prompt storage call failed: %s: %s", type(exc).__name__, str(exc).split("\n", 1)[0][:300])
            raise storage_unavailable(exc) from exc

    # -- reads -------------------------------------------------------------------------------------
    async def list(self) -> dict[str, Any]:
        return {"object": "list", "data": await self.store.list()}

    async def get(self, name: str) -> dict[str, Any]:
        return {"object": "prompt", **await self.store.get(name)}

    async def get_version(self, name: str, version: str) -> dict[str, Any]:
        return {"object": "prompt.version", **await self.store.get_version(name, version)}

    async def test_stats(self, name: str, test: str, since: float | None = None) -> dict[str, Any]:
        doc = await self.store.get(name)
        stored = doc["tests"].get(test)
        stats = await self.store.stats(name, test, since)
        if stored is None and not stats["versions"]:
            raise not_found(f"prompt {name!r} has no test {test!r} and no requests recorded for it",
                            code="prompt_test_not_found", param="test")
        return {"object": "prompt.test", "name": name, "test": test, "stored": stored is not None,
                "weights": stored["versions"] if stored else None,
                "sticky_key": stored["sticky_key"] if stored else None, "since": since, **stats}

    # -- writes (admin) ----------------------------------------------------------------------------
    async def _write(self, name: str, work: Any) -> Any:
        try:
            return await self._stored(work)
        finally:
            self.cache.invalidate(name)

    async def deploy(self, name: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        check_name(name, "name")
        version, content, labels = parse_deploy(body)
        result = await self._write(name, self.store.deploy(name, version, content, labels, actor))
        return {"object": "prompt.version", **result}, 201 if result["created"] else 200

    async def delete_version(self, name: str, version: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        return await self._write(name, self.store.delete_version(name, version)), 200

    async def set_label(self, name: str, label: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        check_name(label, "label")
        version = check_version((body or {}).get("version"))
        return await self._write(name, self.store.set_label(name, label, version, actor)), 200

    async def delete_label(self, name: str, label: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        return await self._write(name, self.store.delete_label(name, label)), 200

    async def put_test(self, name: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object", code="invalid_json")
        unknown = sorted(set(body) - {"name", "versions", "sticky_key"})
        if unknown:
            raise bad_request(f"unknown field {unknown[0]!r} in a test", param=unknown[0], code="unknown_parameter")
        test = check_name(body.get("name"), "test")
        try:
            weights = check_weights(body.get("versions"))
            sticky_key = check_sticky_key(body.get("sticky_key"))
        except ValueError as exc:
            raise bad_request(str(exc), param="versions" if "sticky_key" not in str(exc) else "sticky_key") from None
        for version in weights:
            check_version(version, "versions")
        result = await self._write(name, self.store.put_test(name, test, weights, sticky_key, actor))
        return {"object": "prompt.test", **result}, 200 if result["replaced"] else 201

    async def delete_test(self, name: str, test: str, body: Any, actor: str | None) -> tuple[dict[str, Any], int]:
        return await self._write(name, self.store.delete_test(name, test)), 200

    # -- render ------------------------------------------------------------------------------------
    async def render(self, name: str, body: Any, rec: Any, dry_run: bool = False) -> Reply | StreamReply:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object", code="invalid_json")
        fact: dict[str, Any] = {"name": name}
        if not dry_run:
            rec.fact("prompt", fact)
        unknown = sorted(set(body) - RENDER_FIELDS)
        if unknown:
            raise bad_request(f"unknown field {unknown[0]!r} in a render request", param=unknown[0],
                              code="unknown_parameter")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            raise bad_request("'variables' must be an object of name -> value", param="variables",
                              code="invalid_type")
        metadata = pop_metadata(body, rec.headers.get("x-raygate-metadata"))
        view = await self._stored(self.cache.get(name))
        try:
            split, chosen = self._choose(name, view, body, metadata, rec.key_id)
        except GatewayError as err:  # something new to this replica's copy? check the store before a 404
            fresher = await self._stored(self.cache.get(name, max_age=RECHECK_S)) if err.status == 404 else view
            if fresher is view:
                raise
            view = fresher
            split, chosen = self._choose(name, view, body, metadata, rec.key_id)
        assert view is not None
        fact["version"] = chosen
        if split is not None:
            fact["test"] = split.test
        if body.get("label") is not None:
            fact["label"] = body["label"]
        headers = {"x-raygate-prompt": name, "x-raygate-prompt-version": chosen}
        if split is not None:
            headers["x-raygate-prompt-test"] = split.test
        try:
            return await self._run(view, chosen, body, variables, fact, headers, rec, dry_run)
        except GatewayError as err:  # the client learns which version failed, too
            err.headers = {**err.headers, **headers}
            raise

    def _choose(self, name: str, view: PromptView | None, body: dict[str, Any], metadata: dict[str, str],
                key_id: str | None) -> tuple[Split | None, str]:
        """The split (None: a plain render) and the version this request gets."""
        if view is None:
            raise not_found(f"prompt {name!r} does not exist", code="prompt_not_found", param="name")
        split = self._split(view, body)
        if split is not None:
            return split, self.selector.choose(view.name, split, metadata, key_id)
        return None, view.base(_opt_str(body, "version"), _opt_str(body, "label"))

    def _split(self, view: PromptView, body: dict[str, Any]) -> Split | None:
        test, test_version = _opt_str(body, "test"), body.get("test_version")
        if test is not None and test in view.splits:
            for field in ("version", "label", "test_version", "split", "sticky_key"):
                if body.get(field) is not None:
                    raise bad_request(f"'{field}' does not go with the stored test {test!r}", param=field)
            return view.splits[test]
        if test_version is None:
            if test is not None:
                raise not_found(f"prompt {view.name!r} has no test {test!r}", code="prompt_test_not_found",
                                param="test")
            for field in ("split", "sticky_key"):
                if body.get(field) is not None:
                    raise bad_request(f"'{field}' needs 'test_version' or a stored 'test'", param=field)
            return None
        check_version(test_version, "test_version")
        view.version(test_version, "test_version")
        base = view.base(_opt_str(body, "version"), _opt_str(body, "label"))
        split = inline_split(base, test_version, body.get("split"), body.get("sticky_key"))
        return Split(test, split.versions, split.bounds, split.sticky_key) if test is not None else split

    async def _run(self, view: PromptView, chosen: str, body: dict[str, Any], variables: dict[str, Any],
                   fact: dict[str, Any], headers: dict[str, str], rec: Any, dry_run: bool) -> Reply | StreamReply:
        compiled = view.versions[chosen]
        messages = compiled.template.render(variables, bool(body.get("allow_extra")))
        chat = {**compiled.request, "messages": messages}
        for key in PASS_THROUGH:
            if body.get(key) is not None:
                chat[key] = body[key]
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise bad_request("'stream' must be a boolean", param="stream", code="invalid_type")
        prompt = orjson.dumps(fact)
        if dry_run:
            return Reply(b'{"object":"prompt.render","prompt":' + prompt + b',"messages":' + orjson.dumps(messages)
                         + b',"request":' + orjson.dumps(chat) + b"}", headers)
        if stream:
            chat["stream"] = True
            opened = await self.gateway.chat_stream(chat, rec)
            return StreamReply({**opened.headers, **headers}, _tagged(opened.chunks, prompt))
        reply = await self.gateway.chat(chat, rec)
        answer = reply.body
        if answer.endswith(b"}"):
            answer = answer[:-1] + b',"prompt":' + prompt + b"}"
        return Reply(answer, {**reply.headers, **headers}, reply.status)

    async def close(self) -> None:
        await self.store.close()


_SECOND_ARG = {"get_version": "version", "delete_version": "version", "set_label": "label",
               "delete_label": "label", "test_stats": "test", "delete_test": "test"}


def _audit_details(result: dict[str, Any]) -> dict[str, Any]:
    """What an audit event says about a write: the names it changed, never the prompt's text."""
    return {k: result[k] for k in ("version", "label", "test", "labels", "created", "previous", "versions",
                                   "sticky_key") if k in result}


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{key}' must be a string", param=key, code="invalid_type")
    return value


def _json(result: Any, status: int = 200) -> Reply:
    return Reply(orjson.dumps(result), {}, status)


async def _tagged(chunks: AsyncIterator[bytes], prompt: bytes) -> AsyncIterator[bytes]:
    """The stream with `"prompt": {...}` in its first event (the cache stored it untagged)."""
    try:
        first = True
        async for chunk in chunks:
            if first and chunk.startswith(b"data: {"):
                chunk = b'data: {"prompt":' + prompt + b"," + chunk[len(b"data: {"):]
                first = False
            yield chunk
    finally:
        await aclose(chunks)
