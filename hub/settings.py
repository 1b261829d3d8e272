"""Hub settings: ONE typed object per process, read from FLEETPLANE_* environment variables,
then overridden by command-line flags (a flag that is not given leaves the environment's value).

Each knob says its unit and why its default is what it is; the defaults agree with each other
and with the agent's (spoke_agent.settings) and the CLI's (hub.cli), which take theirs from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8443
"""HTTPS port of the hub (kubectl sends bearer tokens only over TLS)."""

AGENT_HEARTBEAT_SECONDS = 15.0
"""The spoke agent's default heartbeat period (spoke_agent.settings: heartbeatSeconds)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETPLANE_", extra="ignore", validate_default=True)

    database_url: str | None = Field(
        default=None, description="SQLAlchemy/Postgres URL of the database. Empty: start embedded Postgres in data_dir."
    )

    data_dir: Path = Field(
        default=Path(".fleetplane"), description="Where embedded Postgres keeps its files and kubeconfigs are written."
    )

    host: str = Field(default="127.0.0.1", description="Address the hub listens on (HTTPS and plain HTTP).")

    port: int = Field(
        default=DEFAULT_PORT, ge=1, le=65535, description="HTTPS port (kubectl sends tokens only over TLS)."
    )

    http_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve plain HTTP here: loopback tools and tests only (tokens travel in clear).",
    )

    watch_poll_seconds: float = Field(
        default=0.1,
        gt=0,
        description=(
            "Seconds between looks at the event log for commits made by OTHER hub processes. Local commits wake "
            "the poller at once; 100 ms keeps cross-replica watch latency low at about ten cheap indexed "
            "queries a second."
        ),
    )

    bookmark_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds between BOOKMARK events on watches that asked for them. Kubernetes sends one about every "
            "minute; 10 s lets resuming clients skip more of the log at trivial cost."
        ),
    )

    event_retention_seconds: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "Events older than this many seconds are compacted; a watch from an older resourceVersion gets "
            "410 Expired and relists. One hour covers any agent reconnect backoff by a wide margin."
        ),
    )

    watch_cache_events: int = Field(
        default=20000,
        ge=0,
        description=("Recent events kept in memory per process so resuming watches rarely hit the database."),
    )

    max_body_bytes: int = Field(
        default=3 * 1024 * 1024,
        gt=0,
        description=("Largest accepted request body, in bytes. 3 MiB mirrors the Kubernetes apiserver's limit."),
    )

    watch_queue_limit: int = Field(
        default=50000,
        gt=0,
        description=("Events buffered for one slow watcher before it is closed with 410 and must relist."),
    )

    cluster_timeout_seconds: float = Field(
        default=3 * AGENT_HEARTBEAT_SECONDS,
        gt=0,
        description=(
            "Seconds without a heartbeat after which a cluster becomes NotReady and its workloads are re-placed "
            "per their failover policy. 45 s is three missed heartbeats at the agent's default 15 s period: "
            "long enough to ride out a hub restart or a short network blip, short enough to move work within "
            "a minute."
        ),
    )

    placement_debounce_seconds: float = Field(
        default=0.05,
        ge=0,
        description=(
            "Seconds the placement loop waits after a relevant change, to batch a burst of submissions into "
            "one engine pass (placing in priority order against one snapshot)."
        ),
    )

    placement_profile: str = Field(
        default="default", description="Scoring profile of the placement engine (docs/placement.md)."
    )

    controllers: bool = Field(
        default=True,
        description=(
            "Run the placement/health/status controllers in this process (one active per database, by a "
            "Postgres advisory lock)."
        ),
    )

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """Environment first, then the flags that were given (None means "not given")."""
        return cls(**{k: v for k, v in flags.items() if v is not None})
