"""The hub's Queue / PriorityClass / submission rules as pure functions (hub.registry.queues),
table by table; tests/api/test_queue_objects.py checks the same rules through a real hub."""

from __future__ import annotations

from typing import Any

import pytest

from hub.registry.queues import (
    QueueIndex,
    classes_of,
    default_for_causes,
    global_default_causes,
    line,
    priority_class_causes,
    queue_causes,
    queue_refusal,
    submission_changed,
)

Obj = dict[str, Any]


def a_queue(name: str, **spec: Any) -> Obj:
    spec.setdefault(
        "resourceGroups", [{"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 16}]}]
    )
    return {"apiVersion": "fleetplane.io/v1alpha1", "kind": "Queue", "metadata": {"name": name}, "spec": spec}


def a_flavor(**f: Any) -> Obj:
    return {"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 16, **f}


def a_class(name: str, value: int, default: bool = False) -> Obj:
    return {"kind": "PriorityClass", "metadata": {"name": name}, "value": value, "globalDefault": default}


def a_workload(
    name: str,
    ns: str = "ml",
    *,
    queue: str | None = None,
    cls: str | None = None,
    priority: int | None = None,
    created: str = "2025-01-01T00:00:00Z",
    gpus: int = 8,
    replicas: int = 1,
    status: Obj | None = None,
    deleting: bool = False,
) -> Obj:
    meta: Obj = {"name": name, "namespace": ns, "creationTimestamp": created}
    if cls:
        meta["labels"] = {"fleetplane.io/priority-class": cls}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-02T00:00:00Z"
    spec: Obj = {"replicas": replicas, "gpu": {"count": gpus}, "manifests": [{}]}
    if queue:
        spec["queue"] = queue
    if priority is not None:
        spec["priority"] = priority
    obj: Obj = {"metadata": meta, "spec": spec}
    if status:
        obj["status"] = status
    return obj


# ------------------------------------------------------------------ a Queue on its own


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        # The engine's rules (placement.queueing.model.Queue), named by their wire field.
        (
            {"cohort": "c", "resourceGroups": [{"flavors": [a_flavor(nominalQuota=16, lendingLimit=20)]}]},
            "spec.resourceGroups[0].flavors[0].lendingLimit",
            "20 exceeds nominalQuota 16",
        ),
        (
            {"resourceGroups": [{"flavors": [a_flavor(borrowingLimit=4)]}]},
            "spec.resourceGroups[0].flavors[0].borrowingLimit",
            "needs spec.cohort",
        ),
        (
            {"resourceGroups": [{"flavors": [a_flavor(lendingLimit=0)]}]},
            "spec.resourceGroups[0].flavors[0].lendingLimit",
            "needs spec.cohort",
        ),
        (
            {"resourceGroups": [{"flavors": [a_flavor()]}, {"flavors": [a_flavor(gpuModel="h100-80gb")]}]},
            "spec.resourceGroups[1].flavors[0]",
            "already listed at spec.resourceGroups[0].flavors[0]",
        ),
        # The hub's own: a default namespace must be one that may use the queue.
        ({"namespaces": ["ml"], "defaultFor": ["ml", "web"]}, "spec.defaultFor[1]", 'namespace "web" is not in'),
    ],
)
def test_a_bad_queue_is_refused_with_the_wire_field(spec: Obj, field: str, says: str) -> None:
    causes = queue_causes(a_queue("research", **spec))
    assert [c["field"] for c in causes] == [field]
    assert says in causes[0]["message"]


def test_a_good_queue_has_no_causes() -> None:
    good = a_queue(
        "research",
        cohort="c",
        namespaces=["ml"],
        defaultFor=["ml"],
        resourceGroups=[{"flavors": [a_flavor(borrowingLimit=8, lendingLimit=4), a_flavor(capacityType="spot")]}],
    )
    assert queue_causes(good) == []


@pytest.mark.parametrize(
    ("mine", "others", "expected"),
    [
        (["ml"], [a_queue("a", defaultFor=["ml"])], [("spec.defaultFor[0]", 'Queue "a"')]),
        (
            ["web", "ml"],
            [a_queue("a", defaultFor=["x"]), a_queue("b", defaultFor=["ml"])],
            [("spec.defaultFor[1]", 'Queue "b"')],
        ),
        (["ml"], [a_queue("research", defaultFor=["ml"])], []),  # itself (an update)
        (["ml"], [a_queue("a", defaultFor=["web"])], []),
        ([], [a_queue("a", defaultFor=["ml"])], []),
    ],
)
def test_a_namespace_defaults_to_one_queue_only(
    mine: list[str], others: list[Obj], expected: list[tuple[str, str]]
) -> None:
    causes = default_for_causes(a_queue("research", defaultFor=mine), others)
    assert [c["field"] for c in causes] == [f for f, _ in expected]
    for c, (_, other) in zip(causes, expected, strict=True):
        assert f"already defaults to {other}" in c["message"]


@pytest.mark.parametrize(
    ("mine", "others", "named"),
    [
        (a_class("urgent", 1000, True), [a_class("batch", 10, True)], "batch"),
        (a_class("urgent", 1000, True), [a_class("batch", 10), a_class("urgent", 5, True)], None),  # itself
        (a_class("urgent", 1000, False), [a_class("batch", 10, True)], None),
        (a_class("urgent", 1000, True), [], None),
    ],
)
def test_only_one_priority_class_is_the_global_default(mine: Obj, others: list[Obj], named: str | None) -> None:
    causes = global_default_causes(mine, others)
    if named is None:
        assert causes == []
    else:
        assert [c["field"] for c in causes] == ["globalDefault"]
        assert f'PriorityClass "{named}" is already the global default' in causes[0]["message"]


# ------------------------------------------------------------------ submission


@pytest.mark.parametrize(
    ("namespaces", "ns", "refused"),
    [
        (None, "ml", False),  # absent: every namespace
        (["ml"], "ml", False),
        (["ml", "web"], "web", False),
        (["ml"], "team-b", True),
        ([], "ml", True),
    ],
)
def test_a_queue_accepts_only_the_namespaces_it_lists(namespaces: list[str] | None, ns: str, refused: bool) -> None:
    q = a_queue("research") if namespaces is None else a_queue("research", namespaces=namespaces)
    why = queue_refusal(a_workload("w", ns, queue="research"), q)
    assert (why is not None) == refused
    if why:
        assert why.startswith('spec.queue: Queue "research"') and f'namespace "{ns}"' in why


def test_a_queue_that_does_not_exist_yet_accepts_the_workload() -> None:
    assert queue_refusal(a_workload("w", queue="later"), None) is None


def test_an_unknown_priority_class_is_named_with_the_known_ones() -> None:
    classes = classes_of([a_class("urgent", 1000), a_class("batch", 10)])
    (cause,) = priority_class_causes(a_workload("w", cls="urgnet"), classes)
    assert cause["field"] == "metadata.labels[fleetplane.io/priority-class]"
    assert cause["message"] == 'unknown PriorityClass "urgnet" (known: batch, urgent)'
    assert priority_class_causes(a_workload("w", cls="urgent"), classes) == []
    assert priority_class_causes(a_workload("w"), classes) == []
    # Unknown even with a spec.priority override: the label is still wrong (Kubernetes' rule).
    assert priority_class_causes(a_workload("w", cls="nope", priority=5), {})[0]["message"].endswith(
        "(known: none defined)"
    )


@pytest.mark.parametrize(
    ("old", "new", "checked"),
    [
        (None, a_workload("w"), True),  # a create
        (a_workload("w", queue="a"), a_workload("w", queue="a", gpus=4), False),  # other fields only
        (a_workload("w", queue="a"), a_workload("w", queue="b"), True),
        (a_workload("w"), a_workload("w", cls="urgent"), True),
        (a_workload("w", cls="urgent"), a_workload("w", cls="urgent", priority=3), False),
    ],
)
def test_submission_rules_are_checked_when_queue_or_class_change(old: Obj | None, new: Obj, checked: bool) -> None:
    assert submission_changed(old, new) == checked


# ------------------------------------------------------------------ resolving and the line

INDEX = QueueIndex.of(
    [a_queue("research", namespaces=["ml"], defaultFor=["ml"]), a_queue("open")],
    [a_class("urgent", 1000), a_class("batch", 10), a_class("normal", 100, True)],
)


@pytest.mark.parametrize(
    ("w", "queue", "priority"),
    [
        (a_workload("a"), "research", 100),  # the default queue; the global-default class
        (a_workload("b", queue="open"), "open", 100),
        (a_workload("c", "web"), None, 100),  # no queue defaults for web
        (a_workload("d", cls="urgent"), "research", 1000),
        (a_workload("e", cls="urgent", priority=0), "research", 0),  # spec.priority overrides, even 0
        (a_workload("f", cls="deleted-since"), "research", 100),  # a class gone counts as absent
    ],
)
def test_a_workloads_queue_and_priority_are_resolved(w: Obj, queue: str | None, priority: int) -> None:
    assert INDEX.queue_of(w) == queue
    assert INDEX.priority_of(w) == priority


@pytest.mark.parametrize(
    ("w", "state"),
    [
        (a_workload("a"), "Waiting"),
        (a_workload("a", deleting=True), "Deleting"),
        (a_workload("a", status={"phase": "Succeeded"}), "Finished"),
        (a_workload("a", status={"phase": "Pending", "admission": {"queue": "research", "gpus": 8}}), "Admitted"),
        # Running without an admission record: evicted, its copies gone, back in its queue
        # (phase never moves backward); it waits like any other (hub.controllers.queueing.holding).
        (
            a_workload("a", status={"phase": "Running", "placement": {"clusters": [{"name": "c", "replicas": 1}]}}),
            "Waiting",
        ),
        (a_workload("a", "web"), "NoQueue"),
        (a_workload("a", queue="missing"), "Inadmissible"),
        (a_workload("a", "web", queue="research"), "Inadmissible"),  # web may not use research
        (a_workload("a", cls="deleted-since"), "Inadmissible"),  # its priority cannot be resolved
    ],
)
def test_only_a_workload_in_its_queues_line_is_waiting(w: Obj, state: str) -> None:
    assert INDEX.state(w)[0] == state


def test_the_line_is_priority_then_creation_then_name_with_positions_counting_everyone() -> None:
    workloads = [
        a_workload("late-normal", created="2025-01-01T00:00:09Z"),  # 100
        a_workload("b-early", created="2025-01-01T00:00:01Z"),  # 100
        a_workload("a-early", created="2025-01-01T00:00:01Z"),  # 100, same time: by name
        a_workload("hot", cls="urgent", created="2025-01-01T00:00:30Z"),  # 1000
        a_workload("low", cls="batch", created="2025-01-01T00:00:00Z", gpus=2, replicas=3),  # 10
        a_workload("running", status={"admission": {"queue": "research"}}),  # not waiting
        a_workload("elsewhere", queue="open"),  # another queue
    ]
    got = line("research", workloads, INDEX)
    # position, name, priority, aheadHigherPriority (waiting ones ahead with a higher priority)
    assert [(e.position, e.name, e.priority, e.ahead_higher) for e in got] == [
        (1, "hot", 1000, 0),
        (2, "a-early", 100, 1),
        (3, "b-early", 100, 1),
        (4, "late-normal", 100, 1),
        (5, "low", 10, 4),
    ]
    assert got[-1].gpus == 6  # 3 replicas × 2
    assert [e.name for e in line("open", workloads, INDEX)] == ["elsewhere"]
