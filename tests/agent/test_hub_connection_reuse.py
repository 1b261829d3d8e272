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

from fleetplane_testing import HubProcess, wait_until
from tests.agent.test_hub_restart_reconnect import proxied_agent

HEARTBEAT = 6.0
"""Longer than the old 5 s keep-alive of both the agent's client and the hub."""


def test_lease_renewals_a_heartbeat_apart_reuse_the_agents_open_connection(hub: HubProcess, tmp_path: Path) -> None:
    with proxied_agent(hub, tmp_path, "reuse-1", HEARTBEAT) as (agent, proxy):
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
