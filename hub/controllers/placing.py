"""Pure builders for a placement decision: the Workload's placed status and its Assignments.
No I/O: the federation controller stages what these return in one transaction."""

from __future__ import annotations

import copy
from typing import Any

from fleetplane_types.labels import label_value, object_name
from fleetplane_types.names import (
    AGENT_CLEANUP_FINALIZER,
    API_VERSION,
    CLUSTER_LABEL,
    EPOCH_LABEL,
    FAILOVER_ANNOTATION,
    RESERVATION_ANNOTATION,
    WORKLOAD_LABEL,
)
from hub.controllers import epochs
from hub.controllers.snapshot import pool_node_names, reservation_annotation
from hub.controllers.status import PHASE_RANK
from placement import ClusterAssignment, Decision

Obj = dict[str, Any]

EXPLAIN_ROWS = 10
"""Clusters kept in a stored explanation (the what-if endpoint returns every cluster). Ten: the
runner-ups a user compares the choice with, each with every plugin's score. It was 50; building
and validating those rows was the largest part of the controller's CPU per placement (at 100
clusters: 40 % of committing one), and every watcher and re-read of the Workload paid for the
bytes. The counts of removed clusters by reason stay in `placement.reason` and the summary."""


def scale_manifest(m: Obj, replicas: int) -> Obj:
    """Give one cluster its replicas: Workload.spec.replicas is the source of truth.

    Deployments/StatefulSets/ReplicaSets: spec.replicas. Jobs: parallelism and completions.
    Other kinds (PyTorchJob, RayJob …) are applied as written; their own replica fields are
    the user's to set (documented in docs/federation.md).
    """
    m = copy.deepcopy(m)
    kind = m.get("kind")
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        m.setdefault("spec", {})["replicas"] = replicas
    elif kind == "Job":
        spec = m.setdefault("spec", {})
        spec["parallelism"] = replicas
        spec["completions"] = replicas
    return m


def placed_status(cur: Obj, d: Decision, epoch: int, now: str) -> dict[str, Any]:
    """The Workload's status once decision `d` is committed with `epoch`."""
    record = d.to_placement_record(explain_limit=EXPLAIN_ROWS)
    record["epoch"] = epoch
    record["decidedAt"] = now
    st = copy.deepcopy(cur.get("status") or {})
    st["placement"] = record
    st["phase"] = st.get("phase") if PHASE_RANK.get(st.get("phase"), 0) >= 1 else "Placed"
    st["message"] = "placed on " + ", ".join(_share(x) for x in d.assignments)
    st["clusters"] = [{"name": x.cluster, "phase": "Pending", "epoch": epoch} for x in d.assignments]
    st["observedGeneration"] = (cur.get("metadata") or {}).get("generation")
    st[epochs.FIELD] = epochs.started(st, epoch, [x.cluster for x in d.assignments], st["message"], now)
    return st


def _share(x: ClusterAssignment) -> str:
    """ "east (2x H100 spot)", or "east (1x cpu)" for a CPU-only workload without a capacity type."""
    what = " ".join(p for p in (f"{x.replicas}x", x.gpu_model or "cpu", x.capacity_type or "") if p)
    return f"{x.cluster} ({what})"


def next_epoch(cur: Obj) -> int:
    return int(((cur.get("status") or {}).get("placement") or {}).get("epoch") or 0) + 1


def assignments_for(cur: Obj, d: Decision, epoch: int, clusters: dict[str, Obj]) -> list[Obj]:
    """One Assignment per chosen cluster: the manifests scaled to its replicas, fenced by epoch,
    owned by the Workload, with the agent's cleanup finalizer and the GPUs it reserves."""
    meta = cur["metadata"]
    ns, name, uid = meta.get("namespace", ""), meta["name"], meta["uid"]
    held = {r.cluster: r for r in d.reservations()}
    out = []
    for x in d.assignments:
        annotations = {FAILOVER_ANNOTATION: str(cur["spec"].get("failover") or "Replace")}  # agent self-fencing
        r = held.get(x.cluster)
        if r is not None:
            annotations[RESERVATION_ANNOTATION] = reservation_annotation(r)
        spec: Obj = {
            "clusterName": x.cluster,
            "workloadRef": {"name": name, "uid": uid},
            "epoch": epoch,
            "replicas": x.replicas,
            "manifests": [scale_manifest(m, x.replicas) for m in cur["spec"]["manifests"]],
        }
        if x.capacity_type is not None:
            spec["capacityType"] = x.capacity_type
        if x.gpu_model:
            spec["gpuModel"] = x.gpu_model
        if x.pool is not None and (pinned := pool_node_names(clusters.get(x.cluster), x.pool)) is not None:
            spec["nodeNames"] = pinned
        out.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Assignment",
                "metadata": {
                    "name": object_name(name, x.cluster, f"e{epoch}"),
                    "namespace": ns,
                    "labels": {
                        WORKLOAD_LABEL: label_value(name),
                        CLUSTER_LABEL: label_value(x.cluster),
                        EPOCH_LABEL: str(epoch),
                    },
                    "annotations": annotations,
                    "finalizers": [AGENT_CLEANUP_FINALIZER],
                    "ownerReferences": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "Workload",
                            "name": name,
                            "uid": uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": spec,
                "status": {"phase": "Pending"},
            }
        )
    return out
