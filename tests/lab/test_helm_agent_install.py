"""`helm install` of the agent chart into ONE real lab spoke (real kube-apiserver, RBAC on):
every object is accepted and comes back from the apiserver, the ServiceAccount gets exactly
the permissions the chart says (asked of the apiserver's authorizer), an upgrade keeps the
agent's credential, and `helm uninstall` removes everything but the kept Secret.

The agent's pod need not run (the lab's nodes are kwok's); tests/agent/test_agent_lab_as_chart_sa.py
runs the agent itself as this chart's ServiceAccount.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.hubtest import Kubectl
from tests.packaging import helmrun
from tests.packaging.helmrun import AGENT_CHART as CHART
from tests.packaging.helmrun import Helm, sets

pytestmark = pytest.mark.lab

# One lab spoke, kubectl and helm against it (module-scoped fixtures).
spoke, kubectl, helm, crds = helmrun.spoke, helmrun.kubectl, helmrun.helm_on_spoke, helmrun.crds

NS = "fleetplane-system"
RELEASE = "fp-agent"
SA = f"system:serviceaccount:{NS}:fleetplane-agent"
TEAM = "team-a"
VALUES = {
    "clusterName": "spoke-1",
    "joinToken": "fpj-first-token",
    "hub.url": "https://hub.internal:8443",
    "rbac.namespaces[0]": TEAM,
}
NAMESPACED = [
    ("serviceaccount", "fleetplane-agent", NS),
    ("secret", "fleetplane-agent", NS),
    ("configmap", "fleetplane-agent", NS),
    ("role.rbac.authorization.k8s.io", "fleetplane-agent-state", NS),
    ("rolebinding.rbac.authorization.k8s.io", "fleetplane-agent-state", NS),
    ("deployment.apps", "fleetplane-agent", NS),
    # rbac.namespaces: the only place the agent may write workloads.
    ("role.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}-workloads", TEAM),
    ("rolebinding.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}-workloads", TEAM),
]
CLUSTER_SCOPED = [
    ("clusterrole.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}"),
    ("clusterrolebinding.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}"),
]


@pytest.fixture(scope="module")
def installed(helm: Helm, kubectl: Kubectl) -> Iterator[None]:
    kubectl("create", "namespace", TEAM)  # rbac.namespaces must exist: they hold the agent's Roles
    helm("install", RELEASE, str(CHART), "--namespace", NS, "--create-namespace", *sets(VALUES))
    yield
    helm("uninstall", RELEASE, "--namespace", NS, check=False)


def secret_data(kubectl: Kubectl) -> dict[str, str]:
    return helmrun.secret_data(kubectl, "fleetplane-agent", NS)


def can_i(kubectl: Kubectl, verb: str, resource: str, namespace: str = "", name: str = "") -> bool:
    """May the agent's ServiceAccount do this? (The apiserver's authorizer answers.)"""
    return helmrun.can_i(kubectl, SA, verb, resource, namespace, name)


def test_helm_install_is_accepted_and_every_object_comes_back_from_the_apiserver(
    installed: None, helm: Helm, kubectl: Kubectl
) -> None:
    status = json.loads(helm("status", RELEASE, "--namespace", NS, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for kind, name, namespace in NAMESPACED:
        obj = kubectl.json("get", kind, name, "-n", namespace)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, (kind, name)
    for kind, name in CLUSTER_SCOPED:
        assert kubectl.json("get", kind, name)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert secret_data(kubectl) == {"clusterName": "spoke-1", "joinToken": "fpj-first-token"}
    deployment = kubectl.json("get", "deployment", "fleetplane-agent", "-n", NS)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--hub=https://hub.internal:8443" in container["args"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "fleetplane-agent", "key": "clusterName"}


def test_the_service_account_gets_what_the_agent_needs_and_nothing_more(installed: None, kubectl: Kubectl) -> None:
    # What the agent does (rbac.scope=namespaces, the default): watch nodes, pods and its
    # workloads everywhere; apply and delete the allowed kinds in rbac.namespaces only; read
    # and patch its own Secret.
    for verb, what, *where in [
        ("watch", "nodes"),
        ("list", "pods"),
        ("watch", "jobs.batch"),
        ("list", "configmaps", TEAM),
        ("list", "services", TEAM),
        ("create", "jobs.batch", TEAM),
        ("patch", "jobs.batch", TEAM),
        ("delete", "deployments.apps", TEAM),
        ("create", "pods", TEAM),
        ("patch", "pytorchjobs.kubeflow.org", TEAM),
    ]:
        assert can_i(kubectl, verb, what, *where), f"{verb} {what} {where}"
    assert can_i(kubectl, "get", "secrets", NS, "fleetplane-agent")
    assert can_i(kubectl, "patch", "secrets", NS, "fleetplane-agent")
    # What a hub credential must never become on a member cluster.
    for verb, what, *where in [
        ("get", "secrets", NS, "other"),
        ("list", "secrets"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("create", "roles.rbac.authorization.k8s.io", TEAM),
        ("delete", "namespaces"),
        ("create", "namespaces"),
        ("patch", "nodes"),
        ("create", "daemonsets.apps", TEAM),
        # Workloads outside rbac.namespaces, the agent's own namespace included.
        ("create", "jobs.batch"),
        ("create", "jobs.batch", "default"),
        ("create", "pods", "kube-system"),
        ("create", "deployments.apps", NS),
        ("delete", "pods", "team-b"),
        # Listing what it does not watch: only in rbac.namespaces (clean-up after a restart).
        ("list", "configmaps"),
        ("list", "configmaps", "kube-system"),
        ("list", "services", "kube-system"),
        ("list", "pytorchjobs.kubeflow.org"),
    ]:
        assert not can_i(kubectl, verb, what, *where), f"{verb} {what} {where} must be refused"


def test_an_upgrade_keeps_the_credential_the_agent_stored(installed: None, helm: Helm, kubectl: Kubectl) -> None:
    # The agent swaps the join token for its credential in the same Secret (spoke_agent.agent).
    patch = {"stringData": {"token": "fpc-agent-credential", "joinToken": ""}}
    kubectl("patch", "secret", "fleetplane-agent", "-n", NS, "--type=merge", "-p", json.dumps(patch))
    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NS,
        *sets({**VALUES, "joinToken": "fpj-second-token"}),
        "--set",
        "config.capacity.heartbeatSeconds=30",
    )
    assert secret_data(kubectl) == {"clusterName": "spoke-1", "joinToken": "", "token": "fpc-agent-credential"}
    config = kubectl.json("get", "configmap", "fleetplane-agent", "-n", NS)["data"]["agent.yaml"]
    assert "heartbeatSeconds: 30" in config, "the upgrade did apply the new values"


def test_metrics_and_the_pod_monitor_are_accepted_by_the_prometheus_operator_crd(
    installed: None, crds: None, helm: Helm, kubectl: Kubectl
) -> None:
    # The Prometheus Operator's own PodMonitor CRD (helmrun.OPERATOR_CRDS) validates the object.
    helm(
        "upgrade", RELEASE, str(CHART), "--namespace", NS, *sets(VALUES),
        "--set", "metrics.enabled=true,metrics.podMonitor.enabled=true",
    )  # fmt: skip
    rendered = {d["kind"]: d for d in helmrun.documents(helm("get", "manifest", RELEASE, "--namespace", NS).stdout)}
    served = kubectl.json("get", "podmonitor.monitoring.coreos.com", "fleetplane-agent", "-n", NS)
    assert helmrun.contained(rendered["PodMonitor"]["spec"], served["spec"]), f"the apiserver kept {served['spec']}"
    deployment = kubectl.json("get", "deployment", "fleetplane-agent", "-n", NS)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port=9464" in container["args"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert served["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_helm_uninstall_removes_everything_but_the_kept_credential(
    installed: None, helm: Helm, kubectl: Kubectl
) -> None:
    helm("uninstall", RELEASE, "--namespace", NS, "--wait")
    for kind, name, namespace in NAMESPACED:
        found = kubectl.run("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name").stdout.strip()
        assert bool(found) == (kind == "secret"), f"{kind}/{name} after uninstall: {found or 'gone'}"
    for kind, name in CLUSTER_SCOPED:
        assert not kubectl.run("get", kind, name, "--ignore-not-found", "-o", "name").stdout.strip(), (kind, name)
    assert not can_i(kubectl, "watch", "nodes"), "the ServiceAccount's permissions went with the release"
    # A reinstall finds the kept Secret and leaves it alone: no join token needed again.
    helm(
        "install", RELEASE, str(CHART), "--namespace", NS, *sets({"clusterName": "spoke-1", "rbac.namespaces[0]": TEAM})
    )
    assert secret_data(kubectl)["token"] == "fpc-agent-credential"
