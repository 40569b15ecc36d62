"""The Serve config and the KubeRay RayService are valid and deploy the same builder with the flags it needs."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from serve_app.builder import ingress_options, load_args, stage_options
from serve_app.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_serve_config_is_valid_and_points_at_the_builder() -> None:
    schema = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "configs/serve.yaml").read_text()))
    app = schema.applications[0]
    assert app.import_path == "serve_app.builder:build_app"
    assert schema.logging_config.enable_access_log is False
    cfg = load_args(app.args)  # the args resolve to a valid gateway config (relative to the repo root)
    assert cfg.default_provider == "sandbox"


def test_rayservice_embeds_a_valid_serve_config_and_the_serve_flags() -> None:
    docs = list(yaml.safe_load_all((ROOT / "ray-cluster.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "RayService")
    serve_cfg = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert serve_cfg.applications[0].import_path == "serve_app.builder:build_app"
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == "2.60.0"
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in head["env"]}
    assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1" and env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" in env
    worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in worker["env"]} >= {"RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_AUTH_MODE"}
    # the gateway config in the ConfigMap is valid once its secrets are in the environment
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    raw = yaml.safe_load(cm["data"]["gateway.yaml"].replace("${GATEWAY_API_KEY}", "k").replace("${OPENAI_API_KEY}", "k"))
    assert parse_config(raw, "ray-cluster.yaml").providers["openai-primary"].type == "openai"


def test_builder_options_fit_a_small_node() -> None:
    cfg = parse_config({"providers": {"p": {"type": "mock"}}, "serve": {"ingress_replicas": 3}})
    ingress = ingress_options(cfg)
    assert ingress["ray_actor_options"] == {"num_cpus": 0}
    assert ingress["max_ongoing_requests"] >= 100
    assert ingress["logging_config"]["enable_access_log"] is False
    assert ingress["num_replicas"] == 3 and "autoscaling_config" not in ingress  # a number is exact
    stage = stage_options(cfg, "Router")
    assert stage["ray_actor_options"] == {"num_cpus": 0} and stage["name"] == "Router"
