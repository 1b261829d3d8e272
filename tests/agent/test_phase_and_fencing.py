"""Phase derivation from Job/Deployment/Pod status, epoch fencing, allow-list and labels."""

from __future__ import annotations

from typing import Any

import pytest

from fleetplane_types.v1alpha1 import AssignmentStatus
from spoke_agent.fencing import EpochFence
from spoke_agent.labels import ASSIGNMENT_LABEL, EPOCH_LABEL, WORKLOAD_LABEL, assignment_label, label_value
from spoke_agent.manifests import decorate, policy_violations
from spoke_agent.phase import Interruption, assignment_phase, object_phase
from spoke_agent.settings import AgentConfig, DeliverySettings


def job(conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {"kind": "Job", "spec": {}, "status": {"conditions": conditions or [], **status}}


def pod(phase: str, unschedulable: bool = False, node: str | None = "n1") -> dict[str, Any]:
    conds = (
        [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
        if unschedulable
        else []
    )
    return {
        "metadata": {"name": "p"},
        "spec": {"nodeName": None if unschedulable else node},
        "status": {"phase": phase, "conditions": conds},
    }


JOB_CASES = [
    pytest.param(job([{"type": "Complete", "status": "True"}]), [], "Succeeded", None, id="complete job succeeded"),
    pytest.param(
        job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]),
        [],
        "Failed",
        "BackoffLimitExceeded",
        id="failed job carries its reason",
    ),
    pytest.param(job(active=1, ready=1), [pod("Running")], "Running", None, id="ready pod: running"),
    pytest.param(
        job(active=1),
        [pod("Pending", unschedulable=True)],
        "Pending",
        "Unschedulable",
        id="unschedulable pod: pending with reason",
    ),
    pytest.param(job(active=1), [], "Running", None, id="active job without seen pods trusts the job"),
    pytest.param(job(), [], "Pending", None, id="fresh job: pending"),
    pytest.param(
        job([{"type": "Suspended", "status": "True"}]), [], "Pending", "Suspended", id="suspended job: pending"
    ),
]


@pytest.mark.parametrize(("body", "pods", "phase", "reason"), JOB_CASES)
def test_job_phase_follows_conditions_then_pods(
    body: dict[str, Any], pods: list[dict[str, Any]], phase: str, reason: str | None
) -> None:
    got = object_phase("batch/v1", "Job", "train", "team-a", body, pods)
    assert (got.phase, got.reason) == (phase, reason)


def test_deployment_is_running_when_available_and_failed_past_its_progress_deadline() -> None:
    ok = {
        "kind": "Deployment",
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }
    stuck = {
        "kind": "Deployment",
        "spec": {"replicas": 2},
        "status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
    }
    half = {"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 1}}
    assert object_phase("apps/v1", "Deployment", "d", "ns", ok, []).phase == "Running"
    assert object_phase("apps/v1", "Deployment", "d", "ns", stuck, []).phase == "Failed"
    assert (
        object_phase("apps/v1", "Deployment", "d", "ns", half, [pod("Pending", unschedulable=True)]).reason
        == "Unschedulable"
    )


def test_assignment_takes_the_most_urgent_object_phase() -> None:
    running = object_phase("batch/v1", "Job", "a", "ns", job(ready=1), [pod("Running")])
    pending = object_phase("batch/v1", "Job", "b", "ns", job(), [])
    done = object_phase("batch/v1", "Job", "c", "ns", job([{"type": "Complete", "status": "True"}]), [])
    config = object_phase("v1", "ConfigMap", "cm", "ns", {}, [])
    assert assignment_phase([running, pending]).phase == "Pending"
    assert assignment_phase([running, done]).phase == "Running"
    assert assignment_phase([done, config]).phase == "Succeeded"
    assert assignment_phase([config]).phase == "Applied"
    assert assignment_phase([object_phase("v1", "ConfigMap", "x", "ns", None, [])]).phase == "Pending"


def test_a_lost_spot_node_reads_as_preempted_not_unschedulable() -> None:
    waiting = object_phase("batch/v1", "Job", "train", "ns", job(active=1), [pod("Pending", unschedulable=True)])
    result = assignment_phase([waiting], [Interruption("Preempted", "node n1 (spot) went away")])
    assert (result.phase, result.reason) == ("Pending", "Preempted")
    assert "n1" in (result.message or "")


def test_status_dict_validates_against_the_hub_api_types() -> None:
    result = assignment_phase([object_phase("batch/v1", "Job", "train", "ns", job(ready=1), [pod("Running")])])
    AssignmentStatus.model_validate(result.to_status(observed_epoch=3))


def assignment(name: str, workload: str, epoch: int, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "team-a", "name": name}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"epoch": epoch, "workloadRef": {"name": workload}, "clusterName": "c"}}


def test_an_assignment_older_than_an_epoch_already_seen_is_stale() -> None:
    fence = EpochFence()
    old, new = assignment("w-1", "w", 1), assignment("w-2", "w", 2)
    fence.observe_assignment(old)
    assert not fence.is_stale(old)
    fence.observe_assignment(new)
    assert fence.is_stale(old) and not fence.is_stale(new)
    # Another workload is not affected.
    assert not fence.is_stale(assignment("x-1", "x", 0))


def test_epochs_of_assignments_being_deleted_do_not_fence_others() -> None:
    fence = EpochFence()
    fence.observe_assignment(assignment("w-9", "w", 9, deleting=True))
    assert not fence.is_stale(assignment("w-1", "w", 1))


def test_epochs_seen_on_cluster_objects_fence_a_late_stale_assignment_after_restart() -> None:
    fence = EpochFence()
    fence.observe("team-a/w", 5)  # from the fleetplane.io/epoch label of an object on the spoke
    assert fence.is_stale(assignment("w-4", "w", 4))


def test_disallowed_kinds_and_namespaces_are_named_in_the_rejection() -> None:
    settings = DeliverySettings()
    manifests = [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "ok"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "admin-me"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "kube-system"}},
    ]
    problems = policy_violations(manifests, "team-a", settings)
    assert len(problems) == 2
    assert "ClusterRoleBinding admin-me" in problems[0] and "allowedKinds" in problems[0]
    assert "kube-system" in problems[1]
    assert policy_violations(manifests[:1], "team-a", settings) == []


def test_config_file_keys_are_camel_case_with_typed_groups(tmp_path: Any) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "capacity:\n  heartbeatSeconds: 5\ndelivery:\n  allowedKinds: [{group: batch, kind: Job}]\n  allowedNamespaces: [team-*]\n"
    )
    cfg = AgentConfig.load(path)
    assert cfg.capacity.heartbeat_seconds == 5
    assert cfg.delivery.kind_allowed("batch/v1", "Job") and not cfg.delivery.kind_allowed("apps/v1", "Deployment")
    assert cfg.delivery.namespace_allowed("team-a") and not cfg.delivery.namespace_allowed("other")


def test_applied_objects_carry_assignment_workload_and_epoch_labels_and_pods_find_their_assignment() -> None:
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train", "resourceVersion": "7"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"active": 1},
    }
    obj = decorate(manifest, assignment_namespace="team-a", assignment_name="w-1", workload="w", epoch=3)
    labels = obj["metadata"]["labels"]
    assert labels == {ASSIGNMENT_LABEL: "team-a.w-1", WORKLOAD_LABEL: "w", EPOCH_LABEL: "3"}
    assert obj["metadata"]["namespace"] == "team-a"
    assert "resourceVersion" not in obj["metadata"] and "status" not in obj
    assert obj["spec"]["template"]["metadata"]["labels"] == {ASSIGNMENT_LABEL: "team-a.w-1"}
    assert "labels" not in manifest["metadata"], "the hub's manifest must not be mutated"


def test_long_assignment_names_give_valid_distinct_label_values() -> None:
    a, b = assignment_label("team-a", "x" * 80 + "1"), assignment_label("team-a", "x" * 80 + "2")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert label_value("ok.name") == "ok.name"
