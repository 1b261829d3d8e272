"""Tenant isolation: teams see only their namespaces; agents only their own cluster's objects.

Each test runs the same call as two subjects and asserts the other sees nothing (404, not 403,
so existence does not leak). The module runs against a one-process hub and against a hub of two
API worker processes (a subject's requests then reach processes with separate auth caches).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, Kubectl, manifest, workload

WL = "/apis/fleetplane.io/v1alpha1/namespaces/{ns}/workloads"
ASG = "/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def hub(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[], str],
) -> Iterator[HubProcess]:
    """The API-only hub of tests/conftest.py, one process or two API worker processes."""
    h = start_hub(tmp_path_factory.mktemp("hub"), fresh_database(), request.param, FLEETPLANE_CONTROLLERS="false")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def teams(hub: HubProcess) -> dict[str, str]:
    tok_a, _ = hub.team("alpha", "team-a")
    tok_b, _ = hub.team("beta", "team-b")
    with hub.client(tok_a) as a:
        r = a.post(WL.format(ns="team-a"), json=workload("secret-model", gpus=8))
        assert r.status_code == 201, r.text
    return {"a": tok_a, "b": tok_b}


def test_missing_or_invalid_token_gets_401_status(hub: HubProcess) -> None:
    for token in ("", "fpt-not-a-real-token"):
        with hub.client(token) as c:
            r = c.get(WL.format(ns="team-a"))
        assert r.status_code == 401
        assert r.json()["kind"] == "Status" and r.json()["reason"] == "Unauthorized"


def test_team_b_cannot_get_list_watch_or_patch_team_a_objects(hub: HubProcess, teams: dict[str, str]) -> None:
    with hub.client(teams["a"]) as a, hub.client(teams["b"]) as b:
        assert a.get(WL.format(ns="team-a") + "/secret-model").status_code == 200
        r = b.get(WL.format(ns="team-a") + "/secret-model")
        assert r.status_code == 404 and r.json()["reason"] == "NotFound"
        assert b.get(WL.format(ns="team-a")).json()["items"] == []
        all_ns = b.get("/apis/fleetplane.io/v1alpha1/workloads").json()["items"]
        assert all(i["metadata"]["namespace"] == "team-b" for i in all_ns)
        assert a.get("/apis/fleetplane.io/v1alpha1/workloads").json()["items"][0]["metadata"]["name"] == "secret-model"
        r = b.patch(WL.format(ns="team-a") + "/secret-model", content='{"spec":{"priority":99}}', headers=MERGE)
        assert r.status_code == 404
        assert b.delete(WL.format(ns="team-a") + "/secret-model").status_code == 404
        r = b.post(WL.format(ns="team-a"), json=workload("intruder", "team-a"))
        assert r.status_code == 404 and r.json()["message"] == 'namespaces "team-a" not found', "as if it did not exist"
        with b.stream(
            "GET",
            "/apis/fleetplane.io/v1alpha1/workloads",
            params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1"},
        ) as s:
            lines = [line for line in s.iter_lines() if line]
        assert all(json.loads(line)["object"]["metadata"].get("namespace") != "team-a" for line in lines)
        # Nothing team B tried changed team A's object.
        assert "priority" not in a.get(WL.format(ns="team-a") + "/secret-model").json()["spec"]  # B's 99 never landed


def test_team_kubeconfig_defaults_to_its_namespace_and_sees_only_it(
    hub: HubProcess, teams: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, kc = hub.team("beta", "team-b")
    k = Kubectl(kc, tmp_path_factory.mktemp("kc-beta"))
    k("apply", "-f", "-", input=manifest(workload("mine", "team-b")))
    assert k("get", "wl", "-o", "name").split() == ["workload.fleetplane.io/mine"]
    assert "NotFound" in k.fails("get", "wl", "secret-model", "-n", "team-a")
    assert k("get", "ns", "-o", "name").split() == ["namespace/team-b"]


def _join(hub: HubProcess, cluster: str) -> str:
    jt = hub.cli("cluster", "join-token", "create", cluster)
    with httpx.Client(base_url=hub.http_url) as c:
        r = c.post("/v1/clusters/join", json={"joinToken": jt, "clusterName": cluster})
        assert r.status_code == 200, r.text
        again = c.post("/v1/clusters/join", json={"joinToken": jt, "clusterName": cluster})
        assert again.status_code == 401, "a join token is single-use"
    return str(r.json()["token"])


def test_cluster_agent_touches_only_its_own_cluster_and_assignments(hub: HubProcess, teams: dict[str, str]) -> None:
    east, west = _join(hub, "east"), _join(hub, "west")
    with hub.client() as admin:
        for cluster in ("east", "west"):
            r = admin.post(
                ASG.format(ns="team-a"),
                json={
                    "apiVersion": "fleetplane.io/v1alpha1",
                    "kind": "Assignment",
                    "metadata": {"name": f"secret-model-{cluster}"},
                    "spec": {
                        "clusterName": cluster,
                        "workloadRef": {"name": "secret-model"},
                        "epoch": 1,
                        "manifests": [],
                    },
                },
            )
            assert r.status_code == 201, r.text
    with hub.client(east) as agent:
        items = agent.get("/apis/fleetplane.io/v1alpha1/assignments").json()["items"]
        assert [i["metadata"]["name"] for i in items] == ["secret-model-east"]
        assert agent.get(ASG.format(ns="team-a") + "/secret-model-west").status_code == 404
        r = agent.patch(
            ASG.format(ns="team-a") + "/secret-model-west/status",
            content='{"status":{"phase":"Running"}}',
            headers=MERGE,
        )
        assert r.status_code == 404
        r = agent.patch(
            ASG.format(ns="team-a") + "/secret-model-east/status",
            content='{"status":{"phase":"Running"}}',
            headers=MERGE,
        )
        assert r.status_code == 200 and r.json()["status"]["phase"] == "Running"
        assert agent.get("/apis/fleetplane.io/v1alpha1/clusters/west").status_code == 404
        r = agent.patch(
            "/apis/fleetplane.io/v1alpha1/clusters/west/status", content='{"status":{"freeGpus":1}}', headers=MERGE
        )
        assert r.status_code == 404
        r = agent.patch(
            "/apis/fleetplane.io/v1alpha1/clusters/east/status", content='{"status":{"freeGpus":8}}', headers=MERGE
        )
        assert r.status_code == 200
        assert agent.get(WL.format(ns="team-a")).json()["items"] == [], "agents do not see workloads"
        r = agent.patch(ASG.format(ns="team-a") + "/secret-model-east", content='{"spec":{"epoch":99}}', headers=MERGE)
        assert r.status_code == 403, "an agent cannot rewrite what it was assigned"
    with hub.client(west) as agent:
        assert (agent.get("/apis/fleetplane.io/v1alpha1/clusters/west").json().get("status") or {}).get(
            "freeGpus"
        ) is None
