"""Kill the hub mid-burst: after restart no workload is lost, none placed twice, no cluster over-assigned.

Also: with two hub replicas, only one runs the controllers, and the other takes over when it dies.

Each test runs against one-process hubs and against hubs of two API worker processes plus a
controller process (a SIGKILL then kills every process of the hub).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import defaultdict
from collections.abc import Callable

import httpx
import pytest

from tests.api.test_federation import API, pool, report, wait_until
from tests.conftest import start_hub
from tests.hubtest import HubProcess, free_port, workload

CLUSTERS = {
    "crash-a": ("us-east-1", [pool("H100", "on-demand", 4.0, 4, 8)]),  # 32 GPUs
    "crash-b": ("us-west-2", [pool("H100", "on-demand", 4.2, 2, 8)]),  # 16 GPUs
}
FREE = {"crash-a": 32, "crash-b": 16}

pytestmark = pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])


def test_killing_the_hub_mid_burst_loses_nothing_and_double_places_nothing(
    workers: int,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    data = tmp_path_factory.mktemp("crash")
    hub = start_hub(data, url, workers)
    accepted: list[str] = []
    try:
        with hub.client() as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": "burst"}})
            for name, (region, pools) in CLUSTERS.items():
                report(c, name, region, pools)

        def submit(i: int) -> str | None:
            body = workload(f"job-{i:03d}", "burst", gpus=4)
            body["spec"]["gpu"]["models"] = ["H100"]
            try:
                with httpx.Client(
                    base_url=hub.http_url, headers={"Authorization": f"Bearer {hub.admin_token}"}, timeout=5
                ) as c:
                    r = c.post(f"{API}/namespaces/burst/workloads", json=body)
            except httpx.HTTPError:
                return None  # the hub died under this request: not accepted, or accepted and we did not hear
            if r.status_code != 201:
                return None
            heard.append(body["metadata"]["name"])
            return body["metadata"]["name"]

        heard: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool_:
            futures = [pool_.submit(submit, i) for i in range(60)]
            # Kill once the burst is under way (a few creates answered), however busy the machine.
            wait_until(lambda: len(heard) >= 3, timeout=60, what="the first creates of the burst answered")
            hub.stop(kill=True)  # SIGKILL mid-burst, to every process of the hub
            assert not hub.processes(), "no process of the killed hub survives"
            accepted = [n for f in futures if (n := f.result())]
        assert accepted, "some submissions were accepted before the kill"

        hub = HubProcess(data, url, free_port(), free_port(), workers=workers).start()
        with hub.client() as c:
            for name, (region, pools) in CLUSTERS.items():
                report(c, name, region, pools)  # agents keep reporting after the restart

            def settled() -> bool:
                items = c.get(f"{API}/namespaces/burst/workloads").json()["items"]
                return all((w.get("status") or {}).get("message") for w in items)

            wait_until(settled, timeout=60, what="every workload decided after restart")
            time.sleep(1)
            items = {w["metadata"]["name"]: w for w in c.get(f"{API}/namespaces/burst/workloads").json()["items"]}
            assert set(accepted) <= set(items), "an accepted workload was lost"
            for w in items.values():
                assert w["status"]["phase"] in ("Pending", "Placed"), w["status"]
            asg = c.get(f"{API}/namespaces/burst/assignments").json()["items"]
            per_workload: dict[str, int] = defaultdict(int)
            per_cluster: dict[str, int] = defaultdict(int)
            for a in asg:
                per_workload[a["spec"]["workloadRef"]["name"]] += 1
                per_cluster[a["spec"]["clusterName"]] += a["spec"]["replicas"] * 4
            assert all(n == 1 for n in per_workload.values()), f"placed twice: {per_workload}"
            for cluster, used in per_cluster.items():
                assert used <= FREE[cluster], f"{cluster} over-assigned: {used} > {FREE[cluster]}"
            placed = [n for n, w in items.items() if w["status"]["placement"].get("clusters")]
            # Every stored workload that fits is placed, and no more than the capacity holds (how
            # many submissions got in before the kill depends on the machine's speed).
            fits = min(len(items), sum(FREE.values()) // 4)
            assert len(placed) == fits, f"{len(placed)} placed of {len(items)}, capacity for {fits}"
            assert set(placed) == set(per_workload)
    finally:
        hub.stop()


def test_only_one_replica_runs_controllers_and_the_other_takes_over(
    workers: int,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    a = start_hub(tmp_path_factory.mktemp("ha-a"), url, workers)
    b_dir = tmp_path_factory.mktemp("ha-b")
    (b_dir / "admin.token").write_text(a.admin_token)
    b = start_hub(b_dir, url, workers)
    try:
        with a.client() as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": "ha"}})
            report(c, "ha-1", "us-east-1", [pool("L4", "on-demand", 0.8, 2, 4, mem=24)])
            body = workload("first", "ha", gpus=1)
            assert c.post(f"{API}/namespaces/ha/workloads", json=body).status_code == 201
            wait_until(
                lambda: c.get(f"{API}/namespaces/ha/workloads/first").json().get("status", {}).get("phase") == "Placed",
                what="placed by the leader",
            )
        leader_logs = [h for h in (a, b) if "runs the federation controllers" in h.log_tail(400)]
        assert len(leader_logs) == 1, "exactly one replica leads"
        leader = leader_logs[0]
        follower = b if leader is a else a
        leader.stop(kill=True)
        with follower.client() as c:
            report(c, "ha-1", "us-east-1", [pool("L4", "on-demand", 0.8, 2, 4, mem=24)])
            assert c.post(f"{API}/namespaces/ha/workloads", json=workload("second", "ha", gpus=1)).status_code == 201
            wait_until(
                lambda: (
                    c.get(f"{API}/namespaces/ha/workloads/second").json().get("status", {}).get("phase") == "Placed"
                ),
                timeout=30,
                what="placed by the new leader",
            )
        assert "runs the federation controllers" in follower.log_tail(400)
    finally:
        a.stop()
        b.stop()
