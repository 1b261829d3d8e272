"""Bad input gets a 4xx Status naming the object and field, and changes nothing stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.hubtest import HubProcess, workload

WL = "/apis/fleetplane.io/v1alpha1/namespaces/team-a/workloads"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def admin(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}})
        assert c.post(WL, json=workload("keeper", gpus=2)).status_code == 201
        yield c


def _snapshot(c: httpx.Client) -> tuple[str, list[dict]]:
    r = c.get(WL)
    return r.json()["metadata"]["resourceVersion"], r.json()["items"]


def _status(r: httpx.Response, code: int, reason: str) -> dict:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == reason, body
    return body


@pytest.mark.parametrize(
    "content,ctype,code,reason,words",
    [
        (
            b'{"apiVersion": "fleetplane.io/v1alpha1", "kind": "Workload", ',
            "application/json",
            400,
            "BadRequest",
            ["not valid JSON"],
        ),
        (b"kind: Workload\n  bad: [indent", "application/yaml", 400, "BadRequest", ["not valid YAML"]),
        (b"[1, 2]", "application/json", 400, "BadRequest", ["must be a JSON object"]),
        (
            b'{"apiVersion": "fleetplane.io/v1alpha1", "kind": "Pod", "metadata": {"name": "x"}}',
            "application/json",
            400,
            "BadRequest",
            ['kind "Pod"'],
        ),
    ],
)
def test_malformed_bodies_are_rejected_with_a_status(
    admin: httpx.Client, content: bytes, ctype: str, code: int, reason: str, words: list[str]
) -> None:
    before = _snapshot(admin)
    body = _status(admin.post(WL, content=content, headers={"Content-Type": ctype}), code, reason)
    for w in words:
        assert w in body["message"]
    assert _snapshot(admin) == before


def test_wrong_types_name_the_field(admin: httpx.Client) -> None:
    before = _snapshot(admin)
    bad = workload("typed", gpus=1)
    bad["spec"]["replicas"] = "three"
    bad["spec"]["gpu"]["count"] = -4
    body = _status(admin.post(WL, json=bad), 422, "Invalid")
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"spec.replicas", "spec.gpu.count"} <= fields
    assert 'Workload.fleetplane.io "typed" is invalid' in body["message"]
    assert _snapshot(admin) == before


def test_manifests_must_be_kubernetes_objects(admin: httpx.Client) -> None:
    bad = workload("nomanifest", gpus=1)
    bad["spec"]["manifests"] = [{"kind": "Job", "metadata": {"name": "x"}}]
    body = _status(admin.post(WL, json=bad), 422, "Invalid")
    assert "manifests[0].apiVersion is required" in body["message"]


def test_names_must_be_dns_1123(admin: httpx.Client) -> None:
    before = _snapshot(admin)
    body = _status(admin.post(WL, json=workload("Not_A_Name", gpus=1)), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123" in body["message"]
    assert _snapshot(admin) == before


def test_unknown_kinds_and_resources_are_404_status(admin: httpx.Client) -> None:
    body = _status(admin.get("/apis/fleetplane.io/v1alpha1/namespaces/team-a/widgets"), 404, "NotFound")
    assert "widgets" in body["message"]
    _status(admin.get("/apis/other.io/v1/things"), 404, "NotFound")


def test_oversized_bodies_are_413_and_store_nothing(admin: httpx.Client) -> None:
    before = _snapshot(admin)
    big = workload("huge", gpus=1)
    big["spec"]["manifests"][0]["metadata"]["annotations"] = {"blob": "x" * (4 * 1024 * 1024)}
    _status(admin.post(WL, json=big), 413, "RequestEntityTooLarge")
    assert _snapshot(admin) == before


def test_bad_patch_leaves_the_object_unchanged(admin: httpx.Client) -> None:
    before = admin.get(WL + "/keeper").json()
    body = _status(
        admin.patch(WL + "/keeper", content='{"spec":{"gpu":{"count":"lots"}}}', headers=MERGE), 422, "Invalid"
    )
    assert body["details"]["causes"][0]["field"] == "spec.gpu.count"
    _status(
        admin.patch(
            WL + "/keeper",
            content='[{"op":"replace","path":"/spec/nope/x","value":1}]',
            headers={"Content-Type": "application/json-patch+json"},
        ),
        422,
        "Invalid",
    )
    _status(
        admin.patch(WL + "/keeper", content="{}", headers={"Content-Type": "application/strategic-merge-patch+json"}),
        415,
        "UnsupportedMediaType",
    )
    assert admin.get(WL + "/keeper").json() == before


def test_bad_selectors_and_delete_options_are_400(admin: httpx.Client) -> None:
    body = _status(admin.get(WL, params={"fieldSelector": "spec.gpu.count=1"}), 400, "BadRequest")
    assert "field label not supported" in body["message"]
    _status(admin.get(WL, params={"labelSelector": "a in (b"}), 400, "BadRequest")
    r = admin.request("DELETE", WL + "/keeper", json={"propagationPolicy": "Sideways"})
    assert "propagationPolicy" in _status(r, 400, "BadRequest")["message"]
    assert admin.get(WL + "/keeper").status_code == 200
