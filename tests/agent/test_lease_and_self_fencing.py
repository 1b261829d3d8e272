"""The agent's lease and self-fencing rules (spoke_agent.lease, spoke_agent.fencing), and what
Delivery does with them on the SIMULATED backend.

Pure functions are table-tested. The Delivery tests use the simulated backend (the one
allowed fake, an in-memory spoke) and a real HubClient pointed at a port nothing listens on:
exactly what a cut-off agent has.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest

from hub.settings import Settings
from spoke_agent.backends.simulated import Profile, SimulatedBackend
from spoke_agent.delivery import Delivery
from spoke_agent.errors import TemporaryError
from spoke_agent.fencing import failover_of, fenced_manifest, held_extra, stops_when_fenced
from spoke_agent.hub import HubClient
from spoke_agent.kubeconfig import SpokeConnection
from spoke_agent.labels import ASSIGNMENT_LABEL, FAILOVER_ANNOTATION, assignment_label
from spoke_agent.lease import LeaseClock, report_digest, timing_problem
from spoke_agent.settings import AgentConfig, HubSettings

# ---------------------------------------------------------------- LeaseClock


@pytest.mark.parametrize(
    "renewals,now,expired,left",
    [
        # Lease 30 s. Never renewed: not started, so not expired (the agent has not joined yet).
        ([], 1000.0, False, 30.0),
        # Renewed at 100: runs out at 100 + 30 = 130.
        ([100.0], 129.9, False, 0.1),
        ([100.0], 130.0, True, 0.0),
        ([100.0], 200.0, True, -70.0),
        # A later renewal moves the deadline: 120 + 30 = 150.
        ([100.0, 120.0], 140.0, False, 10.0),
        # An answer that arrives late for an earlier request (sent at 90) does not move it back.
        ([100.0, 90.0], 125.0, False, 5.0),
    ],
)
def test_the_lease_runs_out_its_duration_after_the_last_successful_renewal_was_sent(
    renewals: list[float], now: float, expired: bool, left: float
) -> None:
    clock = LeaseClock(30.0)
    for sent in renewals:
        clock.renewed(sent)
    assert clock.expired(now) is expired
    assert clock.seconds_left(now) == pytest.approx(left)


# ---------------------------------------------------------------- timing rule


@pytest.mark.parametrize(
    "duration,heartbeat,hub_timeout,problem",
    [
        # hub timeout >= T + one heartbeat of grace: 45 >= 30 + 15 (the defaults).
        (30, 15, 45, None),
        (4, 2, 8, None),  # the e2e fleet: 8 >= 4 + 2
        (30, 15, None, None),  # hub timeout not known yet: only the agent's own rule
        # 45 < 40 + 15: the hub could re-place before the agent has stopped its copies.
        (40, 15, 45, "shorter than the lease duration"),
        (30, 15, 44, "shorter than the lease duration"),
        # T < two heartbeats: one lost renewal fences.
        (20, 15, 60, "shorter than two heartbeats"),
    ],
)
def test_the_hub_timeout_must_cover_the_lease_plus_one_heartbeat_of_grace(
    duration: float, heartbeat: float, hub_timeout: float | None, problem: str | None
) -> None:
    found = timing_problem(duration, heartbeat, hub_timeout)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_the_default_agent_and_hub_settings_satisfy_the_timing_rule() -> None:
    agent = AgentConfig()
    hub_timeout = Settings.model_fields["cluster_timeout_seconds"].default
    assert timing_problem(agent.lease.duration_seconds, agent.capacity.heartbeat_seconds, hub_timeout) is None
    assert agent.lease.self_fencing is True


# ---------------------------------------------------------------- which reports are sent


def status(free: int = 8, heartbeat: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    return {
        "heartbeatTime": heartbeat,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T09:00:00Z"}],
        "freeGpus": free,
        "totalGpus": 8,
        "agentVersion": "0.1",
    }


def test_a_report_that_differs_only_in_its_heartbeat_time_is_not_worth_sending() -> None:
    assert report_digest(status(heartbeat="2026-03-01T10:00:15Z")) == report_digest(status())


@pytest.mark.parametrize(
    "other",
    [
        status(free=0),
        {**status(), "agentVersion": "0.2"},
        {**status(), "conditions": [{"type": "Ready", "status": "False"}]},
        {k: v for k, v in status().items() if k != "totalGpus"},
    ],
)
def test_a_report_with_new_capacity_conditions_or_versions_is_sent(other: dict[str, Any]) -> None:
    assert report_digest(other) != report_digest(status())


# ---------------------------------------------------------------- what fencing stops


@pytest.mark.parametrize(
    "annotations,policy,stops",
    [
        ({FAILOVER_ANNOTATION: "Replace"}, "Replace", True),
        ({FAILOVER_ANNOTATION: "Wait"}, "Wait", False),
        # No annotation (an Assignment from an older hub): the Workload default, Replace.
        ({}, "Replace", True),
        (None, "Replace", True),
    ],
)
def test_only_failover_replace_assignments_are_stopped_when_the_lease_is_lost(
    annotations: dict[str, str] | None, policy: str, stops: bool
) -> None:
    a = {"metadata": {"name": "a", "annotations": annotations}}
    assert failover_of(a) == policy
    assert stops_when_fenced(a) is stops


@pytest.mark.parametrize(
    "obj,expected",
    [
        (
            {"kind": "Deployment", "spec": {"replicas": 3, "template": {"x": 1}}},
            {"kind": "Deployment", "spec": {"replicas": 0, "template": {"x": 1}}},
        ),
        ({"kind": "StatefulSet", "spec": {"replicas": 2}}, {"kind": "StatefulSet", "spec": {"replicas": 0}}),
        ({"kind": "ReplicaSet", "spec": {}}, {"kind": "ReplicaSet", "spec": {"replicas": 0}}),
        (
            {"kind": "Job", "spec": {"parallelism": 4, "completions": 4}},
            {"kind": "Job", "spec": {"parallelism": 4, "completions": 4, "suspend": True}},
        ),
        ({"kind": "JobSet", "spec": {}}, {"kind": "JobSet", "spec": {"suspend": True}}),
        ({"kind": "RayJob", "spec": {"suspend": False}}, {"kind": "RayJob", "spec": {"suspend": True}}),
        (
            {"kind": "PyTorchJob", "spec": {"runPolicy": {"cleanPodPolicy": "All"}}},
            {"kind": "PyTorchJob", "spec": {"runPolicy": {"cleanPodPolicy": "All", "suspend": True}}},
        ),
        ({"kind": "Pod", "spec": {"containers": []}}, None),  # cannot be scaled: deleted
        # Kinds that run nothing are kept as they are.
        ({"kind": "Service", "spec": {"ports": [1]}}, {"kind": "Service", "spec": {"ports": [1]}}),
        ({"kind": "ConfigMap", "data": {"a": "b"}}, {"kind": "ConfigMap", "data": {"a": "b"}, "spec": {}}),
    ],
)
def test_a_fenced_copy_is_scaled_to_zero_or_suspended_and_a_bare_pod_is_deleted(
    obj: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    before = copy.deepcopy(obj)
    assert fenced_manifest(obj) == expected
    assert obj == before, "the Assignment's manifest is not mutated"


# ---------------------------------------------------------------- Delivery on the SIMULATED backend

PROFILE = {
    "cluster": {"region": "r1"},
    "pools": [{"name": "h100", "model": "H100", "capacityType": "on-demand", "nodes": 2, "gpusPerNode": 8}],
    "jobs": {"durationSeconds": 3600, "startDelaySeconds": 0},
}


def assignment(name: str, manifest: dict[str, Any], failover: str | None = "Replace") -> dict[str, Any]:
    annotations = {FAILOVER_ANNOTATION: failover} if failover else {}
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Assignment",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations, "resourceVersion": "5"},
        "spec": {"clusterName": "sim", "workloadRef": {"name": name}, "epoch": 1, "manifests": [manifest]},
    }


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    container = {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
    }


def job(name: str) -> dict[str, Any]:
    container = {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


def pods_of(backend: SimulatedBackend, name: str) -> int:
    return sum(len(s.pods) for r, s in backend.objects.items() if r.name == name)


async def delivered(*assignments: dict[str, Any]) -> tuple[Delivery, SimulatedBackend, HubClient]:
    """A Delivery that has applied `assignments` on a SIMULATED spoke, with a hub it cannot reach."""
    backend = SimulatedBackend(Profile.from_dict(PROFILE), cluster_name="sim")
    await backend.start(lambda: None, lambda label: None)
    # A real client to a port nothing listens on: the cut-off agent's situation, not a mock.
    hub = HubClient("http://127.0.0.1:9", settings=HubSettings(request_timeout_seconds=1))
    d = Delivery("sim", hub, backend, AgentConfig())
    for a in assignments:
        d._upsert(a)
        await d.reconcile(f"default/{a['metadata']['name']}")
    return d, backend, hub


def test_a_fenced_agent_stops_replace_copies_keeps_wait_copies_and_applies_nothing_new() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(
            assignment("serve", deployment("serve")),
            assignment("train", job("train")),
            assignment("keep", deployment("keep"), failover="Wait"),
        )
        assert (pods_of(backend, "serve"), pods_of(backend, "train"), pods_of(backend, "keep")) == (2, 1, 2)

        assert d.fence_self() == 2, "two failover: Replace copies to stop"
        for key in ("default/serve", "default/train", "default/keep"):
            await d.reconcile(key)
        assert pods_of(backend, "serve") == 0 and pods_of(backend, "train") == 0
        assert pods_of(backend, "keep") == 2, "failover: Wait keeps running"
        assert backend.objects, "stopped copies are kept (scaled to zero / suspended), not deleted"

        d._upsert(assignment("new", deployment("new")))
        await d.reconcile("default/new")
        assert pods_of(backend, "new") == 0 and not d.applied.get("default/new"), "nothing new while fenced"
        assert d.compute_status("default/serve") is None, "no status from a stopped copy"

        # The hub is still unreachable: the fence stays, nothing is restored.
        with pytest.raises(TemporaryError):
            await d.unfence_self()
        assert d.fenced and pods_of(backend, "serve") == 0
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


def test_a_copy_stopped_by_fencing_is_restored_when_the_hub_still_assigns_it() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(assignment("serve", deployment("serve")), assignment("train", job("train")))
        d.fence_self()
        await d.reconcile("default/serve")
        await d.reconcile("default/train")
        assert pods_of(backend, "serve") == 0 and pods_of(backend, "train") == 0
        # The hub answers again; its list (what unfence_self reads): both still assigned here.
        await d.resume_from([d.assignments["default/serve"], d.assignments["default/train"]], "9")
        assert not d.fenced
        await d.reconcile("default/serve")
        await d.reconcile("default/train")
        assert pods_of(backend, "serve") == 2 and pods_of(backend, "train") == 1
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


def test_a_copy_the_hub_re_placed_while_this_agent_was_fenced_is_removed_when_it_returns() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(
            assignment("serve", deployment("serve")), assignment("keep", deployment("keep"))
        )
        d.fence_self()
        await d.reconcile("default/serve")
        # The hub's list on return: "serve" was re-placed elsewhere (its Assignment is gone here).
        await d.resume_from([d.assignments["default/keep"]], "9")
        await d.reconcile("default/serve")
        await d.reconcile("default/keep")
        assert pods_of(backend, "serve") == 0 and not any(r.name == "serve" for r in backend.objects)
        assert pods_of(backend, "keep") == 2
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


# ---------------------------------------------------------------- GPUs of copies stopped while fenced


@pytest.mark.parametrize(
    "recorded,bound,extra",
    [
        # Stopped: every GPU its pods held (4 on a, 4 on b) stays counted where it was.
        ({"a": 4, "b": 4}, {}, {"a": 4, "b": 4}),
        # Half back on the same node: only b's 4 are still missing.
        ({"a": 4, "b": 4}, {"a": 4}, {"b": 4}),
        # Back on another node (c): 4 missing - 4 bound = 0, c's pod is not counted twice.
        ({"a": 4}, {"c": 4}, {}),
        # 8 held, 4 back on c: 4 still missing, taken from the recorded nodes in name order (a).
        ({"a": 4, "b": 4}, {"c": 4}, {"a": 4}),
        # Back in full, or bigger than before: nothing extra.
        ({"a": 4, "b": 4}, {"a": 4, "b": 4}, {}),
        ({"a": 4}, {"a": 8}, {}),
        # 3 of 6 on a back: 6 - 3 = 3 on a.
        ({"a": 6}, {"a": 3}, {"a": 3}),
    ],
)
def test_a_stopped_copy_holds_what_its_pods_held_minus_what_they_hold_again(
    recorded: dict[str, int], bound: dict[str, int], extra: dict[str, int]
) -> None:
    gpu = "nvidia.com/gpu"
    got = held_extra({(n, gpu): v for n, v in recorded.items()}, {(n, gpu): v for n, v in bound.items()})
    assert got == {(n, gpu): v for n, v in extra.items()}


def reported_free(d: Delivery, backend: SimulatedBackend, now: float | None = None) -> int:
    """Free GPUs in the capacity report the agent would send now (Agent.cluster_status)."""
    return backend.capacity(d.held_gpus(now)).free_gpus


def test_a_stopped_copy_keeps_its_gpus_reported_allocated_until_its_restored_pods_are_bound_again() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(assignment("serve", deployment("serve", replicas=2)))
        assert reported_free(d, backend) == 14, "2 of 16 GPUs in use"
        d.fence_self()
        await d.reconcile("default/serve")
        assert pods_of(backend, "serve") == 0 and backend.capacity().free_gpus == 16, "the spoke has them free"
        assert reported_free(d, backend) == 14, "while fenced the report still counts the stopped copy's GPUs"
        # The hub answers: serve is still assigned here. Until it is applied again, still held.
        await d.resume_from([d.assignments["default/serve"]], "9")
        assert reported_free(d, backend) == 14
        await d.reconcile("default/serve")
        assert pods_of(backend, "serve") == 2
        assert reported_free(d, backend) == 14, "its pods hold them again, counted once"
        assert not d.holds, "the hold ended once the restored pods were bound"
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


def test_the_gpus_of_a_stopped_copy_the_hub_re_placed_are_reported_free_when_the_agent_returns() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(
            assignment("serve", deployment("serve", replicas=2)), assignment("keep", deployment("keep", replicas=1))
        )
        d.fence_self()
        await d.reconcile("default/serve")
        assert reported_free(d, backend) == 13
        await d.resume_from([d.assignments["default/keep"]], "9")  # serve was re-placed elsewhere
        assert not d.holds
        await d.reconcile("default/serve")
        assert reported_free(d, backend) == 15, "only keep's GPU is in use"
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


def test_a_restored_copy_whose_pods_cannot_all_bind_again_is_held_only_restore_hold_seconds() -> None:
    async def go() -> None:
        d, backend, hub = await delivered(assignment("serve", deployment("serve", replicas=2)))
        d.fence_self()
        await d.reconcile("default/serve")
        # While the hub was away serve shrank to 1 replica: 1 pod comes back, 1 GPU stays missing.
        shrunk = assignment("serve", deployment("serve", replicas=1))
        await d.resume_from([shrunk], "9")
        await d.reconcile("default/serve")
        assert pods_of(backend, "serve") == 1
        assert reported_free(d, backend) == 14, "1 GPU of the pod + 1 still held"
        later = time.monotonic() + d.config.lease.restore_hold_seconds + 1
        assert reported_free(d, backend, now=later) == 15, "the hold lapses after lease.restoreHoldSeconds"
        assert not d.holds
        await hub.aclose()
        await backend.stop()

    asyncio.run(go())


def test_the_kubernetes_backend_counts_the_gpus_of_an_assignments_bound_live_pods() -> None:
    from spoke_agent.backends.kubernetes import KubernetesBackend

    def pod(uid: str, label: str, node: str | None, gpus: int, phase: str) -> dict[str, Any]:
        return {
            "metadata": {"uid": uid, "name": uid, "namespace": "default", "labels": {ASSIGNMENT_LABEL: label}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
            },
            "status": {"phase": phase},
        }

    async def go() -> None:
        # A real backend whose caches are fed the Pod bodies kopf would deliver (no spoke is contacted).
        backend = KubernetesBackend(SpokeConnection(server="http://127.0.0.1:9"), AgentConfig())
        serve, other = assignment_label("default", "serve"), assignment_label("default", "other")
        for body in (
            pod("p1", serve, "n1", 4, "Running"),
            pod("p2", serve, "n2", 4, "Pending"),  # bound, not started yet: it holds its GPUs
            pod("p3", serve, None, 4, "Pending"),  # not bound: holds nothing
            pod("p4", serve, "n1", 2, "Succeeded"),  # terminal: holds nothing
            pod("p5", other, "n1", 1, "Running"),  # another Assignment's
        ):
            backend._pod_event("ADDED", body)
        assert backend.bound_gpus(serve) == {("n1", "nvidia.com/gpu"): 4, ("n2", "nvidia.com/gpu"): 4}
        backend._pod_event("DELETED", pod("p1", serve, "n1", 4, "Running"))
        assert backend.bound_gpus(serve) == {("n2", "nvidia.com/gpu"): 4}
        await backend.api.aclose()

    asyncio.run(go())
