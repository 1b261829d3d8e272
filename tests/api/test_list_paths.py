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
