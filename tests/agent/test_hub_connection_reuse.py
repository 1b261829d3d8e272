"""An agent's lease renewals reuse one open connection to the hub across heartbeats (issue 14,
idle hub CPU at 1,000 clusters: a TCP + TLS handshake per renewal was about a fifth of it).

Both sides' defaults matter: the agent keeps an idle connection `hub.keepAliveSeconds` (60 s)
and the hub keeps it `FLEETPLANE_KEEP_ALIVE_SECONDS` (90 s). With the old 5 s on either side, a
heartbeat longer than 5 s opened a new connection for every renewal. SIMULATED backend (the one
allowed fake) against a real hub process, through a loopback TCP proxy that counts the
connections it accepts (fleetplane_testing.tcpproxy).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fleetplane_testing import LOOPBACK, HubProcess, wait_until
from fleetplane_testing.tcpproxy import TcpProxy
from spoke_agent.agent import AgentOptions, AgentThread

PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [{"name": "l4", "model": "L4", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 4}],
    "jobs": {"durationSeconds": 60, "startDelaySeconds": 0.1},
}
HEARTBEAT = 6.0
"""Longer than the old 5 s keep-alive of both the agent's client and the hub."""


def test_lease_renewals_a_heartbeat_apart_reuse_the_agents_open_connection(hub: HubProcess, tmp_path: Path) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    token = hub.cli("cluster", "join-token", "create", "reuse-1", "--data-dir", str(hub.data_dir)).splitlines()[-1]
    with TcpProxy(LOOPBACK, hub.port).start() as proxy:
        options = AgentOptions(
            hub=f"https://{LOOPBACK}:{proxy.port}",
            hub_verify=str(hub.ca),
            cluster_name="reuse-1",
            join_token=token,
            backend="simulated",
            profile=str(profile),
            state_file=str(tmp_path / "state.json"),
            heartbeat_seconds=HEARTBEAT,
        )
        thread = AgentThread(options).start(timeout=90)
        try:
            agent = thread.agent
            assert agent is not None
            wait_until("the Assignment watch is open", lambda: agent.hub.watch_opened_at is not None, timeout=30)
            first = agent.renewals
            wait_until("the agent renews its lease", lambda: agent.renewals > first, timeout=3 * HEARTBEAT)
            opened = proxy.connections
            before = agent.renewals
            wait_until("two more renewals", lambda: agent.renewals >= before + 2, timeout=4 * HEARTBEAT)
            assert agent.renewals >= before + 2
            assert proxy.connections == opened, (
                f"{proxy.connections - opened} new connection(s) for {agent.renewals - before} renewals "
                f"{HEARTBEAT:.0f} s apart: the idle connection was closed between heartbeats"
            )
            with hub.client() as c:
                assert c.get("/v1/clusters/reuse-1/lease").json()["holderIdentity"]
        finally:
            thread.stop()
