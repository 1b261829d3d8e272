"""The real kubectl binary against a hub on a real Postgres, with --validate at its default."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from tests.hubtest import HubProcess, Kubectl, manifest, workload


@pytest.fixture(scope="module", autouse=True)
def namespace(kubectl: Kubectl) -> str:
    kubectl("create", "namespace", "team-a")
    return "team-a"


def test_api_resources_lists_every_fleetplane_kind(kubectl: Kubectl) -> None:
    out = kubectl("api-resources", "--api-group=fleetplane.io", "-o", "wide")
    for plural, kind in [
        ("workloads", "Workload"),
        ("clusters", "Cluster"),
        ("datasets", "Dataset"),
        ("assignments", "Assignment"),
        ("topologies", "Topology"),
    ]:
        line = next((row for row in out.splitlines() if row.startswith(plural + " ")), None)
        assert line is not None, out
        assert kind in line and "fleetplane.io/v1alpha1" in line
    assert " false " in next(row for row in out.splitlines() if row.startswith("clusters ")), (
        "Cluster is cluster-scoped"
    )


def test_create_then_get_shows_workload_columns(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("cols", gpus=8, replicas=2, priority=3)))
    out = kubectl("get", "workloads", "-n", "team-a", "cols")
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "GPUS", "PHASE", "CLUSTER", "AGE"]
    assert row.split()[:5] == ["cols", "2x8", "any", "Pending", "<none>"]
    wide = kubectl("get", "wl", "-n", "team-a", "cols", "-o", "wide").splitlines()[0].split()
    assert "PRIORITY" in wide and "CAPACITY" in wide


def test_get_output_formats_yaml_json_and_name(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("formats", gpus=2)))
    as_yaml = yaml.safe_load(kubectl("get", "wl", "formats", "-n", "team-a", "-o", "yaml"))
    as_json = json.loads(kubectl("get", "wl", "formats", "-n", "team-a", "-o", "json"))
    assert as_yaml == as_json
    assert as_json["spec"]["gpu"]["count"] == 2
    assert int(as_json["metadata"]["resourceVersion"]) > 0 and as_json["metadata"]["uid"]
    assert kubectl("get", "wl", "-n", "team-a", "-o", "name").split().count("workload.fleetplane.io/formats") == 1
    listing = json.loads(kubectl("get", "wl", "-n", "team-a", "-o", "json"))
    assert listing["kind"] == "List" and any(i["metadata"]["name"] == "formats" for i in listing["items"])


def test_describe_prints_spec_and_metadata(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("desc", gpus=4, priority=7)))
    out = kubectl("describe", "workload", "desc", "-n", "team-a")
    assert "Name:         desc" in out and "Namespace:    team-a" in out
    assert "Priority:" in out and "7" in out


def test_apply_twice_reports_unchanged_the_second_time(kubectl: Kubectl) -> None:
    body = manifest(workload("applied", gpus=1))
    assert "workload.fleetplane.io/applied created" in kubectl("apply", "-f", "-", input=body)
    assert "workload.fleetplane.io/applied unchanged" in kubectl("apply", "-f", "-", input=body)
    changed = manifest(workload("applied", gpus=2))
    assert "configured" in kubectl("apply", "-f", "-", input=changed)
    assert kubectl.json("get", "wl", "applied", "-n", "team-a")["spec"]["gpu"]["count"] == 2


def test_server_side_apply_detects_a_conflicting_manager(kubectl: Kubectl) -> None:
    first = workload("ssa", gpus=1, priority=1)
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", input=manifest(first))
    obj = kubectl.json("get", "wl", "ssa", "-n", "team-a", "--show-managed-fields")
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:priority" in managers["kubectl"]["fieldsV1"]["f:spec"]

    second = workload("ssa", gpus=1, priority=2)
    err = kubectl.fails("apply", "--server-side", "--field-manager=ci-bot", "-f", "-", input=manifest(second))
    assert 'conflict with "kubectl"' in err and ".spec.priority" in err
    assert kubectl.json("get", "wl", "ssa", "-n", "team-a")["spec"]["priority"] == 1, "a refused apply changes nothing"

    kubectl("apply", "--server-side", "--field-manager=ci-bot", "--force-conflicts", "-f", "-", input=manifest(second))
    obj = kubectl.json("get", "wl", "ssa", "-n", "team-a", "--show-managed-fields")
    assert obj["spec"]["priority"] == 2
    owners = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert "f:priority" in owners["ci-bot"]["fieldsV1"]["f:spec"]
    assert "f:priority" not in owners["kubectl"]["fieldsV1"].get("f:spec", {})


def test_patch_with_merge_and_json_patch(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("patched", gpus=1)))
    kubectl("patch", "wl", "patched", "-n", "team-a", "--type=merge", "-p", '{"spec":{"priority":42}}')
    kubectl(
        "patch",
        "wl",
        "patched",
        "-n",
        "team-a",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":3}]',
    )
    obj = kubectl.json("get", "wl", "patched", "-n", "team-a")
    assert obj["spec"]["priority"] == 42 and obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 3, "each spec change bumps the generation"


def test_replace_with_a_stale_resource_version_is_rejected(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("stale", gpus=1)))
    old = kubectl.json("get", "wl", "stale", "-n", "team-a")
    kubectl("patch", "wl", "stale", "-n", "team-a", "--type=merge", "-p", '{"spec":{"priority":5}}')
    old["spec"]["priority"] = 9  # an edit based on the version before the patch
    err = kubectl.fails("replace", "-f", "-", input=json.dumps(old))
    assert "Conflict" in err and "the object has been modified" in err
    assert kubectl.json("get", "wl", "stale", "-n", "team-a")["spec"]["priority"] == 5


def test_delete_waits_for_finalizers_then_removes_the_object(kubectl: Kubectl) -> None:
    body = workload("fin", gpus=1)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    kubectl("create", "-f", "-", input=manifest(body))
    kubectl("delete", "wl", "fin", "-n", "team-a", "--wait=false")
    obj = kubectl.json("get", "wl", "fin", "-n", "team-a")
    assert obj["metadata"]["deletionTimestamp"], "deletion is recorded while a finalizer holds the object"
    kubectl("patch", "wl", "fin", "-n", "team-a", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert "NotFound" in kubectl.fails("get", "wl", "fin", "-n", "team-a")


def test_plain_delete_removes_the_object(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=manifest(workload("gone", gpus=1)))
    assert 'workload.fleetplane.io "gone" deleted' in kubectl("delete", "wl", "gone", "-n", "team-a")
    assert "NotFound" in kubectl.fails("get", "wl", "gone", "-n", "team-a")


def test_get_watch_sees_added_modified_and_deleted(kubectl: Kubectl, hub: HubProcess) -> None:
    env_cmd = ["kubectl", "get", "wl", "-n", "team-a", "-w", "--output-watch-events"]
    import os

    env = dict(os.environ, KUBECONFIG=str(kubectl.kubeconfig), KUBECACHEDIR=str(kubectl.cache_dir))
    proc = subprocess.Popen(env_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # let the list + watch start
        kubectl("create", "-f", "-", input=manifest(workload("watched", gpus=1)))
        kubectl("patch", "wl", "watched", "-n", "team-a", "--type=merge", "-p", '{"spec":{"priority":1}}')
        kubectl("delete", "wl", "watched", "-n", "team-a")
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    events = [row.split() for row in out.splitlines() if "watched" in row]
    assert [e[0] for e in events] == ["ADDED", "MODIFIED", "DELETED"], (out, err)


def test_explain_describes_workload_spec_fields(kubectl: Kubectl) -> None:
    out = kubectl("explain", "workload.spec")
    assert "KIND:       Workload" in out and "FIELD: spec" in out
    for field in ("manifests", "gpu", "placementMode", "capacityTypes", "datasets", "clusterSelector", "tolerations"):
        assert f"  {field}\t" in out or f"  {field} " in out, field
    gpu = kubectl("explain", "workload.spec.gpu.count")
    assert "GPUs per replica, all on one node." in gpu


def test_strict_validation_rejects_an_unknown_field_by_name(kubectl: Kubectl) -> None:
    body = workload("typo", gpus=1)
    body["spec"]["gpuz"] = 3
    err = kubectl.fails("create", "-f", "-", input=manifest(body))
    assert 'strict decoding error: unknown field "spec.gpuz"' in err
    assert "NotFound" in kubectl.fails("get", "wl", "typo", "-n", "team-a")


def test_table_lists_clusters_with_gpu_columns(kubectl: Kubectl) -> None:
    cluster = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "east"},
        "spec": {"region": "us-east-1"},
    }
    kubectl("create", "-f", "-", input=manifest(cluster))
    kubectl(
        "patch",
        "cluster",
        "east",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"totalGpus": 16, "freeGpus": 12, "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    header, row = kubectl("get", "clusters", "east").splitlines()[:2]
    assert header.split() == ["NAME", "READY", "REGION", "GPUS", "FREE", "BACKEND", "AGE"]
    assert row.split()[:6] == ["east", "True", "us-east-1", "16", "12", "kubernetes"]


def test_deleting_a_namespace_deletes_its_content(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "scratch")
    kubectl("create", "-f", "-", input=manifest(workload("temp", "scratch", gpus=1)))
    kubectl("delete", "namespace", "scratch")
    assert "NotFound" in kubectl.fails("get", "ns", "scratch")
    assert kubectl("get", "wl", "-n", "scratch", "-o", "name").strip() == ""
    assert "NotFound" in kubectl.fails("create", "-f", "-", input=manifest(workload("late", "scratch", gpus=1)))
