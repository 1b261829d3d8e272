"""A list without a selector passes the stored JSON through (no decoding); with one, objects are
decoded and filtered. Both must answer the same list: items, order, pages and scope."""

from __future__ import annotations

import httpx

from tests.hubtest import HubProcess, workload

NS = "lists"
WL = f"/apis/fleetplane.io/v1alpha1/namespaces/{NS}/workloads"
MATCH_ALL = {"labelSelector": "kind-of=test"}


def test_a_plain_list_and_a_selector_list_of_the_same_objects_are_the_same(hub: HubProcess) -> None:
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        for i in range(7):
            body = workload(f"w{i}", NS)
            body["metadata"]["labels"] = {"kind-of": "test"}
            body["metadata"]["annotations"] = {"note": 'quotes " and unicode é survive'}
            assert c.post(WL, json=body).status_code == 201
        plain, selected = c.get(WL).json(), c.get(WL, params=MATCH_ALL).json()
        assert plain["kind"] == "WorkloadList" and plain["apiVersion"] == "fleetplane.io/v1alpha1"
        assert plain["items"] == selected["items"] and len(plain["items"]) == 7
        assert plain["items"][0]["metadata"]["annotations"]["note"] == 'quotes " and unicode é survive'

        def pages(params: dict[str, str]) -> list[list[str]]:
            out, cont = [], None
            while True:
                r = c.get(WL, params={**params, "limit": "3", **({"continue": cont} if cont else {})}).json()
                out.append([w["metadata"]["name"] for w in r["items"]])
                cont = r["metadata"].get("continue")
                if not cont:
                    return out

        assert pages({}) == pages(MATCH_ALL) == [["w0", "w1", "w2"], ["w3", "w4", "w5"], ["w6"]]


def test_a_plain_list_keeps_tenant_scope(hub: HubProcess) -> None:
    token, _ = hub.team("lists-other", "lists-elsewhere")
    with httpx.Client(base_url=hub.http_url, headers={"Authorization": f"Bearer {token}"}) as other:
        r = other.get(WL)
        assert r.status_code == 200 and r.json()["items"] == []
        assert other.get("/apis/fleetplane.io/v1alpha1/workloads").json()["items"] == []


def test_an_equality_field_selector_lists_exactly_its_matches_in_pages(hub: HubProcess) -> None:
    """Equality field selectors are also applied in Postgres (hub.store.store.Store.list
    `field_eq`); the answer must be the one the selector means, page by page, for `=`, `==`,
    with `!=` next to it, and for a name nothing has."""
    ns = "fieldsel"
    asg = f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments"
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
        for i in range(9):
            body = {
                "apiVersion": "fleetplane.io/v1alpha1",
                "kind": "Assignment",
                "metadata": {"name": f"a{i}"},
                "spec": {
                    "clusterName": ("east", "west", "north")[i % 3],
                    "workloadRef": {"name": f"w{i}", "uid": f"u{i}"},
                    "epoch": 1,
                    "manifests": [],
                },
            }
            r = c.post(asg, json=body)
            assert r.status_code == 201, r.text

        def names(selector: str, limit: str = "2") -> list[str]:
            out, cont = [], None
            while True:
                params = {"fieldSelector": selector, "limit": limit, **({"continue": cont} if cont else {})}
                r = c.get(asg, params=params)
                assert r.status_code == 200, r.text
                out += [a["metadata"]["name"] for a in r.json()["items"]]
                cont = r.json()["metadata"].get("continue")
                if not cont:
                    return out

        assert names("spec.clusterName=east") == ["a0", "a3", "a6"]
        assert names("spec.clusterName==west,metadata.name!=a4") == ["a1", "a7"]
        assert names("spec.clusterName=nowhere") == []
        assert names("spec.clusterName!=east", limit="4") == ["a1", "a2", "a4", "a5", "a7", "a8"]
