"""The agent's Helm chart with the real `helm` (built by `make helm`): it lints clean, renders
the objects the agent needs with the values given, renders an agent config the agent itself
accepts, grants the same RBAC as the tested plain manifests, and helm refuses bad values with
a message naming the value. No cluster here; tests/lab/test_helm_agent_install.py installs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from spoke_agent.settings import AgentConfig
from tests.packaging import helmrun
from tests.packaging.helmrun import AGENT_CHART as CHART
from tests.packaging.helmrun import ROOT, Objects, helm, lints_clean, sets

PLAIN_RBAC = ROOT / "deploy" / "agent" / "rbac.yaml"
NS = "fleetplane-system"
TEAM = "team-a"
VALUES = {
    "clusterName": "spoke-1",
    "joinToken": "fpj-test-token",
    "hub.url": "https://hub.internal:8443",
    "rbac.namespaces[0]": TEAM,
}
CLUSTER_WIDE = {k: v for k, v in VALUES.items() if not k.startswith("rbac.")}
CLUSTER_SCOPE = ("--set", "rbac.scope=cluster")
WORKLOADS_ROLE = f"fleetplane-agent-{NS}-workloads"
CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"


def render(tmp_path: Path, values: dict[str, str] | None = None, *extra: str, namespace: str = NS) -> Objects:
    return helmrun.render(CHART, "fp", namespace, values or VALUES, *extra, home=tmp_path)


def refused(tmp_path: Path, values: dict[str, str], *extra: str) -> str:
    return helmrun.refused(CHART, "fp", NS, values, *extra, home=tmp_path)


def agent_config(objects: Objects) -> dict[str, Any]:
    return yaml.safe_load(objects["ConfigMap", "fleetplane-agent"]["data"]["agent.yaml"])


def test_the_chart_lints_clean_in_strict_mode_as_shipped_and_with_install_values(tmp_path: Path) -> None:
    lints_clean(CHART, home=tmp_path)
    lints_clean(CHART, "--namespace", NS, *sets(VALUES), home=tmp_path)


def test_template_renders_every_object_the_agent_needs_with_the_values_given(tmp_path: Path) -> None:
    objects = render(tmp_path)
    assert set(objects) == {
        ("ServiceAccount", "fleetplane-agent"),
        ("Secret", "fleetplane-agent"),
        ("ConfigMap", "fleetplane-agent"),
        ("ClusterRole", f"fleetplane-agent-{NS}"),
        ("ClusterRoleBinding", f"fleetplane-agent-{NS}"),
        ("Role", "fleetplane-agent-state"),
        ("RoleBinding", "fleetplane-agent-state"),
        ("Deployment", "fleetplane-agent"),
        ("Role", WORKLOADS_ROLE),
        ("RoleBinding", WORKLOADS_ROLE),
    }
    assert all(
        o["metadata"].get("namespace", NS) == NS for o in objects.values() if "workloads" not in o["metadata"]["name"]
    )
    assert objects["RoleBinding", WORKLOADS_ROLE]["metadata"]["namespace"] == TEAM
    secret = objects["Secret", "fleetplane-agent"]
    assert secret["stringData"] == {"clusterName": "spoke-1", "joinToken": "fpj-test-token"}
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "uninstall keeps the credential"

    deployment = objects["Deployment", "fleetplane-agent"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/fleetplane/agent:0.1.0"
    assert container["args"] == [
        "--hub=https://hub.internal:8443",
        "--config=/etc/fleetplane/agent.yaml",
        f"--state-secret={NS}/fleetplane-agent",
    ]
    assert pod["serviceAccountName"] == "fleetplane-agent"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    binding = objects["ClusterRoleBinding", f"fleetplane-agent-{NS}"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fleetplane-agent", "namespace": NS}]
    assert binding["roleRef"]["name"] == f"fleetplane-agent-{NS}"


def test_the_rendered_agent_config_is_accepted_by_the_agent_and_protects_the_release_namespace(
    tmp_path: Path,
) -> None:
    objects = render(tmp_path, VALUES, "--set", "config.capacity.heartbeatSeconds=7", namespace="agents")
    (tmp_path / "agent.yaml").write_text(objects["ConfigMap", "fleetplane-agent"]["data"]["agent.yaml"])
    config = AgentConfig.load(tmp_path / "agent.yaml")
    assert config.capacity.heartbeat_seconds == 7
    assert config.state.secret == "agents/fleetplane-agent"
    assert "agents" in config.delivery.denied_namespaces and not config.delivery.namespace_allowed("agents")
    assert config.delivery.namespace_allowed(TEAM)
    # rbac.scope=namespaces (the default): the agent is told the same namespaces its Roles are
    # in, and does not create namespaces (it could do nothing in a new one).
    assert config.delivery.allowed_namespaces == [TEAM] and config.delivery.create_namespaces is False
    assert not config.delivery.namespace_allowed("team-b")


def test_a_hub_ca_is_mounted_and_passed_to_the_agent(tmp_path: Path) -> None:
    objects = render(tmp_path, VALUES, "--set-string", f"hub.caPEM={CA}")
    assert objects["ConfigMap", "fleetplane-agent"]["data"]["hub-ca.pem"].strip() == CA
    [container] = objects["Deployment", "fleetplane-agent"]["spec"]["template"]["spec"]["containers"]
    assert "--hub-ca=/etc/fleetplane/hub-ca.pem" in container["args"]


def test_a_config_change_rolls_the_deployment(tmp_path: Path) -> None:
    def checksum(objects: Objects) -> str:
        return objects["Deployment", "fleetplane-agent"]["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]

    before = checksum(render(tmp_path))
    assert checksum(render(tmp_path)) == before
    assert checksum(render(tmp_path, VALUES, "--set", "config.delivery.workers=8")) != before


def rule_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (g, r, v, tuple(rule.get("resourceNames", [])))
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_the_chart_grants_exactly_the_rbac_of_the_tested_plain_manifests(tmp_path: Path) -> None:
    # deploy/agent/rbac.yaml is the one tests/agent/test_deploy.py checks against allowedKinds
    # and tests/agent/test_agent_lab.py runs the agent under; the chart must not drift from it.
    # With rbac.scope=cluster.
    plain = {d["kind"]: d for d in yaml.safe_load_all(PLAIN_RBAC.read_text()) if d}
    objects = render(tmp_path, CLUSTER_WIDE, *CLUSTER_SCOPE)
    assert ("Role", WORKLOADS_ROLE) not in objects
    assert rule_set(objects["ClusterRole", f"fleetplane-agent-{NS}"]["rules"]) == rule_set(
        plain["ClusterRole"]["rules"]
    )
    assert rule_set(objects["Role", "fleetplane-agent-state"]["rules"]) == rule_set(plain["Role"]["rules"])


def test_rbac_follows_the_delivery_settings_it_serves(tmp_path: Path) -> None:
    objects = render(
        tmp_path, CLUSTER_WIDE, *CLUSTER_SCOPE, "--set", "config.delivery.createNamespaces=false,rbac.aiOperators=false"
    )
    granted = rule_set(objects["ClusterRole", f"fleetplane-agent-{NS}"]["rules"])
    groups = {g for g, *_ in granted}
    assert not {"kubeflow.org", "ray.io", "jobset.x-k8s.io"} & groups
    assert not any(r == "namespaces" for _, r, *_ in granted)
    assert agent_config(objects)["delivery"]["createNamespaces"] is False


WRITES = {"create", "patch", "update", "delete", "deletecollection", "bind", "escalate", "impersonate"}


def test_namespaced_scope_writes_only_by_roles_in_the_listed_namespaces(tmp_path: Path) -> None:
    out = helm(
        "template", "fp", CHART, "--namespace", NS, *sets({**VALUES, "rbac.namespaces[1]": "team-b"}), home=tmp_path
    )
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    cluster_wide = rule_set(cluster_role["rules"])
    assert not {v for _, _, v, _ in cluster_wide} & WRITES, "cluster-wide the agent only reads"
    assert ("", "nodes", "watch", ()) in cluster_wide and ("batch", "jobs", "watch", ()) in cluster_wide
    assert not any(r in ("secrets", "namespaces") for _, r, *_ in cluster_wide)
    roles = {
        d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role" and "workloads" in d["metadata"]["name"]
    }
    bindings = {
        d["metadata"]["namespace"]: d
        for d in docs
        if d["kind"] == "RoleBinding" and "workloads" in d["metadata"]["name"]
    }
    assert set(roles) == set(bindings) == {TEAM, "team-b"}
    for ns, binding in bindings.items():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fleetplane-agent", "namespace": NS}], ns
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": WORKLOADS_ROLE,
        }
    granted = rule_set(roles[TEAM]["rules"])
    assert ("batch", "jobs", "create", ()) in granted and ("", "pods", "delete", ()) in granted
    assert not {v for _, _, v, _ in granted} - {"get", "list", "create", "patch", "delete"}
    # Listing for leftover clean-up is per namespace too: no cluster-wide list of kinds the
    # agent does not watch (ConfigMaps, Services, the AI operator kinds).
    assert ("", "configmaps", "list", ()) in granted and ("kubeflow.org", "pytorchjobs", "list", ()) in granted
    listed = {(g, r) for g, r, v, _ in cluster_wide if v == "list"}
    assert listed == {(g, r) for g, r, v, _ in cluster_wide if v == "watch"}, "cluster-wide: only what it watches"
    # Together with the cluster-wide reads, the same (group, resource) pairs as cluster scope.
    cluster_scope = render(tmp_path, CLUSTER_WIDE, *CLUSTER_SCOPE, "--set", "config.delivery.createNamespaces=false")
    assert {(g, r) for g, r, *_ in granted | cluster_wide} == {
        (g, r) for g, r, *_ in rule_set(cluster_scope["ClusterRole", f"fleetplane-agent-{NS}"]["rules"])
    }


def test_two_releases_delivering_into_one_namespace_get_roles_of_their_own(tmp_path: Path) -> None:
    # Two agents (say, of two hubs) in their own namespaces, both allowed to write in team-a.
    first = render(tmp_path, VALUES, namespace="agents-a")
    second = render(tmp_path, VALUES, namespace="agents-b")
    roles = [{k for k, o in objects.items() if o["metadata"].get("namespace") == TEAM} for objects in (first, second)]
    assert roles[0] and roles[1] and not roles[0] & roles[1], "no object in team-a is claimed by both releases"
    for objects, ns in ((first, "agents-a"), (second, "agents-b")):
        [binding] = [
            o for (kind, _), o in objects.items() if kind == "RoleBinding" and o["metadata"]["namespace"] == TEAM
        ]
        assert binding["subjects"][0]["namespace"] == ns
        assert ("Role", binding["roleRef"]["name"]) in objects


def test_metrics_serve_on_the_pod_ip_and_a_pod_monitor_scrapes_them(tmp_path: Path) -> None:
    off = render(tmp_path)
    [container] = off["Deployment", "fleetplane-agent"]["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if a.startswith("--metrics")] and "ports" not in container
    assert ("PodMonitor", "fleetplane-agent") not in off
    objects = render(
        tmp_path, VALUES, "--set", "metrics.enabled=true,metrics.port=9500,metrics.podMonitor.enabled=true",
        "--set-string", "metrics.podMonitor.labels.release=prom",
    )  # fmt: skip
    pod = objects["Deployment", "fleetplane-agent"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    # The agent's own options (spoke_agent.cli): the port, and an address Prometheus can reach.
    assert "--metrics-port=9500" in container["args"] and "--metrics-address=$(POD_IP)" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9500, "protocol": "TCP"}]
    monitor = objects["PodMonitor", "fleetplane-agent"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NS]}
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_pull_secrets_pod_annotations_and_scheduling_reach_the_agent_pod(tmp_path: Path) -> None:
    values = tmp_path / "scheduling.yaml"
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}}
    ]}}  # fmt: skip
    given = {
        "imagePullSecrets": [{"name": "ghcr-pull"}],
        "podAnnotations": {"backup.example.com/skip": "true"},
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": affinity,
    }
    values.write_text(yaml.safe_dump(given))
    template = render(tmp_path, VALUES, "-f", str(values))["Deployment", "fleetplane-agent"]["spec"]["template"]
    for key in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity"):
        assert template["spec"][key] == given[key], key
    assert template["metadata"]["annotations"]["backup.example.com/skip"] == "true"
    assert "checksum/config" in template["metadata"]["annotations"]


def test_string_values_that_look_like_numbers_or_booleans_render_as_strings(tmp_path: Path) -> None:
    # Schema-valid, yet YAML would read 123 or true unquoted: the apiserver wants strings.
    objects = helmrun.render(
        CHART, "123", "0x10", {**VALUES, "rbac.namespaces[0]": "123", "clusterName": "true"},
        "--set", "metrics.enabled=true,metrics.podMonitor.enabled=true", home=tmp_path,
    )  # fmt: skip
    assert {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in objects.values()} == {"123"}
    assert {o["metadata"].get("namespace", "0x10") for o in objects.values()} == {"0x10", "123"}
    role = objects["Role", "fleetplane-agent-0x10-workloads"]
    binding = objects["RoleBinding", "fleetplane-agent-0x10-workloads"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "123"
    assert {s["namespace"] for s in binding["subjects"]} == {"0x10"}
    assert objects["Secret", "fleetplane-agent"]["stringData"]["clusterName"] == "true"
    assert objects["PodMonitor", "fleetplane-agent"]["spec"]["namespaceSelector"] == {"matchNames": ["0x10"]}
    (tmp_path / "agent.yaml").write_text(objects["ConfigMap", "fleetplane-agent"]["data"]["agent.yaml"])
    assert AgentConfig.load(tmp_path / "agent.yaml").delivery.allowed_namespaces == ["123"]


def test_every_rbac_rule_of_the_chart_is_commented_with_why() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[i - 1].strip().startswith("#"), f"rule at line {i + 1} has no comment"


@pytest.mark.parametrize(
    "values,extra,words",
    [
        ({**VALUES, "clusterName": "Spoke_1"}, (), ["/clusterName", "'Spoke_1' does not match pattern"]),
        ({**VALUES, "hub.url": "hub.internal:8443"}, (), ["/hub/url", "does not match pattern"]),
        ({**VALUES, "hub.caPEM": "not a pem"}, (), ["/hub/caPEM"]),
        (VALUES, ("--set", "config.capacity.heartbeatSecond=5"), ["/config/capacity", "'heartbeatSecond' not allowed"]),
        (VALUES, ("--set", "config.delivery.workers=0"), ["/config/delivery/workers", "minimum: got 0, want 1"]),
        (VALUES, ("--set", "config.delivery.createNamespaces=yes please"), ["/config/delivery/createNamespaces"]),
        (VALUES, ("--set", "config.state.secret=other/x"), ["/config", "'state' not allowed"]),
        (VALUES, ("--set", "image.pullPolicy=Sometimes"), ["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"]),
        (VALUES, ("--set", "replicas=2"), ["additional properties 'replicas' not allowed"]),
        (VALUES, ("--set", "metrics.port=0"), ["/metrics/port", "minimum"]),
        (
            VALUES,
            ("--set", "metrics.podMonitor.enabled=true"),
            ["metrics.podMonitor.enabled needs metrics.enabled=true"],
        ),
        (VALUES, ("--set", "metrics.podMonitor.interval=often"), ["/metrics/podMonitor/interval"]),
        (VALUES, ("--set", "imagePullSecrets[0].secret=x"), ["/imagePullSecrets/0"]),
        (VALUES, ("--set", "podAnnotations.a=1"), ["/podAnnotations/a", "want string"]),
        (CLUSTER_WIDE, (), ["rbac.namespaces is empty", "or set rbac.scope=cluster"]),
        ({**VALUES, "rbac.namespaces[0]": "kube-system"}, (), ["rbac.namespaces: kube-system is denied", "kube-*"]),
        ({**VALUES, "rbac.namespaces[0]": NS}, (), [f"rbac.namespaces: {NS} is the agent's own namespace"]),
        ({**VALUES, "rbac.namespaces[0]": "Team_A"}, (), ["/rbac/namespaces/0", "does not match pattern"]),
        (VALUES, ("--set", "rbac.scope=everywhere"), ["/rbac/scope", "'namespaces', 'cluster'"]),
        (VALUES, CLUSTER_SCOPE, ["rbac.namespaces is only read with rbac.scope=namespaces"]),
        (
            VALUES,
            ("--set", "config.delivery.allowedNamespaces={team-b}"),
            ["config.delivery.allowedNamespaces is set by the chart from rbac.namespaces"],
        ),
        (
            VALUES,
            ("--set", "config.delivery.createNamespaces=true"),
            ["config.delivery.createNamespaces=true needs rbac.scope=cluster"],
        ),
        (
            {k: v for k, v in VALUES.items() if k != "clusterName"},
            (),
            ["clusterName is required: this cluster's name on the hub"],
        ),
        (
            {k: v for k, v in VALUES.items() if k != "joinToken"},
            (),
            [f"joinToken is required on the first install: no Secret {NS}/fleetplane-agent exists yet", "spoke-1"],
        ),
    ],
)
def test_bad_values_are_refused_by_helm_naming_the_value(
    tmp_path: Path, values: dict[str, str], extra: tuple[str, ...], words: list[str]
) -> None:
    message = refused(tmp_path, values, *extra)
    for w in words:
        assert w in message, message


def json_types(node: dict[str, Any]) -> dict[str, Any]:
    """A property tree reduced to its types and bounds, to compare two schemas' shapes."""
    out: dict[str, Any] = {"type": node.get("type")}
    for bound in ("minimum", "exclusiveMinimum"):
        if bound in node:
            out[bound] = node[bound]
    if "properties" in node:
        out["properties"] = {k: json_types(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = json_types(node["items"])
    return out


def test_the_config_schema_has_every_agent_setting_with_its_type() -> None:
    # The chart's values.schema.json is written by hand for readable messages; this keeps it
    # in step with the agent's settings: same groups, same keys, same types, and at least the
    # agent's bounds. The chart sets `state` itself, so it is not a value.
    chart = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]["properties"]
    agent = AgentConfig.model_json_schema(by_alias=True)
    defs = agent["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        node = dict(node)
        if "properties" in node:
            node["properties"] = {k: resolve(v) for k, v in node["properties"].items()}
        if "items" in node:
            node["items"] = resolve(node["items"])
        return node

    groups = {k: resolve(v) for k, v in agent["properties"].items() if k != "state"}
    assert set(chart) == set(groups)
    for name, group in groups.items():
        assert set(chart[name]["properties"]) == set(group["properties"]), name
        assert chart[name]["additionalProperties"] is False, name
        for key, prop in group["properties"].items():
            mine, theirs = json_types(chart[name]["properties"][key]), json_types(prop)
            assert mine["type"] == theirs["type"], f"config.{name}.{key}"
            assert mine.get("items", {}).get("type") == theirs.get("items", {}).get("type"), f"config.{name}.{key}"
            for bound in ("minimum", "exclusiveMinimum"):
                if bound in theirs:
                    assert mine.get(bound) == theirs[bound], f"config.{name}.{key} {bound}"
