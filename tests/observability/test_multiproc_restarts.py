"""A multi-process hub (`fleetplane up --workers 2`) whose API worker is killed again and again:
/metrics keeps the dead workers' request counts (a counter never drops, or every rate() over
it would show a reset), and the metrics directory keeps only the live processes' files plus
one archive per type, however many workers died. Real hub processes, real SIGKILL; no
Prometheus needed (the hub's own /metrics is read)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_hub
from tests.hubtest import HubProcess, wait_until

WORKERS = 2
KILLS = 3


@pytest.fixture
def hub(tmp_path: Path, fresh_database: Callable[[], str]) -> Iterator[HubProcess]:
    h = start_hub(tmp_path, fresh_database(), WORKERS, FLEETPLANE_CONTROLLERS="false")
    yield h
    h.stop()


def namespace_lists(hub: HubProcess) -> float:
    """fleetplane_apiserver_requests_total of the namespace lists answered 200, the whole hub's."""
    with hub.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    total = 0.0
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            if s.name == "fleetplane_apiserver_requests_total" and s.labels == {
                "verb": "list",
                "resource": "namespaces",
                "code": "200",
            }:
                total += s.value
    return total


def test_killed_workers_leave_their_counts_in_metrics_and_no_files_behind(hub: HubProcess) -> None:
    directory = hub.data_dir / "metrics-multiproc"
    dead: list[int] = []
    asked = 0
    for _ in range(KILLS):
        with hub.client() as c:
            for _ in range(10):  # new connections: spread over both workers
                assert c.get("/api/v1/namespaces").status_code == 200
                asked += 1
        before = namespace_lists(hub)
        assert before >= asked
        victim = hub.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        dead.append(victim)
        wait_until(
            lambda v=victim: v not in hub.worker_pids() and len(hub.worker_pids()) == WORKERS,
            timeout=90,
            what="the parent restarted the killed worker",
        )
        wait_until(
            lambda v=victim: not any(p.stem.endswith(f"_{v}") for p in directory.glob("*.db")),
            timeout=30,
            what="the dead worker's files are folded away",
        )
        after = namespace_lists(hub)
        assert after >= before, f"the hub's request counter dropped from {before} to {after} when a worker died"
    files = sorted(p.name for p in directory.glob("*.db"))
    pids = {p.split("_")[-1].removesuffix(".db") for p in files} - {"archive"}
    assert not pids & {str(d) for d in dead}, files
    live = {str(p) for p in hub.processes()}
    assert pids <= live, f"files of processes that are not running: {files}"
    assert {"counter_archive.db", "histogram_archive.db"} <= set(files), files
