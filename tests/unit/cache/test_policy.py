import pytest

from deployments.cache.config import CacheConfig
from deployments.cache.policy import decide, parse_setting, SettingError
from serve_app.errors import GatewayError

OFF = CacheConfig()
ON = CacheConfig(enabled=True, mode="semantic", ttl=100)


def test_nothing_in_play_returns_none():
    assert decide(OFF, None, None, None) is None


def test_enabled_section_applies_to_every_request():
    d = decide(ON, None, None, None)
    assert (d.mode, d.ttl, d.refresh, d.bypass) == ("semantic", 100, False, False)


def test_body_opt_in_and_out():
    assert decide(OFF, True, None, None).bypass is False
    assert decide(ON, False, None, None).bypass is True
    d = decide(OFF, {"mode": "semantic", "ttl": 5, "force_refresh": True}, None, None)
    assert (d.mode, d.ttl, d.refresh) == ("semantic", 5, True)


@pytest.mark.parametrize("value,mode,refresh,bypass", [
    ("true", "exact", False, False), ("false", "exact", False, True), ("exact", "exact", False, False),
    ("semantic", "semantic", False, False), ("refresh", "exact", True, False), ("SEMANTIC", "semantic", False, False),
])
def test_header_values(value, mode, refresh, bypass):
    d = decide(OFF, None, value, None)
    assert (d.mode, d.refresh, d.bypass) == (mode, refresh, bypass)


def test_body_overrides_header_overrides_strategy():
    assert decide(OFF, None, "false", {"mode": "semantic"}).bypass is True
    assert decide(OFF, True, "false", None).bypass is False
    assert decide(ON, None, None, False).bypass is True


def test_portkey_shape_from_strategy():
    d = decide(OFF, None, None, {"mode": "simple", "max_age": 60})
    assert (d.mode, d.ttl, d.bypass) == ("exact", 60, False)
    assert decide(OFF, None, None, {"mode": "semantic"}).mode == "semantic"


@pytest.mark.parametrize("bad", [{"mode": "fuzzy"}, {"ttl": -1}, {"ttl": True}, {"force_refresh": "yes"},
                                 {"unknown": 1}, 3, [True]])
def test_bad_body_values_are_400(bad):
    with pytest.raises(GatewayError) as info:
        decide(OFF, bad, None, None)
    assert info.value.status == 400 and info.value.param == "cache"


def test_bad_header_is_400():
    with pytest.raises(GatewayError) as info:
        decide(OFF, None, "maybe", None)
    assert info.value.param == "x-raygate-cache"


def test_parse_setting_rejects_garbage():
    with pytest.raises(SettingError):
        parse_setting({"mode": 3})
