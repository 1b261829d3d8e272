"""The official `kubernetes` Python client works against the hub unchanged: the hub's admin
kubeconfig loads as is, CustomObjectsApi creates, lists, merge-patches, watches and deletes
Workloads, the dynamic client finds them through discovery, and a refused write is an
ApiException carrying the hub's Status.

The hub runs its controllers and one cluster reports capacity the way its agent does
(tests/api/test_federation.py `report`), so workloads really get placed. examples/python/
workloads.py is run as a user would run it, and its helpers are reused here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.api.test_federation import hub_with_one_cluster, pool
from tests.hubtest import REPO, HubProcess, wait_until

NS = "team-py"
GROUP, VERSION, PLURAL = "fleetplane.io", "v1alpha1", "workloads"
EXAMPLE = REPO / "examples" / "python" / "workloads.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleetplane_python_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


def as_dict(answer: object) -> dict[str, Any]:
    assert isinstance(answer, dict), answer
    return answer


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A hub with its controllers on and one Ready cluster `east` (4 nodes of 8 reserved H100)."""
    with hub_with_one_cluster(
        tmp_path_factory.mktemp("pyclient"), fresh_database(), NS, [pool("H100", "reserved", 3.2, 4, 8)]
    ) as h:
        yield h


@pytest.fixture(scope="module")
def api_client(fed: HubProcess) -> client.ApiClient:
    """The client as a user makes it: from the kubeconfig the hub wrote, nothing changed."""
    return config.new_client_from_config(config_file=str(fed.kubeconfig))


@pytest.fixture(scope="module")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def stored(fed: HubProcess, name: str) -> dict[str, Any] | None:
    """The workload as the hub stores it, None once it is gone."""
    with fed.client() as c:
        r = c.get(f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/{name}")
        return None if r.status_code == 404 else r.json()


def agents_confirm_cleanup(fed: HubProcess, name: str) -> None:
    """What each cluster's agent does once its copy is gone: drop its Assignment's finalizer
    (tests/api/test_federation.py). No agent runs here, so the test plays it."""
    with fed.client() as c:
        url = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/assignments"
        items = c.get(url, params={"fieldSelector": f"spec.workloadRef.name={name}"}).json()["items"]
        assert items, f"{name} was placed, so it has an Assignment"
        for a in items:
            r = c.patch(
                f"{url}/{a['metadata']['name']}",
                content=json.dumps({"metadata": {"finalizers": None}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert r.status_code == 200, r.text


def deleted_once_agents_confirm(fed: HubProcess, name: str) -> None:
    held = wait_until(lambda: (w := stored(fed, name)) is None or w, what=f"{name} deleted or held")
    assert held["metadata"].get("deletionTimestamp"), "a placed workload is held until its agents confirm"
    agents_confirm_cleanup(fed, name)
    wait_until(lambda: stored(fed, name) is None, what=f"{name} removed from the hub")


def test_the_example_script_creates_lists_patches_watches_until_placed_and_deletes(fed: HubProcess) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--kubeconfig", str(fed.kubeconfig), "--namespace", NS, "--name", "ex"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"stdout: {out.stdout}\nstderr: {out.stderr}"
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"created {NS}/ex (resourceVersion ")
    assert "listed 1 workload(s) labelled example=python-client" in lines
    assert "patched spec.priority=5 (generation 2)" in lines
    assert "placed on east" in lines
    assert "dynamic client: workloads (namespaced) lists ['ex']" in lines
    assert lines[-1] == f"deleted {NS}/ex (kept until its clusters' agents confirm cleanup)"
    deleted_once_agents_confirm(fed, "ex")


def test_a_created_workload_comes_back_and_the_list_sees_it(custom: client.CustomObjectsApi) -> None:
    created = as_dict(
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("train", gpus=2))
    )
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    got = as_dict(custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "train"))
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["spec"]["gpu"]["count"] == 2
    assert got["spec"]["manifests"][0]["kind"] == "Job"

    listed = as_dict(custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL))
    assert listed["kind"] == "WorkloadList"
    assert "train" in [w["metadata"]["name"] for w in listed["items"]]
    everywhere = as_dict(
        custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="example=python-client")
    )
    assert ("train", NS) in [(w["metadata"]["name"], w["metadata"]["namespace"]) for w in everywhere["items"]]


def test_a_merge_patch_changes_the_spec_and_keeps_the_rest(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("tune", gpus=1))
    # A dict body goes as application/merge-patch+json (the client's choice for a dict).
    patched = as_dict(
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "tune", {"spec": {"gpu": {"count": 4}, "priority": 7}}
        )
    )
    assert patched["spec"]["gpu"]["count"] == 4 and patched["spec"]["priority"] == 7
    assert patched["spec"]["manifests"][0]["metadata"]["name"] == "tune", "a merge patch keeps unnamed fields"
    assert patched["metadata"]["generation"] == 2
    got = as_dict(custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "tune"))
    assert got["spec"]["gpu"]["count"] == 4


def test_a_watch_yields_added_then_modified_with_the_placement(custom: client.CustomObjectsApi) -> None:
    created = as_dict(
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("serve", gpus=8))
    )
    events: list[tuple[str, dict[str, Any]]] = []
    w = watch.Watch()
    for event in w.stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        PLURAL,
        field_selector="metadata.name=serve",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=30,
    ):
        events.append((event["type"], event["object"]))
        if (event["object"].get("status") or {}).get("placement", {}).get("clusters"):
            w.stop()
    kinds = [t for t, _ in events]
    # The watch starts at the create's resourceVersion, so the ADDED is not repeated: every
    # later event is a MODIFIED, the last one carrying the placement.
    assert kinds and set(kinds) == {"MODIFIED"}, kinds
    last = events[-1][1]
    assert last["status"]["phase"] == "Placed"
    assert [c["name"] for c in last["status"]["placement"]["clusters"]] == ["east"]
    assert all(o["metadata"]["name"] == "serve" for _, o in events), "the field selector holds"

    # From resourceVersion 0 a watch starts with the object as it is now: ADDED, already placed.
    first = next(
        iter(
            watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                NS,
                PLURAL,
                field_selector="metadata.name=serve",
                resource_version="0",
                timeout_seconds=10,
            )
        )
    )
    assert first["type"] == "ADDED" and first["object"]["status"]["placement"]["clusters"][0]["name"] == "east"


def test_a_workload_no_cluster_fits_stays_pending_with_the_reason(custom: client.CustomObjectsApi) -> None:
    created = as_dict(
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("huge", gpus=64))
    )
    obj = example.watch_until_placed(custom, NS, "huge", created["metadata"]["resourceVersion"], timeout=4)
    assert obj, "the watch saw the controller's status write"
    assert obj["status"]["phase"] == "Pending"
    assert obj["status"]["message"] == "0/1 clusters: 1 no node with 64 free GPUs", obj["status"]


def test_the_dynamic_client_finds_workloads_through_discovery(api_client: client.ApiClient, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    workloads = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="Workload")
    assert (workloads.group, workloads.name, workloads.namespaced) == (GROUP, "workloads", True)
    assert {"create", "list", "watch", "patch", "delete"} <= set(workloads.verbs)
    clusters = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="Cluster")
    assert clusters.namespaced is False

    custom_objects = client.CustomObjectsApi(api_client)
    custom_objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("dyn", gpus=1))
    names = [item.metadata.name for item in workloads.get(namespace=NS).items]
    assert "dyn" in names
    got = workloads.get(name="dyn", namespace=NS)
    assert got.spec.gpu.count == 1
    assert [c.metadata.name for c in clusters.get().items] == ["east"]


def test_a_bad_field_is_an_api_exception_with_the_hubs_status(custom: client.CustomObjectsApi) -> None:
    bad = example.a_workload("bad", gpus=1)
    bad["spec"]["gpu"]["count"] = "lots"
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad)
    assert err.value.status == 422
    status = json.loads(err.value.body or "{}")
    assert (status["kind"], status["status"], status["reason"]) == ("Status", "Failure", "Invalid")
    assert 'Workload.fleetplane.io "bad" is invalid' in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.gpu.count"]
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "bad")
    assert gone.value.status == 404, "nothing was stored"


def test_delete_of_a_placed_workload_marks_it_and_it_goes_once_agents_confirm(
    fed: HubProcess, custom: client.CustomObjectsApi
) -> None:
    created = as_dict(
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("short", gpus=1))
    )
    example.watch_until_placed(custom, NS, "short", created["metadata"]["resourceVersion"], timeout=20)
    answer = as_dict(custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "short"))
    assert answer["metadata"]["name"] == "short" and answer["metadata"]["deletionTimestamp"]
    deleted_once_agents_confirm(fed, "short")


def test_delete_of_an_unplaced_workload_is_immediate(fed: HubProcess, custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, example.a_workload("never", gpus=64))
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "never")
    wait_until(lambda: stored(fed, "never") is None, what="never removed from the hub")
