"""A Workload's epoch history (`status.epochHistory`) on a real hub and real Postgres: a
heartbeat failover, spot interruptions and a queue preemption each close the epoch they end
and open the next with the cause; the list keeps the last 10; `kubectl explain` describes it.

Cluster status is written through the API as an agent writes it (tests/api/test_federation.py's
helpers); the preemption test runs SIMULATED agents (tests/api/queue_fleet.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fleetplane_types.names import EVICTED_REASON, FAILOVER_REASON, PLACED_REASON, PREEMPTED_BY_PRIORITY_REASON
from hub.controllers.epochs import MAX_EPOCHS
from tests.api.queue_fleet import Fleet, job_workload, queue, running_fleet
from tests.api.test_federation import API, MERGE, assignments, get_wl, heartbeating_hub, pool, report, wait_until_placed
from tests.hubtest import HubProcess, Kubectl, wait_until, workload


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A hub whose clusters (those in `hub.alive`) heartbeat every second, as agents would."""
    with heartbeating_hub(
        tmp_path_factory.mktemp("epochs"), fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="4"
    ) as h:
        yield h


def history(c: httpx.Client, name: str, ns: str) -> list[dict]:
    return list(get_wl(c, name, ns)["status"].get("epochHistory") or [])


def wait_for_epoch(c: httpx.Client, name: str, ns: str, epoch: int) -> dict:
    return wait_until(
        lambda: (
            (w := get_wl(c, name, ns))["status"].get("placement", {}).get("epoch") == epoch
            and w["status"]["placement"].get("clusters")
            and w
        ),
        timeout=30,
        what=f"{ns}/{name} placed in epoch {epoch}",
    )


def test_a_heartbeat_failover_closes_the_epoch_and_the_next_names_the_lost_cluster(hub: HubProcess) -> None:
    with hub.client() as c:
        for n, region in (("fo-east", "us-east-1"), ("fo-west", "us-west-2")):
            hub.alive[n] = (region, [pool("H100", "on-demand", 4.0, 1, 8)])  # type: ignore[attr-defined]
            report(c, n, *hub.alive[n])  # type: ignore[attr-defined]
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "fo"}}).status_code == 201
        body = workload("serve", "fo", gpus=8)
        body["spec"]["gpu"]["models"] = ["H100"]
        assert c.post(f"{API}/namespaces/fo/workloads", json=body).status_code == 201
        first = wait_until_placed(c, "serve", "fo")
        lost = first["status"]["placement"]["clusters"][0]["name"]
        other = "fo-west" if lost == "fo-east" else "fo-east"
        [e1] = first["status"]["epochHistory"]
        assert (e1["epoch"], e1["clusters"], e1["reason"]) == (1, [lost], PLACED_REASON)
        assert e1["startedAt"] == first["status"]["placement"]["decidedAt"] and "endedAt" not in e1

        del hub.alive[lost]  # type: ignore[attr-defined]  # its agent goes silent
        wait_for_epoch(c, "serve", "fo", 2)
        e1, e2 = history(c, "serve", "fo")
        assert (e1["endReason"], e1["endMessage"]) == (FAILOVER_REASON, f"lost {lost} (NotReady)")
        assert (e2["epoch"], e2["clusters"], e2["reason"]) == (2, [other], FAILOVER_REASON)
        assert lost in e2["message"] and "endedAt" not in e2
        assert e1["startedAt"] <= e1["endedAt"] <= e2["startedAt"]


def test_spot_interruptions_append_one_entry_each_and_the_history_keeps_the_last_ten(hub: HubProcess) -> None:
    interruptions = MAX_EPOCHS + 2
    with hub.client() as c:
        hub.alive["spot-1"] = ("us-west-2", [pool("A100", "spot", 1.0, 1, 8)])  # type: ignore[attr-defined]
        report(c, "spot-1", *hub.alive["spot-1"])  # type: ignore[attr-defined]
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "spotty"}}).status_code == 201
        body = workload("cheap", "spotty", gpus=8)
        body["spec"]["gpu"]["models"] = ["A100"]
        body["spec"]["capacityTypes"] = {"allowed": ["spot"]}
        assert c.post(f"{API}/namespaces/spotty/workloads", json=body).status_code == 201
        wait_until_placed(c, "cheap", "spotty")
        for epoch in range(1, interruptions + 1):
            a = next(x for x in assignments(c, "cheap", "spotty") if x["spec"]["epoch"] == epoch)
            reclaimed = {"status": {"phase": "Failed", "reason": "Preempted", "message": "spot node reclaimed"}}
            r = c.patch(
                f"{API}/namespaces/spotty/assignments/{a['metadata']['name']}/status",
                content=json.dumps(reclaimed),
                headers=MERGE,
            )
            assert r.status_code == 200, r.text
            wait_for_epoch(c, "cheap", "spotty", epoch + 1)
            got = history(c, "cheap", "spotty")
            assert got[-1]["epoch"] == epoch + 1, "each re-placement appends its epoch"
            assert len(got) == min(epoch + 1, MAX_EPOCHS)

        h = history(c, "cheap", "spotty")
        last = interruptions + 1
        assert [e["epoch"] for e in h] == list(range(last - MAX_EPOCHS + 1, last + 1)), "oldest dropped"
        assert all(e["reason"] == EVICTED_REASON and "spot-1 (spot interruption)" in e["message"] for e in h)
        assert all(e["endReason"] == EVICTED_REASON for e in h[:-1]) and "endedAt" not in h[-1]
        assert all(e["clusters"] == ["spot-1"] for e in h)


def test_kubectl_explain_describes_the_epoch_history(hub: HubProcess, tmp_path: Path) -> None:
    k = Kubectl(hub.kubeconfig, tmp_path / "kc")
    out = k("explain", "workload.status.epochHistory")
    assert "The workload's last placement epochs" in out
    for field in ("epoch", "clusters", "reason", "startedAt", "endedAt", "endReason"):
        assert f"  {field}\t" in out or f"  {field} " in out, field


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(tmp_path, ("research",)) as f:
        yield f


def test_a_preempted_workload_records_its_preemptor_and_is_readmitted_in_a_new_epoch(fleet: Fleet) -> None:
    fleet.cluster("sim-a", h100_nodes=1)  # 8 H100 (SIMULATED): one 8-GPU job at a time
    fleet.add_queue(queue("research", 8, namespaces=["research"], preemption={"withinQueue": "LowerPriority"}))
    fleet.submit(job_workload("sweep", "research", 8, priority=10, queue="research"))
    fleet.wait_until_placed("research", "sweep")
    fleet.submit(job_workload("hotfix", "research", 8, priority=1000, queue="research", job_seconds=4))

    def epoch_two() -> list[dict] | None:
        h = fleet.workload("research", "sweep")["status"].get("epochHistory") or []
        return h if len(h) == 2 and (h[-1].get("clusters")) else None

    e1, e2 = wait_until(epoch_two, timeout=60, what="sweep admitted again after hotfix finished")
    assert (e1["epoch"], e1["reason"], e1["clusters"]) == (1, PLACED_REASON, ["sim-a"])
    assert e1["endReason"] == PREEMPTED_BY_PRIORITY_REASON and "research/hotfix" in e1["endMessage"]
    assert e2["reason"] == PREEMPTED_BY_PRIORITY_REASON and "preempted by research/hotfix" in e2["message"]
    assert e2["epoch"] > e1["epoch"] and e1["endedAt"] <= e2["startedAt"]
    # hotfix ran to the end: its one epoch ended with it.
    [done] = fleet.workload("research", "hotfix")["status"]["epochHistory"]
    assert (done["reason"], done["endReason"]) == (PLACED_REASON, "Succeeded")
