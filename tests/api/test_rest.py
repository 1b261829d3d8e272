"""The REST API under /v1 against a real hub process (embedded Postgres, controllers running).

The fleet is reported through the Kubernetes API the way agents report it; the REST views
must show those numbers unchanged, place what is submitted, and keep teams apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, expect_status, wait_until, workload

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


# ------------------------------------------------------------------ builders and helpers


def a_pool(
    model: str, cap: str, price: float, nodes: int, gpus: int, free: list[int] | None = None, mem: int = 80
) -> dict[str, Any]:
    free = free if free is not None else [gpus] * nodes
    return {
        "name": f"{model.lower()}-{cap}",
        "model": model,
        "memoryGiB": mem,
        "capacityType": cap,
        "pricePerGpuHour": price,
        "gpusPerNode": gpus,
        "total": nodes * gpus,
        "allocatable": nodes * gpus,
        "allocated": nodes * gpus - sum(free),
        "free": sum(free),
        "nodes": [{"name": f"{model.lower()}-{cap}-{i}", "gpus": gpus, "free": f} for i, f in enumerate(free)],
    }


def report_cluster(
    c: httpx.Client,
    name: str,
    region: str,
    pools: list[dict[str, Any]],
    *,
    ready: bool = True,
    backend: str = "kubernetes",
) -> None:
    """Create the Cluster and write its status as its agent would."""
    r = c.post(f"{API}/clusters", json={"metadata": {"name": name}, "spec": {"region": region, "backend": backend}})
    assert r.status_code == 201, r.text
    status = {
        "heartbeatTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "gpuPools": pools,
        "totalGpus": sum(p["total"] for p in pools),
        "freeGpus": sum(p["free"] for p in pools),
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "AgentReporting" if ready else "AgentNotReady",
            }
        ],
    }
    r = c.patch(f"{API}/clusters/{name}/status", content=json.dumps({"status": status}), headers=MERGE)
    assert r.status_code == 200, r.text


def store_rv(c: httpx.Client) -> str:
    """The store's current resourceVersion (a list answers with it)."""
    return str(c.get(f"{API}/workloads", params={"limit": "1"}).json()["metadata"]["resourceVersion"])


def quiet_store_rv(c: httpx.Client) -> str:
    """The resourceVersion once the controllers have stopped writing (nothing left to do)."""

    def settled() -> str | None:
        before = store_rv(c)
        time.sleep(0.5)
        return before if store_rv(c) == before else None

    return str(wait_until(settled, what="the store to settle"))


FLEET = {
    # name: (region, pools, ready, backend)
    "h100-reserved": ("us-east-1", [a_pool("H100", "reserved", 3.2, 2, 8)], True, "kubernetes"),
    "a100-spot": ("us-west-2", [a_pool("A100", "spot", 1.1, 4, 8, free=[8, 8, 8, 2])], True, "kubernetes"),
    "l4-sim": ("eu-west-1", [a_pool("L4", "on-demand", 0.8, 2, 4, mem=24)], True, "simulated"),
    "h100-down": ("us-east-1", [a_pool("H100", "on-demand", 4.0, 2, 8)], False, "kubernetes"),
}


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A hub with the FLEET reported once; a long heartbeat timeout keeps it Ready meanwhile."""
    h = start_hub(tmp_path_factory.mktemp("rest"), fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="600")
    with h.client() as c:
        for name, (region, pools, ready, backend) in FLEET.items():
            report_cluster(c, name, region, pools, ready=ready, backend=backend)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def tokens(rest: HubProcess) -> dict[str, str]:
    """Team tokens; creating them creates the namespaces team-a and team-b."""
    return {"a": rest.team("alpha", "team-a")[0], "b": rest.team("beta", "team-b")[0]}


@pytest.fixture(scope="module")
def train(rest: HubProcess, tokens: dict[str, str]) -> dict[str, Any]:
    """Team A submits a 2×8 GPU gang over REST; returns the stored object the POST answered."""
    with rest.client(tokens["a"]) as a:
        r = a.post("/v1/namespaces/team-a/workloads", json=workload("train", gpus=8, replicas=2))
        assert r.status_code == 201, r.text
        wait_until(
            lambda: a.get("/v1/namespaces/team-a/workloads/train").json().get("placement", {}).get("clusters"),
            what="train placed",
        )
    return dict(r.json())


# ------------------------------------------------------------------ workloads


def test_a_workload_submitted_over_rest_is_stored_then_placed_with_its_explanation(
    rest: HubProcess, tokens: dict[str, str], train: dict[str, Any]
) -> None:
    # The POST answers with the same view a GET gives, defaults filled in, not yet placed.
    assert train["name"] == "train" and train["namespace"] == "team-a" and train["resourceVersion"]
    assert train["placementMode"] == "Gang" and train["phase"] == "Pending" and train["gpus"] == 16
    with rest.client(tokens["a"]) as a:
        w = a.get("/v1/namespaces/team-a/workloads/train").json()
    assert set(train) <= set(w), "the POST's view has the GET's fields"
    # Non-preemptible work: the idle reserved H100s (spot is not allowed by default).
    assert w["phase"] == "Placed" and w["replicas"] == 2 and w["gpusPerReplica"] == 8 and w["gpus"] == 16
    assert w["placement"]["clusters"] == [{"name": "h100-reserved", "replicas": 2, "capacityType": "reserved"}]
    assert w["placement"]["epoch"] == 1 and w["placement"]["reason"].startswith("placed on h100-reserved")
    expl = w["explanation"]
    assert expl["placed"] is True and expl["workload"] == "team-a/train"
    assert {x["name"] for x in expl["clusters"]} == set(FLEET), "every cluster is explained"
    down = next(x for x in expl["clusters"] if x["name"] == "h100-down")
    assert down["feasible"] is False and down["filter"] == "health"


def test_lists_are_compact_unless_explain_is_asked_for(rest: HubProcess, train: dict[str, Any]) -> None:
    with rest.client() as admin:
        [item] = admin.get("/v1/namespaces/team-a/workloads").json()["items"]
        assert item["name"] == "train" and item["placement"]["clusters"][0]["name"] == "h100-reserved"
        assert "explanation" not in item
        [item] = admin.get("/v1/namespaces/team-a/workloads", params={"explain": "true"}).json()["items"]
        assert item["explanation"]["workload"] == "team-a/train"
        everywhere = admin.get("/v1/workloads").json()["items"]
        assert [(x["namespace"], x["name"]) for x in everywhere] == [("team-a", "train")]


# ------------------------------------------------------------------ clusters and the fleet


def test_clusters_show_the_capacity_their_agents_reported_and_label_simulated_ones(rest: HubProcess) -> None:
    with rest.client() as admin:
        items = {c["name"]: c for c in admin.get("/v1/clusters").json()["items"]}
    assert set(items) == set(FLEET)
    spot = items["a100-spot"]
    assert spot["ready"] is True and spot["region"] == "us-west-2" and spot["backend"] == "kubernetes"
    assert spot["totalGpus"] == 32 and spot["freeGpus"] == 26 and spot["heartbeatTime"]
    assert spot["pools"] == [
        {
            "name": "a100-spot",
            "model": "A100",
            "capacityType": "spot",
            "pricePerGpuHour": 1.1,
            "memoryGiB": 80,
            "total": 32,
            "free": 26,
            "nodes": 4,
        }
    ]
    assert items["l4-sim"]["simulated"] is True and items["l4-sim"]["backend"] == "simulated"
    assert not any(items[n]["simulated"] for n in ("h100-reserved", "a100-spot", "h100-down"))
    assert items["h100-down"]["ready"] is False and items["h100-down"]["readyReason"] == "AgentNotReady"


def test_fleet_summary_sums_ready_clusters_by_model_capacity_type_and_region(rest: HubProcess) -> None:
    with rest.client() as admin:
        s = admin.get("/v1/fleet/summary").json()
    assert s["rows"] == [
        {
            "model": "A100",
            "capacityType": "spot",
            "region": "us-west-2",
            "total": 32,
            "free": 26,
            "clusters": 1,
            "simulatedClusters": 0,
        },
        {
            "model": "H100",
            "capacityType": "reserved",
            "region": "us-east-1",
            "total": 16,
            "free": 16,
            "clusters": 1,
            "simulatedClusters": 0,
        },
        {
            "model": "L4",
            "capacityType": "on-demand",
            "region": "eu-west-1",
            "total": 8,
            "free": 8,
            "clusters": 1,
            "simulatedClusters": 1,
        },
    ]
    # 32 + 16 + 8 Ready; the NotReady cluster's 16 H100 are counted apart, not as capacity.
    assert (s["readyClusters"], s["totalGpus"], s["freeGpus"]) == (3, 56, 50)
    assert s["notReady"] == {"clusters": 1, "gpus": 16}


# ------------------------------------------------------------------ what-if


def test_whatif_decides_on_the_live_fleet_minus_in_flight_placements_and_stores_nothing(
    rest: HubProcess, train: dict[str, Any]
) -> None:
    h100 = workload("more-h100", "team-a", gpus=8)
    h100["spec"]["gpu"]["models"] = ["H100"]
    l4 = workload("small-l4", "team-a", gpus=4)
    with rest.client() as admin:
        rv = quiet_store_rv(admin)
        r = admin.post("/v1/whatif", json={"workloads": [h100, l4]})
        assert r.status_code == 200, r.text
        assert store_rv(admin) == rv, "what-if wrote to the store"
        assert [w["name"] for w in admin.get("/v1/workloads").json()["items"]] == ["train"]
        assert (
            admin.get(f"{API}/namespaces/team-a/assignments").json()["items"][0]["spec"]["workloadRef"]["name"]
            == "train"
        )
    rep = r.json()
    assert rep["kind"] == "PlacementReport" and rep["profile"] == "default"
    assert rep["summary"] == {"workloads": 2, "placed": 1, "pending": 1}
    assert rep["snapshot"] == {"clusters": 4, "reservations": 1}
    by = {d["workload"]: d for d in rep["decisions"]}
    # train's Assignment is not Running yet, so its 16 reserved H100s are held: no H100 is free.
    assert by["team-a/more-h100"]["placed"] is False and by["team-a/more-h100"]["reason"].startswith("0/4 clusters")
    assert by["team-a/small-l4"]["placed"] is True
    assert by["team-a/small-l4"]["placements"][0]["cluster"] == "l4-sim"
    assert len(by["team-a/small-l4"]["clusters"]) == 4, "what-if explains every cluster"


def test_whatif_takes_a_scoring_profile(rest: HubProcess) -> None:
    with rest.client() as admin:
        r = admin.post("/v1/whatif", json={"workloads": [workload("s", gpus=1)], "profile": "spread"})
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == "spread" and r.json()["decisions"][0]["profile"] == "spread"


# ------------------------------------------------------------------ tenancy


def test_a_team_sees_only_its_own_namespaces_over_rest(
    rest: HubProcess, tokens: dict[str, str], train: dict[str, Any]
) -> None:
    with rest.client(tokens["a"]) as a, rest.client(tokens["b"]) as b:
        assert a.get("/v1/namespaces/team-a/workloads/train").status_code == 200
        expect_status(b.get("/v1/namespaces/team-a/workloads/train"), 404, "NotFound")
        expect_status(b.get("/v1/namespaces/team-a/workloads"), 404, "NotFound")
        assert b.get("/v1/workloads").json()["items"] == []
        assert [w["name"] for w in a.get("/v1/workloads").json()["items"]] == ["train"]
        expect_status(b.post("/v1/namespaces/team-a/workloads", json=workload("intruder", "team-a")), 404, "NotFound")
        # Capacity is shared knowledge: both teams see every cluster and the same summary.
        assert len(b.get("/v1/clusters").json()["items"]) == len(FLEET)
        assert b.get("/v1/fleet/summary").json() == a.get("/v1/fleet/summary").json()
    with rest.client() as admin:
        assert [w["name"] for w in admin.get("/v1/namespaces/team-a/workloads").json()["items"]] == ["train"]


def test_whatif_cannot_probe_another_teams_datasets(rest: HubProcess, tokens: dict[str, str]) -> None:
    sites = [{"name": r, "type": "region"} for r in ("us-east-1", "us-west-2", "eu-west-1")]
    with rest.client() as admin:
        # A dataset's sites must be in a Topology, else the whole fleet is invalid input.
        r = admin.post(f"{API}/topologies", json={"metadata": {"name": "net"}, "spec": {"sites": sites}})
        assert r.status_code == 201, r.text
        r = admin.post(
            f"{API}/namespaces/team-a/datasets",
            json={"metadata": {"name": "corpus"}, "spec": {"sizeGiB": 100, "locations": [{"site": "us-west-2"}]}},
        )
        assert r.status_code == 201, r.text
    reader = workload("reader", gpus=1)
    reader["spec"]["datasets"] = [{"name": "corpus", "namespace": "team-a"}]
    try:
        with rest.client(tokens["a"]) as a, rest.client(tokens["b"]) as b:
            r = a.post("/v1/whatif", json={"workloads": [reader]})
            assert r.status_code == 200 and r.json()["summary"]["placed"] == 1, r.text
            body = expect_status(
                b.post("/v1/whatif", json={"workloads": [reader]}), 422, "Invalid", "workloads[0].spec.datasets[0]"
            )
            assert 'unknown Dataset "team-a/corpus"' in body["message"]
    finally:
        with rest.client() as admin:
            admin.delete(f"{API}/namespaces/team-a/datasets/corpus")
            admin.delete(f"{API}/topologies/net")


def test_requests_without_a_token_get_401_status(rest: HubProcess) -> None:
    with rest.client("") as anon:
        for path in ("/v1/clusters", "/v1/workloads", "/v1/fleet/summary"):
            expect_status(anon.get(path), 401, "Unauthorized")
        expect_status(anon.post("/v1/whatif", json={"workloads": [workload("x")]}), 401, "Unauthorized")


# ------------------------------------------------------------------ bad input


def test_bad_workloads_are_rejected_with_a_status_naming_the_field_and_nothing_is_stored(rest: HubProcess) -> None:
    negative = workload("negative", gpus=-1)
    typo = workload("typo")
    typo["spec"]["gpuz"] = {"count": 1}
    with rest.client() as admin:
        rv = quiet_store_rv(admin)
        expect_status(admin.post("/v1/namespaces/team-a/workloads", json=negative), 422, "Invalid", "spec.gpu.count")
        expect_status(
            admin.post("/v1/namespaces/team-a/workloads", params={"fieldValidation": "Strict"}, json=typo),
            400,
            "BadRequest",
            "spec.gpuz",
        )
        expect_status(
            admin.post(
                "/v1/namespaces/team-a/workloads", content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            400,
            "BadRequest",
        )
        body = expect_status(
            admin.post("/v1/namespaces/nowhere/workloads", json=workload("lost", "nowhere")), 404, "NotFound"
        )
        assert 'namespaces "nowhere" not found' in body["message"]
        expect_status(admin.get("/v1/namespaces/nowhere/workloads"), 404, "NotFound")
        expect_status(admin.get("/v1/namespaces/team-a/workloads/negative"), 404, "NotFound")
        # dryRun validates the same way and stores nothing either.
        r = admin.post("/v1/namespaces/team-a/workloads", params={"dryRun": "All"}, json=workload("dry"))
        assert r.status_code == 201 and r.json()["name"] == "dry"
        assert store_rv(admin) == rv, "a rejected or dry-run create wrote to the store"


def test_bad_whatif_requests_name_the_workload_and_field(rest: HubProcess) -> None:
    unknown_model = workload("m", gpus=1)
    unknown_model["spec"]["gpu"]["models"] = ["H1000"]
    no_replicas = workload("r", replicas=0)
    with rest.client() as admin:
        rv = quiet_store_rv(admin)
        expect_status(
            admin.post("/v1/whatif", json={"workloads": [workload("ok"), no_replicas]}),
            422,
            "Invalid",
            "workloads[1].spec.replicas",
        )
        body = expect_status(
            admin.post("/v1/whatif", json={"workloads": [unknown_model]}),
            422,
            "Invalid",
            "workloads[0].spec.gpu.models[0]",
        )
        assert "H1000" in body["message"]
        expect_status(
            admin.post("/v1/whatif", json={"workloads": [workload("ok")], "profile": "fastest"}),
            422,
            "Invalid",
            "profile",
        )
        expect_status(admin.post("/v1/whatif", json={"workloads": "train"}), 422, "Invalid", "workloads")
        expect_status(
            admin.post("/v1/whatif", json={"workloads": [workload("d"), workload("d")]}),
            422,
            "Invalid",
            "workloads[1].metadata.name",
        )
        expect_status(
            admin.post("/v1/whatif", content=b"[", headers={"Content-Type": "application/json"}), 400, "BadRequest"
        )
        body = expect_status(
            admin.post(
                "/v1/whatif", content=b"workloads=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
            ),
            422,
            "Invalid",
        )
        assert "Content-Type: application/json" in body["message"]
        assert store_rv(admin) == rv


def test_openapi_documents_every_rest_endpoint_with_its_schemas(rest: HubProcess) -> None:
    with httpx.Client(base_url=rest.http_url) as anon:
        spec = anon.get("/openapi.json").json()
        assert anon.get("/docs").status_code == 200
    paths = spec["paths"]
    for path, method in [
        ("/v1/namespaces/{namespace}/workloads", "post"),
        ("/v1/namespaces/{namespace}/workloads", "get"),
        ("/v1/workloads", "get"),
        ("/v1/namespaces/{namespace}/workloads/{name}", "get"),
        ("/v1/clusters", "get"),
        ("/v1/fleet/summary", "get"),
        ("/v1/whatif", "post"),
    ]:
        op = paths[path][method]
        assert "200" in op["responses"] or "201" in op["responses"], path
        assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Status"
        }
    create = paths["/v1/namespaces/{namespace}/workloads"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Workload"}
    assert {
        "Workload",
        "WorkloadView",
        "ClusterView",
        "FleetSummary",
        "WhatIfRequest",
        "WhatIfReport",
        "Status",
    } <= set(spec["components"]["schemas"])


def test_the_docs_page_loads_its_assets_from_the_hub_not_a_cdn(rest: HubProcess) -> None:
    import re

    with httpx.Client(base_url=rest.http_url) as anon:
        page = anon.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert urls, page.text
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), f"external assets: {urls}"
        for u in urls:
            asset = anon.get(u)
            assert asset.status_code == 200 and len(asset.content) > 100, u
        js = next(u for u in urls if u.endswith(".js"))
        assert "javascript" in anon.get(js).headers["content-type"]


def test_unknown_rest_paths_and_wrong_methods_answer_a_status(rest: HubProcess) -> None:
    with rest.client() as admin:
        body = expect_status(admin.get("/v1/no-such-thing"), 404, "NotFound")
        assert "/v1/no-such-thing" in body["message"] and "detail" not in body
        body = expect_status(admin.delete("/v1/clusters"), 405, "MethodNotAllowed")
        assert "DELETE" in body["message"] and "detail" not in body
        expect_status(admin.get("/v1/workloads", params={"limit": "²"}), 422, "Invalid", "limit")
        expect_status(admin.get("/v1/namespaces/team-a/workloads/a%00b"), 400, "BadRequest")


def test_a_rest_post_answers_the_get_view_and_keeps_its_warnings(rest: HubProcess, tokens: dict[str, str]) -> None:
    typo = workload("viewed", gpus=1)
    typo["spec"]["gpuu"] = 3
    with rest.client(tokens["a"]) as a:
        r = a.post("/v1/namespaces/team-a/workloads", json=typo)
        assert r.status_code == 201, r.text
        assert r.headers.get_list("warning") == ['299 - "unknown field \\"spec.gpuu\\""'], r.headers
        posted = r.json()
        got = a.get("/v1/namespaces/team-a/workloads/viewed").json()
        a.delete("/apis/fleetplane.io/v1alpha1/namespaces/team-a/workloads/viewed")
    assert posted["name"] == "viewed" and "metadata" not in posted and "spec" not in posted
    # The same view, as far as the controllers had not yet changed the object.
    assert {k: v for k, v in posted.items() if k in ("name", "namespace", "gpus", "gpusPerReplica", "priority")} == {
        k: got[k] for k in ("name", "namespace", "gpus", "gpusPerReplica", "priority")
    }
