"""The agent's lease rules (pure): when its lease has run out, whether its timing fits the hub's,
and which status reports are worth sending.

Liveness travels in a lease renewal every heartbeat (PUT /v1/clusters/{name}/lease), not in the
Cluster object: the Cluster's status is PATCHed only when what it reports changed
(`report_digest`). An agent that cannot renew for its lease duration T fences itself
(spoke_agent.fencing, self-fencing) — before the hub, which waits its cluster timeout
(>= T + grace), re-places the work. Times here are the agent's monotonic clock: counting from
when a successful renewal was *sent* makes the agent's deadline earlier than the hub's, whose
clock starts when the renewal is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class LeaseClock:
    """The last successful renewal (monotonic seconds) and the lease duration T."""

    duration: float
    renewed_at: float | None = None

    def renewed(self, sent_at: float) -> None:
        """A renewal (or status report) sent at `sent_at` succeeded."""
        if self.renewed_at is None or sent_at > self.renewed_at:
            self.renewed_at = sent_at

    def seconds_left(self, now: float) -> float:
        """Until the lease runs out (negative: it has); a lease never renewed has not started."""
        if self.renewed_at is None:
            return self.duration
        return self.renewed_at + self.duration - now

    def expired(self, now: float) -> bool:
        return self.renewed_at is not None and now - self.renewed_at >= self.duration


def timing_problem(duration: float, heartbeat: float, hub_timeout: float | None) -> str | None:
    """Why this lease timing cannot keep two copies from running (None: it can).

    The hub re-places a cluster's failover: Replace work `hub_timeout` seconds after its last
    renewal; the agent stops it `duration` seconds after, and needs about one heartbeat of grace
    to do so. So hub_timeout >= duration + heartbeat. A lease shorter than two heartbeats
    fences on a single lost renewal."""
    if hub_timeout is not None and hub_timeout < duration + heartbeat:
        return (
            f"the hub's cluster timeout ({hub_timeout:g}s) is shorter than the lease duration ({duration:g}s) "
            f"plus one heartbeat of grace ({heartbeat:g}s): the hub may re-place workloads before this agent "
            f"has stopped them; lower lease.durationSeconds or raise FLEETPLANE_CLUSTER_TIMEOUT_SECONDS"
        )
    if duration < 2 * heartbeat:
        return (
            f"the lease duration ({duration:g}s) is shorter than two heartbeats ({heartbeat:g}s each): one lost "
            "renewal stops this cluster's failover: Replace workloads"
        )
    return None


_NOT_REPORTED = ("heartbeatTime",)


def report_digest(status: Mapping[str, Any]) -> str:
    """What a capacity report says, without the heartbeat time: equal digests mean the
    Cluster's status need not be rewritten (the lease carries liveness)."""
    body = {k: v for k, v in status.items() if k not in _NOT_REPORTED}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
