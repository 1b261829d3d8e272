"""RBAC proven least-privilege (issue 13): tests/agent/test_agent_lab.py again, with the agent
installed by the Helm chart (deploy/helm/fleetplane-agent, its default rbac.scope=namespaces
with rbac.namespaces=[team-a]) and run out of cluster *as the chart's ServiceAccount*: the
token comes from the real apiserver's TokenRequest, and the command line, config and hub CA
are the ones the chart's Deployment and ConfigMap give the agent. Every delivery, status and
capacity scenario of that suite passes under this RBAC; then the real apiserver is asked
(`kubectl auth can-i --as=...`) about what the ServiceAccount must not be able to do, and a
few of those are attempted with its token and refused.

Run: pytest -m lab tests/agent/test_agent_lab_as_chart_sa.py   (needs `make k8s-binaries helm`)
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from fleetplane_lab.fixtures import require_helm
from tests.packaging.helmrun import AGENT_CHART as CHART
from tests.packaging.helmrun import helm as run_helm
from tests.packaging.helmrun import sets

from . import test_agent_lab as suite
from .lab_fixtures import AgentProcess, Hub, kubectl, kubectl_json, running, service_account_kubeconfig, wait_until

pytestmark = pytest.mark.lab

CLUSTER, NS = suite.CLUSTER, suite.NS
AGENT_NS = "fleetplane-system"
SA = f"system:serviceaccount:{AGENT_NS}:fleetplane-agent"

# The suite's hub and spoke; its tests, collected again here with this module's agent.
hub, spoke = suite.hub, suite.spoke
globals().update({name: test for name, test in vars(suite).items() if name.startswith("test_")})


@pytest.fixture(scope="module")
def chart_install(hub: Hub, spoke: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`helm install` of the agent chart with a real join token; returns what it installed."""
    require_helm()
    admin = spoke.kubeconfig
    kubectl(admin, "create", "namespace", NS)  # rbac.namespaces must exist: they hold the Roles
    token = hub.join_token(CLUSTER)
    home = tmp_path_factory.mktemp("helm")
    # The suite's fast heartbeat and debounce (a values file: `--set` reads 0.5 as a string).
    fast = home / "fast.yaml"
    fast.write_text(yaml.safe_dump({"config": {"capacity": {"heartbeatSeconds": 5, "debounceSeconds": 0.5}}}))
    run_helm(
        "install", "fp-agent", CHART, "--namespace", AGENT_NS, "--create-namespace", "--kubeconfig", admin,
        *sets({"clusterName": CLUSTER, "joinToken": token, "hub.url": hub.url, "rbac.namespaces[0]": NS}),
        "-f", fast, "--set-file", f"hub.caPEM={hub.ca}",
        home=home,
    )  # fmt: skip
    return {
        "join_token": token,
        "deployment": kubectl_json(admin, "-n", AGENT_NS, "get", "deployment", "fleetplane-agent"),
        "files": kubectl_json(admin, "-n", AGENT_NS, "get", "configmap", "fleetplane-agent")["data"],
    }


@pytest.fixture(scope="module")
def agent_kubeconfig(spoke: Any, chart_install: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kubeconfig holding a TokenRequest token of the chart's ServiceAccount, nothing else."""
    out = tmp_path_factory.mktemp("agent") / "agent.kubeconfig"
    return service_account_kubeconfig(spoke.kubeconfig, AGENT_NS, "fleetplane-agent", out)


@pytest.fixture(scope="module")
def agent(
    spoke: Any, chart_install: dict[str, Any], agent_kubeconfig: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    """The agent as the chart's Deployment runs it (its args, its mounted files, the cluster
    name from the chart's Secret), out of cluster with the ServiceAccount's kubeconfig."""
    files = tmp_path_factory.mktemp("etc-fleetplane")
    for name, text in chart_install["files"].items():
        (files / name).write_text(text)
    [container] = chart_install["deployment"]["spec"]["template"]["spec"]["containers"]
    args = [a.replace("/etc/fleetplane/", f"{files}/") for a in container["args"]]
    secret = kubectl_json(spoke.kubeconfig, "-n", AGENT_NS, "get", "secret", "fleetplane-agent")["data"]
    proc = AgentProcess(
        args=[*args, "--kubeconfig", agent_kubeconfig],
        log_path=tmp_path_factory.mktemp("agentlog") / "agent.log",
        extra_env={"FLEETPLANE_CLUSTER_NAME": base64.b64decode(secret["clusterName"]).decode()},
    )
    proc.join_token = chart_install["join_token"]  # type: ignore[attr-defined]
    yield from running(proc)


def can_i(kubeconfig: str, verb: str, what: str, namespace: str = "", subresource: str = "") -> bool:
    """`kubectl auth can-i --as` the chart's ServiceAccount: the real apiserver's authorizer.
    `what` is "plural[.group][/name]"; no namespace means every namespace."""
    flags = [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    if subresource:
        flags.append(f"--subresource={subresource}")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "auth", "can-i", verb, what, *flags, f"--as={SA}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = out.stdout.strip()
    assert answer in ("yes", "no"), out.stdout + out.stderr
    return answer == "yes"


# What the agent does, granted. (The suite above is the proof that it is enough.)
NEEDED = [
    ("watch", "nodes"),
    ("list", "pods"),
    ("watch", "pods"),
    ("watch", "jobs.batch"),
    ("watch", "deployments.apps"),
    ("list", "configmaps", NS),
    ("list", "services", NS),
    ("create", "jobs.batch", NS),
    ("patch", "jobs.batch", NS),
    ("delete", "jobs.batch", NS),
    ("get", "deployments.apps", NS),
    ("create", "pods", NS),
    ("get", "secrets/fleetplane-agent", AGENT_NS),
    ("patch", "secrets/fleetplane-agent", AGENT_NS),
]
# What it must never be able to do, whatever the hub sends or whoever steals its token.
REFUSED = [
    ("create", "clusterrolebindings"),
    ("create", "clusterroles"),
    ("escalate", "clusterroles"),
    ("bind", "clusterroles"),
    ("create", "rolebindings", NS),
    ("create", "roles", NS),
    ("impersonate", "users"),
    ("impersonate", "serviceaccounts", NS),
    ("get", "secrets", "kube-system"),
    ("list", "secrets", NS),
    ("get", "secrets", "default"),
    ("get", "secrets/other", AGENT_NS),
    ("list", "secrets", AGENT_NS),
    ("create", "pods", NS, "exec"),
    ("create", "pods", NS, "attach"),
    ("create", "pods", NS, "portforward"),
    ("get", "pods", NS, "log"),
    ("create", "serviceaccounts", NS, "token"),
    ("create", "serviceaccounts", NS),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("update", "nodes"),
    ("patch", "nodes"),
    ("delete", "nodes"),
    ("patch", "nodes", "", "status"),
    ("create", "pods", NS, "eviction"),
    ("create", "daemonsets.apps", NS),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("create", "certificatesigningrequests.certificates.k8s.io"),
    ("create", "persistentvolumes"),
    ("update", "jobs.batch", NS),  # server-side apply is patch; no update anywhere
    ("deletecollection", "jobs.batch", NS),
    # rbac.namespaces is the only place it writes: not kube-*, not its own, not another team's.
    ("create", "pods", "kube-system"),
    ("create", "jobs.batch", "kube-system"),
    ("create", "deployments.apps", AGENT_NS),
    ("create", "jobs.batch", "default"),
    ("delete", "pods", "team-b"),
    ("patch", "configmaps", "kube-system"),
    # It lists ConfigMaps and Services (leftover clean-up) only where it may write them.
    ("list", "configmaps"),
    ("list", "configmaps", "kube-system"),
    ("list", "services", "default"),
]


def test_the_service_account_has_every_permission_the_agent_uses(spoke: Any, chart_install: dict[str, Any]) -> None:
    missing = [p for p in NEEDED if not can_i(spoke.kubeconfig, *p)]
    assert not missing, f"refused but needed: {missing}"


def test_the_real_apiserver_refuses_the_service_account_everything_else(
    spoke: Any, chart_install: dict[str, Any]
) -> None:
    allowed = [p for p in REFUSED if can_i(spoke.kubeconfig, *p)]
    assert not allowed, f"granted but must be refused: {allowed}"


def test_with_its_own_token_the_service_account_is_refused_by_the_apiserver(spoke: Any, agent_kubeconfig: str) -> None:
    # Not only what the authorizer answers: the requests themselves, with the agent's token.
    attempts = [
        ["create", "clusterrolebinding", "take-over", "--clusterrole=cluster-admin", f"--serviceaccount={AGENT_NS}:fleetplane-agent"],
        ["get", "secrets", "-n", "kube-system"],
        ["create", "job", "sneak", "-n", "default", "--image=x"],
        ["create", "job", "sneak", "-n", "kube-system", "--image=x"],
        ["delete", "namespace", NS, "--wait=false"],
        ["create", "token", "default", "-n", NS],
    ]  # fmt: skip
    for args in attempts:
        out = kubectl(agent_kubeconfig, *args, check=False)
        assert out.returncode != 0 and "forbidden" in out.stderr.lower(), f"kubectl {' '.join(args)}: {out.stderr}"
    assert kubectl(spoke.kubeconfig, "get", "clusterrolebinding", "take-over", check=False).returncode != 0


def test_an_assignment_for_a_namespace_outside_rbac_namespaces_is_rejected(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    # The chart set the agent's allowedNamespaces to rbac.namespaces, so it does not even try.
    job = suite.gpu_job("elsewhere", 1)
    job["metadata"]["namespace"] = "team-b"
    hub.create_assignment(NS, "elsewhere", CLUSTER, "elsewhere", 1, [job])
    a = hub.wait_until_assignment_phase(NS, "elsewhere", "Rejected", timeout=30)
    assert "namespace team-b is not allowed" in a["status"]["message"], json.dumps(a["status"])
    assert kubectl(spoke.kubeconfig, "get", "namespace", "team-b", check=False).returncode != 0
    hub.delete_assignment(NS, "elsewhere")


def test_a_config_map_of_an_assignment_deleted_while_the_agent_was_down_is_removed_after_restart(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    # After a restart the agent finds what it applied by listing each allowed kind by label.
    # The chart lets it list ConfigMaps only in rbac.namespaces (no cluster-wide list), so the
    # agent lists per namespace of its allowedNamespaces; the leftover is still found and removed.
    kc = spoke.kubeconfig
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leftover", "namespace": NS}}
    hub.create_assignment(NS, "leftover", CLUSTER, "leftover", 1, [config_map])

    def on_spoke() -> bool:
        return kubectl(kc, "-n", NS, "get", "configmap", "leftover", check=False).returncode == 0

    wait_until("the ConfigMap is on the spoke", on_spoke, timeout=30)
    agent.kill()
    hub.delete_assignment(NS, "leftover")
    agent.start().wait_until_ready()
    wait_until("the ConfigMap is removed after the restart", lambda: not on_spoke(), timeout=30)
    wait_until("the Assignment is gone from the hub", lambda: hub.assignment(NS, "leftover") is None, timeout=30)
