"""Per-request cache controls: which mode, which TTL, refresh or opt-out.

Layers, later ones override earlier ones field by field:
1. the `cache:` section (`enabled`, `mode`, `ttl`);
2. a strategy or target `cache` setting (the Plan's `cache`): `true|false`, `"exact"|"semantic"`,
   `{"mode", "ttl", "force_refresh"}` or Portkey's `{"mode": "simple"|"semantic", "max_age": s}`;
3. the request header `x-raygate-cache: true|false|exact|semantic|refresh`;
4. the request body field `cache`: `true|false` or `{"mode", "ttl", "force_refresh"}` (Portkey's
   shape accepted too).
A request's `ttl` is also the oldest entry it accepts (Portkey's `max_age`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serve_app.errors import bad_request

MODES = {"exact": "exact", "simple": "exact", "semantic": "semantic"}
HEADER_VALUES = ("true", "false", "exact", "semantic", "refresh")


@dataclass(slots=True)
class Setting:
    on: bool | None = None
    mode: str | None = None
    ttl: float | None = None
    refresh: bool = False


@dataclass(slots=True)
class Decision:
    mode: str  # "exact" | "semantic"
    ttl: float
    refresh: bool = False
    bypass: bool = False  # opted out: nothing looked up or stored, header BYPASS


class SettingError(ValueError):
    pass


def parse_setting(value: Any) -> Setting:
    """One layer's value -> Setting; raises SettingError with a readable reason."""
    if value is None:
        return Setting()
    if isinstance(value, bool):
        return Setting(on=value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "on", "1"):
            return Setting(on=True)
        if v in ("false", "off", "0", "none", "bypass"):
            return Setting(on=False)
        if v == "refresh":
            return Setting(on=True, refresh=True)
        if v in MODES:
            return Setting(on=True, mode=MODES[v])
        raise SettingError(f"unknown cache setting {value!r} (expected true, false, exact, semantic or refresh)")
    if isinstance(value, dict):
        unknown = set(value) - {"mode", "ttl", "max_age", "force_refresh", "enabled"}
        if unknown:
            raise SettingError(f"unknown cache option {sorted(unknown)[0]!r}")
        s = Setting(on=True)
        if "enabled" in value:
            if not isinstance(value["enabled"], bool):
                raise SettingError("cache.enabled must be a boolean")
            s.on = value["enabled"]
        mode = value.get("mode")
        if mode is not None:
            if not isinstance(mode, str) or mode.lower() not in MODES:
                raise SettingError("cache.mode must be 'exact' or 'semantic' (or Portkey's 'simple')")
            s.mode = MODES[mode.lower()]
        for name in ("ttl", "max_age"):
            ttl = value.get(name)
            if ttl is not None:
                if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
                    raise SettingError(f"cache.{name} must be a positive number of seconds")
                s.ttl = float(ttl)
        refresh = value.get("force_refresh", False)
        if not isinstance(refresh, bool):
            raise SettingError("cache.force_refresh must be a boolean")
        s.refresh = refresh
        return s
    raise SettingError("cache must be a boolean or an object")


def _apply(acc: Setting, layer: Setting) -> None:
    if layer.on is not None:
        acc.on = layer.on
    if layer.mode is not None:
        acc.mode = layer.mode
    if layer.ttl is not None:
        acc.ttl = layer.ttl
    acc.refresh = acc.refresh or layer.refresh


def decide(config: Any, body_value: Any, header_value: str | None, plan_value: Any) -> Decision | None:
    """The request's cache decision; None when caching is not in play at all (no header is added)."""
    acc = Setting(on=config.enabled or None, mode=config.mode, ttl=config.ttl)
    touched = config.enabled
    if plan_value is not None:
        try:
            _apply(acc, parse_setting(plan_value))
        except SettingError:  # validated at start-up; a bad value here just means "no setting"
            pass
        touched = True
    if header_value is not None:
        try:
            layer = parse_setting(header_value)
        except SettingError as exc:
            raise bad_request(f"x-raygate-cache header: {exc}", param="x-raygate-cache",
                              code="invalid_cache_setting") from None
        _apply(acc, layer)
        touched = True
    if body_value is not None:
        try:
            layer = parse_setting(body_value)
        except SettingError as exc:
            raise bad_request(str(exc), param="cache", code="invalid_cache_setting") from None
        _apply(acc, layer)
        touched = True
    if not touched:
        return None
    mode = acc.mode or config.mode
    ttl = acc.ttl or config.ttl
    if not acc.on:
        return Decision(mode, ttl, bypass=True)
    return Decision(mode, ttl, refresh=acc.refresh)
