"""The selector watch suite again, on a hub that keeps no in-memory ring
(FLEETPLANE_WATCH_CACHE_EVENTS=0), so every resumed watch is back-filled from the event log in
Postgres — the path every watch takes after a hub restart. An equality field selector
(`metadata.name=…`, an agent's `spec.clusterName=…`) is applied to that read in SQL
(Store.events_after(field_eq=…)); the transitions a watcher sees must be exactly those of the
ring path: an object leaving the selection is DELETED to it, one entering is ADDED, one that
never matched is never sent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_watch_selectors import (  # the same tests, on this module's hub
    NS,
    test_a_label_watch_sees_an_object_leave_and_rejoin_its_selection,
    test_a_resumed_selector_watch_replays_the_same_transitions,
    test_an_object_that_never_matched_is_never_sent,
)
from tests.conftest import start_hub
from tests.hubtest import HubProcess, workload

__all__ = [
    "test_a_label_watch_sees_an_object_leave_and_rejoin_its_selection",
    "test_a_resumed_selector_watch_replays_the_same_transitions",
    "test_an_object_that_never_matched_is_never_sent",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    h = start_hub(
        tmp_path_factory.mktemp("hub"),
        fresh_database(),
        FLEETPLANE_CONTROLLERS="false",
        FLEETPLANE_WATCH_CACHE_EVENTS="0",
    )
    yield h
    h.stop()


@pytest.fixture(scope="module")
def admin(hub: HubProcess) -> Iterator[httpx.Client]:
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        yield c


def test_a_resumed_name_watch_reads_only_its_objects_events_and_misses_none(admin: httpx.Client) -> None:
    """Many other objects' events lie between the resourceVersion and now; the watch of one
    name gets exactly that object's history from the log, in order."""
    wl = f"/apis/fleetplane.io/v1alpha1/namespaces/{NS}/workloads"
    start = admin.post(wl, json=workload("mine", NS)).json()["metadata"]["resourceVersion"]
    for i in range(30):
        assert admin.post(wl, json=workload(f"other-{i}", NS)).status_code == 201
    patched = admin.patch(
        f"{wl}/mine",
        content=b'{"metadata":{"labels":{"tier":"gold"}}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    assert admin.delete(f"{wl}/mine").status_code == 200
    got: list[tuple[str, str]] = []
    params = {"watch": "true", "timeoutSeconds": "3", "fieldSelector": "metadata.name=mine", "resourceVersion": start}
    with admin.stream("GET", wl, params=params) as s:
        for line in s.iter_lines():
            if line:
                ev = httpx.Response(200, content=line).json()
                got.append((ev["type"], ev["object"]["metadata"]["name"]))
                if len(got) == 2:
                    break
    assert got == [("MODIFIED", "mine"), ("DELETED", "mine")]
