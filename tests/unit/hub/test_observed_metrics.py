"""What the hub's metrics code keeps and computes (hub/metrics.py, hub/controllers/observed.py):
the placement clock stays bounded by the Workloads the cache holds, watch lag is never negative,
and the multiprocess directory of a supervising hub does not grow with every dead child while
the totals of the dead stay in /metrics. Real prometheus_client, real child processes writing
real multiprocess files; no hub, no database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetplane_types.names import WORKLOADS
from hub import metrics
from hub.controllers.observed import PlacementClock, fleet_gauges
from hub.store.store import Event
from tests.unit.hub.test_controller_cache import a_workload, event, listed


def test_the_placement_clock_forgets_workloads_the_cache_no_longer_holds() -> None:
    clock = PlacementClock()
    for i in range(50):  # created while leading, then deleted while the cache relisted: no DELETED seen
        clock.saw(event(WORKLOADS, "ADDED", a_workload(f"gone-{i}", 10 + i)), leading=True)
    clock.saw(event(WORKLOADS, "ADDED", a_workload("waiting", 100)), leading=True)
    assert len(clock) == 51
    cache = listed(200, workloads=[a_workload("waiting", 100)])  # the relist: only "waiting" exists
    fleet_gauges(cache, clock)
    assert len(clock) == 1, "entries of deleted Workloads outlived them"
    # The one still waiting keeps its creation time: its placement is timed from it.
    before = _sample("fleetplane_placement_latency_seconds_count") or 0.0
    clock.placed([(cache.workload(("team-a", "waiting")), None, None)], [])
    assert len(clock) == 0
    assert _sample("fleetplane_placement_latency_seconds_count") == before + 1


def test_a_deleted_event_still_forgets_at_once() -> None:
    clock = PlacementClock()
    w = a_workload("short", 5)
    clock.saw(event(WORKLOADS, "ADDED", w), leading=True)
    clock.saw(Event(6, WORKLOADS, "team-a", "short", "DELETED", w), leading=True)
    assert len(clock) == 0


def test_watch_lag_is_never_negative_when_the_database_clock_is_ahead() -> None:
    assert metrics.lag_seconds(1000.0, 1000.25) == 0.25
    assert metrics.lag_seconds(1002.0, 1000.0) == 0.0, "a database clock 2 s ahead is not a lag of -2 s"
    hist = metrics.WATCH_LAG_SECONDS.labels("unit-skew")
    hist.observe(metrics.lag_seconds(1002.0, 1000.0))
    assert _sample("fleetplane_watch_lag_seconds_sum", resource="unit-skew") == 0.0
    assert _sample("fleetplane_watch_lag_seconds_count", resource="unit-skew") == 1.0


CHILD = """
import sys
from hub import metrics
metrics.REQUESTS.labels("get", "workloads", "200").inc(int(sys.argv[1]))
metrics.PLACEMENT_LATENCY_SECONDS.observe(0.3)
metrics.WATCHES.labels("assignments").inc()
"""


def test_dead_childrens_files_are_folded_and_their_totals_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "metrics-multiproc"
    directory.mkdir()
    env = dict(os.environ, **{metrics.MULTIPROC_ENV: str(directory)})
    for restart in range(1, 6):  # a crash-looping worker: five lives, each adding `restart` requests
        proc = subprocess.run([sys.executable, "-c", CHILD, str(restart)], env=env, check=True)
        assert proc.returncode == 0
        # The supervisor learns of the exit (subprocess.run reaped it; its pid is in the file names).
        pids = {f.split("_")[-1][: -len(".db")] for f in _files(directory)} - {metrics.ARCHIVE}
        assert len(pids) == 1, _files(directory)
        metrics.process_dead(int(pids.pop()), directory)
        assert _files(directory) == ["counter_archive.db", "histogram_archive.db"], "dead files accumulate"
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    body, _ = metrics.exposition()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }
    labels = (("code", "200"), ("resource", "workloads"), ("verb", "get"))
    assert got[("fleetplane_apiserver_requests_total", labels)] == 1 + 2 + 3 + 4 + 5
    assert got[("fleetplane_placement_latency_seconds_count", ())] == 5
    assert got[("fleetplane_placement_latency_seconds_bucket", (("le", "0.5"),))] == 5
    assert got[("fleetplane_placement_latency_seconds_bucket", (("le", "0.25"),))] == 0
    assert abs(got[("fleetplane_placement_latency_seconds_sum", ())] - 1.5) < 1e-9
    # The dead workers' open watches are gone with them (live gauge).
    assert got.get(("fleetplane_apiserver_watch_connections", (("resource", "assignments"),)), 0) == 0


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.db"))


def _sample(name: str, **labels: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels)
