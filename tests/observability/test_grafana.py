"""The Grafana dashboards of deploy/grafana/ are built on exported metrics only: every metric a
query references is declared by a live hub's /metrics or by the agent's metrics endpoint (a
renamed metric breaks this, not the dashboard silently). test_prometheus runs every query
against a real Prometheus."""

from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest

from spoke_agent.agent import Agent, AgentOptions
from spoke_agent.metrics import registry_for
from tests.hubtest import HubProcess
from tests.observability.dashboard import dashboard_files, dashboard_queries, exposed_names, metric_names


def test_metric_names_are_read_from_promql_as_grafana_writes_it() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, verb) (rate(fleetplane_apiserver_request_duration_seconds_bucket"
        '{job=~"$job", verb!="watch"}[$__rate_interval]))) > 1e3 and on (instance) up offset 5m'
    )
    assert metric_names(expr) == {"fleetplane_apiserver_request_duration_seconds", "up"}
    assert metric_names("label_values(fleetplane_agent_ready, cluster)") == {"fleetplane_agent_ready"}


@pytest.fixture(scope="module")
def exported(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What the hub (a live one, via a metrics token) and an agent export."""
    token = hub.cli("token", "create-metrics", "grafana-test").splitlines()[-1]
    with hub.client(token) as c:
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    names = exposed_names(r.text)
    profile = tmp_path_factory.mktemp("agent") / "profile.yaml"
    profile.write_text("pools: [{name: a, model: A100, nodes: 1, gpusPerNode: 8}]\n")
    # An agent object (SIMULATED backend), not started: its registry is what /metrics serves.
    agent = Agent(AgentOptions(hub="https://hub.invalid", backend="simulated", profile=str(profile)))
    registry, _ = registry_for(agent)
    return names | exposed_names(generate_latest(registry).decode())


def test_there_is_a_dashboard_and_every_panel_has_a_query() -> None:
    files = dashboard_files()
    assert [f.name for f in files] == ["fleetplane.json"]
    doc = json.loads(files[0].read_text())
    assert doc["uid"] == "fleetplane" and doc["title"] == "Fleetplane"
    for panel in doc["panels"]:
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
            assert panel["datasource"]["uid"] == "${datasource}", f"panel {panel['title']!r} pins a datasource"


def test_every_dashboard_query_references_only_exported_metrics(exported: set[str]) -> None:
    queries = dashboard_queries()
    referenced = {name for _, expr in queries for name in metric_names(expr)}
    assert {"fleetplane_placements_total", "fleetplane_placement_latency_seconds"} <= referenced
    unknown = [(title, name) for title, expr in queries for name in sorted(metric_names(expr)) if name not in exported]
    assert not unknown, f"dashboard queries reference metrics nobody exports: {unknown}"
