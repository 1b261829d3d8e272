"""Cluster leases (the `cluster_leases` table): agent liveness outside the object path.

As Kubernetes moved node heartbeats from Node status to Lease objects (kube-node-lease), a
spoke agent renews its cluster's lease every heartbeat instead of rewriting the Cluster
object. A renewal is ONE statement on one narrow row: no resourceVersion is taken, no event
row is written, no watcher and no controller pass is woken. The controller reads every lease
with `renewals()` when it judges cluster health (hub.controllers.health).

Renew times are the database clock (now()), so agents' clocks do not matter; `renewals()`
hands them to the controller on the hub process's own clock (see there). Who may renew or
read a lease is decided in hub.registry.access (`lease_access`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from fleetplane_types.names import CLUSTERS, READY_CONDITION
from hub.store.store import Store


@dataclass(frozen=True)
class Lease:
    cluster: str
    holder: str
    renew_time: datetime
    duration_seconds: float
    cluster_ready: bool | None = None  # renew() only: whether the stored Cluster says Ready=True


_RENEW = text(
    # ONE statement: the lease exists only for a stored Cluster (a deleted cluster's agent leaves
    # no row behind), and the answer says whether that Cluster is Ready, so an agent the hub
    # marked NotReady (HeartbeatTimeout) knows to send a status report — without a second round
    # trip and without locking or rewriting the object.
    "WITH c AS (SELECT data #> '{status,conditions}' AS conds FROM objects "
    "WHERE resource = :r AND namespace = '' AND name = :c), "
    "up AS (INSERT INTO cluster_leases (cluster, holder, renew_time, duration_seconds) "
    "SELECT :c, :h, now(), :d FROM c "
    "ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, renew_time = excluded.renew_time, "
    "duration_seconds = excluded.duration_seconds "
    "RETURNING cluster, holder, renew_time, duration_seconds) "
    "SELECT up.cluster, up.holder, up.renew_time, up.duration_seconds, "
    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(c.conds) = 'array' "
    "THEN c.conds ELSE '[]'::jsonb END) x WHERE x->>'type' = :ready AND x->>'status' = 'True') "
    "FROM up, c"
)


async def renew(store: Store, cluster: str, holder: str, duration: float) -> Lease | None:
    """Renew (or take) `cluster`'s lease now; None if no such Cluster is stored."""
    async with store.begin() as conn:
        row = (
            await conn.execute(
                _RENEW, {"c": cluster, "h": holder, "d": float(duration), "r": CLUSTERS, "ready": READY_CONDITION}
            )
        ).first()
    return Lease(row[0], row[1], row[2], float(row[3]), bool(row[4])) if row is not None else None


async def get(store: Store, cluster: str) -> Lease | None:
    async with store.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT cluster, holder, renew_time, duration_seconds FROM cluster_leases WHERE cluster = :c"),
                {"c": cluster},
            )
        ).first()
    return Lease(row[0], row[1], row[2], float(row[3])) if row is not None else None


async def list_leases(store: Store) -> list[Lease]:
    async with store.connect() as conn:
        rows = await conn.execute(
            text("SELECT cluster, holder, renew_time, duration_seconds FROM cluster_leases ORDER BY cluster")
        )
        return [Lease(r[0], r[1], r[2], float(r[3])) for r in rows]


async def renewals(store: Store) -> dict[str, float]:
    """Cluster → last renewal, as epoch seconds on THIS process's clock (time.time()).

    The rows hold the database clock; the age of each renewal is computed by the database
    (now() − renew_time) and subtracted from the local time, so a hub host whose clock differs
    from the database's still judges expiry right. One query for the whole fleet."""
    async with store.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT cluster, EXTRACT(EPOCH FROM (clock_timestamp() - renew_time)) FROM cluster_leases")
            )
        ).all()
    now = time.time()
    return {str(r[0]): now - float(r[1]) for r in rows}
