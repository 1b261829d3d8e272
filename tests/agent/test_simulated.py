"""The simulated backend: in-memory scheduling and timing on its own, then the whole agent
(simulated backend, in a thread via the Python API) against a real hub process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spoke_agent.agent import AgentOptions, AgentThread
from spoke_agent.backends.simulated import Profile, SimulatedBackend
from spoke_agent.manifests import ObjectRef, decorate

from .lab_fixtures import Hub, start_hub, stop_hub, wait_until

PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [
        {"name": "h100-spot", "model": "H100", "memoryGiB": 80, "capacityType": "spot", "nodes": 2, "gpusPerNode": 8},
        {"name": "l4", "model": "L4", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 4},
    ],
    "jobs": {"durationSeconds": 0.3, "startDelaySeconds": 0.05},
}


def job(name: str, gpus: int, parallelism: int = 1, assignment: str = "a1") -> dict[str, Any]:
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "parallelism": parallelism,
            "template": {
                "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}
            },
        },
    }
    return decorate(manifest, assignment_namespace="ns", assignment_name=assignment, workload=name, epoch=1)


def test_simulated_jobs_hold_gpus_while_running_and_free_them_when_done() -> None:
    async def scenario() -> None:
        sim = SimulatedBackend(Profile.from_dict(PROFILE), cluster_name="c")
        await sim.start(lambda: None, lambda label: None)
        await sim.ensure_namespace("ns")
        assert (sim.capacity().total_gpus, sim.capacity().free_gpus) == (20, 20)
        await sim.apply(job("train", 8, parallelism=2))
        assert sim.capacity().free_gpus == 4  # two 8-GPU replicas, one per H100 node
        ref = ObjectRef("batch/v1", "Job", "ns", "train")
        assert sim.observe("ns.a1", [ref]).phase in ("Pending", "Running")
        await asyncio.sleep(0.6)
        assert sim.observe("ns.a1", [ref]).phase == "Succeeded"
        assert sim.capacity().free_gpus == 20

    asyncio.run(scenario())


def test_a_replica_that_fits_no_single_node_is_unschedulable() -> None:
    async def scenario() -> None:
        sim = SimulatedBackend(Profile.from_dict(PROFILE), cluster_name="c")
        await sim.start(lambda: None, lambda label: None)
        await sim.ensure_namespace("ns")
        await sim.apply(job("huge", 12))
        result = sim.observe("ns.a1", [ObjectRef("batch/v1", "Job", "ns", "huge")])
        assert (result.phase, result.reason) == ("Pending", "Unschedulable")

    asyncio.run(scenario())


def test_reclaiming_a_spot_node_reports_preempted_and_cordoning_hides_free_gpus() -> None:
    async def scenario() -> None:
        profile = {**PROFILE, "jobs": {"durationSeconds": 60, "startDelaySeconds": 0.01}}
        sim = SimulatedBackend(Profile.from_dict(profile), cluster_name="c")
        await sim.start(lambda: None, lambda label: None)
        await sim.ensure_namespace("ns")
        await sim.apply(job("train", 8, parallelism=2))
        await asyncio.sleep(0.05)
        sim.cordon("c-l4-0")
        assert sim.capacity().free_gpus == 0
        sim.reclaim_node("c-h100-spot-0")
        result = sim.observe("ns.a1", [ObjectRef("batch/v1", "Job", "ns", "train")])
        assert (result.phase, result.reason) == ("Pending", "Preempted")
        await sim.stop()

    asyncio.run(scenario())


# ---------------------------------------------------------------- against a real hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = start_hub()
    try:
        h.create_namespace("team-sim")
        yield h
    finally:
        stop_hub(h)


def test_a_simulated_spoke_joins_is_labelled_simulated_and_runs_an_assignment(hub: Hub, tmp_path: Path) -> None:
    import yaml

    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({**PROFILE, "jobs": {"durationSeconds": 2, "startDelaySeconds": 0.2}}))
    options = AgentOptions(
        hub=hub.url,
        hub_verify=str(hub.ca),
        cluster_name="sim-1",
        join_token=hub.join_token("sim-1"),
        backend="simulated",
        profile=str(profile),
        state_file=str(tmp_path / "state.json"),
    )
    agent = AgentThread(options).start()
    try:
        cluster = hub.cluster("sim-1")
        ready = cluster["status"]["conditions"][0]
        assert (ready["reason"], cluster["status"]["agentVersion"].endswith("-simulated")) == (
            "SimulatedAgentReporting",
            True,
        )
        assert "SIMULATED" in ready["message"]
        # spec.backend and the label need the hub to let agents patch their Cluster (the issue's
        # contract); a hub that allows only status writes leaves them at the default.
        if "fleetplane.io/backend" in (cluster["metadata"].get("labels") or {}):
            assert cluster["spec"]["backend"] == "simulated"
            assert cluster["metadata"]["labels"]["fleetplane.io/backend"] == "simulated"
        assert cluster["status"]["totalGpus"] == 20

        manifest = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "train"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}
            },
        }
        hub.create_assignment("team-sim", "train-1", "sim-1", "train", 1, [manifest])
        hub.wait_until_assignment_phase("team-sim", "train-1", "Running", timeout=20)
        wait_until("the hub sees 8 GPUs in use", lambda: hub.cluster("sim-1")["status"]["freeGpus"] == 12, timeout=20)
        hub.wait_until_assignment_phase("team-sim", "train-1", "Succeeded", timeout=20)
        hub.delete_assignment("team-sim", "train-1")
        wait_until("the finalizer is released", lambda: hub.assignment("team-sim", "train-1") is None, timeout=20)
    finally:
        agent.stop()

    # Restart from the state file: the credential is reused, no join token needed.
    options.join_token = None
    again = AgentThread(options).start()
    again.stop()
    assert again.error is None
