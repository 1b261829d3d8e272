"""The kubectl verbs people reach for, with the real kubectl binary against a hub whose
federation controllers run: `get -o yaml | apply` round trips (one object and a `kind: List`),
`get events`, `describe` with events, `wait --for=condition=Placed`, `get fleetplane`.

A cluster reports capacity the way its agent does (tests/api/test_federation.py `report`),
and keeps heartbeating for the whole module, so workloads really get placed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.api.test_federation import hub_with_one_cluster, pool
from tests.hubtest import HubProcess, Kubectl, manifest, wait_until, workload

NS = "team-k"
API = "/apis/fleetplane.io/v1alpha1"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A hub with its controllers on, one Ready cluster with 8 nodes of 8 reserved H100."""
    with hub_with_one_cluster(
        tmp_path_factory.mktemp("kfed"), fresh_database(), NS, [pool("H100", "reserved", 3.2, 8, 8)]
    ) as h:
        yield h


@pytest.fixture(scope="module")
def k(fed: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(fed.kubeconfig, tmp_path_factory.mktemp("kcache"))


def settled(fed: HubProcess, name: str) -> dict:
    """The workload once the controller is done with it: placed (or pending with a reason),
    and its resourceVersion the same twice in a row half a second apart."""
    last: list[str] = []

    def check() -> dict | None:
        with fed.client() as c:
            w = c.get(f"{API}/namespaces/{NS}/workloads/{name}").json()
        rv = w["metadata"]["resourceVersion"]
        done = bool((w.get("status") or {}).get("conditions")) and last[-1:] == [rv]
        last.append(rv)
        return w if done else None

    return wait_until(check, what=f"{name} settled")


def test_get_yaml_then_apply_round_trips_one_workload(k: Kubectl, fed: HubProcess, tmp_path: Path) -> None:
    k("apply", "-f", "-", input=manifest(workload("round", NS, gpus=8)))
    settled(fed, "round")
    f = tmp_path / "round.yaml"
    f.write_text(k("get", "workload", "round", "-n", NS, "-o", "yaml"))
    out = k.run("apply", "-f", str(f))
    assert out.returncode == 0 and "workload.fleetplane.io/round" in out.stdout, out.stderr
    again = k.json("get", "workload", "round", "-n", NS)
    assert again["spec"]["gpu"]["count"] == 8 and again["metadata"]["generation"] == 1, "the spec did not change"


def test_get_yaml_of_a_list_piped_into_apply_round_trips_every_workload(k: Kubectl, fed: HubProcess) -> None:
    for name in ("listed-a", "listed-b"):
        k("apply", "-f", "-", input=manifest(workload(name, NS, gpus=1)))
        settled(fed, name)
    listing = k("get", "workloads", "-n", NS, "-o", "yaml")
    assert yaml.safe_load(listing)["kind"] == "List"
    out = k("apply", "-f", "-", input=listing)
    assert "workload.fleetplane.io/listed-a" in out and "workload.fleetplane.io/listed-b" in out


def test_a_list_with_an_unknown_field_is_refused_naming_the_field(k: Kubectl) -> None:
    # kubectl validates a `kind: List` itself, against /openapi/v2: the hub serves it.
    body = workload("typo-in-list", NS, gpus=1)
    body["spec"]["gpuz"] = 3
    err = k.fails("apply", "-f", "-", input=manifest({"apiVersion": "v1", "kind": "List", "items": [body]}))
    assert 'unknown field "gpuz"' in err and "WorkloadSpec" in err
    assert "NotFound" in k.fails("get", "workload", "typo-in-list", "-n", NS)


def test_wait_for_condition_placed_returns_once_the_workload_is_placed(k: Kubectl) -> None:
    k("apply", "-f", "-", input=manifest(workload("waited", NS, gpus=4)))
    out = k("wait", "--for=condition=Placed", "workload/waited", "-n", NS, "--timeout=30s")
    assert "workload.fleetplane.io/waited condition met" in out
    w = k.json("get", "workload", "waited", "-n", NS)
    placed = next(c for c in w["status"]["conditions"] if c["type"] == "Placed")
    assert placed["status"] == "True" and placed["reason"] == "Placed" and "east" in placed["message"]


def test_a_pending_workload_prints_none_in_custom_columns_on_its_clusters(k: Kubectl, fed: HubProcess) -> None:
    k("apply", "-f", "-", input=manifest(workload("too-big", NS, gpus=64)))
    w = settled(fed, "too-big")
    assert w["status"]["phase"] == "Pending" and "clusters" not in w["status"]["placement"]
    out = k(
        "get",
        "wl",
        "too-big",
        "-n",
        NS,
        "-o",
        "custom-columns=NAME:.metadata.name,CLUSTER:.status.placement.clusters[0].name",
    )
    assert out.splitlines()[1].split() == ["too-big", "<none>"]
    out = k("wait", "--for=condition=Placed=False", "workload/too-big", "-n", NS, "--timeout=10s")
    assert "condition met" in out


def test_get_events_shows_placements_and_pending_reasons(k: Kubectl, fed: HubProcess) -> None:
    k("apply", "-f", "-", input=manifest(workload("evented", NS, gpus=2)))
    k("apply", "-f", "-", input=manifest(workload("stuck", NS, gpus=64)))
    settled(fed, "evented")
    settled(fed, "stuck")
    lines = k("get", "events", "-n", NS).splitlines()
    assert lines[0].split()[:5] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT"]
    assert any("Normal" in r and "Placed" in r and "workload/evented" in r and "east" in r for r in lines), lines
    assert any("Warning" in r and "Unschedulable" in r and "workload/stuck" in r for r in lines), lines
    # Events are read-only through the API: the controllers write them.
    assert "MethodNotAllowed" in k.fails("delete", "events", "--all", "-n", NS)


def test_describe_workload_shows_its_events(k: Kubectl, fed: HubProcess) -> None:
    k("apply", "-f", "-", input=manifest(workload("described", NS, gpus=1)))
    settled(fed, "described")
    out = k("describe", "workload", "described", "-n", NS)
    events = out[out.index("Events:") :]
    assert "Normal" in events and "Placed" in events and "fleetplane-hub" in events and "placed on east" in events
    assert "Unschedulable" not in events, "only this workload's events"


def test_deleting_a_placed_workload_records_a_deleted_event(k: Kubectl, fed: HubProcess) -> None:
    k("apply", "-f", "-", input=manifest(workload("short-lived", NS, gpus=1)))
    settled(fed, "short-lived")
    k("delete", "workload", "short-lived", "-n", NS, "--wait=false")
    # The agent-cleanup finalizer holds the Assignment until an agent confirms; play the agent.
    with fed.client() as c:
        for a in c.get(f"{API}/namespaces/{NS}/assignments").json()["items"]:
            if a["spec"]["workloadRef"]["name"] == "short-lived":
                c.patch(
                    f"{API}/namespaces/{NS}/assignments/{a['metadata']['name']}",
                    content=json.dumps({"metadata": {"finalizers": None}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
    wait_until(lambda: "NotFound" in k.run("get", "wl", "short-lived", "-n", NS, check=False).stderr, what="gone")
    out = k("get", "events", "-n", NS, "--field-selector=involvedObject.name=short-lived,reason=Deleted", "-o", "json")
    [ev] = json.loads(out)["items"]
    assert ev["type"] == "Normal" and ev["involvedObject"]["kind"] == "Workload" and ev["count"] == 1


def test_a_team_sees_the_events_of_its_own_namespaces_only(fed: HubProcess) -> None:
    token, _ = fed.team("kappa", "team-kappa")
    with fed.client(token) as c:
        assert c.get("/api/v1/namespaces/team-kappa/events").json()["items"] == []
        assert c.get(f"/api/v1/namespaces/{NS}/events").json()["items"] == []
        assert c.get("/api/v1/events").json()["items"] == []
    with fed.client() as c:
        assert c.get(f"/api/v1/namespaces/{NS}/events").json()["items"], "the admin sees them"


def test_get_fleetplane_lists_every_fleetplane_kind(k: Kubectl, fed: HubProcess) -> None:
    k("apply", "-f", "-", input=manifest(workload("categorised", NS, gpus=1)))
    dataset = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "imagenet", "namespace": NS},
        "spec": {"sizeGiB": 150, "locations": [{"site": "us-east-1"}]},
    }
    topology = {"apiVersion": "fleetplane.io/v1alpha1", "kind": "Topology", "metadata": {"name": "net"}, "spec": {}}
    k("apply", "-f", "-", input=manifest(dataset))
    k("apply", "-f", "-", input=manifest(topology))
    settled(fed, "categorised")
    names = k("get", "fleetplane", "-A", "-o", "name").split()
    for kind in ("workload", "cluster", "dataset", "assignment", "topology"):
        assert any(n.startswith(f"{kind}.fleetplane.io/") for n in names), (kind, names)
    assert not any(n.startswith(("namespace/", "event/")) for n in names), "core kinds are not in the category"


def test_openapi_v2_is_served_as_protobuf_and_json(fed: HubProcess) -> None:
    with httpx.Client(base_url=fed.http_url, headers={"Authorization": f"Bearer {fed.admin_token}"}) as c:
        pb = c.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        doc = c.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    assert pb.status_code == 200 and pb.headers["content-type"].endswith("+protobuf") and pb.content[:2] == b"\n\x03"
    wl = doc["definitions"]["io.fleetplane.v1alpha1.Workload"]
    assert wl["x-kubernetes-group-version-kind"] == [
        {"group": "fleetplane.io", "version": "v1alpha1", "kind": "Workload"}
    ]
    assert doc["swagger"] == "2.0" and "spec" in wl["properties"]
