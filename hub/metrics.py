"""Prometheus metrics of the hub (served at /metrics; docs/observability.md lists them all).

One process (`fleetplane up`, workers 1): the default registry. Several (`--workers N`): the
supervisor gives every child (the N API workers and the controller) one fresh
PROMETHEUS_MULTIPROC_DIR under the data dir, each process writes its samples to files there,
and /metrics — answered by whichever worker the scrape reaches — merges all of them
(`exposition`): one scrape sees the whole hub, the controller's metrics included. Every gauge
says how its per-process values merge (`multiprocess_mode`): "livesum" for what each worker
holds (open watches), "livemax" for what only the controller sets (every other process leaves
it at 0 or never creates the series)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to multiprocess mode; read when this module is first imported."""

REQUESTS = Counter(
    "fleetplane_apiserver_requests_total",
    "API requests by verb, resource and HTTP code.",
    ["verb", "resource", "code"],
)
REQUEST_SECONDS = Histogram(
    "fleetplane_apiserver_request_duration_seconds",
    "API request latency by verb and resource (watches excluded).",
    ["verb", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WATCHES = Gauge(
    "fleetplane_apiserver_watch_connections",
    "Open watch connections by resource.",
    ["resource"],
    multiprocess_mode="livesum",
)
STORE_COMMIT_SECONDS = Histogram(
    "fleetplane_store_commit_duration_seconds",
    "Time from transaction start to commit for store writes.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
WATCH_EVENTS_SENT = Counter("fleetplane_watch_events_sent_total", "Watch events written to clients.", ["resource"])
WATCH_LAG_SECONDS = Histogram(
    "fleetplane_watch_lag_seconds",
    "Time from an event's commit (the database clock at its write statement) to a watch stream writing "
    "it to its client: one sample per write of a live watch (the oldest event it carries), initial lists "
    "and back-fills excluded.",
    ["resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONTROLLER_LISTS = Counter(
    "fleetplane_controller_lists_total",
    "Lists the federation controller made of a resource (its cache lists once per leadership, then follows events).",
    ["resource"],
)
CONTROLLER_PASSES = Counter("fleetplane_controller_passes_total", "Federation controller passes run.")
CONTROLLER_PASS_SECONDS = Histogram(
    "fleetplane_controller_pass_duration_seconds",
    "Duration of a successful federation controller pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONTROLLER_LEADER = Gauge(
    "fleetplane_controller_leader",
    "1 while this hub's controller holds the federation leader lock (it places and aggregates), else 0.",
    multiprocess_mode="livemax",
)
PLACEMENT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
PLACEMENTS = Counter(
    "fleetplane_placements_total",
    "Workload placements committed (one per workload and epoch) by kind: initial (its first epoch) or "
    "replacement (failover, re-admission after an eviction).",
    ["kind"],
)
PLACEMENT_LATENCY_SECONDS = Histogram(
    "fleetplane_placement_latency_seconds",
    "Time from a Workload's creation to the commit of its first placement, waiting for capacity or quota "
    "included. Timed from when the leading controller saw it created (its creationTimestamp, whole "
    "seconds, when it was created before this leadership began).",
    buckets=PLACEMENT_LATENCY_BUCKETS,
)
PENDING_WORKLOADS = Gauge(
    "fleetplane_pending_workloads",
    "Workloads waiting for a placement, by reason: the reason of their Admitted condition if queued "
    "(Pending, Inadmissible, Preempting), else of their Placed condition (Unschedulable, Rescheduling); "
    "New before the first decision.",
    ["reason"],
    multiprocess_mode="livemax",
)
CLUSTERS = Gauge(
    "fleetplane_clusters",
    "Registered clusters by the status of their Ready condition (True, False, Unknown).",
    ["ready"],
    multiprocess_mode="livemax",
)
LEASE_RENEWALS = Counter(
    "fleetplane_lease_renewals_total",
    "Lease renewal requests by path: batched (the fast path's group commit) or routed (the ordinary, "
    "fully checked path: odd bodies, refused tokens).",
    ["path"],
)
LEASE_BATCH_SIZE = Histogram(
    "fleetplane_lease_renewal_batch_size",
    "Renewals written per statement by the fast path's group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric of the hub and its content type: this process's
    (one process), or every process's merged from the multiprocess directory."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def fresh_multiproc_dir(data_dir: Path) -> Path:
    """The multiprocess directory of a supervising hub, emptied: the samples of a previous run's
    processes must not be merged into this one's."""
    path = data_dir / "metrics-multiproc"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def process_dead(pid: int, directory: Path) -> None:
    """Forget a dead child's live gauges (its counters and histograms stay: they only grow)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))
