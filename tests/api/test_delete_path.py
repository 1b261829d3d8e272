"""There is ONE delete path (hub.registry.lifecycle.RegistryTx.delete).

A delete the controllers make, a `kubectl delete`, and a Namespace deletion must change an
object that holds a finalizer in exactly the same way: deletionTimestamp set,
deletionGracePeriodSeconds 0, metadata.generation + 1 (once, however often the delete is
repeated), finalizers kept, nothing else touched. The object stays readable until its last
finalizer is removed, then it is gone.

One hub WITH its controllers; clusters are simulated by writing their capacity reports the
way an agent does (test_federation.py's `report`). The cluster timeout is long so no failover
deletes anything behind the tests' backs; the one test that wants failover reports its own
cluster NotReady.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_federation import API, pool, report
from tests.conftest import start_hub
from tests.hubtest import HubProcess, Kubectl, manifest, wait_until, workload

Obj = dict[str, Any]
NS = "deletes"

DELETION_FIELDS = {"deletionTimestamp", "deletionGracePeriodSeconds", "generation"}
"""The metadata a delete of a finalizer-holding object changes (besides resourceVersion)."""


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    # 600 s: no cluster goes NotReady by itself while this module runs.
    h = start_hub(tmp_path_factory.mktemp("deletes"), fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="600")
    with h.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        report(c, "east", "us-east-1", [pool("H100", "on-demand", 4.0, 8, 8)])
    yield h
    h.stop()


@pytest.fixture(scope="module")
def k(fed: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(fed.kubeconfig, tmp_path_factory.mktemp("kc"))


@pytest.fixture()
def c(fed: HubProcess) -> Iterator[httpx.Client]:
    with fed.client() as client:
        yield client


# ---------------------------------------------------------------- helpers


def read(k: Kubectl, kind: str, name: str, ns: str = NS) -> Obj | None:
    """The object as kubectl reads it (managedFields included), or None when it is gone."""
    out = k("get", kind, name, "-n", ns, "--ignore-not-found", "--show-managed-fields", "-o", "json")
    return json.loads(out) if out.strip() else None


def admin_assignment(k: Kubectl, name: str, ns: str = NS) -> Obj:
    """An Assignment an admin applies with kubectl, holding the agent-cleanup finalizer.

    Its workloadRef names no Workload, so the controllers leave it alone."""
    k(
        "apply",
        "-f",
        "-",
        input=manifest(
            {
                "apiVersion": "fleetplane.io/v1alpha1",
                "kind": "Assignment",
                "metadata": {"name": name, "namespace": ns, "finalizers": ["fleetplane.io/agent-cleanup"]},
                "spec": {
                    "clusterName": "east",
                    "workloadRef": {"name": f"{name}-no-such-workload", "uid": "none"},
                    "epoch": 1,
                    "manifests": [],
                },
            }
        ),
    )
    obj = read(k, "assignment", name, ns)
    assert obj is not None
    return obj


def placed_assignment(c: httpx.Client, k: Kubectl, wl: str, ns: str = NS, **spec: Any) -> Obj:
    """Submit a 1-GPU Workload with kubectl and return the Assignment the controller creates."""
    k("apply", "-f", "-", input=manifest(workload(wl, ns, gpus=1, **spec)))
    items = wait_until(
        lambda: c.get(
            f"{API}/namespaces/{ns}/assignments", params={"fieldSelector": f"spec.workloadRef.name={wl}"}
        ).json()["items"],
        what=f"an Assignment for {wl}",
    )
    [listed] = items
    a = read(k, "assignment", listed["metadata"]["name"], ns)
    assert a is not None and "fleetplane.io/agent-cleanup" in a["metadata"]["finalizers"]
    return a


def wait_until_marked(k: Kubectl, kind: str, name: str, ns: str = NS) -> Obj:
    return wait_until(
        lambda: (o := read(k, kind, name, ns)) and o["metadata"].get("deletionTimestamp") and o,
        what=f"{kind} {ns}/{name} marked for deletion",
    )


def deletion_change(before: Obj, after: Obj) -> dict[str, Any]:
    """What a delete did to an object's metadata, in terms that compare across delete paths."""
    b, a = before["metadata"], after["metadata"]
    changed = {key for key in set(b) | set(a) if key != "resourceVersion" and b.get(key) != a.get(key)}
    return {
        "changed": sorted(changed),
        "generation": a.get("generation", 0) - b.get("generation", 0),
        "deletionGracePeriodSeconds": a.get("deletionGracePeriodSeconds"),
        "finalizers kept": a.get("finalizers") == b.get("finalizers") and bool(a.get("finalizers")),
        "spec and status untouched": (after.get("spec"), after.get("status"))
        == (before.get("spec"), before.get("status")),
    }


ONE_DELETE = {
    "changed": sorted(DELETION_FIELDS),
    "generation": 1,
    "deletionGracePeriodSeconds": 0,
    "finalizers kept": True,
    "spec and status untouched": True,
}
"""What every delete path must have done to a finalizer-holding object."""


def kubectl_delete_change(k: Kubectl, name: str) -> dict[str, Any]:
    """The reference: an admin's Assignment deleted with `kubectl delete --wait=false`."""
    before = admin_assignment(k, name)
    k("delete", "assignment", name, "-n", NS, "--wait=false")
    after = read(k, "assignment", name)
    assert after is not None, "a finalizer keeps the object"
    change = deletion_change(before, after)
    expect_gone_once_finalizers_are_removed(k, "assignment", name)
    return change


def expect_gone_once_finalizers_are_removed(k: Kubectl, kind: str, name: str, ns: str = NS) -> None:
    """Still readable while a finalizer is left; removing it (as the agent does) finishes the delete."""
    assert read(k, kind, name, ns) is not None
    k("patch", kind, name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: read(k, kind, name, ns) is None, what=f"{kind} {ns}/{name} gone")


def poke_the_controller(c: httpx.Client, k: Kubectl, wl: str) -> None:
    """Make the controller run at least one full pass from now: a new Workload gets placed.

    A pass handles every deleting Workload before it places pending ones, so after this the
    controller has (re)issued its deletes at least once more."""
    placed_assignment(c, k, wl)


# ---------------------------------------------------------------- tests


def test_kubectl_delete_of_an_object_with_a_finalizer_only_marks_it(k: Kubectl) -> None:
    before = admin_assignment(k, "by-hand")
    k("delete", "assignment", "by-hand", "-n", NS, "--wait=false")
    after = read(k, "assignment", "by-hand")
    assert after is not None, "still readable: the finalizer holds it"
    assert after["metadata"]["deletionTimestamp"]
    assert after["metadata"]["deletionGracePeriodSeconds"] == 0
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["metadata"]["finalizers"] == ["fleetplane.io/agent-cleanup"]
    assert deletion_change(before, after) == ONE_DELETE
    # Deleting again changes nothing: the object is already being deleted.
    k("delete", "assignment", "by-hand", "-n", NS, "--wait=false")
    again = read(k, "assignment", "by-hand")
    assert again is not None and again["metadata"] == after["metadata"]
    expect_gone_once_finalizers_are_removed(k, "assignment", "by-hand")


@pytest.mark.parametrize(
    "cascade",
    [
        # kubectl's default: its DELETE marks the Assignment (a dependent) in the same
        # transaction; the controller's deletion pass then re-issues the delete every pass.
        "background",
        # The cascade only strips the ownerReferences; the controller's deletion pass is what
        # marks the Assignment (it finds it by spec.workloadRef).
        "orphan",
    ],
)
def test_deleting_a_placed_workload_marks_its_assignment_exactly_as_kubectl_delete_does(
    c: httpx.Client,
    k: Kubectl,
    cascade: str,
) -> None:
    reference = kubectl_delete_change(k, f"reference-{cascade}")
    wl = f"train-{cascade}"
    before = placed_assignment(c, k, wl)
    name = before["metadata"]["name"]
    k("delete", "workload", wl, "-n", NS, "--wait=false", f"--cascade={cascade}")
    after = wait_until_marked(k, "assignment", name)
    if cascade == "orphan":
        assert "ownerReferences" not in after["metadata"]
        before["metadata"].pop("ownerReferences")  # orphaning's own change, not the delete's
    assert deletion_change(before, after) == reference == ONE_DELETE
    # The Workload itself holds the placement finalizer: marked the same way, and kept.
    w = read(k, "workload", wl)
    assert w is not None and w["metadata"]["deletionTimestamp"] and w["metadata"]["deletionGracePeriodSeconds"] == 0
    # The controller re-issues the Assignment's delete on every pass until it is gone; that
    # must not bump the generation again.
    poke_the_controller(c, k, f"poke-{cascade}")
    later = read(k, "assignment", name)
    assert later is not None and later["metadata"] == after["metadata"]
    # The agent confirms cleanup; then the controller releases the Workload too.
    expect_gone_once_finalizers_are_removed(k, "assignment", name)
    wait_until(lambda: read(k, "workload", wl) is None, what=f"workload {wl} gone")


def test_failover_marks_the_lost_assignment_exactly_as_kubectl_delete_does(c: httpx.Client, k: Kubectl) -> None:
    # A delete only the controller makes: the cluster goes NotReady, the copy on it is fenced.
    reference = kubectl_delete_change(k, "reference-failover")
    report(c, "doomed", "us-west-2", [pool("L4", "on-demand", 0.8, 1, 4, mem=24)])
    before = placed_assignment(c, k, "serve", gpu={"count": 1, "models": ["L4"]})
    assert before["spec"]["clusterName"] == "doomed"
    report(c, "doomed", "us-west-2", [pool("L4", "on-demand", 0.8, 1, 4, mem=24)], ready=False)
    after = wait_until_marked(k, "assignment", before["metadata"]["name"])
    assert deletion_change(before, after) == reference == ONE_DELETE
    poke_the_controller(c, k, "poke-failover")
    later = read(k, "assignment", before["metadata"]["name"])
    assert later is not None and later["metadata"] == after["metadata"], "fenced once, bumped once"
    expect_gone_once_finalizers_are_removed(k, "assignment", before["metadata"]["name"])


def test_namespace_deletion_marks_a_finalizer_holding_object_exactly_as_kubectl_delete_does(
    c: httpx.Client,
    k: Kubectl,
) -> None:
    reference = kubectl_delete_change(k, "reference-namespace")
    doomed = "deletes-doomed"
    k("create", "namespace", doomed)
    by_hand = admin_assignment(k, "by-hand", doomed)
    # The placed Workload's Assignment is reached twice by the cascade: as content of the
    # namespace and as a dependent of its Workload. It must still be marked once.
    placed = placed_assignment(c, k, "nightly", doomed)
    k("delete", "namespace", doomed, "--wait=false")
    for before in (by_hand, placed):
        after = wait_until_marked(k, "assignment", before["metadata"]["name"], doomed)
        assert deletion_change(before, after) == reference == ONE_DELETE, before["metadata"]["name"]
    for before in (by_hand, placed):
        expect_gone_once_finalizers_are_removed(k, "assignment", before["metadata"]["name"], doomed)
    wait_until(lambda: read(k, "workload", "nightly", doomed) is None, what="workload nightly gone")
