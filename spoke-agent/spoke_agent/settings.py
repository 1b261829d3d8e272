"""Typed settings of the spoke agent, grouped by concern.

The agent reads one YAML file (`--config`) whose top-level keys are these groups
(camelCase or snake_case). Every knob says its unit and why its default is what it is.
Command-line options (hub URL, tokens, kubeconfig) are not here: they are per process,
while this file is the policy an operator reviews (what the agent may apply, and how
chatty it is towards the hub).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Group(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class HubSettings(_Group):
    """How the agent talks to the hub."""

    request_timeout_seconds: float = Field(
        default=10.0,
        description="Seconds. Timeout of one non-watch request (join, status patch, list). Hub requests "
        "are small; 10 s rides out a busy hub without hiding a dead one for long.",
    )
    watch_inactivity_timeout_seconds: float = Field(
        default=150.0,
        description="Seconds. A watch that delivers nothing (not even a BOOKMARK) for this long is "
        "considered dead and reopened from the last resourceVersion. Kubernetes-style servers send a "
        "bookmark about every 60 s; 150 s tolerates two lost bookmarks before reconnecting.",
    )
    reconnect_backoff_initial_seconds: float = Field(
        default=0.5,
        description="Seconds. First pause before reconnecting a failed watch; doubles per failure "
        "(with jitter). Short, because most disconnects are a hub restart that is over in a second.",
    )
    reconnect_backoff_max_seconds: float = Field(
        default=30.0,
        description="Seconds. Cap of the reconnect backoff: with 1,000+ agents, a hub outage must not "
        "end in a thundering herd, yet agents should be back within half a minute.",
    )
    unreachable_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Seconds. When the hub refuses the connection (nothing listens: a restart in progress), "
        "retry the watch and a failed lease renewal after this long (with jitter), without growing the backoff "
        "or waiting for the next heartbeat. A refused connection costs the hub nothing, and this brings every "
        "agent back about a second after a restarted hub listens (bench/bench_recovery.py); errors the hub "
        "answers still back off exponentially.",
    )


class CapacitySettings(_Group):
    """What counts as a GPU and how often capacity is reported."""

    gpu_resources: list[str] = Field(
        default_factory=lambda: ["nvidia.com/gpu"],
        description="Extended resource names counted as GPUs (e.g. add amd.com/gpu). nvidia.com/gpu is "
        "what the NVIDIA device plugin advertises, so it is the only default.",
    )
    debounce_seconds: float = Field(
        default=1.0,
        description="Seconds. After a Node or Pod change, wait this long for more changes before "
        "reporting, so a Job starting 8 pods makes one report, not 8. One second keeps the hub's view "
        "within 'seconds' of the truth.",
    )
    heartbeat_seconds: float = Field(
        default=15.0,
        description="Seconds. Renew the cluster's lease this often (one tiny PUT that rewrites no object and "
        "wakes no watcher), and look at capacity this often even without a change event: the Cluster's "
        "status is PATCHed only when what it reports (capacity, conditions, versions) changed. The hub "
        "marks a cluster NotReady after a few missed renewals; 15 s keeps a lost cluster detectable within "
        "about a minute.",
    )
    report_nodes: bool = Field(
        default=True,
        description="Include the per-node free list in each pool (placement needs it to know whether one "
        "node can host a whole replica). Turn off only for clusters with thousands of GPU nodes.",
    )


class LeaseSettings(_Group):
    """The cluster's lease on the hub, and self-fencing when it cannot be renewed.

    The rule that makes "never two copies" hold: the hub's cluster timeout
    (FLEETPLANE_CLUSTER_TIMEOUT_SECONDS, default 45 s) must be at least durationSeconds plus a
    grace of one heartbeat (the time the agent needs to stop its copies). The defaults give
    30 + 15 = 45. The agent learns the hub's timeout from each renewal and warns when the rule
    does not hold."""

    duration_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds (T). An agent that could not renew its lease for this long stops its "
        "failover: Replace workloads (scales them to zero, suspends Jobs), because the hub is about to "
        "re-place them elsewhere. Two heartbeats at the default 15 s: one lost renewal never fences, and "
        "T + one heartbeat of grace fits the hub's default 45 s timeout.",
    )
    self_fencing: bool = Field(
        default=True,
        description="Stop failover: Replace workloads when the lease is lost. Turning it off brings back "
        "two copies during a network partition (the hub re-places, this cluster keeps running).",
    )
    restore_hold_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Seconds. A copy stopped while fenced keeps its GPUs counted as allocated in the capacity "
        "report until its restored pods are bound again (else the hub books them for another workload first). "
        "This caps how long after the fence lifts: a copy whose pods cannot all bind again (its spec shrank, a "
        "node is gone) must not hide free GPUs for good. Two minutes leaves a busy spoke's controllers and "
        "scheduler ample time to recreate and bind pods, which takes seconds.",
    )


class AllowedKind(_Group):
    """One kind the agent may apply: `group` is empty for the core API group."""

    group: str = ""
    kind: str

    def matches(self, api_version: str, kind: str) -> bool:
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        return group == self.group and kind == self.kind


def _default_kinds() -> list[AllowedKind]:
    # Workload kinds AI teams ship, plus the namespaced helpers they come with. Nothing
    # cluster-scoped and nothing granting permissions (Roles, bindings): a hub credential
    # must never be a way to escalate privileges on a member cluster.
    return [
        AllowedKind(group="batch", kind="Job"),
        AllowedKind(group="apps", kind="Deployment"),
        AllowedKind(group="apps", kind="StatefulSet"),
        AllowedKind(group="", kind="Pod"),
        AllowedKind(group="", kind="Service"),
        AllowedKind(group="", kind="ConfigMap"),
        AllowedKind(group="kubeflow.org", kind="PyTorchJob"),
        AllowedKind(group="ray.io", kind="RayJob"),
        AllowedKind(group="jobset.x-k8s.io", kind="JobSet"),
    ]


class DeliverySettings(_Group):
    """What the agent may apply for the hub, and how."""

    field_manager: str = Field(
        default="fleetplane-agent",
        description="Server-side apply field manager; lets people see which fields the agent owns.",
    )
    allowed_kinds: list[AllowedKind] = Field(
        default_factory=_default_kinds,
        description="Kinds the agent applies; any other kind rejects the whole Assignment. The Helm "
        "chart's RBAC grants exactly these.",
    )
    allowed_namespaces: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Glob patterns of namespaces manifests may target.",
    )
    denied_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-*", "fleetplane-system"],
        description="Glob patterns refused even if allowed: the system namespaces and the agent's own, "
        "so a hub user cannot read the agent's credential or disturb the cluster's plumbing.",
    )
    create_namespaces: bool = Field(
        default=True,
        description="Create an allowed target namespace if it is missing (hub team namespaces are "
        "mirrored on the spoke). Needs the namespaces/create RBAC rule.",
    )
    workers: int = Field(
        default=4,
        ge=1,
        description="Assignments reconciled concurrently. Each reconcile is a few API calls; 4 keeps a "
        "small apiserver comfortable while a resync of 1,000 Assignments takes seconds.",
    )
    retry_backoff_max_seconds: float = Field(
        default=60.0,
        description="Seconds. Cap of the per-Assignment retry backoff after a temporary failure.",
    )

    def kind_allowed(self, api_version: str, kind: str) -> bool:
        return any(k.matches(api_version, kind) for k in self.allowed_kinds)

    def namespace_allowed(self, namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in self.denied_namespaces):
            return False
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.allowed_namespaces)


class StateSettings(_Group):
    """Where the agent keeps its cluster credential."""

    secret: str = Field(
        default="fleetplane-system/fleetplane-agent",
        description="namespace/name of the spoke Secret holding the hub credential (and, before the "
        "first join, the join token). The Helm chart creates it in the release namespace.",
    )


class AgentConfig(_Group):
    """The whole `--config` file."""

    hub: HubSettings = Field(default_factory=HubSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    state: StateSettings = Field(default_factory=StateSettings)

    @classmethod
    def load(cls, path: str | Path | None) -> AgentConfig:
        if path is None:
            return cls()
        data: Any = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)
