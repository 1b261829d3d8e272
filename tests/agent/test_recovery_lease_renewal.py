"""A hub restart shorter than a heartbeat: the agent renews its lease as soon as the hub is back,
not at its next heartbeat (issue 14, P8: bench/bench_recovery.py, where most of 1,000 agents had
no renewal due during the ~3 s restart and came back up to a heartbeat late).

SIMULATED backend (the one allowed fake) against a real hub process, through a loopback TCP proxy
the test cuts: a cut resets every open connection (the agent's Assignment watch breaks) and
refuses new ones, as the port of a killed hub does.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from fleetplane_testing import HubProcess, wait_until

from .test_hub_restart_reconnect import HEARTBEAT, proxied_agent


def test_a_restart_between_two_renewals_gets_the_lease_renewed_about_a_second_after_the_hub_is_back(
    hub: HubProcess, tmp_path: Path
) -> None:
    with proxied_agent(hub, tmp_path, "short-1", HEARTBEAT) as (agent, proxy):
        # Cut right after a renewal and restore well before the next one is due, so no renewal
        # is refused: only the broken watch tells the agent the hub went away.
        before = agent.renewals
        wait_until("the agent renews its lease", lambda: agent.renewals > before, timeout=3 * HEARTBEAT)
        renewed = agent.renewals
        proxy.cut()
        time.sleep(2.0)
        proxy.restore()
        back, back_wall = time.monotonic(), time.time()
        wait_until("the lease is renewed again", lambda: (agent.lease.renewed_at or 0) > back, timeout=2 * HEARTBEAT)
        renewed_after = (agent.lease.renewed_at or 0) - back
        # Without the watch's poke the next renewal comes at the heartbeat: ~8 s after the restore.
        assert renewed_after < 3.0, f"lease renewed {renewed_after:.1f}s after the hub was reachable again"
        assert agent.renewals > renewed, "the renewal after the restore was not counted"

        # The hub's own record: the lease row was renewed after the link came back.
        with hub.client() as c:
            lease = c.get("/v1/clusters/short-1/lease").json()
        renew_time = datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00")).timestamp()
        assert back_wall - 0.5 < renew_time < back_wall + 3.5, lease
        print(f"SIMULATED agent after a 2 s cut: lease renewed {renewed_after:.2f}s after the restore")
