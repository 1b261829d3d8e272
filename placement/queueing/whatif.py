"""What-if admission: ``fleetplane place -f fleet.yaml -f queues.yaml -f workloads.yaml``.

When the manifests include Queue objects, the CLI admits before it places: this module turns
the manifests into an admission pass (Workloads that are Placed or Running hold quota; the
rest are pending) and renders the AdmissionReport as a table, JSON or YAML.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from placement.manifests import Manifests, inputs_from_manifests
from placement.profiles import Profile
from placement.queueing.admission import Admission, AdmissionDecision, AdmissionResult
from placement.queueing.convert import (
    admitted_from_api,
    is_holding_quota,
    priority_classes_from_api,
    queue_from_api,
    queued_from_api,
)
from placement.queueing.model import AdmittedWorkload, QueuedWorkload


def admission_from_manifests(found: Manifests, profile: Profile | str = "default") -> AdmissionResult:
    """One admission pass over the manifests' fleet, queues and workloads."""
    snapshot, requests = inputs_from_manifests(found)
    classes = priority_classes_from_api(found.priority_classes)
    admission = Admission([queue_from_api(q) for q in found.queues], profile)
    pending: list[QueuedWorkload] = []
    admitted: list[AdmittedWorkload] = []
    for i, (w, request) in enumerate(zip(found.workloads, requests, strict=True)):
        queued = queued_from_api(w, request, classes, i)
        if is_holding_quota(w):
            name = queued.queue or admission.default_for.get(request.namespace)
            queue = admission.queues.get(name) if name else None
            admitted.append(admitted_from_api(w, queued, queue, snapshot, i))
        else:
            pending.append(queued)
    return admission.decide(snapshot, pending, admitted)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _placement(d: AdmissionDecision) -> str:
    parts = [
        f"{x.cluster}: {x.replicas}× {x.capacity_type} {x.gpu_model}" if x.pool else f"{x.cluster}: {x.replicas}×"
        for x in d.assignments
    ]
    return ", ".join(parts) or "-"


def render_table(result: AdmissionResult) -> str:
    """Decisions, then each queue's usage per flavor, then the evictions."""
    rows = [["WORKLOAD", "QUEUE", "PRIORITY", "GPUS", "PHASE", "FLAVOR", "PLACEMENT", "REASON"]]
    for d in result.decisions:
        if d.admitted:
            why = ("evicts " + ", ".join(v.key for v in d.victims)) if d.victims else ""
        else:
            why = d.message
        rows.append(
            [
                d.key,
                d.queue or "-",
                str(d.workload.priority),
                str(d.workload.gpus),
                d.phase,
                str(d.flavor.flavor) if d.flavor else "-",
                _placement(d),
                why,
            ]
        )
    out = _columns(rows)
    rows = [["QUEUE", "COHORT", "WEIGHT", "STRATEGY", "PENDING", "ADMITTED", "FLAVOR", "USED/NOMINAL", "AVAILABLE"]]
    for s in result.queues:
        q = s.queue
        head = [q.name, q.cohort or "-", f"{q.weight:g}", q.strategy, str(s.pending), str(s.admitted)]
        for i, u in enumerate(s.usage or [None]):
            cells = head if i == 0 else [""] * len(head)
            if u is None:
                rows.append([*cells, "-", "-", "-"])
            else:
                rows.append([*cells, str(u.flavor), f"{u.used}/{u.nominal}", str(u.available)])
    out += ["", *_columns(rows)]
    if result.evictions:
        rows = [["EVICTED", "QUEUE", "PRIORITY", "GPUS", "REASON"]]
        rows += [
            [e.key, e.workload.queue, str(e.workload.priority), str(e.workload.gpus), e.reason]
            for e in result.evictions
        ]
        out += ["", *_columns(rows)]
    return "\n".join(out)


def render(result: AdmissionResult, output: str, profile: str) -> str:
    if output == "table":
        return render_table(result)
    doc: dict[str, Any] = {**result.to_dict(), "profile": profile}
    if output == "json":
        return json.dumps(doc, indent=2)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
