"""The agent against a real hub and a real lab spoke (kube-apiserver, controller-manager,
scheduler, kwok GPU nodes). The agent runs as its own process with the least-privilege
ServiceAccount from deploy/agent/rbac.yaml, so these tests also prove the RBAC suffices.

Run: pytest -m lab tests/agent/test_agent_lab.py   (needs `make k8s-binaries`)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab_fixtures import (
    ROOT,
    AgentProcess,
    Hub,
    expected_capacity,
    kubectl,
    kubectl_json,
    reported_capacity,
    running,
    service_account_kubeconfig,
    start_hub,
    stop_hub,
    wait_until,
)

pytestmark = pytest.mark.lab

CLUSTER = "spoke-1"
NS = "team-a"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = start_hub()
    try:
        h.create_namespace(NS)
        yield h
    finally:
        stop_hub(h)


@pytest.fixture(scope="module")
def spoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fleetplane_lab import Lab, SpokeSpec
    from fleetplane_lab.fixtures import require_lab_binaries

    require_lab_binaries()
    lab = Lab(
        tmp_path_factory.mktemp("lab"),
        spokes=[SpokeSpec(name=CLUSTER, profiles=["a100-spot", "l4-ondemand"], region="us-east-1")],
        with_hub=False,
    )
    with lab:
        yield lab.spokes[CLUSTER]


@pytest.fixture(scope="module")
def agent_kubeconfig(spoke: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kubeconfig for the fleetplane-agent ServiceAccount bound by deploy/agent/rbac.yaml."""
    admin = spoke.kubeconfig
    kubectl(admin, "create", "namespace", "fleetplane-system")
    kubectl(admin, "apply", "-f", str(ROOT / "deploy/agent/rbac.yaml"))
    out = tmp_path_factory.mktemp("agent") / "agent.kubeconfig"
    return service_account_kubeconfig(admin, "fleetplane-system", "fleetplane-agent", out)


@pytest.fixture(scope="module")
def agent(
    hub: Hub, spoke: Any, agent_kubeconfig: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    token = hub.join_token(CLUSTER)
    config = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    # Fast heartbeat so a missed change would show; 0.5 s debounce keeps reports "within seconds".
    config.write_text("capacity: {heartbeatSeconds: 5, debounceSeconds: 0.5}\n")
    proc = AgentProcess(
        args=[
            "--hub",
            hub.url,
            "--hub-ca",
            str(hub.ca),
            "--join-token",
            token,
            "--cluster-name",
            CLUSTER,
            "--kubeconfig",
            agent_kubeconfig,
            "--config",
            str(config),
        ],
        log_path=tmp_path_factory.mktemp("agentlog") / "agent.log",
    )
    proc.join_token = token  # type: ignore[attr-defined]
    yield from running(proc)


def gpu_job(name: str, gpus: int, delay: str | None = None) -> dict[str, Any]:
    annotations = {"pod-complete.stage.kwok.x-k8s.io/delay": delay} if delay else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "train",
                            "image": "trainer:latest",
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


def jobs_on_spoke(kubeconfig: str, assignment: str) -> list[dict[str, Any]]:
    return kubectl_json(
        kubeconfig, "get", "jobs", "-A", "--show-managed-fields", "-l", f"fleetplane.io/assignment={NS}.{assignment}"
    )["items"]


# ---------------------------------------------------------------- join


def test_agent_joins_and_stores_its_credential_in_a_spoke_secret(hub: Hub, spoke: Any, agent: AgentProcess) -> None:
    cluster = hub.cluster(CLUSTER)
    assert cluster["status"]["conditions"][0]["reason"] == "AgentReporting"
    assert cluster["status"]["kubernetesVersion"].startswith("v1.32")
    secret = kubectl_json(spoke.kubeconfig, "-n", "fleetplane-system", "get", "secret", "fleetplane-agent")
    stored = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert stored["clusterName"] == CLUSTER and stored["token"].strip()


def test_a_used_join_token_is_refused(hub: Hub, spoke: Any, agent: AgentProcess, tmp_path: Path) -> None:
    # A second agent with an empty state Secret (admin kubeconfig: the agent's own RBAC may
    # only read its one Secret) presents the join token the first agent already used.
    again = AgentProcess(
        args=[
            "--hub",
            hub.url,
            "--hub-ca",
            str(hub.ca),
            "--join-token",
            agent.join_token,  # type: ignore[attr-defined]
            "--cluster-name",
            CLUSTER,
            "--kubeconfig",
            spoke.kubeconfig,
            "--state-secret",
            "fleetplane-system/fleetplane-agent-unused",
        ],
        log_path=tmp_path / "again.log",
    ).start()
    assert again.proc is not None
    code = again.proc.wait(60)
    assert code == 3, again.log()
    assert "refused the join token" in again.log()


# ---------------------------------------------------------------- capacity


def test_capacity_on_the_hub_equals_what_nodes_and_pods_say(hub: Hub, spoke: Any, agent: AgentProcess) -> None:
    expected = expected_capacity(spoke.kubeconfig)
    wait_until(
        "the hub shows the spoke's capacity", lambda: reported_capacity(hub.cluster(CLUSTER)) == expected, timeout=30
    )
    pools = {(p["model"], p["capacityType"]) for p in hub.cluster(CLUSTER)["status"]["gpuPools"]}
    assert pools == {("A100", "spot"), ("L4", "on-demand")}


def test_capacity_changes_within_seconds_when_a_gpu_pod_starts_or_a_node_is_cordoned(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    kc = spoke.kubeconfig
    before = reported_capacity(hub.cluster(CLUSTER))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gpu-probe", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
    }
    kubectl(kc, "create", "-f", "-", check=False)  # no-op warm-up of kubectl's cache
    proc = __import__("subprocess").run(
        ["kubectl", "--kubeconfig", kc, "create", "-f", "-"], input=json.dumps(pod), text=True, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    t0 = time.monotonic()
    wait_until(
        "the hub shows 2 fewer free GPUs",
        lambda: reported_capacity(hub.cluster(CLUSTER))["free"] == before["free"] - 2,
        timeout=15,
    )
    pod_latency = time.monotonic() - t0
    node = kubectl_json(kc, "-n", "default", "get", "pod", "gpu-probe")["spec"]["nodeName"]
    kubectl(kc, "delete", "pod", "-n", "default", "gpu-probe", "--wait=false")

    target = sorted(n for n, free in before["per_node"].items() if n != node and free > 0)[0]
    kubectl(kc, "cordon", target)
    try:
        t0 = time.monotonic()
        wait_until(
            f"the hub shows cordoned {target} with no free GPUs",
            lambda: reported_capacity(hub.cluster(CLUSTER))["per_node"].get(target) == 0,
            timeout=15,
        )
        cordon_latency = time.monotonic() - t0
        assert reported_capacity(hub.cluster(CLUSTER)) == expected_capacity(kc)
    finally:
        kubectl(kc, "uncordon", target)
    wait_until("capacity is back", lambda: reported_capacity(hub.cluster(CLUSTER)) == expected_capacity(kc), timeout=30)
    print(f"pod start → hub: {pod_latency:.1f}s; cordon → hub: {cordon_latency:.1f}s")
    assert pod_latency < 10 and cordon_latency < 10


# ---------------------------------------------------------------- delivery and status


def test_an_assignment_with_a_gpu_job_runs_to_succeeded_and_deleting_it_removes_the_job(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    hub.create_assignment(NS, "train-a", CLUSTER, "train", 1, [gpu_job("train", 4, delay="3s")])
    wait_until("the Job is on the spoke", lambda: jobs_on_spoke(spoke.kubeconfig, "train-a"), timeout=30)
    job = jobs_on_spoke(spoke.kubeconfig, "train-a")[0]
    assert job["metadata"]["labels"]["fleetplane.io/epoch"] == "1"
    assert job["metadata"]["labels"]["fleetplane.io/workload"] == "train"
    managers = {m["manager"] for m in job["metadata"]["managedFields"]}
    assert "fleetplane-agent" in managers
    done = hub.wait_until_assignment_phase(NS, "train-a", "Succeeded", timeout=90)
    assert done["status"]["observedEpoch"] == 1
    assert done["status"]["objects"][0]["kind"] == "Job"

    hub.delete_assignment(NS, "train-a")
    wait_until("the Job is gone from the spoke", lambda: not jobs_on_spoke(spoke.kubeconfig, "train-a"), timeout=30)
    wait_until(
        "the Assignment is gone from the hub (finalizer removed)",
        lambda: hub.assignment(NS, "train-a") is None,
        timeout=30,
    )


def test_a_disallowed_kind_is_refused_and_reported(hub: Hub, spoke: Any, agent: AgentProcess) -> None:
    crb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "take-over"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
    }
    hub.create_assignment(NS, "evil", CLUSTER, "evil", 1, [gpu_job("evil-job", 1), crb])
    a = hub.wait_until_assignment_phase(NS, "evil", "Rejected", timeout=30)
    assert a["status"]["reason"] == "Forbidden"
    assert "ClusterRoleBinding take-over" in a["status"]["message"]
    assert kubectl(spoke.kubeconfig, "get", "clusterrolebinding", "take-over", check=False).returncode != 0
    assert not jobs_on_spoke(spoke.kubeconfig, "evil"), "a rejected Assignment applies nothing"
    hub.delete_assignment(NS, "evil")


def test_an_unschedulable_job_is_reported_pending_with_the_schedulers_reason(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    hub.create_assignment(NS, "too-big", CLUSTER, "too-big", 1, [gpu_job("too-big", 64)])
    a = hub.wait_until_assignment_phase(NS, "too-big", "Pending", timeout=30)
    wait_until(
        "the reason is Unschedulable",
        lambda: (hub.assignment(NS, "too-big") or {}).get("status", {}).get("reason") == "Unschedulable",
        timeout=30,
    )
    hub.delete_assignment(NS, "too-big")
    wait_until("the Job is gone", lambda: not jobs_on_spoke(spoke.kubeconfig, "too-big"), timeout=30)
    assert a


def test_a_stale_epoch_is_dropped_and_its_copy_removed(hub: Hub, spoke: Any, agent: AgentProcess) -> None:
    hub.create_assignment(NS, "serve-e1", CLUSTER, "serve", 1, [gpu_job("serve-e1", 1, delay="600s")])
    wait_until("epoch 1's Job is on the spoke", lambda: jobs_on_spoke(spoke.kubeconfig, "serve-e1"), timeout=30)
    hub.create_assignment(NS, "serve-e2", CLUSTER, "serve", 2, [gpu_job("serve-e2", 1, delay="600s")])
    wait_until("epoch 2's Job is on the spoke", lambda: jobs_on_spoke(spoke.kubeconfig, "serve-e2"), timeout=30)
    stale = hub.wait_until_assignment_phase(NS, "serve-e1", "Rejected", timeout=30)
    assert stale["status"]["reason"] == "StaleEpoch"
    wait_until("epoch 1's Job is removed", lambda: not jobs_on_spoke(spoke.kubeconfig, "serve-e1"), timeout=30)
    for name in ("serve-e1", "serve-e2"):
        hub.delete_assignment(NS, name)
    wait_until("epoch 2's Job is removed", lambda: not jobs_on_spoke(spoke.kubeconfig, "serve-e2"), timeout=30)


# ---------------------------------------------------------------- restart


def test_restarting_the_agent_mid_stream_duplicates_nothing_and_loses_no_status(
    hub: Hub, spoke: Any, agent: AgentProcess
) -> None:
    kc = spoke.kubeconfig
    hub.create_assignment(NS, "long", CLUSTER, "long", 1, [gpu_job("long", 2, delay="12s")])
    hub.create_assignment(NS, "doomed", CLUSTER, "doomed", 1, [gpu_job("doomed", 1, delay="600s")])
    hub.wait_until_assignment_phase(NS, "long", "Running", timeout=60)
    wait_until("doomed's Job is on the spoke", lambda: jobs_on_spoke(kc, "doomed"), timeout=30)

    agent.kill()  # SIGKILL while "long" runs
    # While the agent is down: a new Assignment arrives, another is deleted, "long" finishes.
    hub.create_assignment(NS, "while-down", CLUSTER, "while-down", 1, [gpu_job("while-down", 1, delay="2s")])
    hub.delete_assignment(NS, "doomed")
    wait_until(
        "long's Job completes on the spoke",
        lambda: any(
            c["type"] == "Complete" and c["status"] == "True"
            for j in jobs_on_spoke(kc, "long")
            for c in (j.get("status") or {}).get("conditions") or []
        ),
        timeout=60,
    )
    assert (hub.assignment(NS, "long") or {})["status"]["phase"] == "Running", "nobody told the hub yet"

    agent.start().wait_until_ready()
    hub.wait_until_assignment_phase(NS, "long", "Succeeded", timeout=60)  # the update made while down is not lost
    hub.wait_until_assignment_phase(NS, "while-down", "Succeeded", timeout=90)
    wait_until("doomed's Job is removed after the restart", lambda: not jobs_on_spoke(kc, "doomed"), timeout=30)
    wait_until("doomed is gone from the hub", lambda: hub.assignment(NS, "doomed") is None, timeout=30)
    assert len(jobs_on_spoke(kc, "long")) == 1 and len(jobs_on_spoke(kc, "while-down")) == 1
    pods = kubectl_json(kc, "get", "pods", "-n", NS, "-l", f"fleetplane.io/assignment={NS}.long")["items"]
    assert len(pods) == 1, "the restart re-applied without creating a second Job run"
    for name in ("long", "while-down"):
        hub.delete_assignment(NS, name)
