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

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text

from fleetplane_types.names import CLUSTERS, READY_CONDITION
from hub import metrics
from hub.store.store import Store
from hub.store.tokens import LAST_USED_RESOLUTION


@dataclass(frozen=True)
class Lease:
    cluster: str
    holder: str
    renew_time: datetime
    duration_seconds: float
    cluster_ready: bool | None = None  # renew() only: whether the stored Cluster says Ready=True


_READY = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({conds}) = 'array' "
    "THEN {conds} ELSE '[]'::jsonb END) x WHERE x->>'type' = :ready AND x->>'status' = 'True')"
)
"""Whether the conditions `{conds}` say Ready=True (a renewal tells the agent so)."""

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
    + _READY.format(conds="c.conds")
    + " FROM up, c"
)


async def renew(store: Store, cluster: str, holder: str, duration: float) -> Lease | None:
    """Renew (or take) `cluster`'s lease now; None if no such Cluster is stored. One statement,
    in autocommit: no BEGIN/COMMIT round trips."""
    async with store.autocommit() as conn:
        row = (
            await conn.execute(
                _RENEW, {"c": cluster, "h": holder, "d": float(duration), "r": CLUSTERS, "ready": READY_CONDITION}
            )
        ).first()
    return Lease(row[0], row[1], row[2], float(row[3]), bool(row[4])) if row is not None else None


async def get(store: Store, cluster: str) -> Lease | None:
    async with store.autocommit() as conn:
        row = (
            await conn.execute(
                text("SELECT cluster, holder, renew_time, duration_seconds FROM cluster_leases WHERE cluster = :c"),
                {"c": cluster},
            )
        ).first()
    return Lease(row[0], row[1], row[2], float(row[3])) if row is not None else None


async def list_leases(store: Store) -> list[Lease]:
    async with store.autocommit() as conn:
        rows = await conn.execute(
            text("SELECT cluster, holder, renew_time, duration_seconds FROM cluster_leases ORDER BY cluster")
        )
        return [Lease(r[0], r[1], r[2], float(r[3])) for r in rows]


async def renewals(store: Store) -> dict[str, float]:
    """Cluster → last renewal, as epoch seconds on THIS process's clock (time.time()).

    The rows hold the database clock; the age of each renewal is computed by the database
    (now() − renew_time) and subtracted from the local time, so a hub host whose clock differs
    from the database's still judges expiry right. One query for the whole fleet."""
    async with store.autocommit() as conn:
        rows = (
            await conn.execute(
                text("SELECT cluster, EXTRACT(EPOCH FROM (clock_timestamp() - renew_time)) FROM cluster_leases")
            )
        ).all()
    now = time.time()
    return {str(r[0]): now - float(r[1]) for r in rows}


_RENEW_BATCH = text(
    # Many agents' renewals in ONE statement (RenewalBatcher). Each item carries the sha256 of
    # the bearer token it came with; an item counts only when that token is a live agent
    # credential OF THAT CLUSTER and the Cluster is stored — the same rule as check_lease plus
    # the authentication, checked by the database at each renewal (no cache, so a revoked agent
    # credential stops renewing at once). Items that do not qualify return no row; the caller
    # sends them down the ordinary, fully checked path, which gives the right 401/403/404.
    # A token's last use is recorded at most once per :res seconds, as lookup_token does.
    "WITH x AS (SELECT * FROM jsonb_to_recordset(CAST(:b AS jsonb)) AS x(i int, c text, h text, holder text, d float8)), "
    "ok AS (SELECT x.i, x.c, x.h, x.holder, x.d, o.data #> '{status,conditions}' AS conds FROM x "
    "JOIN tokens t ON t.token_sha256 = x.h AND t.kind = 'agent' AND t.subject = x.c AND t.revoked_at IS NULL "
    "AND (t.expires_at IS NULL OR t.expires_at > now()) "
    "JOIN objects o ON o.resource = :r AND o.namespace = '' AND o.name = x.c), "
    "used AS (UPDATE tokens SET last_used_at = now() WHERE token_sha256 IN (SELECT h FROM ok) "
    "AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => CAST(:res AS double precision))) "
    "RETURNING 1), "
    # ON CONFLICT may touch a row once per statement: the newest renewal of a cluster wins.
    "up AS (INSERT INTO cluster_leases (cluster, holder, renew_time, duration_seconds) "
    "SELECT DISTINCT ON (c) c, holder, now(), d FROM ok ORDER BY c, i DESC "
    "ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, renew_time = excluded.renew_time, "
    "duration_seconds = excluded.duration_seconds "
    "RETURNING cluster, holder, renew_time, duration_seconds) "
    "SELECT ok.i, up.cluster, up.holder, up.renew_time, up.duration_seconds, "
    + _READY.format(conds="ok.conds")
    + ", (SELECT count(*) FROM used) "
    "FROM ok JOIN up ON up.cluster = ok.c"
)


@dataclass
class _Pending:
    cluster: str
    token_sha256: str
    holder: str
    duration: float
    future: asyncio.Future[Lease | None]


class RenewalBatcher:
    """Group commit for lease renewals: the first renewal to arrive opens a batch that collects
    renewals for `linger` seconds, then sends them all in ONE statement; every renewal that arrives
    while that statement runs goes into the next one. At 1,000 clusters with 10 s heartbeats that
    is 100 renewals a second; one statement each, they cost the hub's API processes more CPU
    (psycopg's send and wake-ups, SQLAlchemy) than the database. A lease lasts tens of seconds, so
    answering a renewal `linger` (0.1 s) later changes nothing, and at 50 renewals a second per
    process it makes about five renewals share a statement (docs/scaling.md, "Idle CPU").

    `renew` resolves to the Lease, or None when the token is not that cluster's live agent
    credential or the Cluster is not stored (the caller then takes the fully checked path)."""

    def __init__(self, store: Store, *, max_batch: int = 500, linger: float = 0.1) -> None:
        self.store = store
        self.max_batch = max_batch
        self.linger = linger
        self._queue: list[_Pending] = []
        self._flushing: asyncio.Task[None] | None = None

    async def renew(self, cluster: str, token_sha256: str, holder: str, duration: float) -> Lease | None:
        fut: asyncio.Future[Lease | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(cluster, token_sha256, holder, float(duration), fut))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush_all(), name="lease-renewals")
        return await fut

    async def _flush_all(self) -> None:
        try:
            if self.linger > 0:
                try:
                    await asyncio.sleep(self.linger)
                except asyncio.CancelledError:  # shutdown while collecting: its waiters end with it
                    for p in self._queue:
                        p.future.cancel()
                    self._queue = []
                    raise
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._flush(batch)
        finally:
            self._flushing = None

    async def _flush(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # a renewal whose client went away
        if not live:
            return
        items = [
            {"i": i, "c": p.cluster, "h": p.token_sha256, "holder": p.holder, "d": p.duration}
            for i, p in enumerate(live)
        ]
        try:
            async with self.store.priority() as conn:  # never queued behind object writes
                rows = (
                    await conn.execute(
                        _RENEW_BATCH,
                        {
                            "b": orjson.dumps(items).decode(),
                            "r": CLUSTERS,
                            "ready": READY_CONDITION,
                            "res": LAST_USED_RESOLUTION.total_seconds(),
                        },
                    )
                ).all()
        except asyncio.CancelledError:  # shutdown: the waiters are cancelled with the flush
            for p in live:
                p.future.cancel()
            raise
        except Exception as exc:  # a store error: every waiter in the batch answers it
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        metrics.LEASE_BATCH_SIZE.observe(len(live))
        found = {int(r[0]): Lease(r[1], r[2], r[3], float(r[4]), bool(r[5])) for r in rows}
        for i, p in enumerate(live):
            if not p.future.done():
                p.future.set_result(found.get(i))
