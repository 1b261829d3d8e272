"""Agent self-fencing end to end on the lab: the hub, three real spokes, a real agent per spoke,
and a loopback TCP proxy (fleetplane_testing.tcpproxy) between h100-east's agent and the hub.

Cutting the proxy is a network partition: the agent is alive and its spoke is fine, but it
cannot renew its lease. Shows:
1. a short cut (shorter than the hub's cluster timeout): the agent stops its failover: Replace
   Job after its lease duration T, the hub re-places nothing, and when the link is back the
   agent restores the Job; a failover: Wait workload runs throughout;
2. a long cut: the agent stops the Job after T, the hub re-places it on a100-west only after
   its cluster timeout (>= T + grace), and at no sample do two copies run; when the link is
   back the agent removes the fenced copy (its Assignment is being deleted) and keeps the
   failover: Wait one.

Run: .venv/bin/pytest -m lab tests/e2e/test_self_fencing_on_the_lab.py -q -s
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import yaml

from fleetplane_testing.tcpproxy import TcpProxy

from .fleet import (
    CLUSTER_TIMEOUT,
    Fleet,
    PodSampler,
    assignments_of,
    cluster_ready,
    describe,
    gpu_job,
    job_pods,
    jobs_on,
    pods_with,
    wait_until,
    wait_until_phase,
    wait_until_placed,
    wait_until_pods_run_on,
    workload,
)

pytestmark = pytest.mark.lab

CUT = "h100-east"
HEARTBEAT = 1.0
"""Seconds: the proxied agent renews its lease this often."""
LEASE = 2.5
"""Seconds (T): the proxied agent fences after this long without a renewal. The rule
CLUSTER_TIMEOUT (8) >= T + one heartbeat of grace (1) holds with room for a busy machine."""


def running(spoke_pods: list[dict[str, object]]) -> list[dict[str, object]]:
    return [p for p in spoke_pods if (p.get("status") or {}).get("phase") == "Running"]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def proxy(fleet: Fleet) -> Iterator[TcpProxy]:
    """h100-east's agent restarted to reach the hub through a proxy the test controls, with a
    short lease; it keeps its stored credential (the join token was single-use)."""
    assert fleet.lab.hub is not None
    hub = urlparse(fleet.lab.hub.url)
    assert hub.hostname and hub.port
    p = TcpProxy(hub.hostname, hub.port).start()
    agent = fleet.agents[CUT]
    agent.stop()
    args = list(agent.args)
    args[args.index("--hub") + 1] = f"https://{hub.hostname}:{p.port}"
    config = fleet.root / "agents" / CUT / "agent-proxied.yaml"
    config.write_text(
        f"capacity: {{heartbeatSeconds: {HEARTBEAT:g}, debounceSeconds: 0.5}}\nlease: {{durationSeconds: {LEASE:g}}}\n"
    )
    args[args.index("--config") + 1] = str(config)
    agent.args = args
    agent.start().wait_until_ready(timeout=90)
    wait_until(f"{CUT} Ready through the proxy", lambda: cluster_ready(fleet, CUT).get("status") == "True", 30)
    assert p.connections > 0, "the agent talks to the hub through the proxy"
    yield p
    p.stop()


def test_a_partitioned_agent_stops_its_replace_work_and_restores_it_when_the_hub_kept_it(
    fleet: Fleet, proxy: TcpProxy
) -> None:
    east = fleet.spoke(CUT)
    # Reserved H100 wins over spot A100 while east is healthy (the same scoring as the
    # federation suite's probe); a100-west is where a failover would go.
    train = workload(
        "train",
        4,
        gpu_job("train", 4, delay="900s", grace_seconds=1),
        models=["H100", "A100"],
        capacityTypes={"allowed": ["reserved", "on-demand", "spot"]},
    )
    keep = workload("keep", 1, gpu_job("keep", 1, delay="900s"), models=["H100"], failover="Wait")
    for w in (train, keep):
        fleet.hub_kubectl("apply", "-f", "-", input=yaml.safe_dump(w))
        assert [x["name"] for x in wait_until_placed(fleet, w["metadata"]["name"])["placement"]["clusters"]] == [CUT]
    wait_until_pods_run_on(east, "job-name=train")
    wait_until_pods_run_on(east, "job-name=keep")
    wait_until_phase(fleet, "train", "Running")

    t_cut = time.monotonic()
    proxy.cut()
    wait_until("train stopped on h100-east (self-fenced)", lambda: not running(job_pods(east, "train")), 20, 0.2)
    t_fenced = time.monotonic() - t_cut
    assert running(pods_with(east, "job-name=keep")), "failover: Wait keeps running while fenced"
    assert jobs_on(east, "train")[0]["spec"].get("suspend") is True, "stopped by suspending the Job, not deleted"
    proxy.restore()
    t_back = time.monotonic() - t_cut

    wait_until("train restored on h100-east", lambda: running(job_pods(east, "train")), 60)
    t_restored = time.monotonic() - t_cut
    print(
        f"\nshort cut: fenced after {t_fenced:.1f}s, link back at {t_back:.1f}s, train running again at {t_restored:.1f}s"
    )
    assert t_fenced >= LEASE - HEARTBEAT - 0.5, f"fenced {t_fenced:.1f}s after the cut: before its lease ran out"
    assert t_back < CLUSTER_TIMEOUT, "the cut was shorter than the hub's timeout"
    assert [a["spec"]["epoch"] for a in assignments_of(fleet, "train")] == [1], "the hub did not re-place"
    assert not jobs_on(fleet.spoke("a100-west"), "train")
    assert running(pods_with(east, "job-name=keep"))


def test_a_partitioned_agent_fences_before_the_hub_re_places_and_never_two_copies_run(
    fleet: Fleet, proxy: TcpProxy
) -> None:
    east, west = fleet.spoke(CUT), fleet.spoke("a100-west")
    if not assignments_of(fleet, "train"):  # also runs alone (-k)
        test_a_partitioned_agent_stops_its_replace_work_and_restores_it_when_the_hub_kept_it(fleet, proxy)
    wait_until_pods_run_on(east, "job-name=train")
    [old] = assignments_of(fleet, "train")
    old_name = old["metadata"]["name"]

    with PodSampler(fleet, "train", old_name, interval=0.25) as sampler:
        t_cut = time.monotonic()
        proxy.cut()
        wait_until("train stopped on h100-east", lambda: not running(job_pods(east, "train")), 20, 0.2)
        t_fenced = time.monotonic() - t_cut
        second = wait_until_placed(fleet, "train", epoch=2, timeout=CLUSTER_TIMEOUT + 30)
        t_replaced = time.monotonic() - t_cut
        assert [x["name"] for x in second["placement"]["clusters"]] == ["a100-west"]
        assert cluster_ready(fleet, CUT)["reason"] == "HeartbeatTimeout"
        wait_until_pods_run_on(west, "job-name=train")
        t_new_copy = time.monotonic() - t_cut
        assert running(pods_with(east, "job-name=keep")), "failover: Wait keeps running through the partition"
        keep_epochs = [a["spec"]["epoch"] for a in assignments_of(fleet, "keep")]

        t_restore = time.monotonic()
        proxy.restore()
        wait_until(
            f"the fenced Assignment {old_name} is released by the returning agent",
            lambda: old_name not in [a["metadata"]["name"] for a in assignments_of(fleet, "train")],
            60,
        )
        wait_until("the fenced Job is deleted on h100-east", lambda: not jobs_on(east, "train"), 60)
        t_clean = time.monotonic() - t_restore
        wait_until(f"{CUT} Ready again", lambda: cluster_ready(fleet, CUT).get("status") == "True", 30)
        time.sleep(2)  # a few more samples after the return

    history = "\n".join(describe(sampler.samples, t_cut))
    print(
        f"\nlong cut: fenced {t_fenced:.1f}s, epoch 2 placed {t_replaced:.1f}s, new copy running "
        f"{t_new_copy:.1f}s; link back -> fenced copy removed {t_clean:.1f}s\n{history}"
    )
    assert not sampler.errors, sampler.errors
    assert len(sampler.samples) >= 20, f"only {len(sampler.samples)} samples"
    for s in sampler.samples:
        assert len(s.spokes_running()) <= 1, f"two copies at t={s.t - t_cut:.1f}s: {s.running}\n{history}"
    assert t_fenced < t_replaced, "the agent stopped its copy before the hub re-placed it"
    assert t_replaced >= LEASE + HEARTBEAT, f"re-placed {t_replaced:.1f}s after the cut: before T + grace"
    assert [a["spec"]["epoch"] for a in assignments_of(fleet, "train")] == [2]
    assert running(job_pods(west, "train")), "the epoch 2 copy keeps running on a100-west"
    assert running(pods_with(east, "job-name=keep")), "the failover: Wait copy is kept by the returning agent"
    assert [a["spec"]["epoch"] for a in assignments_of(fleet, "keep")] == keep_epochs == [1]
