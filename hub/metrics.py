"""Prometheus metrics of the hub (served at /metrics; docs/observability.md lists them all).

One process (`fleetplane up`, workers 1): the default registry. Several (`--workers N`): the
supervisor gives every child (the N API workers and the controller) one fresh
PROMETHEUS_MULTIPROC_DIR under the data dir, each process writes its samples to files there,
and /metrics — answered by whichever worker the scrape reaches — merges all of them
(`exposition`): one scrape sees the whole hub, the controller's metrics included. Every gauge
says how its per-process values merge (`multiprocess_mode`): "livesum" for what each worker
holds (open watches), "livemax" for what only the controller sets (every other process leaves
it at 0 or never creates the series).

A child that dies leaves its counter and histogram files behind (their totals must survive, or
the hub's counters would drop): the supervisor folds them into one archive file per type
(`process_dead`), so a crash-looping worker does not grow the directory, and every scrape reads
at most the live processes' files plus two."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to multiprocess mode; read when this module is first imported."""
ARCHIVED_TYPES = ("counter", "histogram")
"""The file types whose samples outlive their process (prometheus_client names them TYPE_PID.db)."""
ARCHIVE = "archive"
"""The pid part of the file the dead processes' samples are folded into (counter_archive.db)."""
MERGE_LOCK = "merge.lock"
"""Held shared while /metrics reads the directory, exclusively while a dead child's files are folded."""

REQUESTS = Counter(
    "fleetplane_apiserver_requests_total",
    "API requests by verb, resource and HTTP code.",
    ["verb", "resource", "code"],
)
REQUEST_SECONDS = Histogram(
    "fleetplane_apiserver_request_duration_seconds",
    "API request latency by verb and resource (watches excluded).",
    ["verb", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WATCHES = Gauge(
    "fleetplane_apiserver_watch_connections",
    "Open watch connections by resource.",
    ["resource"],
    multiprocess_mode="livesum",
)
STORE_COMMIT_SECONDS = Histogram(
    "fleetplane_store_commit_duration_seconds",
    "Time from transaction start to commit for store writes.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
WATCH_EVENTS_SENT = Counter("fleetplane_watch_events_sent_total", "Watch events written to clients.", ["resource"])
WATCH_LAG_SECONDS = Histogram(
    "fleetplane_watch_lag_seconds",
    "Time from an event's commit (the database clock at its write statement) to a watch stream writing "
    "it to its client: one sample per write of a live watch (the oldest event it carries), initial lists "
    "and back-fills excluded.",
    ["resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONTROLLER_LISTS = Counter(
    "fleetplane_controller_lists_total",
    "Lists the federation controller made of a resource (its cache lists once per leadership, then follows events).",
    ["resource"],
)
CONTROLLER_PASSES = Counter("fleetplane_controller_passes_total", "Federation controller passes run.")
CONTROLLER_PASS_SECONDS = Histogram(
    "fleetplane_controller_pass_duration_seconds",
    "Duration of a successful federation controller pass.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONTROLLER_LEADER = Gauge(
    "fleetplane_controller_leader",
    "1 while this hub's controller holds the federation leader lock (it places and aggregates), else 0.",
    multiprocess_mode="livemax",
)
PLACEMENT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
PLACEMENTS = Counter(
    "fleetplane_placements_total",
    "Workload placements committed (one per workload and epoch) by kind: initial (its first epoch) or "
    "replacement (failover, re-admission after an eviction).",
    ["kind"],
)
PLACEMENT_LATENCY_SECONDS = Histogram(
    "fleetplane_placement_latency_seconds",
    "Time from a Workload's creation to the commit of its first placement, waiting for capacity or quota "
    "included. Timed from when the leading controller saw it created (its creationTimestamp, whole "
    "seconds, when it was created before this leadership began).",
    buckets=PLACEMENT_LATENCY_BUCKETS,
)
PENDING_WORKLOADS = Gauge(
    "fleetplane_pending_workloads",
    "Workloads waiting for a placement, by reason: the reason of their Admitted condition if queued "
    "(Pending, Inadmissible, Preempting), else of their Placed condition (Unschedulable, Rescheduling); "
    "New before the first decision.",
    ["reason"],
    multiprocess_mode="livemax",
)
CLUSTERS = Gauge(
    "fleetplane_clusters",
    "Registered clusters by the status of their Ready condition (True, False, Unknown).",
    ["ready"],
    multiprocess_mode="livemax",
)
LEASE_RENEWALS = Counter(
    "fleetplane_lease_renewals_total",
    "Lease renewal requests by path: batched (the fast path's group commit) or routed (the ordinary, "
    "fully checked path: odd bodies, refused tokens).",
    ["path"],
)
LEASE_BATCH_SIZE = Histogram(
    "fleetplane_lease_renewal_batch_size",
    "Renewals written per statement by the fast path's group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


def lag_seconds(committed_at: float, now: float) -> float:
    """The watch lag of an event committed at `committed_at` (the database's clock) and written at
    `now` (this hub's): never negative. A database clock ahead of the hub's would make it so; the
    sample then reads 0 rather than pulling the histogram's sum below what was waited."""
    return max(0.0, now - committed_at)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric of the hub and its content type: this process's
    (one process), or every process's merged from the multiprocess directory."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, directory)
        with _merge_lock(Path(directory), fcntl.LOCK_SH):  # never half-way through a fold
            return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def fresh_multiproc_dir(data_dir: Path) -> Path:
    """The multiprocess directory of a supervising hub, emptied: the samples of a previous run's
    processes must not be merged into this one's."""
    path = data_dir / "metrics-multiproc"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def process_dead(pid: int, directory: Path) -> None:
    """Forget a dead child's live gauges and fold its counters and histograms into the archive
    files: the totals stay (they only grow), the dead process's files go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))
    with _merge_lock(directory, fcntl.LOCK_EX):
        for typ in ARCHIVED_TYPES:
            dead = directory / f"{typ}_{pid}.db"
            if dead.exists():
                _fold(dead, directory / f"{typ}_{ARCHIVE}.db")


def _fold(dead: Path, archive: Path) -> None:
    """archive := archive + dead, per sample (histograms are stored per bucket, not cumulated, so
    a sum is right for every sample), written aside and renamed over; then dead is removed. Under
    the exclusive lock: no scrape sees both, or neither."""
    from prometheus_client.mmap_dict import MmapedDict

    totals: dict[str, tuple[float, float]] = {}
    for path in (archive, dead):
        if path.exists():
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(path)):
                total, latest = totals.get(key, (0.0, 0.0))
                totals[key] = (total + value, max(latest, timestamp))
    aside = archive.with_name(archive.name + ".new")  # not *.db: no scrape reads it
    aside.unlink(missing_ok=True)
    out = MmapedDict(str(aside))
    try:
        for key, (value, timestamp) in totals.items():
            out.write_value(key, value, timestamp)
    finally:
        out.close()
    os.replace(aside, archive)
    dead.unlink()


@contextmanager
def _merge_lock(directory: Path, mode: int) -> Iterator[None]:
    fd = os.open(directory / MERGE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock
