"""The hub's rules for Queues, PriorityClasses and the Workloads that use them: pure functions
over stored objects, table-tested in tests/unit/hub/test_queue_rules.py.

The lifecycle (hub.registry.lifecycle, `RegistryTx`) calls the write rules with what it read in
the write's own transaction; the REST API (hub.web.rest) builds its queue views from the read
rules. Nothing here re-decides what the engine decides: a Queue's own fields are checked by
`placement.queueing.convert.queue_from_api` (its `PlacementInputError` names the wire field)
and a priority is `placement.queueing.resolve_priority`.

Write rules (docs/queues.md, "On the hub"):

- a Queue: the engine's rules; every `spec.defaultFor` namespace in `spec.namespaces` when that
  is set; no namespace in two Queues' `spec.defaultFor`;
- a PriorityClass: at most one with `globalDefault: true`;
- a Workload (written by anyone but the hub's controllers): `spec.queue` naming a Queue whose
  `spec.namespaces` leaves out the workload's namespace is refused to teams (403); the
  `fleetplane.io/priority-class` label must name a PriorityClass that exists (422).

Read rules: a workload's queue (`spec.queue`, else the Queue whose `defaultFor` lists its
namespace), its priority, whether it waits, and a queue's line of waiting workloads in the
admission order (priority, then creation, then namespace/name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import PRIORITY_CLASS_LABEL
from placement.errors import PlacementInputError
from placement.queueing import PriorityClass, resolve_priority
from placement.queueing.convert import queue_from_api

Obj = dict[str, Any]
Cause = dict[str, str]


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _name(o: Obj) -> str:
    return str(_dict(o.get("metadata")).get("name") or "")


def _namespace(o: Obj) -> str:
    return str(_dict(o.get("metadata")).get("namespace") or "")


def _spec(o: Obj) -> dict[str, Any]:
    return _dict(o.get("spec"))


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "field": field, "message": message}


# ------------------------------------------------------------------ Queue and PriorityClass writes


def queue_causes(queue: Obj) -> list[Cause]:
    """What is wrong with one Queue on its own (schema-valid already), one cause per field."""
    try:
        queue_from_api(v1.Queue.model_validate(queue))
    except PlacementInputError as exc:
        return [_cause(exc.field, exc.detail)]
    spec = _spec(queue)
    allowed = spec.get("namespaces")
    if allowed is None:
        return []
    # A namespace whose workloads land here by default but may not use it would wait forever.
    return [
        _cause(f"spec.defaultFor[{i}]", f'namespace "{ns}" is not in spec.namespaces ({", ".join(allowed) or "none"})')
        for i, ns in enumerate(spec.get("defaultFor") or [])
        if ns not in allowed
    ]


def spec_changed(old: Obj | None, new: Obj) -> bool:
    return old is None or _spec(old) != _spec(new)


def default_for(queue: Obj) -> list[str]:
    return [str(ns) for ns in _spec(queue).get("defaultFor") or []]


def default_for_claimed(old: Obj | None, new: Obj) -> list[str]:
    """Namespaces `new` lists in spec.defaultFor that `old` did not (those need the others read)."""
    before = set(default_for(old)) if old is not None else set()
    return sorted(set(default_for(new)) - before)


def default_for_causes(queue: Obj, others: Iterable[Obj]) -> list[Cause]:
    """A namespace may default to one Queue only: name the Queue that already has it."""
    me = _name(queue)
    owner: dict[str, str] = {}
    for other in sorted(others, key=_name):
        if _name(other) != me:
            for ns in default_for(other):
                owner.setdefault(ns, _name(other))
    return [
        _cause(
            f"spec.defaultFor[{i}]",
            f'namespace "{ns}" already defaults to Queue "{owner[ns]}" (remove it there first)',
            "FieldValueDuplicate",
        )
        for i, ns in enumerate(default_for(queue))
        if ns in owner
    ]


def becomes_global_default(old: Obj | None, new: Obj) -> bool:
    return bool(new.get("globalDefault")) and not (old is not None and old.get("globalDefault"))


def global_default_causes(pc: Obj, others: Iterable[Obj]) -> list[Cause]:
    """At most one PriorityClass is the global default: name the one that is."""
    if not pc.get("globalDefault"):
        return []
    existing = sorted(_name(o) for o in others if o.get("globalDefault") and _name(o) != _name(pc))
    if not existing:
        return []
    return [
        _cause(
            "globalDefault",
            f'PriorityClass "{existing[0]}" is already the global default; only one class may be '
            "(set its globalDefault to false first)",
            "FieldValueForbidden",
        )
    ]


# ------------------------------------------------------------------ Workload writes


def priority_class_label(workload: Obj) -> str | None:
    labels = _dict(_dict(workload.get("metadata")).get("labels"))
    value = labels.get(PRIORITY_CLASS_LABEL)
    return str(value) if value else None


def submission_changed(old: Obj | None, new: Obj) -> bool:
    """Whether a write sets or changes what the submission rules look at (queue, class label).

    Checked only then: an existing workload stays editable after a Queue narrows its
    namespaces or a class is deleted (the admission controller then says why it waits)."""
    if old is None:
        return True
    return _spec(old).get("queue") != _spec(new).get("queue") or priority_class_label(old) != priority_class_label(new)


def queue_refusal(workload: Obj, queue: Obj | None) -> str | None:
    """Why `workload` may not name `queue` in spec.queue (None: it may, or the queue does not
    exist yet: then it waits, as in Kueue, and the controller says the queue is missing)."""
    if queue is None:
        return None
    allowed = _spec(queue).get("namespaces")
    ns = _namespace(workload)
    if allowed is None or ns in allowed:
        return None
    return (
        f'spec.queue: Queue "{_name(queue)}" does not accept workloads from namespace "{ns}" '
        f"(its spec.namespaces: {', '.join(allowed) or 'none'}); submit to another queue or ask an admin"
    )


def classes_of(objs: Iterable[Obj]) -> dict[str, PriorityClass]:
    """Stored PriorityClasses as the engine's model (schema-valid already)."""
    out: dict[str, PriorityClass] = {}
    for o in objs:
        pc = PriorityClass(_name(o), int(o.get("value") or 0), bool(o.get("globalDefault")))
        out[pc.name] = pc
    return out


def priority_class_causes(workload: Obj, classes: Mapping[str, PriorityClass]) -> list[Cause]:
    """The class label must name a stored PriorityClass (the engine's message lists the known)."""
    label = priority_class_label(workload)
    if label is None:
        return []
    try:
        resolve_priority(_name(workload), None, label, classes)
    except PlacementInputError as exc:
        return [_cause(exc.field, exc.detail, "FieldValueNotFound")]
    return []


# ------------------------------------------------------------------ reads: queue, priority, the line

State = Literal["Waiting", "Admitted", "Finished", "Deleting", "NoQueue", "Inadmissible"]


@dataclass(frozen=True)
class QueueIndex:
    """The stored Queues and PriorityClasses, indexed for resolving workloads."""

    queues: Mapping[str, Obj]
    default_for: Mapping[str, str]
    classes: Mapping[str, PriorityClass]

    @staticmethod
    def of(queues: Iterable[Obj], classes: Iterable[Obj]) -> QueueIndex:
        by_name = {_name(q): q for q in queues}
        defaults: dict[str, str] = {}
        for name in sorted(by_name):  # first by name, should two Queues claim one namespace
            for ns in default_for(by_name[name]):
                defaults.setdefault(ns, name)
        return QueueIndex(by_name, defaults, classes_of(classes))

    def queue_of(self, workload: Obj) -> str | None:
        """`spec.queue`, else the Queue whose defaultFor lists the namespace, else None."""
        return _spec(workload).get("queue") or self.default_for.get(_namespace(workload))

    def priority_of(self, workload: Obj) -> int:
        """The resolved priority; a class deleted since the workload named it counts as absent."""
        override = _spec(workload).get("priority")
        label = priority_class_label(workload)
        if label is not None and label not in self.classes:
            label = None
        return resolve_priority(_name(workload), override, label, self.classes)

    def state(self, workload: Obj) -> tuple[State, str | None, str]:
        """(state, queue, why) of one workload: Waiting only when it is in its queue's line."""
        queue = self.queue_of(workload)
        meta, st = _dict(workload.get("metadata")), _dict(workload.get("status"))
        if meta.get("deletionTimestamp"):
            return "Deleting", queue, "it is being deleted"
        if st.get("phase") in ("Succeeded", "Failed"):
            return "Finished", queue, f"it finished ({st['phase']})"
        admission = _dict(st.get("admission"))
        if admission:
            return "Admitted", admission.get("queue") or queue, f'admitted by Queue "{admission.get("queue") or queue}"'
        if queue is None:
            return (
                "NoQueue",
                None,
                f'not queued: spec.queue is empty and no Queue lists namespace "{_namespace(workload)}" '
                "in spec.defaultFor (it is placed without quota)",
            )
        q = self.queues.get(queue)
        if q is None:
            return "Inadmissible", queue, f'Queue "{queue}" does not exist'
        allowed = _spec(q).get("namespaces")
        if allowed is not None and _namespace(workload) not in allowed:
            return "Inadmissible", queue, f'namespace "{_namespace(workload)}" may not submit to Queue "{queue}"'
        label = priority_class_label(workload)
        if label is not None and label not in self.classes:
            # The controller cannot resolve its priority either: it marks it inadmissible.
            return "Inadmissible", queue, f'unknown PriorityClass "{label}"'
        return "Waiting", queue, st.get("message") or "waiting for admission"


@dataclass(frozen=True)
class LineEntry:
    """One waiting workload's place in its queue's line."""

    namespace: str
    name: str
    position: int
    """1-based, counting every waiting workload of the queue (whoever may see them)."""
    priority: int
    gpus: int
    ahead_higher: int
    """Waiting workloads ahead of it with a higher priority."""
    message: str | None
    created: str


def gpus_of(workload: Obj) -> int:
    spec = _spec(workload)
    return int(spec.get("replicas") or 1) * int(_dict(spec.get("gpu")).get("count") or 0)


def line(queue: str, workloads: Iterable[Obj], index: QueueIndex) -> list[LineEntry]:
    """The queue's waiting workloads in admission order: priority (highest first), then
    creation, then namespace/name — the order of `placement.queueing.Admission.decide`."""
    waiting = []
    for w in workloads:
        state, q, _ = index.state(w)
        if state == "Waiting" and q == queue:
            created = str(_dict(w.get("metadata")).get("creationTimestamp") or "")
            waiting.append((-index.priority_of(w), created, f"{_namespace(w)}/{_name(w)}", w))
    waiting.sort(key=lambda t: t[:3])
    out: list[LineEntry] = []
    first_of_priority = 0
    last: int | None = None
    for i, (neg, created, _, w) in enumerate(waiting):
        if -neg != last:
            first_of_priority, last = i, -neg
        out.append(
            LineEntry(
                namespace=_namespace(w),
                name=_name(w),
                position=i + 1,
                priority=-neg,
                gpus=gpus_of(w),
                ahead_higher=first_of_priority,
                message=_dict(w.get("status")).get("message"),
                created=created,
            )
        )
    return out
