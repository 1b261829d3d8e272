"""An agent is back about a second after its hub listens again — after a restart or a cut link,
while connections are refused — not a heartbeat or a grown backoff later (issue 14, P8:
bench/bench_recovery.py). SIMULATED backend (the one allowed fake) against a real hub process,
through a loopback TCP proxy the test cuts (fleetplane_testing.tcpproxy): a cut proxy refuses
connections exactly as the port of a killed hub does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import yaml

from fleetplane_testing import LOOPBACK, HubProcess, wait_until
from fleetplane_testing.tcpproxy import TcpProxy
from spoke_agent.agent import Agent, AgentOptions, AgentThread

PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [{"name": "l4", "model": "L4", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 4}],
    "jobs": {"durationSeconds": 60, "startDelaySeconds": 0.1},
}
HEARTBEAT = 10.0
"""The benchmarks' heartbeat: long enough that "the next heartbeat" and "about a second" differ."""


@contextmanager
def proxied_agent(hub: HubProcess, tmp_path: Path, name: str, heartbeat: float) -> Iterator[tuple[Agent, TcpProxy]]:
    """A SIMULATED agent joined as cluster `name`, talking to the hub through a loopback TCP proxy
    the test controls (and whose `connections` counts what the agent opened)."""
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    token = hub.cli("cluster", "join-token", "create", name, "--data-dir", str(hub.data_dir)).splitlines()[-1]
    with TcpProxy(LOOPBACK, hub.port).start() as proxy:
        options = AgentOptions(
            hub=f"https://{LOOPBACK}:{proxy.port}",
            hub_verify=str(hub.ca),
            cluster_name=name,
            join_token=token,
            backend="simulated",
            profile=str(profile),
            state_file=str(tmp_path / "state.json"),
            heartbeat_seconds=heartbeat,
        )
        thread = AgentThread(options).start(timeout=90)
        try:
            assert thread.agent is not None
            yield thread.agent, proxy
        finally:
            thread.stop()


def test_an_agent_renews_its_lease_and_reopens_its_watch_about_a_second_after_a_refusing_hub_listens_again(
    hub: HubProcess, tmp_path: Path
) -> None:
    with proxied_agent(hub, tmp_path, "back-1", HEARTBEAT) as (agent, proxy):
        # Right after a renewal the next one is due a heartbeat later; cut the link then and
        # keep it cut past that renewal, so it is refused.
        before = agent.renewals
        wait_until("the agent renews its lease", lambda: agent.renewals > before, timeout=3 * HEARTBEAT)
        proxy.cut()
        time.sleep(HEARTBEAT + 2)
        assert agent.renewals == before + 1, "a renewal got through a cut link"

        proxy.restore()
        back, back_wall = time.monotonic(), time.time()
        wait_until("the lease is renewed again", lambda: (agent.lease.renewed_at or 0) > back, timeout=30)
        wait_until("the Assignment watch is answered again", lambda: (agent.hub.watch_opened_at or 0) > back)
        renewed_after = (agent.lease.renewed_at or 0) - back
        watch_after = (agent.hub.watch_opened_at or 0) - back
        # Before, the refused renewal waited for the next heartbeat (8 s after the restore
        # here) and the watch's backoff had grown to 4-8 s; now both retry every ~1 s.
        assert renewed_after < 3.0, f"lease renewed {renewed_after:.1f}s after the hub was reachable again"
        assert watch_after < 3.0, f"watch reopened {watch_after:.1f}s after the hub was reachable again"

        # The hub's own record agrees: the lease row was renewed after the link came back.
        with hub.client() as c:
            lease = c.get("/v1/clusters/back-1/lease").json()
        renew_time = datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00")).timestamp()
        assert back_wall - 0.5 < renew_time < back_wall + 5, lease
        print(f"SIMULATED agent back after the cut: lease {renewed_after:.2f}s, watch {watch_after:.2f}s")
