"""bench/bench_federation.py's request mix (the `requests_per_s` of its idle and burst windows)
counts agent lease renewals: they go through the lease fast path, which never reaches the API's
request counter, so an idle fleet's mix used to read []. Fed the text prometheus_client writes
for the hub's own counters (hub.metrics' names and labels), before and after a window.

Here, not under tests/: the import layers (.importlinter) keep tests from importing bench. Run
it with `.venv/bin/pytest bench/test_request_mix.py` (make test does not collect bench/)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from bench.bench_federation import parse_request_counters, request_mix


def exposition(renewals: dict[str, int], requests: dict[tuple[str, str, str], int]) -> str:
    registry = CollectorRegistry()
    leases = Counter("fleetplane_lease_renewals_total", "h", ["path"], registry=registry)
    api = Counter("fleetplane_apiserver_requests_total", "h", ["verb", "resource", "code"], registry=registry)
    for path, n in renewals.items():
        leases.labels(path).inc(n)
    for labels, n in requests.items():
        api.labels(*labels).inc(n)
    return generate_latest(registry).decode()


def test_an_idle_window_of_lease_renewals_shows_them_by_path() -> None:
    before = parse_request_counters(exposition({"batched": 100, "routed": 2}, {}))
    after = parse_request_counters(exposition({"batched": 160, "routed": 2}, {}))
    assert request_mix(before, after, 30.0) == [("renew lease batched", 2.0)]


def test_renewals_and_api_requests_are_ranked_together() -> None:
    before = parse_request_counters(exposition({"batched": 0}, {("create", "workloads", "201"): 0}))
    after = parse_request_counters(
        exposition({"batched": 10, "routed": 40}, {("create", "workloads", "201"): 20, ("list", "clusters", "200"): 5})
    )
    assert request_mix(before, after, 10.0) == [
        ("renew lease routed", 4.0),
        ("create workloads 201", 2.0),
        ("renew lease batched", 1.0),
        ("list clusters 200", 0.5),
    ]
