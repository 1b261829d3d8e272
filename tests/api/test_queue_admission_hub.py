"""Queues on a real hub with SIMULATED clusters (the agent's simulated backend, in threads):
admission before placement, quota caps, preemption through epoch fencing (issue 11).

Every cluster here is SIMULATED: the agent's in-memory backend schedules replicas on
simulated GPU nodes and reports capacity like a real spoke's agent; the hub cannot tell the
difference except by the `simulated` label. The lab suite (tests/e2e) runs the same story on
real spokes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetplane_testing.agenthub import Hub, start_hub, stop_hub
from fleetplane_testing.waiting import wait_until
from spoke_agent.agent import AgentOptions, AgentThread

API = "/apis/fleetplane.io/v1alpha1"


def profile(h100_nodes: int, *, region: str = "us-east-1") -> dict[str, Any]:
    """A SIMULATED cluster: `h100_nodes` × 8 on-demand H100; jobs run for 10 minutes."""
    return {
        "cluster": {"region": region, "zone": f"{region}a"},
        "pools": [
            {
                "name": "h100",
                "model": "H100",
                "memoryGiB": 80,
                "capacityType": "on-demand",
                "nodes": h100_nodes,
                "gpusPerNode": 8,
            }
        ],
        "jobs": {"durationSeconds": 600, "startDelaySeconds": 0.05},
    }


def job_workload(name: str, ns: str, gpus: int, *, priority: int | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gpu": {"count": gpus, "models": ["H100"]},
            "manifests": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name},
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                                ],
                            }
                        }
                    },
                }
            ],
            **spec,
        },
    }
    if priority is not None:
        body["spec"]["priority"] = priority
    return body


def queue(name: str, nominal: int, *, namespaces: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": name},
        "spec": {
            "resourceGroups": [
                {"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": nominal}]}
            ],
            **spec,
        },
    }
    if namespaces is not None:
        body["spec"]["namespaces"] = namespaces
    return body


class Fleet:
    def __init__(self, hub: Hub, tmp: Path) -> None:
        self.hub, self.tmp = hub, tmp
        self.agents: list[AgentThread] = []
        self.c = hub.client()

    def cluster(self, name: str, h100_nodes: int) -> None:
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(profile(h100_nodes)))
        options = AgentOptions(
            hub=self.hub.url,
            hub_verify=str(self.hub.ca),
            cluster_name=name,
            join_token=self.hub.join_token(name),
            backend="simulated",
            profile=str(path),
            state_file=str(self.tmp / f"{name}.state.json"),
        )
        self.agents.append(AgentThread(options).start())

    def stop(self) -> None:
        for a in self.agents:
            a.stop()
        self.c.close()

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.c.post(path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def workload(self, ns: str, name: str) -> dict[str, Any]:
        r = self.c.get(f"{API}/namespaces/{ns}/workloads/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def condition(self, ns: str, name: str, cond: str) -> dict[str, Any] | None:
        for c in (self.workload(ns, name).get("status") or {}).get("conditions") or []:
            if c["type"] == cond:
                return dict(c)
        return None

    def placed(self, ns: str, name: str) -> list[str]:
        st = self.workload(ns, name).get("status") or {}
        return [c["name"] for c in (st.get("placement") or {}).get("clusters") or []]

    def assignments(self, ns: str, name: str) -> list[dict[str, Any]]:
        r = self.c.get(f"{API}/namespaces/{ns}/assignments", params={"fieldSelector": f"spec.workloadRef.name={name}"})
        return list(r.json()["items"])

    def queue_status(self, name: str) -> dict[str, Any]:
        return dict(self.c.get(f"{API}/queues/{name}").json().get("status") or {})


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    hub = start_hub()
    f = Fleet(hub, tmp_path)
    try:
        for ns in ("research", "prod"):
            hub.create_namespace(ns)
        yield f
    finally:
        f.stop()
        stop_hub(hub)


def test_a_queue_admits_up_to_its_quota_and_the_rest_waits_with_the_numbers(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=4)  # 32 H100: the fleet has room, the quota does not
    fleet.create(f"{API}/queues", queue("research", 16, namespaces=["research"]))
    for i in range(3):
        fleet.create(
            f"{API}/namespaces/research/workloads", job_workload(f"train-{i}", "research", 8, queue="research")
        )
    wait_until(
        "two admitted and placed",
        lambda: fleet.placed("research", "train-0") and fleet.placed("research", "train-1"),
        30,
    )
    waiting = wait_until(
        "train-2 waits on the quota",
        lambda: (c := fleet.condition("research", "train-2", "Admitted")) and c["status"] == "False" and c,
        20,
    )
    assert waiting["reason"] == "Pending"
    assert "queue research: H100 on-demand 16/16 used" in waiting["message"]
    assert fleet.placed("research", "train-2") == []
    admitted = fleet.workload("research", "train-0")["status"]["admission"]
    assert (admitted["queue"], admitted["gpus"], admitted["flavor"]["gpuModel"]) == ("research", 8, "H100")
    st = wait_until("queue status written", lambda: (s := fleet.queue_status("research")).get("flavorsUsage") and s, 20)
    assert (st["pendingWorkloads"], st["admittedWorkloads"], st["flavorsUsage"][0]["used"]) == (1, 2, 16)


def test_a_higher_priority_workload_preempts_inside_its_queue_and_the_victim_goes_back_to_it(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=1)  # 8 H100: one 8-GPU job at a time
    fleet.create(
        f"{API}/queues", queue("research", 8, namespaces=["research"], preemption={"withinQueue": "LowerPriority"})
    )
    fleet.create(
        f"{API}/namespaces/research/workloads", job_workload("sweep", "research", 8, priority=10, queue="research")
    )
    wait_until("sweep placed", lambda: fleet.placed("research", "sweep"), 30)
    fleet.create(
        f"{API}/namespaces/research/workloads", job_workload("hotfix", "research", 8, priority=1000, queue="research")
    )
    evicted = wait_until(
        "sweep evicted",
        lambda: (c := fleet.condition("research", "sweep", "Evicted")) and c["status"] == "True" and c,
        30,
    )
    assert evicted["reason"] == "PreemptedByPriority"
    assert "research/hotfix" in evicted["message"]
    wait_until("hotfix placed", lambda: fleet.placed("research", "hotfix"), 40)
    # The victim's Assignment was gone (its copy removed by the agent) before hotfix's existed:
    # only hotfix has one now, and sweep waits in its queue again, not lost and not failed.
    assert fleet.assignments("research", "sweep") == []
    sweep = wait_until(
        "sweep back in its queue",
        lambda: (
            (c := fleet.condition("research", "sweep", "Admitted"))
            and c["status"] == "False"
            and fleet.workload("research", "sweep")
        ),
        20,
    )
    assert "admission" not in sweep["status"]
    assert sweep["status"]["phase"] != "Failed"
