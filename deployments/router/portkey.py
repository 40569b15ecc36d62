"""Portkey's config JSON -> the `strategies:` shape, so it compiles to the same route tree.

    {"strategy": {"mode": "fallback", "on_status_codes": [429, 503]},
     "retry": {"attempts": 2}, "request_timeout": 10000,
     "targets": [{"provider": "azure-gpt4"},
                 {"provider": "anthropic-primary", "override_params": {"model": "claude-sonnet-4"}}]}

Mapping (Portkey -> raygate):
  strategy.mode single|loadbalance|fallback|conditional -> type single|load_balance|fallback|conditional
  targets -> targets;  provider / virtual_key -> provider (a provider configured in raygate)
  weight, name, override_params, cache -> the same
  retry.attempts -> retry;  retry.on_status_codes / strategy.on_status_codes -> on_status_codes
  retry.use_retry_after_header: false -> backoff.retry_after_cap: 0 (raygate honours it by default)
  request_timeout (ms) -> timeout (s)
  strategy.conditions [{query, then}] + strategy.default -> rules (query -> condition, then -> the
      target with that `name`);  query operators $eq $ne $gt $gte $lt $lte $in $nin $regex $and $or
      over metadata.<key> and params.<key> (the request body)
  strategy.sticky {enabled, hash_fields} -> sticky_key
Refused with a clear error: credentials and endpoints (api_key, custom_host, ...: a request may
only use providers configured in raygate), hooks/guardrails, strategy.cb_config (breaker state is
shared by all requests, so its thresholds belong to the gateway's config), and any other key.
"""

from __future__ import annotations

import re
from typing import Any

from .conditions import quote

MODES = {"single": "single", "loadbalance": "load_balance", "load_balance": "load_balance",
         "fallback": "fallback", "conditional": "conditional"}
_CREDENTIAL_KEYS = ("api_key", "custom_host", "forward_headers", "aws_", "vertex_", "azure_", "openai_",
                    "anthropic_", "workers_ai_", "huggingface_", "stability_", "fireworks_", "snowflake_",
                    "oracle_", "amz")
_HOOK_KEYS = ("input_guardrails", "output_guardrails", "before_request_hooks", "after_request_hooks",
              "default_input_guardrails", "default_output_guardrails")
_OPS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<=", "$in": "in",
        "$nin": "not in", "$regex": "matches"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class PortkeyError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def is_portkey(cfg: dict[str, Any]) -> bool:
    """Portkey shape (vs raygate's own `type`/`strategy: <name>` shape)."""
    return "type" not in cfg and not isinstance(cfg.get("strategy"), str)


def from_portkey(cfg: Any, path: str = "config") -> dict[str, Any]:
    """One Portkey config node -> a raygate target dict (validated later by TargetConfig)."""
    if not isinstance(cfg, dict):
        raise PortkeyError(path, "must be an object")
    out: dict[str, Any] = {}
    strategy = cfg.get("strategy")
    mode = None
    if strategy is not None:
        if not isinstance(strategy, dict):
            raise PortkeyError(f"{path}.strategy", "must be an object with `mode`")
        mode = MODES.get(strategy.get("mode"))  # type: ignore[arg-type]
        if mode is None:
            raise PortkeyError(f"{path}.strategy.mode", f"must be one of single, loadbalance, fallback, "
                                                       f"conditional (got {strategy.get('mode')!r})")
    for key, value in cfg.items():
        where = f"{path}.{key}"
        if key in ("strategy", "targets"):
            continue
        if key in ("provider", "virtual_key"):
            if not isinstance(value, str):
                raise PortkeyError(where, "must be a string (a provider configured in raygate)")
            out["provider"] = value
        elif key in ("weight", "name", "override_params", "cache"):
            out[key] = value
        elif key == "request_timeout":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise PortkeyError(where, "must be a positive number of milliseconds")
            out["timeout"] = value / 1000
        elif key == "retry":
            _retry(value, where, out)
        elif key in _HOOK_KEYS:
            raise PortkeyError(where, "hooks and guardrails are not supported in an inline config")
        elif key.startswith(_CREDENTIAL_KEYS):
            raise PortkeyError(where, "credentials and endpoints are not accepted in an inline config; "
                                      "use a provider configured in raygate")
        else:
            raise PortkeyError(where, "unsupported key")
    targets = cfg.get("targets")
    if mode is None:
        if targets is not None:
            raise PortkeyError(f"{path}.targets", "targets need `strategy.mode`")
        if "provider" not in out:
            raise PortkeyError(path, "needs `provider` (or `strategy` with `targets`)")
        return out
    if "provider" in out:
        raise PortkeyError(f"{path}.provider", "a target has either `provider` or `strategy`, not both")
    if not isinstance(targets, list) or not targets:
        raise PortkeyError(f"{path}.targets", "must be a non-empty array")
    converted = [from_portkey(t, f"{path}.targets[{i}]") for i, t in enumerate(targets)]
    out["type"] = mode
    _strategy(strategy, f"{path}.strategy", out)  # type: ignore[arg-type]
    if mode == "conditional":
        out["rules"] = _rules(strategy, converted, f"{path}.strategy")  # type: ignore[arg-type]
    else:
        out["targets"] = converted
    return out


def _retry(value: Any, where: str, out: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise PortkeyError(where, "must be an object like {\"attempts\": 2}")
    for key, v in value.items():
        if key == "attempts":
            out["retry"] = v
        elif key == "on_status_codes":
            out.setdefault("on_status_codes", v)
        elif key == "use_retry_after_header":
            if v is False:
                out["backoff"] = {"retry_after_cap": 0}
        else:
            raise PortkeyError(f"{where}.{key}", "unsupported key")


def _strategy(strategy: dict[str, Any], where: str, out: dict[str, Any]) -> None:
    for key, v in strategy.items():
        if key in ("mode", "conditions", "default"):
            continue
        if key == "on_status_codes":
            out["on_status_codes"] = v
        elif key == "sticky":
            if not isinstance(v, dict):
                raise PortkeyError(f"{where}.sticky", "must be an object")
            if v.get("enabled", True):
                fields = v.get("hash_fields") or []
                if not isinstance(fields, list) or not fields:
                    raise PortkeyError(f"{where}.sticky.hash_fields", "must be a non-empty array")
                exprs = [field_expr(f, f"{where}.sticky.hash_fields[{i}]") for i, f in enumerate(fields)]
                out["sticky_key"] = exprs[0] if len(exprs) == 1 else "[" + ", ".join(exprs) + "]"
        elif key == "cb_config":
            raise PortkeyError(f"{where}.cb_config", "circuit breakers are set in the gateway's strategies, "
                                                     "not per request")
        else:
            raise PortkeyError(f"{where}.{key}", "unsupported key")


def _rules(strategy: dict[str, Any], targets: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    by_name = {t.get("name"): t for t in targets if t.get("name") is not None}

    def target(name: Any, at: str) -> dict[str, Any]:
        if name not in by_name:
            raise PortkeyError(at, f"no target is named {name!r}")
        return by_name[name]

    conditions = strategy.get("conditions") or []
    if not isinstance(conditions, list):
        raise PortkeyError(f"{where}.conditions", "must be an array")
    rules = []
    for i, cond in enumerate(conditions):
        at = f"{where}.conditions[{i}]"
        if not isinstance(cond, dict) or "query" not in cond or "then" not in cond:
            raise PortkeyError(at, "needs `query` and `then`")
        rules.append({"condition": query_expr(cond["query"], f"{at}.query"),
                      "target": target(cond["then"], f"{at}.then")})
    if strategy.get("default") is not None:
        rules.append({"condition": "default", "target": target(strategy["default"], f"{where}.default")})
    if not rules:
        raise PortkeyError(f"{where}.conditions", "a conditional strategy needs conditions or a default")
    return rules


def field_expr(field: Any, where: str) -> str:
    """`metadata.user_tier` -> metadata.user_tier; `params.messages.0.content` -> request.messages[0].content."""
    if not isinstance(field, str) or not field:
        raise PortkeyError(where, "must be a field name like metadata.<key> or params.<key>")
    root, _, rest = field.partition(".")
    roots = {"metadata": "metadata", "params": "request", "headers": "headers"}
    if root not in roots or not rest:
        raise PortkeyError(where, f"{field!r}: only metadata.<key> and params.<key> can be queried")
    expr = roots[root]
    if root == "metadata":
        parts = [rest]  # metadata keys are flat strings and may contain dots
    else:
        parts = rest.split(".")
    for part in parts:
        if part.isdigit():
            expr += f"[{int(part)}]"
        elif _IDENT.match(part):  # `length` reads as the length, as it does in Portkey (JavaScript)
            expr += "." + part
        else:
            expr += f"[{quote(part)}]"
    return expr


def literal(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, where) for v in value) + "]"
    raise PortkeyError(where, f"unsupported value {value!r}")


def query_expr(query: Any, where: str) -> str:
    """A Portkey query object -> a condition in raygate's expression language."""
    if not isinstance(query, dict) or not query:
        raise PortkeyError(where, "must be a non-empty object")
    parts: list[str] = []
    for key, value in query.items():
        at = f"{where}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise PortkeyError(at, "must be a non-empty array of queries")
            joined = f" {key[1:]} ".join(query_expr(q, f"{at}[{i}]") for i, q in enumerate(value))
            parts.append(f"({joined})" if len(value) > 1 else joined)
        elif key.startswith("$"):
            raise PortkeyError(at, f"unknown operator {key}")
        else:
            path = field_expr(key, at)
            ops = value if isinstance(value, dict) and value and all(k.startswith("$") for k in value) \
                else {"$eq": value}
            for op, operand in ops.items():
                if op not in _OPS:
                    raise PortkeyError(f"{at}.{op}", f"unknown operator {op}")
                if op in ("$in", "$nin") and not isinstance(operand, list):
                    raise PortkeyError(f"{at}.{op}", "must be an array")
                if op == "$regex" and not isinstance(operand, str):
                    raise PortkeyError(f"{at}.{op}", "must be a string")
                parts.append(f"{path} {_OPS[op]} {literal(operand, f'{at}.{op}')}")
    return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"


__all__ = ["PortkeyError", "field_expr", "from_portkey", "is_portkey", "query_expr"]
