"""The Kubernetes API's object requests skip FastAPI's router (hub.web.kube.fastpath): the fast
path must never take a request an explicit route serves, and a request it takes must get every
check and answer the routed one got — authentication first, Status errors, the body limit, the
request metrics — while discovery and the authorization reviews still answer as themselves."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from hub.server import create_app
from hub.settings import Settings
from hub.web.kube.fastpath import serves
from tests.conftest import start_hub
from tests.hubtest import HubProcess, expect_status, workload

WORKLOADS = "/apis/fleetplane.io/v1alpha1/namespaces/{ns}/workloads"


def route_paths(routes: Iterable[Any]) -> Iterator[str]:
    """Every route path of an app, including those of included routers."""
    for r in routes:
        inner = getattr(r, "original_router", None) or getattr(r, "routes", None)
        if inner is not None and not isinstance(getattr(r, "path", None), str):
            yield from route_paths(getattr(inner, "routes", inner))
        elif isinstance(getattr(r, "path", None), str):
            yield r.path


def test_no_explicit_route_is_taken() -> None:
    app = create_app(Settings(), "postgresql+psycopg://nobody@/nowhere?host=/nonexistent")  # never connects
    paths = set(route_paths(app.routes))
    # The walk found the routes it must keep away from (or this test would prove nothing).
    for expected in ("/api", "/api/v1", "/apis", "/apis/fleetplane.io/v1alpha1", "/version"):
        assert expected in paths, sorted(paths)
    assert any("selfsubjectaccessreviews" in p for p in paths)
    explicit = {p for p in paths if p not in ("/api/{path:path}", "/apis/{path:path}")}
    taken = sorted(p for p in explicit if serves(re.sub(r"\{[^}]*\}", "x", p)))
    assert taken == [], f"the fast path would take explicit routes: {taken}"


@pytest.mark.parametrize(
    ("path", "fast"),
    [
        ("/api/v1/namespaces", True),
        ("/api/v1/namespaces/team-a", True),
        ("/apis/fleetplane.io/v1alpha1/namespaces/a/workloads/w", True),
        ("/apis/fleetplane.io/v1alpha1/workloads", True),
        ("/api/v1", False),
        ("/api/v1/", False),
        ("/apis/fleetplane.io/v1alpha1", False),
        ("/apis/fleetplane.io/v1alpha1/", False),
        ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", False),
        ("/apis/authentication.k8s.io/v1/selfsubjectreviews", False),
        ("/apis/unknown.example/v1/things", False),
    ],
)
def test_serves(path: str, fast: bool) -> None:
    assert serves(path) is fast


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    h = start_hub(
        tmp_path_factory.mktemp("fastpath"),
        fresh_database(),
        FLEETPLANE_CONTROLLERS="false",
        FLEETPLANE_MAX_BODY_BYTES="20000",
    )
    yield h
    h.stop()


def requests_total(c: httpx.Client, verb: str, code: str) -> float:
    text = c.get("/metrics").text
    m = re.search(
        rf'^fleetplane_apiserver_requests_total\{{[^}}]*code="{code}"[^}}]*resource="workloads"[^}}]*verb="{verb}"[^}}]*\}} (\S+)$',
        text,
        re.M,
    )
    return float(m.group(1)) if m else 0.0


def test_object_requests_keep_every_check(small: HubProcess) -> None:
    with small.client() as c, small.client(token="not-a-token") as stranger, small.client(token="") as anonymous:
        r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fp"}})
        assert r.status_code == 201, r.text
        url = WORKLOADS.format(ns="fp")

        # Authentication still comes first.
        expect_status(anonymous.get(url + "/w1"), 401, "Unauthorized")
        expect_status(stranger.post(url, json=workload("w1", "fp")), 401, "Unauthorized")

        before = requests_total(c, "create", "201")
        r = c.post(url, json=workload("w1", "fp"))
        assert r.status_code == 201, r.text
        assert r.json()["metadata"]["resourceVersion"]
        assert requests_total(c, "create", "201") == before + 1  # the request metrics are still recorded

        got = c.get(url + "/w1")
        assert got.status_code == 200 and got.json()["metadata"]["uid"] == r.json()["metadata"]["uid"]
        expect_status(c.get(url + "/nope"), 404, "NotFound")
        expect_status(c.post(url, json=workload("w1", "fp")), 409, "AlreadyExists")
        bad = workload("w2", "fp")
        bad["spec"]["replicas"] = "two"
        expect_status(c.post(url, json=bad), 422, "Invalid", "spec.replicas")
        big = workload("w3", "fp")
        big["metadata"]["annotations"] = {"pad": "x" * 30000}
        assert c.post(url, json=big).status_code == 413  # the body limit, read by the verb
        expect_status(c.post(url + "/w1", json=workload("w1", "fp")), 405, "MethodNotAllowed")
        # A method the catch-all routes do not take still gets the router's answer, as a Status.
        expect_status(c.request("OPTIONS", url), 405, "MethodNotAllowed")

        # Beside the fast path: discovery and the review APIs answer as themselves.
        assert c.get("/apis/fleetplane.io/v1alpha1").json()["kind"] == "APIResourceList"
        review = c.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "get", "group": "fleetplane.io", "resource": "workloads"}},
            },
        )
        assert review.status_code == 201 and review.json()["status"]["allowed"] is True, review.text


def test_create_checks_its_namespace_in_the_write(small: HubProcess) -> None:
    """A create's namespace is checked by its write statement (no read first): a missing
    namespace is still 404 naming it, a terminating one 403, and nothing is stored."""
    with small.client() as c:
        url = WORKLOADS.format(ns="later")
        gone = expect_status(c.post(url, json=workload("w1", "later")), 404, "NotFound")
        assert gone["details"]["name"] == "later" and gone["details"]["kind"] == "namespaces", gone
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}}
        assert c.post("/api/v1/namespaces", json=ns).status_code == 201
        assert c.post(url, json=workload("w1", "later")).status_code == 201

        held = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        }
        assert c.post("/api/v1/namespaces", json=held).status_code == 201
        assert c.delete("/api/v1/namespaces/held").status_code == 200
        assert c.get("/api/v1/namespaces/held").json()["metadata"].get("deletionTimestamp")
        refused = expect_status(c.post(WORKLOADS.format(ns="held"), json=workload("w1", "held")), 403, "Forbidden")
        assert "being terminated" in refused["message"], refused
        expect_status(c.get(WORKLOADS.format(ns="held") + "/w1"), 404, "NotFound")  # nothing was stored
