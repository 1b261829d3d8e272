"""Every well-known name of the fleetplane.io API, defined once.

Group/version, the storage keys of the kinds, labels, annotations, finalizers, condition
types and phases. The hub, the placement engine and the spoke agent all import these names
from here; none of them spells a `fleetplane.io/...` string of its own.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "fleetplane.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# ---------------------------------------------------------------- storage keys of the kinds
# The hub stores objects under "<group>/<plural>" ("<plural>" for core kinds).
WORKLOADS: Final = f"{GROUP}/workloads"
ASSIGNMENTS: Final = f"{GROUP}/assignments"
CLUSTERS: Final = f"{GROUP}/clusters"
DATASETS: Final = f"{GROUP}/datasets"
TOPOLOGIES: Final = f"{GROUP}/topologies"
QUEUES: Final = f"{GROUP}/queues"
PRIORITY_CLASSES: Final = f"{GROUP}/priorityclasses"
NAMESPACES: Final = "namespaces"
EVENTS: Final = "events"
"""core/v1 Events (the hub records them for Workloads; kubectl describe shows them)."""

# ---------------------------------------------------------------- finalizers
WORKLOAD_FINALIZER: Final = f"{GROUP}/placement"
"""On a placed Workload: the hub removes it once every Assignment of the workload is gone."""

AGENT_CLEANUP_FINALIZER: Final = f"{GROUP}/agent-cleanup"
"""On an Assignment: its cluster's agent removes it after deleting what it applied."""

# ---------------------------------------------------------------- labels
WORKLOAD_LABEL: Final = f"{GROUP}/workload"
"""On Assignments and on every object an agent applies: the Workload's name."""

CLUSTER_LABEL: Final = f"{GROUP}/cluster"
"""On Assignments: the member cluster they are for."""

EPOCH_LABEL: Final = f"{GROUP}/epoch"
"""On Assignments and applied objects: the placement epoch (fencing)."""

ASSIGNMENT_LABEL: Final = f"{GROUP}/assignment"
"""On applied objects: "<ns>.<name>" of the Assignment (hashed when too long for a label)."""

BACKEND_LABEL: Final = f"{GROUP}/backend"
"""On Clusters: "kubernetes" or "simulated"."""

PRIORITY_CLASS_LABEL: Final = f"{GROUP}/priority-class"
"""On Workloads: the PriorityClass whose value is the workload's priority (unless spec.priority is set)."""

TEAM_LABEL: Final = f"{GROUP}/team"
"""On Namespaces created for a team token."""

NODE_POOL_LABEL: Final = f"{GROUP}/node-pool"
CAPACITY_TYPE_LABEL: Final = f"{GROUP}/capacity-type"
"""On spoke nodes: an explicit capacity type (spot / on-demand / reserved), any cloud."""

SIMULATED_LABEL: Final = f"{GROUP}/simulated"
"""On the nodes of the agent's simulated backend: never a real node."""

# ---------------------------------------------------------------- annotations
ASSIGNMENT_ANNOTATION: Final = f"{GROUP}/assignment"
"""On applied objects: the full "<ns>/<name>" of the Assignment, never truncated."""

RESERVATION_ANNOTATION: Final = f"{GROUP}/reservation"
"""On Assignments: the GPUs (pool, nodes) held until the cluster's capacity report shows them."""

FAILOVER_ANNOTATION: Final = f"{GROUP}/failover"
"""On Assignments: the Workload's spec.failover (Replace or Wait), so an agent cut off from the hub
knows which copies to stop (self-fencing: Replace) and which to keep running (Wait)."""

PRICE_ANNOTATION: Final = f"{GROUP}/price-per-gpu-hour"
"""On spoke nodes: the price of one GPU hour on this node, read into the pool's price."""

JOINED_AT_ANNOTATION: Final = f"{GROUP}/joined-at"
"""On Clusters registered by the join endpoint: when the agent joined."""

SIMULATED_DURATION_ANNOTATION: Final = f"{GROUP}/simulated-duration-seconds"
"""On workload manifests run by the simulated backend: how long the simulated job runs."""

# ---------------------------------------------------------------- conditions and phases
READY_CONDITION: Final = "Ready"
"""Cluster condition: True while the agent's heartbeat is fresh."""

HEARTBEAT_TIMEOUT_REASON: Final = "HeartbeatTimeout"
PREEMPTED_REASON: Final = "Preempted"
"""Assignment status reason when the spoke lost the capacity (spot interruption)."""

PLACED_CONDITION: Final = "Placed"
"""Workload condition: True while the workload has clusters to run on (`kubectl wait
--for=condition=Placed`). False with reason UNSCHEDULABLE_REASON or RESCHEDULING_REASON."""

RUNNING_CONDITION: Final = "Running"
"""Workload condition: True while some copy of the workload runs."""

SUCCEEDED_CONDITION: Final = "Succeeded"
FAILED_CONDITION: Final = "Failed"
"""Workload conditions set (True) once the workload finished, one or the other."""

WORKLOAD_CONDITIONS: Final = (PLACED_CONDITION, RUNNING_CONDITION, SUCCEEDED_CONDITION, FAILED_CONDITION)

ADMITTED_CONDITION: Final = "Admitted"
"""Workload condition of a queued workload: True while it holds quota in its queue; False with
reason ADMISSION_PENDING_REASON (waiting: quota or capacity), INADMISSIBLE_REASON (it cannot
be admitted as written) or PREEMPTING_REASON (it evicted others and waits for their copies)."""
EVICTED_CONDITION: Final = "Evicted"
"""Workload condition: True once it was preempted or reclaimed and sent back to its queue
(reason PREEMPTED_BY_PRIORITY_REASON or RECLAIMED_REASON); False with READMITTED_REASON once
admitted again."""
QUEUE_CONDITIONS: Final = (ADMITTED_CONDITION, EVICTED_CONDITION)

ADMITTED_REASON: Final = "QuotaReserved"
ADMISSION_PENDING_REASON: Final = "Pending"
INADMISSIBLE_REASON: Final = "Inadmissible"
PREEMPTING_REASON: Final = "Preempting"
PREEMPTED_BY_PRIORITY_REASON: Final = "PreemptedByPriority"
RECLAIMED_REASON: Final = "ReclaimedByQueue"
READMITTED_REASON: Final = "Readmitted"
FINISHED_REASON: Final = "Finished"
"""Admitted=False once the workload finished: its quota is released."""

# Reasons on Workload conditions and on the core/v1 Events the hub records for Workloads.
PLACED_REASON: Final = "Placed"
UNSCHEDULABLE_REASON: Final = "Unschedulable"
"""No cluster fits (the message says why); also the reason of the Warning event."""
RESCHEDULING_REASON: Final = "Rescheduling"
"""The workload lost its clusters and waits to be placed again."""
FAILOVER_REASON: Final = "FailedOver"
"""Event: a cluster went NotReady and the workload's copy on it is replaced elsewhere."""
EVICTED_REASON: Final = "Evicted"
"""Event: a copy was evicted by its cluster (spot interruption) and is replaced elsewhere."""
DELETED_REASON: Final = "Deleted"
"""Event: the workload's copies are cleaned up and the workload is gone."""
NOT_PLACED_REASON: Final = "NotPlaced"
WAITING_REASON: Final = "Waiting"
RUNNING_REASON: Final = "Running"
COMPLETED_REASON: Final = "Completed"
SUCCEEDED_REASON: Final = "AllReplicasSucceeded"
FAILED_REASON: Final = "ReplicaFailed"

EVENT_COMPONENT: Final = "fleetplane-hub"
"""source.component / reportingComponent of the Events the hub records."""

WORKLOAD_PHASES: Final = ("Pending", "Placed", "Running", "Succeeded", "Failed")
ASSIGNMENT_TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed", "Rejected"})
