"""Phase of an Assignment from the objects applied for it (pure functions, no I/O).

Each applied object gets a phase from its own status (Job conditions, Deployment
availability, Pod phase; any other kind is Applied once it exists). The Assignment's phase
is the most urgent of them: Failed > Pending > Running > Succeeded > Applied, so a gang of
one Running and one Pending Job reads Pending, and a Job that finished next to a ConfigMap
reads Succeeded. Pending carries a reason from the pods when there is one: Unschedulable (the
scheduler found no node), or Preempted / NodeLost when a pod's node disappeared (a spot
reclaim) and the workload is waiting to run again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Urgency order: the Assignment shows the first that any object is in.
_ORDER = ("Failed", "Pending", "Running", "Succeeded", "Applied")


@dataclass(frozen=True)
class Interruption:
    """A pod of the Assignment lost its node (or was evicted to free it)."""

    reason: str  # Preempted (spot capacity reclaimed) or NodeLost
    message: str


@dataclass
class ObjectPhase:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    phase: str
    message: str | None = None
    reason: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "phase": self.phase,
        }
        if self.namespace:
            out["namespace"] = self.namespace
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class AssignmentPhase:
    phase: str
    reason: str | None = None
    message: str | None = None
    objects: list[ObjectPhase] = field(default_factory=list)

    def to_status(self, observed_epoch: int | None) -> dict[str, Any]:
        """The AssignmentStatus dict (camelCase) without updatedAt."""
        return {
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "observedEpoch": observed_epoch,
            "objects": [o.to_api() for o in self.objects],
        }


def _conditions(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (body.get("status") or {}).get("conditions") or []}


def pod_pending_reason(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) explaining why pods are not running yet, if the pods say so."""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Running", "Succeeded", "Failed"):
            continue
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                reason = cond.get("reason") or "Unschedulable"
                return reason, cond.get("message") or "the scheduler found no node for the pod"
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in {
                "ImagePullBackOff",
                "ErrImagePull",
                "CrashLoopBackOff",
                "CreateContainerConfigError",
            }:
                return waiting["reason"], waiting.get("message") or waiting["reason"]
    return None


def job_phase(body: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> tuple[str, str | None, str | None]:
    """(phase, reason, message) of a batch/v1 Job."""
    conds = _conditions(body)
    status = body.get("status") or {}
    for ctype in ("Complete", "SuccessCriteriaMet"):
        if (conds.get(ctype) or {}).get("status") == "True":
            return "Succeeded", None, None
    for ctype in ("Failed", "FailureTarget"):
        cond = conds.get(ctype) or {}
        if cond.get("status") == "True":
            return "Failed", cond.get("reason") or "JobFailed", cond.get("message")
    if (conds.get("Suspended") or {}).get("status") == "True" or (body.get("spec") or {}).get("suspend"):
        return "Pending", "Suspended", "the Job is suspended"
    pending = pod_pending_reason(pods)
    ready = int(status.get("ready") or 0)
    running_pods = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    if pending is None and (ready > 0 or running_pods > 0):
        return "Running", None, None
    if pending:
        return "Pending", pending[0], pending[1]
    if int(status.get("active") or 0) > 0 and not pods:
        # The Job counts active pods but the agent has not seen them: trust the Job.
        return "Running", None, None
    return "Pending", None, "waiting for the Job's pods to start"


def deployment_phase(body: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> tuple[str, str | None, str | None]:
    """(phase, reason, message) of an apps/v1 Deployment or StatefulSet (never terminal)."""
    conds = _conditions(body)
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    progressing = conds.get("Progressing") or {}
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "Failed", "ProgressDeadlineExceeded", progressing.get("message")
    ready = int(status.get("readyReplicas") or 0)
    available = (conds.get("Available") or {}).get("status") == "True"
    if ready >= want and (available or body.get("kind") == "StatefulSet"):
        return "Running", None, None
    pending = pod_pending_reason(pods)
    if pending:
        return "Pending", pending[0], pending[1]
    return "Pending", None, f"{ready}/{want} replicas ready"


def pod_phase(body: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    status = body.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in ("Succeeded", "Failed", "Running"):
        return phase, status.get("reason"), status.get("message")
    pending = pod_pending_reason([body])
    return "Pending", pending[0] if pending else None, pending[1] if pending else None


def object_phase(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    body: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
) -> ObjectPhase:
    """Phase of one applied object; `pods` are the Assignment's pods (used for Job/Deployment reasons)."""
    if body is None:
        return ObjectPhase(api_version, kind, name, namespace, "Pending", "not found on the cluster yet")
    group = api_version.split("/")[0] if "/" in api_version else ""
    if (group, kind) == ("batch", "Job"):
        phase, reason, message = job_phase(body, pods)
    elif (group, kind) in {("apps", "Deployment"), ("apps", "StatefulSet")}:
        phase, reason, message = deployment_phase(body, pods)
    elif (group, kind) == ("", "Pod"):
        phase, reason, message = pod_phase(body)
    else:
        phase, reason, message = "Applied", None, None
    return ObjectPhase(api_version, kind, name, namespace, phase, message, reason)


def assignment_phase(
    objects: list[ObjectPhase],
    interruptions: Iterable[Interruption] = (),
) -> AssignmentPhase:
    """Combine object phases into the Assignment's phase, reason and message."""
    if not objects:
        return AssignmentPhase("Applied", None, "no objects")
    phase = min((o.phase for o in objects), key=_ORDER.index)
    culprit = next(o for o in objects if o.phase == phase)
    reason, message = culprit.reason, culprit.message
    if phase in ("Pending", "Failed"):
        lost = list(interruptions)
        if lost:
            # A node disappeared under the workload: that is the news, not the scheduler's
            # follow-up "Unschedulable" for the replacement pod.
            reason = lost[-1].reason
            message = lost[-1].message + (f"; now: {culprit.message}" if culprit.message else "")
    if message and culprit.kind and phase not in ("Running", "Succeeded", "Applied"):
        message = f"{culprit.kind} {culprit.name}: {message}"
    return AssignmentPhase(phase, reason, message, objects)
