"""Prometheus metrics of the hub (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
WATCHES = Gauge("fleetplane_apiserver_watch_connections", "Open watch connections by resource.", ["resource"])
STORE_COMMIT_SECONDS = Histogram(
    "fleetplane_store_commit_duration_seconds",
    "Time from transaction start to commit for store writes.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
WATCH_EVENTS_SENT = Counter("fleetplane_watch_events_sent_total", "Watch events written to clients.", ["resource"])
CONTROLLER_LISTS = Counter(
    "fleetplane_controller_lists_total",
    "Lists the federation controller made of a resource (its cache lists once per leadership, then follows events).",
    ["resource"],
)
CONTROLLER_PASSES = Counter("fleetplane_controller_passes_total", "Federation controller passes run.")
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
