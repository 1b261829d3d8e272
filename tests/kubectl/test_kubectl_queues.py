"""Queues and PriorityClasses with the real kubectl binary against a hub on a real Postgres:
apply, get (and -o wide), describe, explain, can-i, and a bad Queue's error naming the field."""

from __future__ import annotations

import pytest

from tests.hubtest import HubProcess, Kubectl, manifest

QUEUE = {
    "apiVersion": "fleetplane.io/v1alpha1",
    "kind": "Queue",
    "metadata": {"name": "research"},
    "spec": {
        "cohort": "shared-gpus",
        "namespaces": ["ml"],
        "defaultFor": ["ml"],
        "fairSharing": {"weight": 2},
        "preemption": {"withinQueue": "LowerPriority"},
        "resourceGroups": [
            {
                "flavors": [
                    {"gpuModel": "H100", "capacityType": "reserved", "nominalQuota": 16},
                    {"gpuModel": "A100", "capacityType": "spot", "nominalQuota": 8, "borrowingLimit": 8},
                ]
            }
        ],
    },
}
URGENT = {
    "apiVersion": "fleetplane.io/v1alpha1",
    "kind": "PriorityClass",
    "metadata": {"name": "urgent"},
    "value": 1000,
    "description": "Incidents and hot fixes.",
}


@pytest.fixture(scope="module", autouse=True)
def applied(kubectl: Kubectl) -> None:
    assert "queue.fleetplane.io/research created" in kubectl("apply", "-f", "-", input=manifest(QUEUE))
    assert "priorityclass.fleetplane.io/urgent created" in kubectl("apply", "-f", "-", input=manifest(URGENT))


def test_applying_a_queue_again_reports_unchanged(kubectl: Kubectl) -> None:
    assert "queue.fleetplane.io/research unchanged" in kubectl("apply", "-f", "-", input=manifest(QUEUE))


def test_get_queues_shows_cohort_strategy_and_counts_and_wide_adds_weight_flavors_usage(kubectl: Kubectl) -> None:
    header, row = kubectl("get", "queues").splitlines()[:2]
    assert header.split() == ["NAME", "COHORT", "STRATEGY", "PENDING", "ADMITTED", "AGE"]
    assert row.split()[:5] == ["research", "shared-gpus", "BestEffortFIFO", "0", "0"]
    header, row = kubectl("get", "queues", "-o", "wide").splitlines()[:2]
    assert header.split()[-3:] == ["WEIGHT", "FLAVORS", "USAGE"]
    assert row.split()[6:8] == ["2", "2"], row  # weight 2, two flavors


def test_get_pc_shows_value_and_global_default(kubectl: Kubectl) -> None:
    header, row = kubectl("get", "pc").splitlines()[:2]
    assert header.split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE"]
    assert row.split()[:3] == ["urgent", "1000", "false"]


def test_describe_queue_shows_its_spec(kubectl: Kubectl) -> None:
    out = kubectl("describe", "queue", "research")
    assert "Name:" in out and "research" in out
    for text in (
        "Cohort:",
        "shared-gpus",
        "Nominal Quota:",
        "16",
        "Borrowing Limit:",
        "Within Queue:",
        "LowerPriority",
    ):
        assert text in out, (text, out)


def test_explain_describes_a_queues_resource_groups(kubectl: Kubectl) -> None:
    out = kubectl("explain", "queue.spec.resourceGroups")
    assert "KIND:       Queue" in out and "flavors" in out
    flavor = kubectl("explain", "queue.spec.resourceGroups.flavors.nominalQuota")
    assert "GPUs this queue is entitled to." in flavor


def test_a_team_cannot_create_queues_or_priority_classes_but_may_read_them(
    hub: HubProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, kc = hub.team("ml-team", "ml")
    team = Kubectl(kc, tmp_path_factory.mktemp("kc-ml"))
    for resource in ("queues", "priorityclasses"):
        out = team.run("auth", "can-i", "create", resource, check=False)
        assert out.returncode == 1 and out.stdout.startswith("no"), (out.stdout, out.stderr)
        assert team.run("auth", "can-i", "list", resource, check=False).returncode == 0
    assert "Forbidden" in team.fails("apply", "-f", "-", input=manifest({**QUEUE, "metadata": {"name": "mine"}}))
    assert "research" in team("get", "queues", "-o", "name")


def test_a_bad_queue_via_kubectl_prints_the_field(kubectl: Kubectl) -> None:
    bad = {
        **QUEUE,
        "metadata": {"name": "bad"},
        "spec": {
            "cohort": "c",
            "resourceGroups": [
                {"flavors": [{"gpuModel": "H100", "capacityType": "spot", "nominalQuota": 4, "lendingLimit": 6}]}
            ],
        },
    }
    err = kubectl.fails("apply", "-f", "-", input=manifest(bad))
    assert "spec.resourceGroups[0].flavors[0].lendingLimit: 6 exceeds nominalQuota 4" in err, err
    assert "NotFound" in kubectl.fails("get", "queue", "bad")
