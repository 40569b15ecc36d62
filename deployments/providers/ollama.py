"""`ollama`: a local Ollama server (default http://127.0.0.1:11434), native API or its /v1 endpoint.

`api: native` (default) speaks Ollama's own API:
- `POST /api/chat`: messages (system/developer -> system; text parts joined; images as base64
  strings in `images`, from data URLs; assistant `tool_calls` with `function.arguments` as an
  object; tool results as role `tool` with `tool_name`), `tools`, `format` ("json" for
  `response_format: json_object`, the JSON schema for `json_schema`), `options` (temperature,
  top_p, seed, stop, num_predict from max_tokens / max_completion_tokens, penalties, and Ollama's
  own top_k / min_p / repeat_penalty / num_ctx when sent), `keep_alive`, `think`.
  The answer is one JSON object; the stream is NDJSON, one object per line, ending with
  `done: true` carrying `done_reason`, `prompt_eval_count` and `eval_count` (the usage).
- `POST /api/embed`: `input` (a string or a list of strings) -> `embeddings`.
`tool_choice` is best effort (Ollama has none): `none` sends no tools, a named function sends only
that tool. `n` > 1 and image URLs that are not data URLs are a clear 400.

`api: openai` uses Ollama's OpenAI-compatible endpoint (`{base_url}/v1`) through the shared
OpenAI-compatible adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import Field

from serve_app import errors as E
from serve_app.errors import UpstreamError

from .base import Adapter, CallContext, ProviderConfig, UpstreamRequest, json_body, require_json
from .chunks import ChunkStream, FramedStream, bad_event, completion
from .embeddings import embedding_list, remember_encoding, wants_base64
from .openai_compat import (
    OpenAICompatAdapter,
    arguments_text,
    provider_error,
    tool_call_id,
)
from .spec import ProviderSpec

DEFAULT_BASE_URL = "http://127.0.0.1:11434"

# OpenAI request field -> Ollama option.
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
}
# Ollama's own sampling options, accepted at the top level of the request too.
_NATIVE_OPTIONS = ("top_k", "min_p", "typical_p", "repeat_penalty", "repeat_last_n", "num_ctx", "num_keep",
                   "mirostat", "mirostat_eta", "mirostat_tau", "tfs_z")


class OllamaConfig(ProviderConfig):
    type: str = "ollama"
    base_url: str | None = DEFAULT_BASE_URL
    api: Literal["native", "openai"] = "native"
    keep_alive: str | int | None = Field(None, description="How long Ollama keeps the model loaded.")
    options: dict[str, Any] = Field(default_factory=dict, description="Default model options (num_ctx, ...).")


class OllamaOpenAIAdapter(OpenAICompatAdapter):
    """Ollama's /v1 OpenAI-compatible endpoint."""

    default_base_url = DEFAULT_BASE_URL + "/v1"
    stream_usage_option = True
    embeddings_base64 = False

    def __init__(self, config: ProviderConfig) -> None:
        root = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(config.model_copy(update={"base_url": root + "/v1"}))
        self.config = config


class OllamaNativeAdapter(Adapter):
    """Ollama's native /api/chat and /api/embed."""

    supports_embeddings = True

    def models_request(self) -> UpstreamRequest | None:
        return UpstreamRequest("GET", self.tags_url, self.headers)

    def models_response(self, payload: bytes) -> list[str]:
        data = require_json(payload, self.config.name)
        return [m["name"] for m in (data.get("models") or []) if isinstance(m, dict) and m.get("name")]

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        root = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.chat_url = root + "/api/chat"
        self.tags_url = root + "/api/tags"
        self.embed_url = root + "/api/embed"
        self.headers = {"content-type": "application/json"}
        if config.secret():  # Ollama behind an authenticating proxy, or ollama.com
            self.headers["authorization"] = f"Bearer {config.secret()}"
        self.keep_alive = getattr(config, "keep_alive", None)
        self.options = dict(getattr(config, "options", {}) or {})

    # -- chat request -----------------------------------------------------------------------------
    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        n = body.get("n")
        if isinstance(n, int) and n > 1:
            raise E.bad_request(f"provider {ctx.provider!r} (type ollama) supports n up to 1", param="n",
                                code="unsupported_parameter")
        out: dict[str, Any] = {"model": ctx.model, "messages": self._messages(body.get("messages") or []),
                               "stream": stream}
        tools = body.get("tools")
        choice = body.get("tool_choice")
        if isinstance(tools, list) and tools and choice != "none":
            tools = [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function"]
            if isinstance(choice, dict):
                name = (choice.get("function") or {}).get("name")
                tools = [t for t in tools if (t.get("function") or {}).get("name") == name] or tools
            out["tools"] = tools
        fmt = _format(body.get("response_format"))
        if fmt is not None:
            out["format"] = fmt
        options = dict(self.options)
        for key, option in _OPTIONS.items():
            if body.get(key) is not None:
                options[option] = body[key]
        for key in _NATIVE_OPTIONS:
            if body.get(key) is not None:
                options[key] = body[key]
        if isinstance(body.get("options"), dict):
            options.update(body["options"])
        stop = body.get("stop")
        if isinstance(stop, str):
            options["stop"] = [stop]
        elif isinstance(stop, list) and stop:
            options["stop"] = stop
        if options:
            out["options"] = options
        keep_alive = body.get("keep_alive", self.keep_alive)
        if keep_alive is not None:
            out["keep_alive"] = keep_alive
        think = body.get("think")
        effort = body.get("reasoning_effort")
        if think is None and isinstance(effort, str):
            think = effort if effort in ("low", "medium", "high") else False
        if think is not None:
            out["think"] = think
        return UpstreamRequest("POST", self.chat_url, self.headers, json_body(out))

    def _messages(self, messages: list[Any]) -> list[dict[str, Any]]:
        names: dict[str, str] = {}  # tool_call_id -> function name, for the tool results
        out = []
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            role = msg.get("role")
            text, images = _content(msg.get("content"))
            if role in ("system", "developer"):
                out.append({"role": "system", "content": text})
            elif role == "user":
                item: dict[str, Any] = {"role": "user", "content": text}
                if images:
                    item["images"] = images
                out.append(item)
            elif role == "assistant":
                item = {"role": "assistant", "content": text}
                calls = []
                for tc in msg.get("tool_calls") or ():
                    fn = (tc.get("function") or {}) if isinstance(tc, dict) else {}
                    name = fn.get("name") or ""
                    if isinstance(tc, dict) and tc.get("id"):
                        names[tc["id"]] = name
                    calls.append({"function": {"name": name, "arguments": _arguments(fn.get("arguments"))}})
                if calls:
                    item["tool_calls"] = calls
                if msg.get("reasoning_content"):
                    item["thinking"] = msg["reasoning_content"]
                out.append(item)
            elif role == "tool":
                item = {"role": "tool", "content": text}
                name = names.get(msg.get("tool_call_id") or "") or msg.get("name")
                if name:
                    item["tool_name"] = name
                out.append(item)
            elif role == "function":  # legacy function results
                out.append({"role": "tool", "content": text, "tool_name": msg.get("name") or ""})
        return out

    # -- chat response ----------------------------------------------------------------------------
    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        data = require_json(payload, ctx.provider)
        if not isinstance(data, dict) or "error" in data:
            raise self.error(502, {}, payload, ctx)
        msg = data.get("message") if isinstance(data.get("message"), dict) else {}
        calls = _tool_calls(msg.get("tool_calls"), ctx, 0)
        content = msg.get("content") if isinstance(msg.get("content"), str) else ""
        message: dict[str, Any] = {"role": "assistant", "content": content if content or not calls else None,
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        if isinstance(msg.get("thinking"), str) and msg["thinking"]:
            message["reasoning_content"] = msg["thinking"]
        return completion(ctx, message, _finish(data.get("done_reason"), bool(calls)), model=data.get("model"),
                          usage=_usage(data))

    def chat_stream(self, ctx: CallContext) -> OllamaStream:
        return OllamaStream(self, ctx)

    # -- embeddings -------------------------------------------------------------------------------
    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise E.bad_request(f"provider {ctx.provider!r} (type ollama) takes `input` as a string or a "
                                "list of strings (token arrays are not supported)", param="input")
        out: dict[str, Any] = {"model": ctx.model, "input": inputs}
        if body.get("dimensions") is not None:
            out["dimensions"] = body["dimensions"]
        if self.keep_alive is not None:
            out["keep_alive"] = self.keep_alive
        if self.options:
            out["options"] = self.options
        remember_encoding(ctx, body)
        return UpstreamRequest("POST", self.embed_url, self.headers, json_body(out))

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        data = require_json(payload, ctx.provider)
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(vectors, list):
            raise UpstreamError(502, f"provider {ctx.provider!r} returned embeddings without `embeddings`",
                                provider=ctx.provider, code="upstream_bad_response", error_class=E.SERVER)
        tokens = data.get("prompt_eval_count") if isinstance(data.get("prompt_eval_count"), int) else 0
        return embedding_list(vectors, data.get("model") or ctx.model, tokens, wants_base64(ctx))

    # -- errors -----------------------------------------------------------------------------------
    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        err = provider_error(status, headers, payload, ctx.provider)
        if status == 404 and err.code is None and "not found" in err.message:
            err.code = "model_not_found"
        return err


def _content(content: Any) -> tuple[str, list[str]]:
    """(text, base64 images) of an OpenAI message content."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "refusal":  # an assistant turn's refusal part, sent back as text
            texts.append(part.get("refusal") or "")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
                raise E.bad_request("ollama's native API takes images as base64 data URLs "
                                    "(data:image/...;base64,...); it does not fetch image URLs",
                                    param="messages", code="unsupported_image_url")
            images.append(url.split(";base64,", 1)[1])
        else:
            raise E.bad_request(f"ollama's native API does not take content parts of type {kind!r}",
                                param="messages", code="unsupported_content")
    return "\n".join(texts), images


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments.strip():
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else "json"
    return None


def _tool_calls(raw: Any, ctx: CallContext, start: int) -> list[dict[str, Any]]:
    calls = []
    for i, tc in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        call_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else tool_call_id(ctx, 0, start + i)
        calls.append({"id": call_id, "type": "function",
                      "function": {"name": str(fn.get("name") or ""),
                                   "arguments": arguments_text(fn.get("arguments", {}))}})
    return calls


def _finish(done_reason: Any, saw_tools: bool) -> str:
    if saw_tools:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _usage(data: dict[str, Any]) -> dict[str, int]:
    prompt = data.get("prompt_eval_count") if isinstance(data.get("prompt_eval_count"), int) else 0
    completion = data.get("eval_count") if isinstance(data.get("eval_count"), int) else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class OllamaStream(FramedStream, ChunkStream):
    """Ollama NDJSON (one JSON object per line) -> OpenAI SSE; an error line ends it with an error event."""

    __slots__ = ("adapter", "errored", "_pending", "_tools", "_seen")

    cut_detail = "no final object with done: true"

    def __init__(self, adapter: OllamaNativeAdapter, ctx: CallContext) -> None:
        super().__init__(ctx)
        self.adapter = adapter
        self.errored = False
        self._pending = b""
        self._tools = 0
        self._seen = False

    def _split(self, data: bytes) -> list[bytes]:
        lines = data.split(b"\n")
        self._pending = lines.pop()
        return lines

    def _rest(self, pending: bytes) -> bytes:
        return pending if pending.strip() else b""

    def _frame(self, line: bytes, out: list[bytes]) -> None:
        line = line.strip()
        if not line:
            return
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or obj.get("error"):  # an error line, or one that is no NDJSON object
            self.errored = True
            err = (provider_error(500, {}, line, self.provider) if obj
                   else bad_event(self.provider, "a line that is not a JSON object"))
            out.append(E.sse_error_event(err))
            return
        if not self._seen:
            self._seen = True
            self.model = obj.get("model") or self.model
        msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        first = 0 not in self._opened
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        content = msg.get("content")
        if isinstance(content, str) and (content or first):
            delta["content"] = content
        thinking = msg.get("thinking")
        if isinstance(thinking, str) and thinking:
            delta["reasoning_content"] = thinking
        calls = _tool_calls(msg.get("tool_calls"), self.ctx, self._tools)
        if calls:
            for i, call in enumerate(calls):
                call["index"] = self._tools + i
            self._tools += len(calls)
            delta["tool_calls"] = calls
        if delta:
            out.append(self._chunk(delta))
            self._opened.add(0)
        if obj.get("done"):
            self._end(out, _finish(obj.get("done_reason"), self._tools > 0), _usage(obj))


class OllamaAdapter(Adapter):
    """Picks the native or the OpenAI-compatible adapter by `api` and forwards to it."""

    supports_embeddings = True

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        api = getattr(config, "api", "native")
        self.impl: Adapter = OllamaOpenAIAdapter(config) if api == "openai" else OllamaNativeAdapter(config)

    def chat_request(self, body: dict[str, Any], ctx: CallContext, stream: bool) -> UpstreamRequest:
        return self.impl.chat_request(body, ctx, stream)

    def models_request(self) -> UpstreamRequest | None:
        return self.impl.models_request()

    def models_response(self, payload: bytes) -> list[str]:
        return self.impl.models_response(payload)

    def chat_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return self.impl.chat_response(status, payload, ctx)

    def chat_stream(self, ctx: CallContext) -> Any:
        return self.impl.chat_stream(ctx)

    def embeddings_request(self, body: dict[str, Any], ctx: CallContext) -> UpstreamRequest:
        return self.impl.embeddings_request(body, ctx)

    def embeddings_response(self, status: int, payload: bytes, ctx: CallContext) -> bytes:
        return self.impl.embeddings_response(status, payload, ctx)

    def error(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> UpstreamError:
        return self.impl.error(status, headers, payload, ctx)


SPEC = ProviderSpec(config_model=OllamaConfig, adapter=OllamaAdapter)
