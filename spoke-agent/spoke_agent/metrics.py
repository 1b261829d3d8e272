"""The agent's Prometheus metrics: an opt-in /metrics endpoint (`--metrics-port`).

Imported only when the port is set, so an agent without it never loads prometheus_client. The
agent already counts what it does in plain integers (Agent.reports/.renewals, Delivery.stats);
this module reads them when scraped, so serving metrics adds nothing to the agent's work per
event. Hub errors are counted by wrapping the one HubClient method every non-watch request goes
through (on this agent's client only). Plain HTTP, no token: it listens on loopback unless
`--metrics-address` says otherwise (in a pod: the pod's IP, or 0.0.0.0), and a NetworkPolicy
decides who scrapes. docs/observability.md lists
the metrics."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .errors import TemporaryError

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from .agent import Agent

COUNTERS: dict[str, tuple[str, str]] = {
    # name (without _total) → (Delivery.stats key, help)
    "fleetplane_agent_applies": ("applies", "Objects applied to the spoke (server-side apply) for Assignments."),
    "fleetplane_agent_deletes": ("deletes", "Objects deleted from the spoke (Assignments removed or changed)."),
    "fleetplane_agent_assignment_status_writes": ("status_writes", "Assignment status reports sent to the hub."),
    "fleetplane_agent_watch_events": ("events", "Assignment watch events received from the hub."),
    "fleetplane_agent_watch_relists": ("relists", "Full lists of the cluster's Assignments (start, 410 Expired)."),
    "fleetplane_agent_watch_reconnects": ("reconnects", "Assignment watches reopened after they broke or went silent."),
}


class AgentCollector(Collector):
    """The agent's counters and gauges, read from the agent at each scrape."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.hub_errors = 0

    def collect(self) -> Iterator[Metric]:
        a = self.agent
        cluster = a.cluster_name or "unknown"
        stats = a.delivery.stats if a.delivery is not None else {}
        for name, (key, text) in COUNTERS.items():
            yield _counter(name, text, cluster, stats.get(key, 0))
        yield _counter(
            "fleetplane_agent_cluster_status_reports", "Cluster status reports (capacity) sent.", cluster, a.reports
        )
        yield _counter("fleetplane_agent_lease_renewals", "Lease renewals the hub accepted.", cluster, a.renewals)
        yield _counter(
            "fleetplane_agent_hub_errors",
            "Requests to the hub (not watches) that failed: refused or broken connections, timeouts, 409/429/5xx.",
            cluster,
            self.hub_errors,
        )
        yield _gauge(
            "fleetplane_agent_ready", "1 once the agent has synced its Assignments.", cluster, a.ready.is_set()
        )
        fenced = a.delivery is not None and a.delivery.fenced
        yield _gauge("fleetplane_agent_fenced", "1 while the agent has fenced itself (lease lost).", cluster, fenced)
        assignments = len(a.delivery.assignments) if a.delivery is not None else 0
        yield _gauge(
            "fleetplane_agent_assignments", "Assignments of this cluster the agent holds.", cluster, assignments
        )
        renewed = a.lease.renewed_at
        age = time.monotonic() - renewed if renewed is not None else float("nan")
        yield _gauge(
            "fleetplane_agent_lease_age_seconds",
            "Seconds since the last successful lease renewal (or status report); NaN before the first.",
            cluster,
            age,
        )

    def count_hub_errors(self, send: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(send)
        async def counted(*args: Any, **kw: Any) -> Any:
            try:
                return await send(*args, **kw)
            except TemporaryError:
                self.hub_errors += 1
                raise

        return counted


def _counter(name: str, text: str, cluster: str, value: float) -> CounterMetricFamily:
    m = CounterMetricFamily(name, text, labels=["cluster"])
    m.add_metric([cluster], float(value))
    return m


def _gauge(name: str, text: str, cluster: str, value: float) -> GaugeMetricFamily:
    m = GaugeMetricFamily(name, text, labels=["cluster"])
    m.add_metric([cluster], float(value))
    return m


def registry_for(agent: Agent) -> tuple[CollectorRegistry, AgentCollector]:
    """The registry /metrics serves for this agent: its collector and the process's metrics."""
    registry = CollectorRegistry()
    collector = AgentCollector(agent)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry, collector


def serve(agent: Agent, port: int, address: str = "127.0.0.1") -> Callable[[], None]:
    """Serve /metrics for this agent (and its process: memory, CPU, open files) on a daemon
    thread; returns the function that stops it."""
    registry, collector = registry_for(agent)
    agent.hub._send = collector.count_hub_errors(agent.hub._send)  # type: ignore[method-assign]
    server, thread = start_http_server(port, address, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
