"""schemathesis against the REST API of a real hub: every /v1 operation of /openapi.json is called
with generated data (valid and invalid) as admin, and every answer must be a non-5xx with a
documented status code, content type and a body that matches the documented schema.

The Kubernetes-compatible API is not described by /openapi.json (it has /openapi/v3 for
kubectl), so only the REST operations are generated here; tests/api/test_hostile_input.py
covers the Kubernetes API's inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hubtest import HubProcess, workload

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 40
"""Cases per operation and mode: 15 operations × 2 modes × 40 ≈ 1,200 requests, about a minute."""


@pytest.fixture(scope="module")
def seeded(hub: HubProcess) -> Iterator[HubProcess]:
    """The hub with something to find: a namespace, a workload in it, a queue and a cluster."""
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}}).status_code == 201
        assert c.post("/v1/namespaces/team-a/workloads", json=workload("seed")).status_code == 201
        queue = {"metadata": {"name": "q1"}, "spec": {"defaultFor": ["team-a"]}}
        assert c.post("/apis/fleetplane.io/v1alpha1/queues", json=queue).status_code == 201
        r = c.post("/apis/fleetplane.io/v1alpha1/clusters", json={"metadata": {"name": "c1"}, "spec": {"region": "r"}})
        assert r.status_code == 201, r.text
    yield hub


REST_OPERATIONS = [
    "POST /v1/namespaces/{namespace}/workloads",
    "GET /v1/namespaces/{namespace}/workloads",
    "GET /v1/workloads",
    "GET /v1/namespaces/{namespace}/workloads/{name}",
    "GET /v1/namespaces/{namespace}/workloads/{name}/position",
    "GET /v1/queues",
    "GET /v1/queues/{name}",
    "GET /v1/queues/{name}/workloads",
    "GET /v1/clusters",
    "GET /v1/fleet/summary",
    "POST /v1/whatif",
    "PUT /v1/clusters/{name}/lease",
    "GET /v1/clusters/{name}/lease",
    "GET /v1/leases",
    # Last: its generated join tokens fail authentication, and enough failures rate-limit the
    # address all these requests come from.
    "POST /v1/clusters/join",
]


@pytest.fixture(scope="module")
def rest_schema(seeded: HubProcess) -> Any:
    spec = httpx.get(seeded.http_url + "/openapi.json", timeout=30).json()
    return schemathesis.openapi.from_dict(spec).include(path_regex="^/v1/")


def test_the_rest_operations_here_are_all_the_rest_api_has(rest_schema: Any) -> None:
    assert sorted(r.ok().label for r in rest_schema.get_all_operations()) == sorted(REST_OPERATIONS)


# schemathesis' own pytest plugin (schema.parametrize) does not run on pytest 9, so each
# operation's generated cases run under hypothesis here: valid data and data that breaks the
# documented schema on purpose.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", REST_OPERATIONS)
def test_every_rest_operation_answers_as_documented_whatever_it_is_sent(
    rest_schema: Any, seeded: HubProcess, label: str, mode: GenerationMode
) -> None:
    method, path = label.split(" ", 1)
    operation = rest_schema[path][method]
    headers = {"Authorization": f"Bearer {seeded.admin_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: Any) -> None:
        case.call_and_validate(base_url=seeded.http_url, headers=headers, checks=CHECKS)

    call()
