"""A watch with a label or field selector follows objects in and out of its selection, as the
kube-apiserver's watch cache does (informers depend on it): an object that stops matching is
DELETED to that watcher, one that starts matching is ADDED, and changes outside the selection
are not sent — live, and when the watch resumes from a resourceVersion."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.hubtest import HubProcess, workload

NS = "sel"
WL = f"/apis/fleetplane.io/v1alpha1/namespaces/{NS}/workloads"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def admin(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        yield c


def relabel(c: httpx.Client, name: str, **labels: str | None) -> str:
    r = c.patch(f"{WL}/{name}", content=json.dumps({"metadata": {"labels": labels}}), headers=MERGE)
    assert r.status_code == 200, r.text
    return str(r.json()["metadata"]["resourceVersion"])


def watch(c: httpx.Client, selector: dict[str, str], until: int, **params: str) -> list[tuple[str, str, Any]]:
    """(type, name, labels) of the events a selector watch receives, until `until` of them arrived
    or the watch times out."""
    got: list[tuple[str, str, Any]] = []
    with c.stream("GET", WL, params={"watch": "true", "timeoutSeconds": "5", **selector, **params}) as s:
        for line in s.iter_lines():
            if not line:
                continue
            ev = json.loads(line)
            m = ev["object"]["metadata"]
            got.append((ev["type"], m["name"], (m.get("labels") or {}).get("tier")))
            if len(got) >= until:
                break
    return got


def test_a_label_watch_sees_an_object_leave_and_rejoin_its_selection(admin: httpx.Client) -> None:
    body = workload("mover", NS)
    body["metadata"]["labels"] = {"tier": "gold"}
    r = admin.post(WL, json=body)
    assert r.status_code == 201, r.text
    start = r.json()["metadata"]["resourceVersion"]
    results: list[list[tuple[str, str, Any]]] = []
    t = threading.Thread(
        target=lambda: results.append(watch(admin, {"labelSelector": "tier=gold"}, 3, resourceVersion=start))
    )
    t.start()
    relabel(admin, "mover", tier="silver")  # leaves the selection
    relabel(admin, "mover", tier="bronze")  # still outside: nothing to send
    relabel(admin, "mover", tier="gold")  # back in
    r = admin.patch(f"{WL}/mover", content=json.dumps({"spec": {"priority": 5}}), headers=MERGE)
    assert r.status_code == 200  # inside: a plain MODIFIED
    t.join(timeout=10)
    assert results == [[("DELETED", "mover", "silver"), ("ADDED", "mover", "gold"), ("MODIFIED", "mover", "gold")]]


def test_a_resumed_selector_watch_replays_the_same_transitions(admin: httpx.Client) -> None:
    body = workload("resumer", NS)
    body["metadata"]["labels"] = {"tier": "gold"}
    start = admin.post(WL, json=body).json()["metadata"]["resourceVersion"]
    relabel(admin, "resumer", tier="silver")
    relabel(admin, "resumer", tier="gold")
    assert admin.delete(f"{WL}/resumer").status_code == 200
    # Everything already happened: the watch replays it from the event log.
    got = watch(
        admin, {"labelSelector": "tier=gold", "fieldSelector": "metadata.name=resumer"}, 3, resourceVersion=start
    )
    assert got == [("DELETED", "resumer", "silver"), ("ADDED", "resumer", "gold"), ("DELETED", "resumer", "gold")]


def test_an_object_that_never_matched_is_never_sent(admin: httpx.Client) -> None:
    body = workload("outsider", NS)
    body["metadata"]["labels"] = {"tier": "iron"}
    start = admin.post(WL, json=body).json()["metadata"]["resourceVersion"]
    relabel(admin, "outsider", tier="tin")
    assert admin.delete(f"{WL}/outsider").status_code == 200
    got = watch(
        admin, {"labelSelector": "tier=gold", "fieldSelector": "metadata.name=outsider"}, 1, resourceVersion=start
    )
    assert got == []
