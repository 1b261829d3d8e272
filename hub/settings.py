"""Hub settings: ONE typed object per process, read from FLEETPLANE_* environment variables,
then overridden by command-line flags (a flag that is not given leaves the environment's value).

Each knob says its unit and why its default is what it is; the defaults agree with each other
and with the agent's (spoke_agent.settings) and the CLI's (hub.cli), which take theirs from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8443
"""HTTPS port of the hub (kubectl sends bearer tokens only over TLS)."""

AGENT_HEARTBEAT_SECONDS = 15.0
"""The spoke agent's default heartbeat period (spoke_agent.settings: heartbeatSeconds)."""

JOIN_TOKEN_TTL_SECONDS = 24 * 3600.0
"""Default lifetime of a join token: a day is enough to hand it to whoever installs the agent,
short enough that a token pasted into a ticket or a chat stops working on its own."""


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

    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description=(
            "The event loop the hub's processes serve on: uvloop (libuv; what uvicorn[standard] uses) or "
            "Python's own asyncio loop. auto: uvloop when it is installed (the hub extra installs it). The loop's "
            "own dispatch is a large share of an idle 1,000-cluster hub's CPU (docs/scaling.md)."
        ),
    )

    admin_kubeconfig: bool = Field(
        default=True,
        description=(
            "Mint an admin token into DATA_DIR/admin.token (reused while the database accepts it) and write "
            "DATA_DIR/admin.kubeconfig at start. Off for replicas whose data directory does not outlive them "
            "(the Helm chart's emptyDir): each start would leave one more valid, never used admin token."
        ),
    )

    bookmark_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds between BOOKMARK events on watches that asked for them. Kubernetes sends one about every "
            "minute, and so does the hub: a resuming client skips at most a minute of the event log (kept for "
            "FLEETPLANE_EVENT_RETENTION_SECONDS), while 1,000 agents' watches at 10 s cost 100 writes a second, "
            "about a quarter of the idle hub's CPU at 1,000 clusters (docs/scaling.md)."
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
        default=2000,
        ge=0,
        description=(
            "Recent events kept in memory per process, so a watch that resumes from a recent resourceVersion "
            "needs no database read; older ones are read from the event log. Each event holds its object "
            "decoded (a placed Workload is ~60 KB in Python): 20,000 was over 1 GiB of the hub's RSS across "
            "its processes in a 2,000-workload burst (docs/scaling.md). kube-apiserver's default per resource "
            "was 100."
        ),
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

    controller_stuck_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds after which a controller whose passes keep failing, or whose current pass has not finished "
            "(wedged on a lock or a hung connection), makes /readyz answer 503, so an orchestrator restarts the "
            "process and another replica takes over. A pass at 1,000 clusters takes well under a second; a "
            "minute leaves room for a long database failover before giving up on the process."
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

    # ---------------------------------------------------------------- processes (docs/scaling.md)

    workers: int | Literal["auto"] = Field(
        default="auto",
        description=(
            "API worker processes `fleetplane up` runs, all serving the same port(s), plus one controller "
            "process. `auto`: the number of cores, at most 4 (past that the single resourceVersion counter "
            "and the one controller leader, not the API's CPU, bound throughput); 1: today's single process "
            "running the API and the controllers together."
        ),
    )

    db_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "Database connections each hub process keeps pooled (the store allows 20 more on demand). Empty: 10 "
            "in a single-process hub; with several workers, `fleetplane up` sizes it so every worker and the "
            "controller together stay within the server's max_connections."
        ),
    )

    # ---------------------------------------------------------------- tokens and limits
    # docs/security.md lists these with the threat each one answers.

    join_token_ttl_seconds: float = Field(
        default=JOIN_TOKEN_TTL_SECONDS,
        gt=0,
        le=365 * 24 * 3600,
        description=(
            "Seconds a new join token stays valid (`fleetplane cluster join-token create --ttl` overrides it). "
            "24 h: long enough to hand the token to whoever installs the agent, short enough that a leaked one "
            "expires on its own."
        ),
    )

    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "Seconds a bearer token's lookup is cached per hub process. It is also the bound on how long a token "
            "revoked from another process (`fleetplane token revoke`, another replica) keeps working here; 5 s "
            "keeps the database out of the hot path (one lookup per token per 5 s) with a short revocation delay."
        ),
    )

    auth_failure_burst: int = Field(
        default=50,
        ge=1,
        description=(
            "Failed authentications (a bearer token or join token that is not valid) one client address may make "
            "before it is answered 429 with Retry-After. 50 lets a misconfigured client see its 401s; tokens are "
            "192-bit random, so the limit is about making failing clients back off (and log noise), not "
            "guessing. A limited address is still served with any valid token (users behind one NAT with a "
            "failing client keep working); unknown tokens seen recently are refused without a database look-up."
        ),
    )

    auth_failure_per_second: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Rate, per second, at which a client address regains failed-authentication budget: after the burst, "
            "one more failed attempt a second. A valid token cached by the hub is served even while its address "
            "is limited, so one client's mistakes do not lock out others behind the same NAT."
        ),
    )

    join_burst: int = Field(
        default=100,
        ge=1,
        description=(
            "Requests to the unauthenticated join endpoint one client address may make in a burst before 429. "
            "100 lets a whole rack of clusters join at once from one NAT address."
        ),
    )

    join_per_second: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Sustained join requests per second per client address. The 1,000-cluster benchmark joins at 20/s "
            "from one address; 50/s leaves headroom while bounding what one address can make the database do."
        ),
    )

    join_max_body_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        description=(
            "Largest join request body, in bytes (streamed: refused as soon as more arrives). A join body is two "
            "short strings; 16 KiB is generous and keeps an anonymous caller from making the hub buffer megabytes."
        ),
    )

    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a client has to send a request's headers, from its first byte (or from connecting). uvicorn "
            "has no such timeout: a client sending one header byte a second held its connection forever "
            "(slowloris). 10 s is far more than any real client over a slow link needs for a few hundred bytes."
        ),
    )

    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds a client has to send a request body once its headers arrived. 60 s moves the 3 MiB body "
            "limit at 50 KiB/s, slower than any real link; kube-apiserver bounds a request to 60 s as well."
        ),
    )

    keep_alive_seconds: int = Field(
        default=90,
        ge=1,
        description=(
            "Seconds an idle keep-alive connection stays open between requests (uvicorn timeout_keep_alive). 90 s "
            "is kube-apiserver's idle timeout: longer than an agent's heartbeat, so each lease renewal reuses its "
            "TLS connection (a new handshake per renewal was about a fifth of the idle hub's CPU at 1,000 "
            "clusters). Idle sockets count against FLEETPLANE_MAX_CONNECTIONS, which bounds a connection flood."
        ),
    )

    max_connections: int = Field(
        default=4096,
        ge=1,
        description=(
            "Open client connections (HTTPS and plain HTTP together) per hub process; beyond it a new connection "
            "gets 503 with Retry-After and is closed. A joined cluster holds about two (its watch and its "
            "requests), so 4096 serves the 1,000-cluster benchmark twice over within the usual open-file limit."
        ),
    )

    max_watches_per_subject: int = Field(
        default=100,
        ge=1,
        description=(
            "Open watches one subject (a team, an agent, an admin token) may hold per hub process; the next one "
            "is answered 429 with Retry-After. An agent holds one or two, kubectl one per `-w`, an informer-based "
            "tool one per resource: 100 is ample, and each watch costs a queue of up to watch_queue_limit events."
        ),
    )

    @field_validator("workers")
    @classmethod
    def _workers_positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 64:
            raise ValueError("workers must be auto or a number from 1 to 64")
        return v

    def worker_count(self) -> int:
        """`workers` as a number: `auto` is the number of cores, at most 4."""
        if self.workers == "auto":
            return max(1, min(4, os.cpu_count() or 1))
        return self.workers

    @classmethod
    def load(cls, **flags: Any) -> Settings:
        """Environment first, then the flags that were given (None means "not given")."""
        return cls(**{k: v for k, v in flags.items() if v is not None})
