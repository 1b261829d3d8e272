"""Queues for the placement engine: quotas per GPU flavor, cohort borrowing and lending,
weighted fair share, priorities and preemption — pure and I/O-free like the engine.

The public API (docs/queues.md):

- model: :class:`Queue`, :class:`FlavorQuota`, :class:`Flavor`, :class:`PreemptionPolicy`,
  :class:`PriorityClass`, :func:`resolve_priority`, :class:`QueuedWorkload` (pending),
  :class:`AdmittedWorkload` (holding quota now)
- ``Admission(queues, profile).decide(snapshot, pending, admitted, reservations)
  -> AdmissionResult`` (decisions per workload with reasons and positions, evictions,
  per-queue usage)
- :class:`QuotaBook` / :class:`QuotaStatus`: the per-flavor quota arithmetic on its own
- :mod:`placement.queueing.convert`: Queue / PriorityClass manifests to the model
"""

from placement.queueing.admission import (
    Admission,
    AdmissionDecision,
    AdmissionResult,
    FlavorAttempt,
    QueueSummary,
)
from placement.queueing.model import (
    PRIORITY_CLASS_LABEL,
    AdmittedWorkload,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    PriorityClass,
    Queue,
    QueuedWorkload,
    resolve_priority,
)
from placement.queueing.preemption import Eviction
from placement.queueing.quota import QuotaBook, QuotaStatus

__all__ = [
    "PRIORITY_CLASS_LABEL",
    "Admission",
    "AdmissionDecision",
    "AdmissionResult",
    "AdmittedWorkload",
    "Eviction",
    "Flavor",
    "FlavorAttempt",
    "FlavorQuota",
    "PreemptionPolicy",
    "PriorityClass",
    "Queue",
    "QueueSummary",
    "QueuedWorkload",
    "QuotaBook",
    "QuotaStatus",
    "resolve_priority",
]
