"""An agent that fenced itself does not let the hub book the GPUs of the copies it stopped while
it brings them back (issue 14: bench/bench_recovery.py with `--hub-workers 2`, where the hub's
restart outlasted the lease and a Pending workload was placed on a restoring copy's GPUs).

Real parts: a hub process with its controllers on, on real Postgres; one agent on the SIMULATED
backend (the one allowed fake, an in-memory spoke) reaching the hub through a loopback TCP proxy
the test cuts (fleetplane_testing.tcpproxy), as a hub restart or a partition cuts it off. The
hub's cluster timeout is long, so the hub never marks the cluster NotReady or re-places anything:
the copies the agent stopped are still assigned to it and come back when the link does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from fleetplane_testing import LOOPBACK, wait_until
from fleetplane_testing.tcpproxy import TcpProxy
from spoke_agent.agent import AgentOptions, AgentThread
from spoke_agent.settings import AgentConfig
from tests.conftest import start_hub

API = "/apis/fleetplane.io/v1alpha1"
NS = "team-a"
CLUSTER = "restore-1"
PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [{"name": "h100", "model": "H100", "capacityType": "on-demand", "nodes": 2, "gpusPerNode": 4}],
    "jobs": {"durationSeconds": 3600, "startDelaySeconds": 0.1},
}
HEARTBEAT = 1.0
"""Seconds: the agent renews its lease this often."""
LEASE = 3.0
"""Seconds (T): the agent fences after this long without a renewal (the hub waits 120 s)."""


def gpu_workload(name: str, replicas: int, gpus: int) -> dict[str, Any]:
    """A Workload of `replicas` pods with `gpus` H100s each (a Job running an hour)."""
    container = {"name": "main", "image": "train", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "parallelism": replicas,
            "completions": replicas,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "gpu": {"count": gpus, "models": ["H100"]}, "manifests": [job]},
    }


def workload_of(c: httpx.Client, name: str) -> dict[str, Any]:
    return dict(c.get(f"{API}/namespaces/{NS}/workloads/{name}").json())


def assignments_of(c: httpx.Client, name: str) -> list[dict[str, Any]]:
    items = c.get(f"{API}/namespaces/{NS}/assignments", params={"fieldSelector": f"spec.workloadRef.name={name}"})
    return list(items.json()["items"])


def unschedulable(c: httpx.Client) -> list[str]:
    """Assignments the spoke says cannot be scheduled (two workloads booked on the same GPUs)."""
    items = c.get(f"{API}/namespaces/{NS}/assignments").json()["items"]
    return [
        f"{a['metadata']['name']}: {(a.get('status') or {}).get('message')}"
        for a in items
        if (a.get("status") or {}).get("reason") == "Unschedulable"
    ]


def free_gpus_on_the_hub(c: httpx.Client) -> int:
    return int(c.get(f"{API}/clusters/{CLUSTER}").json()["status"]["freeGpus"])


def test_a_pending_workload_is_not_placed_on_the_gpus_of_copies_a_fenced_agent_is_restoring(
    tmp_path: Path,
    fresh_database,  # type: ignore[no-untyped-def]
) -> None:
    hub = start_hub(tmp_path / "hub", fresh_database(), FLEETPLANE_CLUSTER_TIMEOUT_SECONDS="120")
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    config = AgentConfig.model_validate(
        {"capacity": {"heartbeatSeconds": HEARTBEAT, "debounceSeconds": 0.2}, "lease": {"durationSeconds": LEASE}}
    )
    try:
        token = hub.cli("cluster", "join-token", "create", CLUSTER, "--data-dir", str(hub.data_dir)).splitlines()[-1]
        with hub.client() as c, TcpProxy(LOOPBACK, hub.port).start() as proxy:
            c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
            options = AgentOptions(
                hub=f"https://{LOOPBACK}:{proxy.port}",
                hub_verify=str(hub.ca),
                cluster_name=CLUSTER,
                join_token=token,
                backend="simulated",
                profile=str(profile),
                state_file=str(tmp_path / "state.json"),
                config=config,
            )
            thread = AgentThread(options).start(timeout=90)
            try:
                agent = thread.agent
                assert agent is not None and agent.delivery is not None
                delivery = agent.delivery

                # Fill the cluster (2 nodes x 4 GPUs) with "serve" (failover: Replace, the default).
                c.post(f"{API}/namespaces/{NS}/workloads", json=gpu_workload("serve", 2, 4)).raise_for_status()
                wait_until(
                    "serve runs and the hub sees the cluster full",
                    lambda: (
                        workload_of(c, "serve").get("status", {}).get("phase") == "Running"
                        and free_gpus_on_the_hub(c) == 0
                    ),
                    timeout=30,
                )
                # "late" fits only on the GPUs serve holds: it waits, Pending.
                c.post(f"{API}/namespaces/{NS}/workloads", json=gpu_workload("late", 1, 4)).raise_for_status()
                wait_until(
                    "the hub decides late cannot be placed yet",
                    lambda: (
                        (st := workload_of(c, "late").get("status") or {}).get("phase") == "Pending"
                        and st.get("placement")
                    ),
                    timeout=20,
                )

                # Cut the agent off for longer than its lease: it fences and stops serve's copy.
                proxy.cut()
                wait_until(
                    "the agent fences itself and serve's pods are gone from the spoke",
                    lambda: thread.call(lambda: delivery.fenced and agent.backend.capacity().free_gpus == 8),
                    timeout=LEASE + 15,
                    interval=0.2,
                )

                # The link comes back. The report the agent's report loop sends when its retry
                # comes before the renewal that lifts the fence (the order bench_recovery saw) is
                # taken here, in the agent's loop, as the link opens: while it is still fenced.
                async def link_back_and_report() -> None:
                    proxy.restore()
                    await agent.report_if_changed()

                thread.call(link_back_and_report)
                back = time.monotonic()

                # The agent renews, relists, lifts the fence and restores serve. Until serve's
                # pods are bound again, and a few seconds after, late is not placed here.
                samples: list[tuple[float, int, int, list[str]]] = []

                def sample() -> bool:
                    samples.append(
                        (
                            time.monotonic() - back,
                            free_gpus_on_the_hub(c),
                            len(assignments_of(c, "late")),
                            unschedulable(c),
                        )
                    )
                    restored = thread.call(lambda: not delivery.fenced and agent.backend.capacity().free_gpus == 0)
                    return bool(restored)

                wait_until("the agent restores serve's copy on the spoke", sample, timeout=30, interval=0.2)
                restored_after = time.monotonic() - back
                settle = time.monotonic() + 4.0  # placement passes, debounce, the next capacity reports
                while time.monotonic() < settle:
                    sample()
                    time.sleep(0.2)
                print(
                    f"\nSIMULATED: fence lifted and serve restored {restored_after:.1f}s after the link came back; "
                    f"{len(samples)} samples, hub free GPUs seen: {sorted({s[1] for s in samples})}"
                )
                history = "\n".join(
                    f"  t={t:4.1f}s free={f} late-assignments={n} unschedulable={u}" for t, f, n, u in samples
                )
                for t, _free, late_assignments, stuck in samples:
                    assert late_assignments == 0, f"t={t:.1f}s: late was placed on serve's GPUs\n{history}"
                    assert not stuck, f"t={t:.1f}s: Unschedulable on the spoke: {stuck}\n{history}"
                for t, free, _late_assignments, _stuck in samples:
                    assert free == 0, f"t={t:.1f}s: the hub saw {free} free GPUs of serve's restoring copy\n{history}"
                assert workload_of(c, "late")["status"]["phase"] == "Pending"
                assert [a["spec"]["epoch"] for a in assignments_of(c, "serve")] == [1], "serve was not re-placed"

                # The hold ends with the copy: once serve is deleted its GPUs are free and late runs.
                c.delete(f"{API}/namespaces/{NS}/workloads/serve").raise_for_status()
                wait_until(
                    "late is placed on the GPUs serve freed and runs",
                    lambda: workload_of(c, "late").get("status", {}).get("phase") == "Running",
                    timeout=30,
                )
                assert [a["spec"]["clusterName"] for a in assignments_of(c, "late")] == [CLUSTER]
                assert not unschedulable(c)
            finally:
                thread.stop()
    finally:
        hub.stop()
