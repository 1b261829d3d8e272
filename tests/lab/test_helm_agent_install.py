"""`helm install` of the agent chart into ONE real lab spoke (real kube-apiserver, RBAC on):
every object is accepted and comes back from the apiserver, the ServiceAccount gets exactly
the permissions the chart says (asked of the apiserver's authorizer), an upgrade keeps the
agent's credential, and `helm uninstall` removes everything but the kept Secret.

The agent's pod need not run (the lab's nodes are kwok's); tests/agent/test_agent_lab_as_chart_sa.py
runs the agent itself as this chart's ServiceAccount.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetplane_lab import Lab, default_spokes
from fleetplane_lab.fixtures import SpokeHandle, external_kubeconfigs, lab_backend, require_helm, require_lab_binaries
from tests.hubtest import Kubectl
from tests.packaging.test_helm_agent_chart import CHART, sets
from tests.packaging.test_helm_agent_chart import helm as run_helm

Helm = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.lab

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
    ("role.rbac.authorization.k8s.io", "fleetplane-agent-workloads", TEAM),
    ("rolebinding.rbac.authorization.k8s.io", "fleetplane-agent-workloads", TEAM),
]
CLUSTER_SCOPED = [
    ("clusterrole.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}"),
    ("clusterrolebinding.rbac.authorization.k8s.io", f"fleetplane-agent-{NS}"),
]


@pytest.fixture(scope="module")
def spoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpokeHandle]:
    """One spoke, started as tests/lab/conftest.py starts them (or the first external cluster)."""
    external = external_kubeconfigs()
    if external is not None:
        yield external[0]
        return
    require_lab_binaries()
    require_helm()
    lab = Lab(tmp_path_factory.mktemp("lab"), spokes=default_spokes(1), with_hub=False, backend=lab_backend())
    with lab:
        yield next(SpokeHandle(n, s.kubeconfig, list(s.nodes)) for n, s in lab.spokes.items())


@pytest.fixture(scope="module")
def kubectl(spoke: SpokeHandle, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(Path(spoke.kubeconfig), tmp_path_factory.mktemp("kubecache"))


@pytest.fixture(scope="module")
def helm(spoke: SpokeHandle, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm against the spoke, with its own config, cache and data directories."""
    home = tmp_path_factory.mktemp("helm")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_helm(*args, "--kubeconfig", spoke.kubeconfig, home=home, check=check)

    return run


@pytest.fixture(scope="module")
def installed(helm: Helm, kubectl: Kubectl) -> Iterator[None]:
    kubectl("create", "namespace", TEAM)  # rbac.namespaces must exist: they hold the agent's Roles
    helm("install", RELEASE, str(CHART), "--namespace", NS, "--create-namespace", *sets(VALUES))
    yield
    helm("uninstall", RELEASE, "--namespace", NS, check=False)


def secret_data(kubectl: Kubectl) -> dict[str, str]:
    data = kubectl.json("get", "secret", "fleetplane-agent", "-n", NS)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def can_i(
    kubectl: Kubectl, verb: str, resource: str, namespace: str = "", name: str = "", *, subject: str = SA
) -> bool:
    """Ask the apiserver's authorizer (a SubjectAccessReview) whether a ServiceAccount (the
    agent's unless `subject` says) may do `verb` on `resource` ("plural.group", or "plural" for
    the core group, "plural/subresource" for a subresource); an empty namespace means every
    namespace. Works for kinds whose CRDs are not installed."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    sa_namespace = subject.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": subject,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": plural,
                "subresource": subresource,
                "namespace": namespace,
                "name": name,
            },
        },
    }
    answer = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)))
    return bool(answer["status"].get("allowed"))


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
        ("list", "configmaps"),
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
