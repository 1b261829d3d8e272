"""A lab run scraped by a real Prometheus: a multi-process hub (2 API workers and the controller
process), scraped over TLS with a metrics token, and two agent processes — one on a real lab
spoke (kube-apiserver, controller-manager, scheduler, kwok GPU nodes), one with the SIMULATED
backend (in-memory GPU nodes instead of a spoke) — while workloads are placed. The documented
metrics (docs/observability.md) are then read back through Prometheus's HTTP API and compared
with what the hub's API says, and every query of the Grafana dashboard is run against it."""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from fleetplane_testing.agenthub import env
from fleetplane_testing.ports import LOOPBACK, free_port
from fleetplane_testing.processes import AgentProcess, kubectl
from fleetplane_testing.waiting import wait_until
from fleetplane_types.names import BACKEND_LABEL
from hub.metrics import PLACEMENT_LATENCY_BUCKETS
from tests.api.test_federation import API, pool, report
from tests.conftest import start_hub
from tests.hubtest import HubProcess, workload
from tests.observability.dashboard import dashboard_queries
from tests.observability.promrun import Prometheus, require_prometheus

pytestmark = pytest.mark.lab

NAMESPACE = "team-a"
SIMULATED, SPOKE = "sim-east", "lab-west"
AGENTS = (SIMULATED, SPOKE)
GPUS_PER_CLUSTER = 4  # per node, in both the simulated profile and the lab's l4-ondemand pool
FITTING = 4  # one-GPU workloads: all placed
CREATION_TIMESTAMP_RESOLUTION = 1.0  # seconds: metadata.creationTimestamp is RFC 3339 without fractions
PROFILE = {
    "cluster": {"region": "us-east-1"},
    "pools": [{"name": "a100", "model": "A100", "capacityType": "on-demand", "nodes": 1, "gpusPerNode": 4}],
    # The jobs run for the whole test: their GPUs stay taken, their Assignments stay Running.
    "jobs": {"durationSeconds": 600, "startDelaySeconds": 0.1},
}


@dataclass
class Lab:
    hub: HubProcess
    prometheus: Prometheus
    agents: list[AgentProcess]
    spoke_kubeconfig: str
    created_at: float  # when the test created its first workload (time.time())
    placed_at: float  # when the API showed every fitting workload placed


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str]) -> Iterator[Lab]:
    from fleetplane_lab import Lab as SpokeLab
    from fleetplane_lab import SpokeSpec
    from fleetplane_lab.fixtures import require_lab_binaries

    binary = require_prometheus()
    require_lab_binaries()
    tmp = tmp_path_factory.mktemp("observability")
    stack = contextlib.ExitStack()
    spoke_lab = stack.enter_context(
        SpokeLab(
            tmp / "lab", spokes=[SpokeSpec(name=SPOKE, profiles=["l4-ondemand"], region="us-west-2")], with_hub=False
        )
    )
    spoke_kubeconfig = str(spoke_lab.spokes[SPOKE].kubeconfig)
    kubectl(spoke_kubeconfig, "create", "namespace", "fleetplane-system")  # the agent's state Secret
    hub = start_hub(tmp / "hub", fresh_database(), 2)  # N>1: metrics come from 3 processes
    agents: list[AgentProcess] = []
    prom: Prometheus | None = None
    try:
        token_file = tmp / "metrics.token"
        token_file.write_text(hub.cli("token", "create-metrics", "prometheus").splitlines()[-1] + "\n")
        profile = tmp / "profile.yaml"
        profile.write_text(yaml.safe_dump(PROFILE))
        agent_ports = [free_port() for _ in AGENTS]
        for name, port in zip(AGENTS, agent_ports, strict=True):
            join = hub.cli("cluster", "join-token", "create", name).splitlines()[-1]
            if name == SPOKE:
                backend = ["--backend", "kubernetes", "--kubeconfig", spoke_kubeconfig]
            else:
                backend = ["--backend", "simulated", "--profile", str(profile), "--state-file", str(tmp / "sim.state")]
            agent = AgentProcess(
                args=[
                    *("--hub", hub.url, "--hub-ca", str(hub.ca), "--cluster-name", name, "--join-token", join),
                    *backend,
                    *("--heartbeat-seconds", "2", "--metrics-port", str(port), "--metrics-address", LOOPBACK),
                ],
                log_path=tmp / f"{name}.log",
                extra_env={"PYTHONPATH": env()["PYTHONPATH"]},
            )
            agents.append(agent.start())
        for agent in agents:
            agent.wait_until_ready(90)
        prom = Prometheus(
            binary,
            tmp / "prometheus",
            [
                {
                    "job_name": "fleetplane-hub",
                    "scheme": "https",
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    "tls_config": {"ca_file": str(hub.ca)},  # the hub's serving certificate, verified
                    "static_configs": [{"targets": [f"{LOOPBACK}:{hub.port}"]}],
                },
                {
                    "job_name": "fleetplane-agent",
                    "static_configs": [{"targets": [f"{LOOPBACK}:{p}" for p in agent_ports]}],
                },
            ],
        ).start()
        with hub.client() as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).status_code in (201, 409)
            # A third cluster whose agent says NotReady: written as an agent writes it (no process).
            report(c, "sim-lost", "us-west-2", [pool("A100", "on-demand", 2.0, 1, GPUS_PER_CLUSTER)], ready=False)
            created_at = time.time()
            for i in range(FITTING):
                # Half on each cluster, chosen by the backend label each agent sets on its Cluster.
                on = {BACKEND_LABEL: "kubernetes" if i % 2 else "simulated"}
                body = workload(f"fits-{i}", NAMESPACE, clusterSelector={"matchLabels": on})
                r = c.post(f"{API}/namespaces/{NAMESPACE}/workloads", json=body)
                assert r.status_code == 201, r.text
            too_big = workload("too-big", NAMESPACE, gpus=GPUS_PER_CLUSTER * 4)
            assert c.post(f"{API}/namespaces/{NAMESPACE}/workloads", json=too_big).status_code == 201

            def all_placed() -> bool:
                items = c.get(f"{API}/namespaces/{NAMESPACE}/workloads").json()["items"]
                return sum(bool((w.get("status") or {}).get("placement", {}).get("clusters")) for w in items) == FITTING

            wait_until("every fitting workload is placed", all_placed, 60, 0.2)
            placed_at = time.time()
        yield Lab(hub, prom, agents, spoke_kubeconfig, created_at, placed_at)
    finally:
        if prom is not None:
            prom.stop()
        for agent in agents:
            agent.stop()
        hub.stop()
        stack.close()


def workloads(hub: HubProcess) -> list[dict[str, Any]]:
    with hub.client() as c:
        return list(c.get(f"{API}/namespaces/{NAMESPACE}/workloads").json()["items"])


def clusters(hub: HubProcess) -> list[dict[str, Any]]:
    with hub.client() as c:
        return list(c.get(f"{API}/clusters").json()["items"])


def ready_status(cluster: dict[str, Any]) -> str:
    for cond in (cluster.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return "Unknown"


def settled(prom: Prometheus, checks: dict[str, tuple[str, Callable[[float | None], bool]]]) -> dict[str, float]:
    """Wait until every query's value passes its check (Prometheus scrapes every second); on
    timeout fail listing each query with its last value."""
    last: dict[str, float | None] = {}

    def probe() -> bool:
        for name, (promql, _) in checks.items():
            last[name] = prom.scalar(promql)
        return all(ok(last[name]) for name, (_, ok) in checks.items())

    try:
        wait_until("Prometheus has scraped the expected values", probe, 60, 0.5)
    except AssertionError:
        rows = "\n".join(f"  {n}: {checks[n][0]} = {last.get(n)}" for n in checks)
        pytest.fail(f"metrics never settled:\n{rows}\nprometheus log:\n{prom.log()}", pytrace=False)
    return {k: v for k, v in last.items() if v is not None}


def at_least(n: float) -> Callable[[float | None], bool]:
    return lambda v: v is not None and v >= n


def equals(n: float) -> Callable[[float | None], bool]:
    return lambda v: v is not None and v == n


def finite_and_not_negative(v: float | None) -> bool:
    return v is not None and math.isfinite(v) and v >= 0


def test_prometheus_scrapes_the_hub_over_tls_with_a_metrics_token_and_both_agents(lab: Lab) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = lab.prometheus.targets()
        return targets if len(targets) == 3 and all(t["health"] == "up" for t in targets) else None

    try:
        targets = wait_until("every target is up", all_up, 30, 0.5)
    except AssertionError:
        pytest.fail(f"targets: {json.dumps(lab.prometheus.targets(), indent=1)}", pytrace=False)
    assert sorted(t["labels"]["job"] for t in targets) == ["fleetplane-agent", "fleetplane-agent", "fleetplane-hub"]
    # One scrape reaches one API worker, yet it carries the controller process's metrics and no
    # per-process series: the workers merge every process's samples (multiprocess mode).
    assert lab.prometheus.scalar('fleetplane_controller_leader{job="fleetplane-hub"}') == 1
    assert lab.prometheus.query('{job="fleetplane-hub", pid!=""}') == []


def test_placements_and_their_latency_match_what_the_api_shows(lab: Lab) -> None:
    placed = [w for w in workloads(lab.hub) if (w.get("status") or {}).get("placement", {}).get("clusters")]
    assert len(placed) == FITTING
    got = settled(
        lab.prometheus,
        {
            "placements": ('sum(fleetplane_placements_total{kind="initial"})', equals(len(placed))),
            "latency samples": ("sum(fleetplane_placement_latency_seconds_count)", equals(len(placed))),
        },
    )
    assert lab.prometheus.scalar('sum(fleetplane_placements_total{kind="replacement"})') in (None, 0.0)
    p50 = lab.prometheus.scalar("histogram_quantile(0.5, sum by (le) (fleetplane_placement_latency_seconds_bucket))")
    mean = lab.prometheus.scalar(
        "sum(fleetplane_placement_latency_seconds_sum) / sum(fleetplane_placement_latency_seconds_count)"
    )
    # An upper bound: the test saw them all placed by then. A placement timed from the Workload's
    # creationTimestamp (created before the controller's leadership began, or while it was not
    # leading) starts at the whole second the timestamp truncates to: up to 1 s earlier.
    waited = lab.placed_at - lab.created_at + CREATION_TIMESTAMP_RESOLUTION
    assert p50 is not None and mean is not None, got
    assert 0 < mean <= waited, f"mean placement latency {mean:.3f}s, but all were placed within {waited:.2f}s"
    # Interpolated inside its bucket: at most the upper bound of the bucket holding `waited`.
    bound = min(b for b in PLACEMENT_LATENCY_BUCKETS if b >= waited)
    assert 0 < p50 <= bound, f"p50 {p50:.3f}s for placements all done within {waited:.2f}s"


def test_pending_workloads_by_reason_and_clusters_by_readiness_match_the_api(lab: Lab) -> None:
    pending = [w for w in workloads(lab.hub) if (w.get("status") or {}).get("phase") == "Pending"]
    assert [w["metadata"]["name"] for w in pending] == ["too-big"]
    reasons = {c["reason"] for c in pending[0]["status"]["conditions"] if c["type"] == "Placed"}
    assert reasons == {"Unschedulable"}
    by_ready: dict[str, int] = {}
    for c in clusters(lab.hub):
        by_ready[ready_status(c)] = by_ready.get(ready_status(c), 0) + 1
    assert by_ready == {"True": len(AGENTS), "False": 1}, by_ready
    settled(
        lab.prometheus,
        {
            "pending Unschedulable": ('max(fleetplane_pending_workloads{reason="Unschedulable"})', equals(1)),
            "pending, all reasons": ("sum(max by (reason) (fleetplane_pending_workloads))", equals(1)),
            "clusters Ready": ('max(fleetplane_clusters{ready="True"})', equals(by_ready["True"])),
            "clusters NotReady": ('max(fleetplane_clusters{ready="False"})', equals(by_ready["False"])),
        },
    )


def test_watch_lag_and_request_latency_are_recorded_with_sane_values(lab: Lab) -> None:
    got = settled(
        lab.prometheus,
        {
            # Each agent watches its cluster's Assignments: one sample per write of a live event.
            "assignment watch lag samples": (
                'sum(fleetplane_watch_lag_seconds_count{resource="assignments"})',
                at_least(FITTING),
            ),
            # The test created FITTING + 1 workloads through the kube API, spread over 2 workers.
            "workload creates": (
                'sum(fleetplane_apiserver_request_duration_seconds_count{verb="create",resource="workloads"})',
                equals(FITTING + 1),
            ),
            "open assignment watches": (
                'sum(fleetplane_apiserver_watch_connections{resource="assignments"})',
                equals(len(AGENTS)),
            ),
        },
    )
    # Recorded and sane, not fast (speed is bench/'s): every histogram's buckets add up to its
    # count, its sum is a finite, non-negative number of seconds, and the p99 lies in a bucket.
    for name, sel in (
        ("fleetplane_watch_lag_seconds", '{resource="assignments"}'),
        ("fleetplane_apiserver_request_duration_seconds", '{verb="create",resource="workloads"}'),
    ):
        count = lab.prometheus.scalar(f"sum({name}_count{sel})")
        inf = lab.prometheus.scalar(f'sum({name}_bucket{sel[:-1]},le="+Inf"}})')
        total = lab.prometheus.scalar(f"sum({name}_sum{sel})")
        p99 = lab.prometheus.scalar(f"histogram_quantile(0.99, sum by (le) ({name}_bucket{sel}))")
        assert count is not None and count >= 1 and inf == count, (name, count, inf, got)
        assert total is not None and math.isfinite(total) and total >= 0, (name, total)
        assert p99 is not None and math.isfinite(p99) and p99 > 0, (name, p99)


def test_the_agents_metrics_count_what_they_delivered_and_reported(lab: Lab) -> None:
    per_cluster: dict[str, int] = {}
    with lab.hub.client() as c:
        for a in c.get(f"{API}/namespaces/{NAMESPACE}/assignments").json()["items"]:
            per_cluster[a["spec"]["clusterName"]] = per_cluster.get(a["spec"]["clusterName"], 0) + 1
    assert per_cluster == {SIMULATED: FITTING // 2, SPOKE: FITTING // 2}, per_cluster
    jobs = json.loads(kubectl(lab.spoke_kubeconfig, "get", "jobs", "-A", "-o", "json").stdout)["items"]
    on_spoke = [j for j in jobs if j["metadata"]["name"].startswith("fits-")]
    assert len(on_spoke) == per_cluster.get(SPOKE, 0), "the lab spoke runs the Jobs of its Assignments"
    checks: dict[str, tuple[str, Callable[[float | None], bool]]] = {}
    for name in AGENTS:
        sel = f'{{cluster="{name}"}}'
        checks[f"{name} assignments"] = (f"fleetplane_agent_assignments{sel}", equals(per_cluster.get(name, 0)))
        # One Job manifest per Assignment, applied once.
        checks[f"{name} applies"] = (f"fleetplane_agent_applies_total{sel}", equals(per_cluster.get(name, 0)))
        checks[f"{name} renewals"] = (f"fleetplane_agent_lease_renewals_total{sel}", at_least(1))
        checks[f"{name} ready"] = (f"fleetplane_agent_ready{sel}", equals(1))
        checks[f"{name} fenced"] = (f"fleetplane_agent_fenced{sel}", equals(0))
        # A number (NaN until the first renewal), not a speed: the heartbeat's timing is bench/'s.
        checks[f"{name} lease age"] = (f"fleetplane_agent_lease_age_seconds{sel}", finite_and_not_negative)
    checks["status writes"] = ("sum(fleetplane_agent_assignment_status_writes_total)", at_least(FITTING))
    checks["hub renewals seen by the hub"] = ("sum(fleetplane_lease_renewals_total)", at_least(len(AGENTS)))
    settled(lab.prometheus, checks)


def test_every_dashboard_query_runs_and_the_fleet_panels_have_data(lab: Lab) -> None:
    queries = dashboard_queries()
    assert queries, "the dashboard has no queries"
    empty = []
    for title, expr in queries:
        promql = _fill(expr)
        if title.startswith("variable "):  # label_values(metric, label): Grafana's, not PromQL
            metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", expr).groups()  # type: ignore[union-attr]
            promql = f"group by ({label}) ({metric})"
        try:
            result = lab.prometheus.query(promql)
        except AssertionError as e:
            pytest.fail(f"panel {title!r}: Prometheus refused {promql!r}: {e}", pytrace=False)
        if not result:
            empty.append(title)
    # Rates need two samples in the window; everything the lab exercised must show data.
    must_have = {"Placements", "Placement latency", "Pending workloads by reason", "Clusters by readiness"}
    missing = must_have & set(empty)
    if missing:
        wait_until(
            "the fleet panels have data",
            lambda: all(lab.prometheus.query(_fill(e)) for t, e in queries if t in missing),
            30,
            1,
        )


def _fill(expr: str) -> str:
    """Grafana's interval variables, as Grafana fills them for a short time range."""
    expr = expr.replace("$agent_job", ".+").replace("$job", ".+")  # the "All" of the job variables
    return expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m")
