"""A backlog larger than one decide chunk (hub.controllers.federation.DECIDE_CHUNK): the
controller decides pending workloads DECIDE_CHUNK at a time from ONE placement session and
commits each chunk before deciding the next. Across the chunk boundary nothing may change for
the user: every workload that fits is placed, the GPUs a chunk booked are not given again to
the next chunk (no double booking), and the ones that do not fit wait with the engine's reason.

A real hub process on a real Postgres database; the cluster's status is written through the API
as its agent writes it (tests/api/test_federation.py's helpers).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx

from fleetplane_types.names import RESERVATION_ANNOTATION
from hub.controllers.federation import DECIDE_CHUNK
from tests.api.test_federation import API, pool, report
from tests.conftest import start_hub
from tests.hubtest import wait_until, workload

NS = "chunks"
GPUS_PER_NODE = 8
NODES = (DECIDE_CHUNK + 22) // GPUS_PER_NODE  # capacity runs out a little after the first chunk
CAPACITY = NODES * GPUS_PER_NODE
BACKLOG = CAPACITY + 28  # more than one chunk, more than fits
NO_CLUSTER_TIMEOUT = {"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": "600"}  # reported once: never NotReady


def all_workloads(c: httpx.Client) -> list[dict]:
    items: list[dict] = []
    token = ""
    while True:
        params = {"limit": "200", **({"continue": token} if token else {})}
        body = c.get(f"{API}/namespaces/{NS}/workloads", params=params).json()
        items += body["items"]
        token = body["metadata"].get("continue") or ""
        if not token:
            return items


def all_assignments(c: httpx.Client) -> list[dict]:
    return list(c.get(f"{API}/namespaces/{NS}/assignments").json()["items"])


def test_a_backlog_larger_than_a_decide_chunk_is_placed_once_without_double_booking(
    tmp_path: Path,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    assert BACKLOG > DECIDE_CHUNK and CAPACITY > DECIDE_CHUNK, "the test must cross a chunk boundary"
    h = start_hub(tmp_path / "hub", fresh_database(), **NO_CLUSTER_TIMEOUT)
    try:
        with h.client() as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
            for i in range(BACKLOG):  # no cluster yet: every one of them waits
                r = c.post(f"{API}/namespaces/{NS}/workloads", json=workload(f"w-{i:03d}", NS, gpus=1))
                assert r.status_code == 201, r.text
            wait_until(
                lambda: all((w.get("status") or {}).get("phase") == "Pending" for w in all_workloads(c)),
                timeout=120,
                what=f"all {BACKLOG} workloads Pending before any capacity exists",
            )

            # Capacity appears: one pass finds the whole backlog pending, more than one chunk.
            report(c, "east", "us-east-1", [pool("L4", "on-demand", 0.7, NODES, GPUS_PER_NODE, mem=24)])

            def settled() -> bool:
                ws = all_workloads(c)
                placed = [w for w in ws if (w.get("status") or {}).get("placement", {}).get("clusters")]
                waiting = [w for w in ws if (w.get("status") or {}).get("placement", {}).get("reason", "")]
                waiting = [w for w in waiting if w["status"]["placement"]["reason"].startswith("0/1 clusters")]
                return len(placed) == CAPACITY and len(waiting) == BACKLOG - CAPACITY

            wait_until(settled, timeout=180, what=f"{CAPACITY} placed and {BACKLOG - CAPACITY} waiting with a reason")

            asg = all_assignments(c)
            per_workload = Counter(a["spec"]["workloadRef"]["name"] for a in asg)
            assert len(per_workload) == CAPACITY, "every workload that fits has an Assignment"
            assert max(per_workload.values()) == 1, "no workload was placed twice"
            assert {a["spec"]["clusterName"] for a in asg} == {"east"}
            assert sum(a["spec"]["replicas"] for a in asg) == CAPACITY, "no GPU booked twice across chunks"
            # The GPUs each Assignment holds, node by node (its reservation annotation): no node
            # gives more than it has.
            per_node: Counter[str] = Counter()
            for a in asg:
                held = json.loads(a["metadata"]["annotations"][RESERVATION_ANNOTATION])
                assert held["gpusPerReplica"] == 1 and len(held["nodes"]) == held["replicas"] == 1, held
                per_node[held["nodes"][0]] += 1
            assert sum(per_node.values()) == CAPACITY and len(per_node) == NODES, per_node
            assert max(per_node.values()) == GPUS_PER_NODE, per_node

            ws = {w["metadata"]["name"]: w for w in all_workloads(c)}
            for name in per_workload:
                p = ws[name]["status"]["placement"]
                assert p["epoch"] == 1 and [x["name"] for x in p["clusters"]] == ["east"], (name, p)
            waiting = [w for w in ws.values() if w["metadata"]["name"] not in per_workload]
            for w in waiting:
                st = w["status"]
                assert st["phase"] == "Pending", w["metadata"]["name"]
                assert st["placement"]["explanation"]["placed"] is False, w["metadata"]["name"]
                assert st["placement"]["reason"].startswith("0/1 clusters"), st["placement"]["reason"]
            # Priority ties are broken by name (Engine.place_batch's order): the last names wait.
            assert sorted(w["metadata"]["name"] for w in waiting) == [f"w-{i:03d}" for i in range(CAPACITY, BACKLOG)]
    finally:
        h.stop()
