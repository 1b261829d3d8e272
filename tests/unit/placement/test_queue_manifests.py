"""Queue and PriorityClass manifests: what they mean, and errors naming the object and field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetplane_types import v1alpha1 as v1
from placement import PlacementInputError
from placement.manifests import parse_objects
from placement.queueing import Flavor, FlavorQuota, PreemptionPolicy, PriorityClass, Queue
from placement.queueing.convert import priority_classes_from_api, queue_from_api, workload_priority

TEAM_A = """
apiVersion: fleetplane.io/v1alpha1
kind: Queue
metadata: {name: team-a}
spec:
  cohort: research
  namespaces: [team-a]
  defaultFor: [team-a]
  fairSharing: {weight: 2}
  queueingStrategy: StrictFIFO
  preemption: {withinQueue: LowerPriority, reclaimWithinCohort: Any}
  resourceGroups:
    - flavors:
        - {name: fast, gpuModel: h100-80gb, capacityType: on-demand, nominalQuota: 16, borrowingLimit: 8, lendingLimit: 4}
        - {gpuModel: A100, capacityType: spot, region: us-west-2, nominalQuota: 32}
"""


def queue(text: str = TEAM_A, **spec_changes: Any) -> Queue:
    doc = yaml.safe_load(text)
    doc["spec"].update(spec_changes)
    return queue_from_api(parse_objects([doc]).queues[0])


def flavor_change(**changes: Any) -> Queue:
    doc = yaml.safe_load(TEAM_A)
    doc["spec"]["resourceGroups"][0]["flavors"][0].update(changes)
    return queue_from_api(parse_objects([doc]).queues[0])


def test_a_queue_manifest_becomes_quotas_per_flavor_in_order() -> None:
    q = queue()
    assert q.flavors == (
        FlavorQuota(Flavor("H100", "on-demand"), 16, 8, 4, name="fast"),
        FlavorQuota(Flavor("A100", "spot", "us-west-2"), 32),
    )
    assert (q.cohort, q.weight, q.strategy, q.namespaces, q.default_for) == (
        "research",
        2.0,
        "StrictFIFO",
        frozenset({"team-a"}),
        frozenset({"team-a"}),
    )
    assert q.preemption == PreemptionPolicy("LowerPriority", "Any")
    assert (q.flavors[0].lendable, q.flavors[0].guaranteed) == (4, 12)


def test_a_minimal_queue_takes_kueues_defaults() -> None:
    q = queue("apiVersion: fleetplane.io/v1alpha1\nkind: Queue\nmetadata: {name: q}\nspec: {}\n")
    assert (q.flavors, q.cohort, q.weight, q.strategy, q.namespaces) == ((), None, 1.0, "BestEffortFIFO", None)
    assert q.preemption == PreemptionPolicy("Never", "Never")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"nominalQuota": -1},
            'Queue "team-a": spec.resourceGroups[0].flavors[0].nominalQuota: Input should be greater than or equal to 0',
        ),
        (
            {"lendingLimit": 20},
            'Queue "team-a": spec.resourceGroups[0].flavors[0].lendingLimit: 20 exceeds nominalQuota 16',
        ),
        (
            {"capacityType": "preemptible"},
            'Queue "team-a": spec.resourceGroups[0].flavors[0].capacityType: Input should be',
        ),
        (
            {"quota": 3},
            'Queue "team-a": spec.resourceGroups[0].flavors[0].quota: Extra inputs are not permitted',
        ),
        (
            {"gpuModel": "A100", "capacityType": "spot", "region": "us-west-2"},
            'Queue "team-a": spec.resourceGroups[0].flavors[1]: flavor A100 spot us-west-2 is already listed at '
            "spec.resourceGroups[0].flavors[0]",
        ),
    ],
)
def test_a_bad_flavor_is_an_error_naming_the_queue_and_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PlacementInputError) as e:
        flavor_change(**change)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cohort": None}, 'Queue "team-a": spec.resourceGroups[0].flavors[0].borrowingLimit: needs spec.cohort'),
        ({"fairSharing": {"weight": 0}}, 'Queue "team-a": spec.fairSharing.weight: Input should be greater than 0'),
        ({"queueingStrategy": "LIFO"}, 'Queue "team-a": spec.queueingStrategy: Input should be'),
        ({"preemption": {"withinQueue": "Always"}}, 'Queue "team-a": spec.preemption.withinQueue: Input should be'),
    ],
)
def test_a_bad_queue_spec_is_an_error_naming_the_queue_and_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(PlacementInputError) as e:
        queue(**spec)
    assert str(e.value).startswith(message)


def classes(*docs: str) -> dict[str, PriorityClass]:
    found = parse_objects([yaml.safe_load(d) for d in docs])
    return priority_classes_from_api(found.priority_classes)


URGENT = "apiVersion: fleetplane.io/v1alpha1\nkind: PriorityClass\nmetadata: {name: urgent}\nvalue: 1000\n"
BATCH_DEFAULT = (
    "apiVersion: fleetplane.io/v1alpha1\nkind: PriorityClass\nmetadata: {name: batch}\nvalue: 10\nglobalDefault: true\n"
)


def workload(labels: dict[str, str] | None = None, priority: int | None = None) -> v1.Workload:
    spec: dict[str, Any] = {"manifests": [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}}]}
    if priority is not None:
        spec["priority"] = priority
    return v1.Workload.model_validate({"metadata": {"name": "w", "labels": labels or {}}, "spec": spec})


@pytest.mark.parametrize(
    ("labels", "override", "known", "expected"),
    [
        ({"fleetplane.io/priority-class": "urgent"}, None, (URGENT,), 1000),  # the class's value
        ({"fleetplane.io/priority-class": "urgent"}, 5, (URGENT,), 5),  # spec.priority overrides
        ({"fleetplane.io/priority-class": "urgent"}, 0, (URGENT,), 0),  # even when it says 0
        ({}, None, (URGENT, BATCH_DEFAULT), 10),  # no class named: the global default
        ({}, None, (URGENT,), 0),  # no class, no default: 0
    ],
)
def test_a_workloads_priority_is_its_override_else_its_class_else_the_default_else_zero(
    labels: dict[str, str], override: int | None, known: tuple[str, ...], expected: int
) -> None:
    assert workload_priority(workload(labels, override), classes(*known)) == expected


def test_an_unknown_priority_class_is_an_error_naming_the_workload_and_the_label() -> None:
    with pytest.raises(PlacementInputError) as e:
        workload_priority(workload({"fleetplane.io/priority-class": "urgnet"}), classes(URGENT))
    assert str(e.value) == (
        'Workload "w": metadata.labels[fleetplane.io/priority-class]: unknown PriorityClass "urgnet" (known: urgent)'
    )


def test_two_global_default_priority_classes_are_an_error() -> None:
    other = BATCH_DEFAULT.replace("name: batch", "name: zz")
    with pytest.raises(
        PlacementInputError, match='PriorityClass "zz": globalDefault: only one class may be the default'
    ):
        classes(BATCH_DEFAULT, other)


def test_a_priority_class_value_must_be_an_int32() -> None:
    with pytest.raises(PlacementInputError, match='PriorityClass "urgent": value: Input should be less than or equal'):
        classes(URGENT.replace("1000", str(2**31)))
