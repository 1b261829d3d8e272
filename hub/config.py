"""Hub settings: one typed group, read from FLEETPLANE_* environment variables.

Each knob says its unit and why its default is what it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FLEETPLANE_{name}", default)


@dataclass
class Settings:
    database_url: str | None = field(default_factory=lambda: os.environ.get("FLEETPLANE_DATABASE_URL") or None)
    """SQLAlchemy URL of the Postgres server. Empty: start embedded Postgres in data_dir."""

    data_dir: Path = field(default_factory=lambda: Path(_env("DATA_DIR", ".fleetplane")))
    """Where embedded Postgres keeps its files and where kubeconfigs are written."""

    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "8080")))

    watch_poll_seconds: float = field(default_factory=lambda: float(_env("WATCH_POLL_SECONDS", "0.1")))
    """How often (s) the one event-log poller per process looks for commits made by OTHER hub
    processes. Local commits wake it at once; 100 ms keeps cross-replica watch latency low at
    about ten cheap indexed queries a second."""

    bookmark_seconds: float = field(default_factory=lambda: float(_env("BOOKMARK_SECONDS", "10")))
    """Interval (s) between BOOKMARK events on watches that asked for them. Kubernetes sends
    one about every minute; 10 s lets resuming clients skip more of the log at trivial cost."""

    event_retention_seconds: float = field(default_factory=lambda: float(_env("EVENT_RETENTION_SECONDS", "3600")))
    """Events older than this (s) are compacted; a watch from an older resourceVersion gets
    410 Expired and relists. One hour covers any agent reconnect backoff by a wide margin."""

    watch_cache_events: int = field(default_factory=lambda: int(_env("WATCH_CACHE_EVENTS", "20000")))
    """Recent events kept in memory per process so resuming watches rarely hit the database."""

    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(3 * 1024 * 1024))))
    """Largest accepted request body (bytes). 3 MiB mirrors the Kubernetes apiserver's limit."""

    watch_queue_limit: int = field(default_factory=lambda: int(_env("WATCH_QUEUE_LIMIT", "50000")))
    """Events buffered for one slow watcher before it is closed with 410 and must relist."""

    cluster_timeout_seconds: float = field(default_factory=lambda: float(_env("CLUSTER_TIMEOUT_SECONDS", "40")))
    """A cluster whose heartbeat is older than this (s) becomes NotReady and its workloads are
    re-placed per their failover policy. Four missed 10 s agent heartbeats: long enough to ride
    out a hub restart or a short network blip, short enough to move work within a minute."""

    placement_debounce_seconds: float = field(default_factory=lambda: float(_env("PLACEMENT_DEBOUNCE_SECONDS", "0.05")))
    """After a relevant change the placement loop waits this long (s) to batch a burst of
    submissions into one engine pass (placing in priority order against one snapshot)."""

    placement_profile: str = field(default_factory=lambda: _env("PLACEMENT_PROFILE", "default"))
    """Scoring profile of the placement engine (docs/placement.md)."""

    controllers: bool = field(default_factory=lambda: _env("CONTROLLERS", "true").lower() in ("1", "true", "yes"))
    """Run the placement/health/status controllers in this process (one active per database)."""
