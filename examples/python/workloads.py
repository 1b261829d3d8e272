"""Fleetplane Workloads from Python with the official `kubernetes` client, unchanged.

The hub speaks the Kubernetes API, so the client works as it does against any cluster:
load a kubeconfig, then use CustomObjectsApi (or the dynamic client) for fleetplane.io
objects. Start a hub with `fleetplane up --demo` (it writes .fleetplane/admin.kubeconfig and
runs three SIMULATED clusters in namespace `demo`), then:

    pip install kubernetes
    python examples/python/workloads.py                      # create, list, patch, watch, delete
    python examples/python/workloads.py --kubeconfig K --namespace N --name my-job

Each step prints one line. Exit status 1 (with the hub's message) if the hub refuses something.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "fleetplane.io", "v1alpha1", "workloads"


def as_dict(answer: object) -> dict[str, Any]:
    """CustomObjectsApi answers decoded JSON typed as `object`; a Workload is a dict."""
    assert isinstance(answer, dict), answer
    return answer


def a_workload(name: str, gpus: int = 1) -> dict[str, Any]:
    """A Workload: one batch Job asking for `gpus` GPUs, placed by the hub on some cluster."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workload",
        "metadata": {"name": name, "labels": {"example": "python-client"}},
        "spec": {
            "replicas": 1,
            "gpu": {"count": gpus},
            "manifests": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name},
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                            }
                        }
                    },
                }
            ],
        },
    }


def watch_until_placed(api: client.CustomObjectsApi, namespace: str, name: str, since: str, timeout: int) -> dict:
    """Follow the workload's events from resourceVersion `since` until the hub has placed it.

    Returns the placed object. A hub with no cluster that fits keeps it Pending: the watch then
    ends after `timeout` seconds and the last object seen is returned (its status says why).
    """
    last: dict = {}
    w = watch.Watch()
    for event in w.stream(
        api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        field_selector=f"metadata.name={name}",
        resource_version=since,
        timeout_seconds=timeout,
    ):
        obj = event["object"]
        status = obj.get("status") or {}
        print(f"  watch: {event['type']:<8} phase={status.get('phase', '-')}")
        last = obj
        if (status.get("placement") or {}).get("clusters"):
            w.stop()
    return last


def run(kubeconfig: str, namespace: str, name: str, timeout: int = 60) -> int:
    api_client = config.new_client_from_config(config_file=kubeconfig)
    api = client.CustomObjectsApi(api_client)

    created = as_dict(api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, a_workload(name)))
    print(f"created {namespace}/{name} (resourceVersion {created['metadata']['resourceVersion']})")

    listed = as_dict(
        api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, label_selector="example=python-client")
    )
    print(f"listed {len(listed['items'])} workload(s) labelled example=python-client")

    # A dict body goes as a JSON merge patch; naming the content type makes that explicit.
    patched = as_dict(
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"spec": {"priority": 5}},
            _content_type="application/merge-patch+json",
        )
    )
    print(f"patched spec.priority={patched['spec']['priority']} (generation {patched['metadata']['generation']})")

    obj = watch_until_placed(api, namespace, name, created["metadata"]["resourceVersion"], timeout)
    placement = (obj.get("status") or {}).get("placement") or {}
    if placement.get("clusters"):
        print(f"placed on {', '.join(c['name'] for c in placement['clusters'])}")
    else:
        print(f"not placed within {timeout}s: {(obj.get('status') or {}).get('message', 'no status yet')}")

    # The dynamic client finds the resource through the hub's discovery (/apis).
    workloads = dynamic.DynamicClient(api_client).resources.get(api_version=f"{GROUP}/{VERSION}", kind="Workload")
    names = [item.metadata.name for item in workloads.get(namespace=namespace).items]
    print(f"dynamic client: {workloads.name} ({'namespaced' if workloads.namespaced else 'cluster'}) lists {names}")

    # A placed workload is kept (deletionTimestamp set) until the agents of its clusters have
    # removed their copies; an unplaced one goes at once (the answer is then a Status).
    answer = as_dict(api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    held = answer.get("kind") == "Workload" and answer["metadata"].get("deletionTimestamp")
    print(f"deleted {namespace}/{name}" + (" (kept until its clusters' agents confirm cleanup)" if held else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--kubeconfig", default=".fleetplane/admin.kubeconfig", help="written by `fleetplane up`")
    p.add_argument("--namespace", default="demo", help="an existing namespace (the demo fleet creates `demo`)")
    p.add_argument("--name", default="python-example")
    p.add_argument("--timeout", type=int, default=60, help="seconds to watch for the placement")
    args = p.parse_args(argv)
    try:
        return run(args.kubeconfig, args.namespace, args.name, args.timeout)
    except ApiException as e:
        # The hub answers errors as Kubernetes Status objects; e.body is that Status as JSON.
        print(f"hub refused: HTTP {e.status} {e.reason}: {e.body}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
