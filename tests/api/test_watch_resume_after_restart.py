"""Watches resumed after a kill -9 of the hub (issue 14, P8): the restarted hub's ring is empty,
so every watch from before the restart is back-filled from the event log. Indexed watchers (an
agent's `spec.clusterName=NAME`, a `metadata.name=NAME` watch) resuming from before the process
started share one read of the log per resource and field (hub/store/watch.py `_LogSpan`) instead
of one read each: 1,000 agents resuming at once made Postgres scan the same events 1,000 times.

What a user sees must not change: each resumed watch replays exactly the events the same watch
got before the restart, in order, none lost or repeated, and a too-old resourceVersion is 410.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.conftest import start_hub
from tests.hubtest import HubProcess, workload

NS = "resume"
WL = f"/apis/fleetplane.io/v1alpha1/namespaces/{NS}/workloads"
NAMES = [f"w{i}" for i in range(8)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, fresh_database) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    h = start_hub(tmp_path_factory.mktemp("hub"), fresh_database(), FLEETPLANE_CONTROLLERS="false")
    yield h
    h.stop()


def history(c: httpx.Client) -> list[str]:
    """Writes to NAMES interleaved with other objects' writes; the resourceVersion after each step."""
    assert c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    marks: list[str] = []

    def mark(r: httpx.Response) -> None:
        assert r.status_code in (200, 201), r.text
        marks.append(r.json()["metadata"]["resourceVersion"])

    merge = {"Content-Type": "application/merge-patch+json"}
    for i, name in enumerate(NAMES):
        mark(c.post(WL, json=workload(name, NS)))
        for j in range(5):  # others' events between every two of ours
            assert c.post(WL, json=workload(f"other-{i}-{j}", NS)).status_code == 201
    for round_ in range(3):
        for name in NAMES[::2]:
            mark(
                c.patch(f"{WL}/{name}", content=json.dumps({"metadata": {"labels": {"r": str(round_)}}}), headers=merge)
            )
    for name in NAMES[1::3]:
        mark(c.delete(f"{WL}/{name}"))
    return marks


def watch(hub: HubProcess, name: str, rv: str) -> list[tuple[str, str, str]]:
    """Everything a `metadata.name=name` watch from `rv` sends within 3 s: (type, name, rv)."""
    params = {"watch": "true", "timeoutSeconds": "3", "fieldSelector": f"metadata.name={name}", "resourceVersion": rv}
    got: list[tuple[str, str, str]] = []
    with hub.client() as c, c.stream("GET", WL, params=params) as s:
        if s.status_code != 200:
            s.read()
            return [("HTTP", str(s.status_code), s.text)]
        for line in s.iter_lines():
            if line:
                ev = json.loads(line)
                meta = ev["object"].get("metadata", {})
                got.append((ev["type"], meta.get("name", ""), meta.get("resourceVersion", "")))
    return got


def all_watches(hub: HubProcess, marks: list[str]) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """Every name from every mark (and from before the first), all at once: a resume stampede."""
    keys = [(name, rv) for name in NAMES for rv in [str(int(marks[0]) - 1), *marks[::3]]]
    with ThreadPoolExecutor(len(keys)) as pool:
        return dict(zip(keys, pool.map(lambda k: watch(hub, *k), keys), strict=True))


def events_table_scans(hub: HubProcess) -> int:
    assert hub.database_url
    dsn = hub.database_url.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'events'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_watches_resumed_after_kill_9_replay_exactly_what_they_did_before_and_share_one_log_read(
    hub: HubProcess,
) -> None:
    with hub.client() as c:
        marks = history(c)
    before = all_watches(hub, marks)
    # The history really is in the answers: each name's watch from before its creation has it.
    for name in NAMES:
        got = before[(name, str(int(marks[0]) - 1))]
        assert got and got[0][:2] == ("ADDED", name), got
        assert all(ev[1] == name for ev in got), got
    assert [t for t, *_ in before[("w1", str(int(marks[0]) - 1))]] == ["ADDED", "DELETED"]

    hub.stop(kill=True)
    hub.start()
    time.sleep(1.5)  # let the restarted hub's own startup reads reach the table statistics
    scans = events_table_scans(hub)
    after = all_watches(hub, marks)
    time.sleep(1.5)  # statistics are flushed about once a second
    scans = events_table_scans(hub) - scans

    assert after == before
    # 72 resumes from before the restart; one shared read per gap (plus the poller's few polls),
    # where each resume read the log on its own before.
    assert scans < len(after) // 3, f"{scans} scans of the event log for {len(after)} resumed watches"
    print(f"{len(after)} watches resumed after kill -9: {scans} scans of the events table")


def test_a_resume_from_below_the_compaction_floor_is_410_after_a_restart(hub: HubProcess) -> None:
    with hub.client() as c:
        rv = c.get(WL).json()["metadata"]["resourceVersion"]
    assert hub.database_url
    dsn = hub.database_url.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as conn:  # compact as the hub does: move the floor
        conn.execute("DELETE FROM events WHERE rv <= %s", (int(rv),))
        conn.execute("UPDATE store_meta SET value = %s WHERE key = 'compacted_rv'", (rv,))
    got = watch(hub, "w0", str(int(rv) - 1))
    # 410 as the response status, or as the stream's first (ERROR) event, as kube-apiserver does.
    assert got and (got[0][:2] == ("HTTP", "410") or got[0][0] == "ERROR"), got
