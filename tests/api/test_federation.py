"""The hub's federation loop against reported cluster capacity (no spokes needed here).

Cluster status is written through the API exactly as an agent writes it (heartbeat, GPU
pools with per-node free GPUs); the lab and agent suites check that real agents report it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, Kubectl, manifest, wait_until, workload

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool(
    model: str, cap: str, price: float, nodes: int, gpus: int, free: list[int] | None = None, mem: int = 80
) -> dict:
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


def report(c: httpx.Client, name: str, region: str, pools: list[dict], ready: bool = True) -> None:
    """Write a Cluster's status the way its agent does."""
    if c.get(f"{API}/clusters/{name}").status_code == 404:
        r = c.post(
            f"{API}/clusters",
            json={
                "apiVersion": "fleetplane.io/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": name},
                "spec": {"region": region},
            },
        )
        assert r.status_code == 201, r.text
    status = {
        "heartbeatTime": now(),
        "region": region,
        "gpuPools": pools,
        "totalGpus": sum(p["allocatable"] for p in pools),
        "freeGpus": sum(p["free"] for p in pools),
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "AgentReporting"}],
    }
    r = c.patch(f"{API}/clusters/{name}/status", content=json.dumps({"status": status}), headers=MERGE)
    assert r.status_code == 200, r.text


@contextmanager
def heartbeating_hub(data_dir: Path, database_url: str, **env: str) -> Iterator[HubProcess]:
    """A hub with its controllers on (`env` configures it) and a thread that reports the status
    of every cluster in `hub.alive` (name -> (region, GPU pools)) every second, as their agents
    would; a cluster removed from `hub.alive` stops heartbeating, as a lost agent does."""
    h = start_hub(data_dir, database_url, **env)
    stop = threading.Event()
    alive: dict[str, tuple[str, list[dict]]] = {}
    h.alive = alive  # type: ignore[attr-defined]

    def heartbeats() -> None:
        with h.client() as c:
            while not stop.wait(1.0):
                for name, (region, pools) in list(alive.items()):
                    report(c, name, region, pools)

    t = threading.Thread(target=heartbeats, daemon=True)
    t.start()
    try:
        yield h
    finally:
        stop.set()
        t.join(5)
        h.stop()


@contextmanager
def hub_with_one_cluster(data_dir: Path, database_url: str, namespace: str, pools: list[dict]) -> Iterator[HubProcess]:
    """A hub with its controllers on, a namespace, and one Ready cluster `east` (us-east-1)
    whose status a thread reports every second, as its agent would."""
    with heartbeating_hub(data_dir, database_url) as h:
        with h.client() as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).status_code == 201
            report(c, "east", "us-east-1", pools)
        h.alive["east"] = ("us-east-1", pools)  # type: ignore[attr-defined]
        yield h


def get_wl(c: httpx.Client, name: str, ns: str = "team-a") -> dict:
    return c.get(f"{API}/namespaces/{ns}/workloads/{name}").json()


def wait_until_placed(c: httpx.Client, name: str, ns: str = "team-a") -> dict:
    return wait_until(
        lambda: (w := get_wl(c, name, ns)).get("status", {}).get("placement", {}).get("clusters") and w,
        what=f"{name} placed",
    )


def assignments(c: httpx.Client, name: str, ns: str = "team-a") -> list[dict]:
    items = c.get(
        f"{API}/namespaces/{ns}/assignments", params={"fieldSelector": f"spec.workloadRef.name={name}"}
    ).json()["items"]
    return sorted(items, key=lambda a: a["spec"]["epoch"])


def events_of(c: httpx.Client, name: str, ns: str = "team-a") -> dict[str, dict]:
    """The Events recorded about a workload, by reason (as kubectl describe asks for them)."""
    items = c.get(
        f"/api/v1/namespaces/{ns}/events",
        params={"fieldSelector": f"involvedObject.name={name},involvedObject.kind=Workload"},
    ).json()["items"]
    return {e["reason"]: e for e in items}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    with heartbeating_hub(
        tmp_path_factory.mktemp("fed"), fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="4"
    ) as h:
        with h.client() as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}})
        yield h


def test_workload_lands_on_reserved_capacity_and_gets_an_assignment(
    fed: HubProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fed.client() as c:
        fed.alive["h100-reserved"] = ("us-east-1", [pool("H100", "reserved", 3.2, 2, 8)])  # type: ignore[attr-defined]
        fed.alive["a100-spot"] = ("us-west-2", [pool("A100", "spot", 1.1, 4, 8)])  # type: ignore[attr-defined]
        report(c, "h100-reserved", *fed.alive["h100-reserved"])  # type: ignore[attr-defined]
        report(c, "a100-spot", *fed.alive["a100-spot"])  # type: ignore[attr-defined]
        k = Kubectl(fed.kubeconfig, tmp_path_factory.mktemp("kc"))
        # Non-preemptible work: reserved idle H100 beats cheaper spot A100 (spot not allowed).
        k("apply", "-f", "-", input=manifest(workload("train", gpus=8, replicas=2)))
        w = wait_until_placed(c, "train")
        assert [x["name"] for x in w["status"]["placement"]["clusters"]] == ["h100-reserved"]
        assert w["status"]["phase"] == "Placed" and w["status"]["placement"]["epoch"] == 1
        expl = w["status"]["placement"]["explanation"]
        assert {e["name"] for e in expl["clusters"]} == {"h100-reserved", "a100-spot"}
        [a] = assignments(c, "train")
        assert a["spec"]["clusterName"] == "h100-reserved" and a["spec"]["epoch"] == 1 and a["spec"]["replicas"] == 2
        assert a["spec"]["manifests"][0]["kind"] == "Job"
        assert "fleetplane.io/agent-cleanup" in a["metadata"]["finalizers"]
        row = k("get", "wl", "train", "-n", "team-a").splitlines()[1].split()
        assert row[3] == "Placed" and row[4] == "h100-reserved"
        assert "h100-reserved" in k("describe", "wl", "train", "-n", "team-a")


def test_unplaceable_workload_stays_pending_with_a_reason_then_places_when_capacity_appears(fed: HubProcess) -> None:
    with fed.client() as c:
        c.post(f"{API}/namespaces/team-a/workloads", json=workload("needs-l4", gpus=4, models=["L4"]) | {})
        body = workload("needs-l4", gpus=4)
        body["spec"]["gpu"]["models"] = ["L4"]
        c.delete(f"{API}/namespaces/team-a/workloads/needs-l4")
        wait_until(lambda: c.get(f"{API}/namespaces/team-a/workloads/needs-l4").status_code == 404, what="deleted")
        assert c.post(f"{API}/namespaces/team-a/workloads", json=body).status_code == 201
        w = wait_until(lambda: (x := get_wl(c, "needs-l4")).get("status", {}).get("message") and x, what="a reason")
        assert w["status"]["phase"] == "Pending"
        assert w["status"]["message"].startswith("0/") and "L4" in w["status"]["message"]
        fed.alive["l4-ondemand"] = ("eu-west-1", [pool("L4", "on-demand", 0.8, 2, 4, mem=24)])  # type: ignore[attr-defined]
        report(c, "l4-ondemand", *fed.alive["l4-ondemand"])  # type: ignore[attr-defined]
        w = wait_until_placed(c, "needs-l4")
        assert w["status"]["placement"]["clusters"][0]["name"] == "l4-ondemand"


def test_a_burst_never_over_assigns_a_cluster(fed: HubProcess) -> None:
    with fed.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "burst"}})
        for i in range(6):  # 6 x 8 GPUs wanted, 3 nodes x 8 free once the cluster appears
            body = workload(f"b{i}", "burst", gpus=8)
            body["spec"]["gpu"]["models"] = ["B200"]
            body["spec"]["priority"] = i
            assert c.post(f"{API}/namespaces/burst/workloads", json=body).status_code == 201
        wait_until(
            lambda: all(get_wl(c, f"b{i}", "burst").get("status", {}).get("phase") == "Pending" for i in range(6)),
            what="all pending before capacity exists",
        )
        # Capacity appears: one pass places the whole backlog in priority order.
        fed.alive["b200-small"] = ("ap-south-1", [pool("B200", "on-demand", 6.0, 3, 8, mem=192)])  # type: ignore[attr-defined]
        report(c, "b200-small", *fed.alive["b200-small"])  # type: ignore[attr-defined]
        wait_until(
            lambda: sum(1 for i in range(6) if get_wl(c, f"b{i}", "burst")["status"]["placement"].get("clusters")) == 3,
            what="three placed",
        )
        time.sleep(1)
        placed = [i for i in range(6) if get_wl(c, f"b{i}", "burst")["status"]["placement"].get("clusters")]
        assert sorted(placed) == [3, 4, 5], "exactly three fit, highest priority first"
        asg = c.get(f"{API}/namespaces/burst/assignments").json()["items"]
        assert sum(a["spec"]["replicas"] * 8 for a in asg) == 24


def test_status_flows_back_and_phase_never_moves_backward(fed: HubProcess) -> None:
    with fed.client() as c:
        [a] = assignments(c, "train")
        url = f"{API}/namespaces/team-a/assignments/{a['metadata']['name']}/status"
        c.patch(url, content=json.dumps({"status": {"phase": "Running", "updatedAt": now()}}), headers=MERGE)
        wait_until(lambda: get_wl(c, "train")["status"]["phase"] == "Running", what="Running")
        c.patch(url, content=json.dumps({"status": {"phase": "Applied"}}), headers=MERGE)
        time.sleep(1)
        assert get_wl(c, "train")["status"]["phase"] == "Running", "never backward"
        c.patch(url, content=json.dumps({"status": {"phase": "Succeeded"}}), headers=MERGE)
        w = wait_until(lambda: (x := get_wl(c, "train"))["status"]["phase"] == "Succeeded" and x, what="Succeeded")
        assert w["status"]["clusters"][0] == {"name": "h100-reserved", "phase": "Succeeded", "epoch": 1}


def test_silent_cluster_goes_not_ready_and_its_workload_moves_with_a_new_epoch(fed: HubProcess) -> None:
    with fed.client() as c:
        fed.alive["h100-east"] = ("us-east-1", [pool("H100", "on-demand", 4.0, 1, 8)])  # type: ignore[attr-defined]
        fed.alive["h100-west"] = ("us-west-2", [pool("H100", "on-demand", 4.5, 1, 8)])  # type: ignore[attr-defined]
        for n in ("h100-east", "h100-west"):
            report(c, n, *fed.alive[n])  # type: ignore[attr-defined]
        c.post("/api/v1/namespaces", json={"metadata": {"name": "fo"}})
        body = workload("serve", "fo", gpus=8)
        body["spec"]["clusterSelector"] = {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}
        body["spec"]["gpu"]["models"] = ["H100"]
        assert c.post(f"{API}/namespaces/fo/workloads", json=body).status_code == 201
        first = wait_until_placed(c, "serve", "fo")["status"]["placement"]["clusters"][0]["name"]
        other = "h100-west" if first == "h100-east" else "h100-east"
        del fed.alive[first]  # type: ignore[attr-defined]  # its agent goes silent
        w = wait_until(
            lambda: (
                (x := get_wl(c, "serve", "fo"))["status"]["placement"].get("epoch") == 2
                and x["status"]["placement"].get("clusters")
                and x
            ),
            timeout=30,
            what="re-placement",
        )
        assert w["status"]["placement"]["clusters"][0]["name"] == other
        cl = c.get(f"{API}/clusters/{first}").json()
        ready = next(x for x in cl["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "HeartbeatTimeout"
        old, new = assignments(c, "serve", "fo")
        assert old["spec"]["epoch"] == 1 and old["metadata"].get("deletionTimestamp"), "old epoch fenced"
        assert new["spec"]["epoch"] == 2 and new["spec"]["clusterName"] == other
        events = wait_until(lambda: (e := events_of(c, "serve", "fo")).get("Placed", {}).get("count") == 2 and e)
        assert events["FailedOver"]["type"] == "Warning" and first in events["FailedOver"]["message"]
        assert "(epoch 2)" in events["Placed"]["message"], "one Placed event, counted twice, latest message"


def test_deleting_a_workload_waits_for_agents_to_clean_up(fed: HubProcess) -> None:
    with fed.client() as c:
        [a] = list(assignments(c, "needs-l4"))
        r = c.delete(f"{API}/namespaces/team-a/workloads/needs-l4")
        assert r.status_code == 200
        a = wait_until(
            lambda: (
                (x := c.get(f"{API}/namespaces/team-a/assignments/{a['metadata']['name']}").json())["metadata"].get(
                    "deletionTimestamp"
                )
                and x
            ),
            what="assignment deleting",
        )
        assert get_wl(c, "needs-l4")["metadata"]["deletionTimestamp"], "workload held until agents confirm"
        # The agent confirms cleanup by dropping its finalizer.
        c.patch(
            f"{API}/namespaces/team-a/assignments/{a['metadata']['name']}",
            content=json.dumps({"metadata": {"finalizers": None}}),
            headers=MERGE,
        )
        wait_until(
            lambda: c.get(f"{API}/namespaces/team-a/workloads/needs-l4").status_code == 404, what="workload gone"
        )


def test_one_teams_bad_dataset_does_not_block_other_placements(fed: HubProcess) -> None:
    with fed.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "careless"}})
        topo = {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "Topology",
            "metadata": {"name": "net"},
            "spec": {
                "sites": [{"name": "us-east-1", "type": "region"}, {"name": "eu-west-1", "type": "region"}],
                "links": [{"from": "us-east-1", "to": "eu-west-1", "bandwidthGbps": 10, "egressCostPerGB": 0.02}],
            },
        }
        assert c.post(f"{API}/topologies", json=topo).status_code == 201
        bad = {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": "lost"},
            "spec": {"sizeGiB": 100, "locations": [{"site": "mars-1"}]},
        }
        assert c.post(f"{API}/namespaces/careless/datasets", json=bad).status_code == 201
        uses_it = workload("reads-lost", "careless", gpus=1)
        uses_it["spec"]["datasets"] = [{"name": "lost"}]
        assert c.post(f"{API}/namespaces/careless/workloads", json=uses_it).status_code == 201
        fed.alive["l4-extra"] = ("eu-west-1", [pool("L4", "on-demand", 0.7, 1, 4, mem=24)])  # type: ignore[attr-defined]
        report(c, "l4-extra", *fed.alive["l4-extra"])  # type: ignore[attr-defined]
        body = workload("innocent", "team-a", gpus=1)
        body["spec"]["gpu"]["models"] = ["L4"]
        assert c.post(f"{API}/namespaces/team-a/workloads", json=body).status_code == 201
        assert wait_until_placed(c, "innocent")["status"]["phase"] == "Placed"
        w = wait_until(
            lambda: (x := get_wl(c, "reads-lost", "careless")).get("status", {}).get("message") and x,
            what="a reason for the careless workload",
        )
        assert 'unknown Dataset "careless/lost"' in w["status"]["message"]


def test_a_spot_interruption_requeues_the_workload_with_a_new_epoch(fed: HubProcess) -> None:
    with fed.client() as c:
        fed.alive["a100-spot-2"] = ("us-west-2", [pool("A100", "spot", 1.0, 2, 8)])  # type: ignore[attr-defined]
        report(c, "a100-spot-2", *fed.alive["a100-spot-2"])  # type: ignore[attr-defined]
        c.post("/api/v1/namespaces", json={"metadata": {"name": "spotty"}})
        body = workload("cheap", "spotty", gpus=8)
        body["spec"]["gpu"]["models"] = ["A100"]
        body["spec"]["capacityTypes"] = {"allowed": ["spot"], "preferred": ["spot"]}
        assert c.post(f"{API}/namespaces/spotty/workloads", json=body).status_code == 201
        first = wait_until_placed(c, "cheap", "spotty")
        [a] = assignments(c, "cheap", "spotty")
        # The agent reports that the spot node under the replica was reclaimed.
        c.patch(
            f"{API}/namespaces/spotty/assignments/{a['metadata']['name']}/status",
            content=json.dumps(
                {
                    "status": {
                        "phase": "Failed",
                        "reason": "Preempted",
                        "message": "spot node a100-spot-2-a100-spot-0 was reclaimed",
                    }
                }
            ),
            headers=MERGE,
        )
        w = wait_until(
            lambda: (
                (x := get_wl(c, "cheap", "spotty"))["status"]["placement"].get("epoch") == 2
                and x["status"]["placement"].get("clusters")
                and x
            ),
            what="requeued with epoch 2",
        )
        assert first["status"]["placement"]["epoch"] == 1
        assert w["status"]["phase"] != "Failed", "a preemption is not the workload's failure"
        old, new = assignments(c, "cheap", "spotty")
        assert old["metadata"].get("deletionTimestamp") and new["spec"]["epoch"] == 2
        evicted = events_of(c, "cheap", "spotty")["Evicted"]
        assert evicted["type"] == "Warning" and "spot interruption" in evicted["message"]


def test_a_settled_workloads_resource_version_stops_changing(fed: HubProcess) -> None:
    # Its own status writes wake the controller: a status that never compares equal to its
    # stored copy would be rewritten forever. Heartbeats keep arriving meanwhile.
    with fed.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "calm"}})
        big = workload("huge-memory", "calm", gpus=1)
        big["spec"]["gpu"]["minMemoryGiB"] = 16384  # the largest the wire type allows: never fits
        assert c.post(f"{API}/namespaces/calm/workloads", json=big).status_code == 201
        fed.alive["calm-l4"] = ("eu-west-1", [pool("L4", "on-demand", 0.7, 1, 4, mem=24)])  # type: ignore[attr-defined]
        report(c, "calm-l4", *fed.alive["calm-l4"])  # type: ignore[attr-defined]
        small = workload("fits", "calm", gpus=1)
        small["spec"]["gpu"]["models"] = ["L4"]
        assert c.post(f"{API}/namespaces/calm/workloads", json=small).status_code == 201
        wait_until_placed(c, "fits", "calm")
        wait_until(lambda: get_wl(c, "huge-memory", "calm").get("status", {}).get("conditions"), what="pending")
        time.sleep(1.5)  # let the passes the placement itself caused finish
        before = {n: get_wl(c, n, "calm")["metadata"]["resourceVersion"] for n in ("huge-memory", "fits")}
        time.sleep(3)  # three heartbeat rounds
        after = {n: get_wl(c, n, "calm")["metadata"]["resourceVersion"] for n in ("huge-memory", "fits")}
        assert after == before
        placed = {x["type"]: x for x in get_wl(c, "fits", "calm")["status"]["conditions"]}
        assert placed["Placed"]["status"] == "True" and placed["Running"]["reason"] == "Waiting"


def controller_counters(c: httpx.Client) -> dict[str, float]:
    """The controller's list counts by resource, and its pass count, from /metrics."""
    out: dict[str, float] = {}
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("fleetplane_controller_lists_total{"):
            resource = line.split('resource="', 1)[1].split('"', 1)[0].rsplit("/", 1)[-1]  # fleetplane.io/x → x
            out[resource] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("fleetplane_controller_passes_total "):
            out["passes"] = float(line.rsplit(" ", 1)[1])
    return out


def test_controller_passes_after_the_first_list_follow_events_and_never_list_the_fleet_again(fed: HubProcess) -> None:
    with fed.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "cached"}})
        wait_until(lambda: controller_counters(c).get("workloads"), what="the controller's first list")
        before = controller_counters(c)
        assert before["workloads"] == before["clusters"] == before["assignments"] == 1, before
        # A cluster joins, five workloads arrive and are placed, one starts running: many passes.
        fed.alive["cached-h100"] = ("us-east-2", [pool("H100", "on-demand", 4.0, 4, 8)])  # type: ignore[attr-defined]
        report(c, "cached-h100", *fed.alive["cached-h100"])  # type: ignore[attr-defined]
        for i in range(5):
            assert (
                c.post(f"{API}/namespaces/cached/workloads", json=workload(f"c{i}", "cached", gpus=1)).status_code
                == 201
            )
        for i in range(5):
            wait_until_placed(c, f"c{i}", "cached")
        [a] = assignments(c, "c0", "cached")
        url = f"{API}/namespaces/cached/assignments/{a['metadata']['name']}/status"
        c.patch(url, content=json.dumps({"status": {"phase": "Running", "updatedAt": now()}}), headers=MERGE)
        wait_until(lambda: get_wl(c, "c0", "cached")["status"]["phase"] == "Running", what="c0 Running")
        after = controller_counters(c)
        assert after["passes"] > before["passes"]
        assert {r: after[r] for r in ("clusters", "workloads", "assignments")} == {
            r: before[r] for r in ("clusters", "workloads", "assignments")
        }, "no pass listed the fleet again"
