"""Datasets across namespaces, with the federation controller running: a Workload reads the
Datasets of its own namespace and those an admin shared with it (`spec.sharedWith`). Another
namespace's Dataset is placed as if it did not exist, and the Workload's status reads the same
whether it exists or not."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until, workload

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


def report_capacity(c: httpx.Client, name: str, region: str) -> None:
    """A Cluster with one on-demand pool of 8 free L4s, reported as its agent reports it."""
    r = c.post(f"{API}/clusters", json={"metadata": {"name": name}, "spec": {"region": region}})
    assert r.status_code == 201, r.text
    nodes = [{"name": f"{name}-0", "gpus": 8, "free": 8}]
    pool = {"name": "l4-on-demand", "model": "L4", "memoryGiB": 24, "capacityType": "on-demand", "gpusPerNode": 8}
    pool |= {"total": 8, "allocatable": 8, "allocated": 0, "free": 8, "nodes": nodes}
    status = {
        "heartbeatTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "gpuPools": [pool],
        "totalGpus": 8,
        "freeGpus": 8,
        "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReporting"}],
    }
    r = c.patch(f"{API}/clusters/{name}/status", content=json.dumps({"status": status}), headers=MERGE)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, fresh_database: Any) -> Iterator[HubProcess]:
    hub = start_hub(tmp_path_factory.mktemp("datasets"), fresh_database())
    hub.team("alpha", "team-a")
    hub.team("beta", "team-b")
    with hub.client() as admin:
        sites = {"sites": [{"name": "us-east-1", "type": "region"}, {"name": "eu-west-1", "type": "region"}]}
        assert admin.post(f"{API}/topologies", json={"metadata": {"name": "net"}, "spec": sites}).status_code == 201
        report_capacity(admin, "east", "us-east-1")
        for ns, name in (("team-b", "secret"), ("team-a", "own")):
            body = {"metadata": {"name": name}, "spec": {"sizeGiB": 500, "locations": [{"site": "eu-west-1"}]}}
            assert admin.post(f"{API}/namespaces/{ns}/datasets", json=body).status_code == 201
    yield hub
    hub.stop()


def reads(name: str, *refs: dict[str, str]) -> dict[str, Any]:
    body = workload(name, "team-a", gpus=1)
    body["spec"]["datasets"] = list(refs)
    return body


def settled_status(c: httpx.Client, name: str) -> dict[str, Any]:
    """The Workload's status once the controller has decided (placed, or pending with a reason)."""
    return dict(
        wait_until(
            lambda: (
                (s := c.get(f"{API}/namespaces/team-a/workloads/{name}").json().get("status") or {}).get("message")
                and s
            ),
            what=f"a decision for {name}",
        )
    )


def without_times(status: dict[str, Any], *names: str) -> str:
    text = json.dumps(status, sort_keys=True)
    text = re.sub(r'"(\w*(Time|At))": "[^"]*"', r'"\1": "T"', text)
    for n in names:
        text = text.replace(n, "NAME")
    return text


def test_another_namespaces_dataset_reads_exactly_like_a_missing_one(fleet: HubProcess) -> None:
    tok, _ = fleet.team("alpha", "team-a")
    with fleet.client(tok) as team:
        for name, ref in (("probe-real", "secret"), ("probe-none", "nothing")):
            r = team.post(f"{API}/namespaces/team-a/workloads", json=reads(name, {"name": ref, "namespace": "team-b"}))
            assert r.status_code == 201, r.text
        real, none = settled_status(team, "probe-real"), settled_status(team, "probe-none")
    assert real.get("phase", "Pending") == "Pending" and not (real.get("placement") or {}).get("clusters")
    assert 'unknown Dataset "team-b/secret"' in real["message"]
    assert without_times(real, "probe-real", "secret") == without_times(none, "probe-none", "nothing")


def test_a_dataset_an_admin_shared_is_read_and_placed(fleet: HubProcess) -> None:
    with fleet.client() as admin:
        body = reads("reads-shared", {"name": "secret", "namespace": "team-b"})
        assert admin.post(f"{API}/namespaces/team-a/workloads", json=body).status_code == 201
        assert "unknown Dataset" in settled_status(admin, "reads-shared")["message"], "not shared yet"
        share = json.dumps({"spec": {"sharedWith": ["team-a"]}})
        r = admin.patch(f"{API}/namespaces/team-b/datasets/secret", content=share, headers=MERGE)
        assert r.status_code == 200, r.text
        placed = wait_until(
            lambda: (
                (s := admin.get(f"{API}/namespaces/team-a/workloads/reads-shared").json().get("status") or {})
                .get("placement", {})
                .get("clusters")
                and s
            ),
            what="placed once shared",
        )
    assert placed["placement"]["clusters"][0]["name"] == "east"


def test_a_workload_reads_a_dataset_of_its_own_namespace(fleet: HubProcess) -> None:
    with fleet.client() as admin:
        assert (
            admin.post(f"{API}/namespaces/team-a/workloads", json=reads("reads-own", {"name": "own"})).status_code
            == 201
        )
        status = wait_until(
            lambda: (
                (s := admin.get(f"{API}/namespaces/team-a/workloads/reads-own").json().get("status") or {})
                .get("placement", {})
                .get("clusters")
                and s
            ),
            what="placed",
        )
    assert status["placement"]["clusters"][0]["name"] == "east"
