"""Wire shapes of ``kind: Queue`` and ``kind: PriorityClass`` (fleetplane.io/v1alpha1).

Field names follow Kueue's ClusterQueue where they fit (``cohort``, ``resourceGroups[].flavors[]``,
``nominalQuota``, ``borrowingLimit``, ``lendingLimit``, ``preemption``, ``queueingStrategy``,
``fairSharing.weight``) and Kubernetes' PriorityClass (``value``, ``globalDefault``,
``description``); docs/queues.md lists what was taken and what changed. Same conventions as
:mod:`fleetplane_types.v1alpha1`: camelCase on the wire, unknown fields rejected.

These models live beside the engine until the hub stores Queues; they belong in
``fleetplane_types.v1alpha1`` then (pydantic only, so they can move as they are).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleetplane_types.v1alpha1 import INT32_MAX, INT32_MIN, MAX_GPUS, CapacityType, ObjectMeta


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True)


class QueueFlavor(_Model):
    """GPU quota of a queue on one flavor: a GPU model family × capacity type (× region)."""

    name: str | None = Field(default=None, description="A label for the flavor in explanations.")
    gpu_model: str = Field(min_length=1, description="GPU model family, e.g. H100 (size suffixes are dropped).")
    capacity_type: CapacityType = Field(description="spot, on-demand or reserved.")
    region: str | None = Field(default=None, description="Only clusters in this region; absent means any.")
    nominal_quota: int = Field(ge=0, le=MAX_GPUS, description="GPUs this queue is entitled to.")
    borrowing_limit: int | None = Field(
        default=None, ge=0, le=MAX_GPUS, description="At most this many GPUs beyond nominal from the cohort."
    )
    lending_limit: int | None = Field(
        default=None, ge=0, le=MAX_GPUS, description="At most this many unused nominal GPUs lent to the cohort."
    )


class ResourceGroup(_Model):
    """Flavors in the order they are tried (Kueue's resourceGroups; GPUs are the one resource)."""

    covered_resources: list[Literal["nvidia.com/gpu", "gpu"]] | None = None
    flavors: list[QueueFlavor] = Field(min_length=1)


class FairSharing(_Model):
    weight: float = Field(default=1.0, gt=0, le=1e6, description="Share of contended capacity relative to others.")


class QueuePreemption(_Model):
    within_queue: Literal["Never", "LowerPriority"] = "Never"
    reclaim_within_cohort: Literal["Never", "Any", "LowerPriority"] = "Never"


class QueueSpec(_Model):
    cohort: str | None = Field(default=None, description="Queues of one cohort borrow each other's unused quota.")
    resource_groups: list[ResourceGroup] = Field(default_factory=list)
    fair_sharing: FairSharing | None = None
    queueing_strategy: Literal["StrictFIFO", "BestEffortFIFO"] = "BestEffortFIFO"
    namespaces: list[str] | None = Field(default=None, description="Namespaces that may submit; absent means all.")
    default_for: list[str] | None = Field(
        default=None, description="Namespaces whose workloads without spec.queue use this queue."
    )
    preemption: QueuePreemption = Field(default_factory=QueuePreemption)


class Queue(_Model):
    """A team's GPU quotas per flavor, its cohort, fair-share weight, ordering and preemption."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Queue"] = "Queue"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: QueueSpec = Field(default_factory=QueueSpec)
    status: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


class PriorityClass(_Model):
    """A named priority (as scheduling.k8s.io PriorityClass); Workloads name it by label."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["PriorityClass"] = "PriorityClass"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    value: int = Field(ge=INT32_MIN, le=INT32_MAX)
    global_default: bool = False
    description: str | None = None
