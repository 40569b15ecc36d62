"""Config loading: env expansion, every error path names file, key and reason; secrets masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serve_app.config import ConfigError, expand_env, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SEED = """
gateway:
  host: 127.0.0.1
  port: 8000
  api_keys:
    - id: team-a
      key: ${GATEWAY_API_KEY}
  admin_keys:
    - id: ops
      key: ${GATEWAY_ADMIN_KEY}
  max_body_bytes: 4194304
providers:
  openai-primary:
    type: openai
    api_key: ${OPENAI_API_KEY}
    organization: ${OPENAI_ORG_ID:-}
  local-vllm:
    type: openai
    base_url: http://127.0.0.1:8001/v1
    api_key: ${VLLM_KEY:-none}
  sandbox:
    type: mock
    latency_ms: 20
models:
  gpt-4o: openai-primary
  fast: {provider: local-vllm, model: meta-llama/Llama-3.1-8B-Instruct}
default_provider: sandbox
"""


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", "gw-key-123")
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", "admin-key-456")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
    monkeypatch.delenv("VLLM_KEY", raising=False)


def test_seed_config_loads(tmp_path: Path, seed_env: None) -> None:
    cfg = load_config(write(tmp_path, SEED))
    assert cfg.gateway.api_keys[0].key.get_secret_value() == "gw-key-123"
    assert cfg.providers["openai-primary"].secret() == "sk-very-secret"
    assert cfg.providers["openai-primary"].organization == ""
    assert cfg.providers["local-vllm"].secret() == "none"
    assert cfg.providers["sandbox"].latency_ms == 20
    assert cfg.models["fast"].model == "meta-llama/Llama-3.1-8B-Instruct"
    assert cfg.providers["sandbox"].timeout == 600 and cfg.providers["sandbox"].connect_timeout == 10


def test_repr_masks_secrets(tmp_path: Path, seed_env: None) -> None:
    cfg = load_config(write(tmp_path, SEED))
    text = repr(cfg) + str(cfg) + repr(cfg.providers) + str(cfg.model_dump())
    for secret in ("gw-key-123", "admin-key-456", "sk-very-secret"):
        assert secret not in text


def test_missing_env_var_names_file_key_and_var(tmp_path: Path, seed_env: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    path = write(tmp_path, SEED, "prod.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: providers.openai-primary.api_key: environment variable OPENAI_API_KEY is not set"


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ("gateway: {port: abc}", "gateway.port", "valid integer"),
        ("gateway: {bogus: 1}", "gateway.bogus", "unknown key"),
        ("providers: {x: {type: nope}}", "providers.x.type", "unknown provider type 'nope'"),
        ("providers: {x: {latency_ms: 1}}", "providers.x.type", "is required"),
        ("providers: {x: {type: mock, latncy_ms: 1}}", "providers.x.latncy_ms", "unknown key"),
        ("providers: {x: {type: mock, timeout: -1}}", "providers.x.timeout", "greater than 0"),
        ("providers: {x: {type: mock}}\ndefault_provider: y", "default_provider", "unknown provider 'y'"),
        ("providers: {x: {type: mock}}\nmodels: {m: y}", "models.m", "neither a provider nor a strategy"),
        ("providers: {x: {type: mock}}\nmodels: {m: {provider: y}}", "models.m.provider", "unknown provider"),
        ("gateway: {api_keys: [{id: a, key: k}, {id: a, key: k2}]}", "gateway.api_keys[1].id", "duplicate id"),
        ("gateway: {api_keys: [{id: a}]}", "gateway.api_keys[0].key", "Field required"),
        ("- just\n- a list", "", "top level must be a mapping"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, path: str, reason: str) -> None:
    file = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(file)
    assert err.value.source == str(file)
    assert err.value.path == path
    assert reason in err.value.reason


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "gateway:\n  port: [1,\n"))
    assert "invalid YAML" in str(err.value) and "line" in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("/nonexistent/gw.yaml")
    assert str(err.value).startswith("/nonexistent/gw.yaml: cannot read file")


def test_env_default_and_nested_paths() -> None:
    env = {"A": "1"}
    assert expand_env({"x": ["${A}", "${B:-two}", "p-${A}-q"]}, "f", env=env) == {"x": ["1", "two", "p-1-q"]}
    with pytest.raises(ConfigError) as err:
        expand_env({"x": [{"y": "${C}"}]}, "f", env=env)
    assert err.value.path == "x[0].y"


def test_numbers_from_env_are_coerced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert parse_config({"gateway": {"port": "${PORT}"}}).gateway.port == 9123


def test_shipped_configs_validate() -> None:
    cfg = load_config(ROOT / "configs" / "dev.yaml")
    assert cfg.gateway.api_keys == [] and cfg.default_provider == "sandbox"
    assert cfg.providers["sandbox"].type == "mock"


def test_check_config_cli(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "serve_app.cli", "check-config", str(ROOT / "configs/dev.yaml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = write(tmp_path, "providers: {x: {type: nope}}")
    res = subprocess.run([sys.executable, "-m", "serve_app.cli", "check-config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert f"{bad}: providers.x.type: unknown provider type 'nope'" in res.stderr


def test_strategy_cache_setting_is_checked_with_its_path(tmp_path: Path) -> None:
    text = """
providers: {p: {type: mock}}
strategies:
  s:
    type: fallback
    targets:
      - provider: p
        cache: {mode: bogus}
"""
    file = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(file)
    assert err.value.path == "strategies.s.targets[0].cache"
    assert "mode" in err.value.reason


def test_every_problem_is_reported_at_once_with_value_and_masked_secret(tmp_path: Path) -> None:
    file = write(tmp_path, """
gateway: {port: abc, hots: x, api_keys: [{id: a, key: "${RAYGATE_TEST_UNSET_VAR}"}]}
providers:
  openai: {type: openai, api_key: 12345, timeout: -1}
  bad: {type: nope}
placement: {router: sideways}
""")
    with pytest.raises(ConfigError) as err:
        load_config(file)
    found = dict(err.value.errors)
    assert set(found) == {"gateway.port", "gateway.hots", "gateway.api_keys[0].key",
                          "providers.openai.api_key", "providers.openai.timeout", "providers.bad.type", "placement.router"}
    assert (err.value.path, err.value.reason) == err.value.errors[0]  # the first stays in .path/.reason
    assert "(got 'abc')" in found["gateway.port"]
    assert "allowed: host, port" in found["gateway.hots"]
    assert found["gateway.api_keys[0].key"] == "environment variable RAYGATE_TEST_UNSET_VAR is not set"
    assert "12345" not in str(err.value) and "(got '****')" in found["providers.openai.api_key"]
    assert "'in_process' or 'deployment'" in found["placement.router"]
    assert "(got 'sideways')" in found["placement.router"]
    assert str(err.value).splitlines()[1].startswith(f"{file}: ")  # one `file: path: reason` line each


def test_a_provider_that_failed_is_not_reported_again_by_references(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "providers: {x: {type: nope}}\ndefault_provider: x\nmodels: {m: x}"))
    assert [path for path, _ in err.value.errors] == ["providers.x.type"]


def test_reference_errors_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "providers: {x: {type: mock}}\ndefault_provider: y\n"
                                    "models: {m: z, n: {provider: w}}"))
    assert [path for path, _ in err.value.errors] == ["default_provider", "models.m", "models.n.provider"]


def test_check_config_prints_every_problem(tmp_path: Path) -> None:
    bad = write(tmp_path, "gateway: {port: 0, bogus: 1}")
    res = subprocess.run([sys.executable, "-m", "serve_app.cli", "check-config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert f"error: {bad}: gateway.port: Input should be greater than or equal to 1 (got 0)" in res.stderr
    assert f"error: {bad}: gateway.bogus: unknown key" in res.stderr
    assert "2 problems" in res.stderr
