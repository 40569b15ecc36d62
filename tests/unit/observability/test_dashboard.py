"""deploy/grafana/raygate.json: importable shape, a datasource variable, and every PromQL expression parses
(promql-parser, the Prometheus grammar) and names only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from serve_app.metrics import FAMILIES

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy/grafana/raygate.json"
# Grafana's variables, replaced the way Grafana would before the query reaches Prometheus
GRAFANA_DURATIONS = {"__rate_interval", "__interval", "__range"}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def exported_series() -> set[str]:
    names = set()
    for name, (kind, _, _) in FAMILIES.items():
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]


def as_prometheus_sees_it(expr: str) -> str:
    return _VARIABLE.sub(lambda m: "5m" if m.group(1) in GRAFANA_DURATIONS else ".*", expr)


def metric_names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(as_prometheus_sees_it(expr)), visit)
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_every_expression_parses_and_names_exported_metrics(dashboard: dict[str, Any]) -> None:
    exprs = expressions(dashboard)
    assert len(exprs) >= 14
    exported = exported_series()
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)  # raises ValueError naming the syntax error
        assert names, expr
        assert names <= exported, f"{expr}: {names - exported} not exported"
        used |= names
    for wanted in (
        "raygate_requests_total",
        "raygate_request_duration_seconds_bucket",
        "raygate_spend_total",
        "raygate_time_to_first_token_seconds_bucket",
        "raygate_tokens_total",
        "raygate_cache_hits_total",
        "raygate_fallbacks_total",
        "raygate_refusals_total",
        "raygate_request_errors_total",
    ):
        assert wanted in used, wanted


def test_the_check_catches_a_bad_expression() -> None:
    with pytest.raises(ValueError):
        metric_names("sum(rate(raygate_requests_total[5m])")
    assert metric_names("rate(raygate_nope_total[$__rate_interval])") == {"raygate_nope_total"}
    assert "raygate_nope_total" not in exported_series()


def test_a_datasource_variable_feeds_every_panel(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    provider_query = variables["provider"]["query"]["query"]
    assert re.fullmatch(r"label_values\((\w+), provider\)", provider_query).group(1) in exported_series()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["schemaVersion"] >= 30
