"""Postgres object store with Kubernetes semantics.

Owns: reading and writing objects, handing out resourceVersions in commit order, the event
log and its compaction floor. It knows nothing about HTTP or validation; the registry calls
`transact()` with a function that reads (locking rows) and stages writes, and the store
assigns resourceVersions and writes objects plus events in the same transaction. It raises
`hub.store.errors` only; the layers above map them to `Status`.

Why a counter row: see `hub.store.schema`. Every transaction takes its resourceVersions LAST
(after all row locks it needs), so the counter lock is held only for the few statements that
write, and lock order is always objects → counter (no deadlocks between writers).
"""

from __future__ import annotations

import base64
import builtins
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hub import metrics
from hub.store.errors import AlreadyExistsError, InvalidContinueToken, translated

T = TypeVar("T")
Obj = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    resource: str
    namespace: str
    name: str
    type: str  # ADDED | MODIFIED | DELETED
    object: Obj
    prev: Obj | None = None
    """For MODIFIED/DELETED: a projection of the previous version (Store.prev_projection), so a
    watch with a selector can tell an object that stopped matching (DELETED to that watcher)
    from one it never saw. None when unknown (then only the new version is matched)."""


@dataclass
class _Write:
    op: str  # insert | update | delete
    resource: str
    obj: Obj
    event_type: str


@dataclass
class Tx:
    """One store transaction: locked reads, then staged writes applied at commit.

    Writes to the same object within one transaction are coalesced into one (an insert then
    an update is one insert of the final object; an update then a delete is one delete), so a
    multi-step lifecycle change — add a finalizer, then write status — is one row write and
    one watch event, with the final state."""

    conn: AsyncConnection
    writes: list[_Write] = field(default_factory=list)
    _staged: dict[tuple[str, str, str], int] = field(default_factory=dict)
    project: Callable[[str, Obj], Obj] = field(default=lambda r, o: default_prev_projection(r, o))
    read: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    """A projection (`project`) of the stored version of every object this transaction read:
    the previous version of whatever it then writes, kept with its event."""

    def _remember(self, resource: str, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        key = (resource, meta.get("namespace") or "", meta.get("name") or "")
        if key not in self.read:
            self.read[key] = self.project(resource, obj)  # now: callers may change obj in place
        return obj

    def _stage(self, w: _Write) -> None:
        meta = w.obj["metadata"]
        key = (w.resource, meta.get("namespace") or "", meta["name"])
        i = self._staged.get(key)
        if i is not None and self.writes[i].op != "delete" and w.op != "insert":
            prev = self.writes[i]
            if prev.op == "insert" and w.op == "delete":
                # Created and deleted in one transaction: nothing to write.
                self.writes[i] = _Write("noop", w.resource, w.obj, "")
                del self._staged[key]
                return
            op, event = (prev.op, prev.event_type) if w.op == "update" else (w.op, w.event_type)
            self.writes[i] = _Write(op, w.resource, w.obj, event)
            return
        self._staged[key] = len(self.writes)
        self.writes.append(w)

    async def get(self, resource: str, namespace: str, name: str, *, lock: bool = True) -> Obj | None:
        sql = "SELECT data FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"
        if lock:
            sql += " FOR UPDATE"
        row = (await self.conn.execute(text(sql), {"r": resource, "ns": namespace, "n": name})).first()
        return self._remember(resource, dict(row[0])) if row else None

    async def dependents(self, owner_uid: str) -> list[tuple[str, Obj]]:
        """Objects whose ownerReferences name owner_uid (locked), for cascading deletion."""
        rows = await self.conn.execute(
            text(
                "SELECT resource, data FROM objects WHERE data->'metadata'->'ownerReferences' @> "
                "CAST(:ref AS jsonb) FOR UPDATE"
            ),
            {"ref": json.dumps([{"uid": owner_uid}])},
        )
        return [(r[0], self._remember(r[0], dict(r[1]))) for r in rows]

    async def namespace_contents(self, namespace: str) -> list[tuple[str, Obj]]:
        """Every object in a namespace (locked), for deleting the namespace's content."""
        rows = await self.conn.execute(
            text("SELECT resource, data FROM objects WHERE namespace = :ns FOR UPDATE"), {"ns": namespace}
        )
        return [(r[0], self._remember(r[0], dict(r[1]))) for r in rows.all()]

    def create(self, resource: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.setdefault("generation", 1)
        self._stage(_Write("insert", resource, obj, "ADDED"))
        return obj

    def update(self, resource: str, obj: Obj) -> Obj:
        self._stage(_Write("update", resource, obj, "MODIFIED"))
        return obj

    def delete(self, resource: str, obj: Obj) -> Obj:
        self._stage(_Write("delete", resource, obj, "DELETED"))
        return obj


def default_prev_projection(resource: str, obj: Obj) -> Obj:
    """Name, namespace and labels of a previous version (what label selectors read)."""
    m = obj.get("metadata") or {}
    out: Obj = {k: m[k] for k in ("name", "namespace") if k in m}
    if isinstance(m.get("labels"), dict):
        out["labels"] = dict(m["labels"])
    return {"metadata": out}


def encode_continue(rv: int, namespace: str, name: str) -> str:
    raw = json.dumps({"rv": rv, "ns": namespace, "n": name}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, str, str]:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(d["rv"]), str(d["ns"]), str(d["n"])
    except Exception as exc:  # any malformed token is the client's fault
        raise InvalidContinueToken(f"invalid continue token: {exc}") from exc


class Store:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_recycle=3600)
        self._on_commit: list[Callable[[], None]] = []
        self.prev_projection: Callable[[str, Obj], Obj] = default_prev_projection
        """What events keep of an object's previous version: what watch selectors read. The
        registry sets one that knows each resource's selectable fields."""

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; driver errors come out as store errors (hub.store.errors)."""
        async with translated(), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction committed on exit; driver errors as store errors."""
        async with translated(), self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Called after every local commit that wrote something (wakes the watch poller)."""
        self._on_commit.append(callback)

    # ------------------------------------------------------------------ writes

    async def transact(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        started = time.perf_counter()
        async with self.begin() as conn:
            tx = Tx(conn, project=self.prev_projection)
            result = await fn(tx)
            if tx.writes:
                await self._apply(tx)
        if tx.writes:
            metrics.STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
            for cb in self._on_commit:
                cb()
        return result

    async def _apply(self, tx: Tx) -> None:
        tx.writes = [w for w in tx.writes if w.op != "noop"]
        n = len(tx.writes)
        if n == 0:
            return
        top = (
            await tx.conn.execute(text("UPDATE rv_counter SET rv = rv + :n WHERE id = 1 RETURNING rv"), {"n": n})
        ).scalar_one()
        rv = top - n + 1
        for w in tx.writes:
            meta = w.obj["metadata"]
            meta["resourceVersion"] = str(rv)
            ns = meta.get("namespace") or ""
            params = {"r": w.resource, "ns": ns, "n": meta["name"], "rv": rv, "d": json.dumps(w.obj)}
            if w.op == "insert":
                inserted = (
                    await tx.conn.execute(
                        text(
                            "INSERT INTO objects (resource, namespace, name, uid, rv, data) "
                            "VALUES (:r, :ns, :n, :uid, :rv, CAST(:d AS jsonb)) ON CONFLICT DO NOTHING RETURNING rv"
                        ),
                        {**params, "uid": meta["uid"]},
                    )
                ).first()
                if inserted is None:
                    raise AlreadyExistsError(w.resource, ns, meta["name"])
            elif w.op == "update":
                await tx.conn.execute(
                    text(
                        "UPDATE objects SET rv = :rv, data = CAST(:d AS jsonb) "
                        "WHERE resource = :r AND namespace = :ns AND name = :n"
                    ),
                    params,
                )
            else:
                await tx.conn.execute(
                    text("DELETE FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"), params
                )
            prev = None if w.op == "insert" else tx.read.get((w.resource, ns, meta["name"]))
            await tx.conn.execute(
                text(
                    "INSERT INTO events (rv, resource, namespace, name, type, data, prev) "
                    "VALUES (:rv, :r, :ns, :n, :t, CAST(:d AS jsonb), CAST(:p AS jsonb))"
                ),
                {
                    **params,
                    "t": w.event_type,
                    "p": None if prev is None else json.dumps(prev),
                },
            )
            rv += 1

    # ------------------------------------------------------------------ reads

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        async with self.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT data FROM objects WHERE resource = :r AND namespace = :ns AND name = :n"),
                    {"r": resource, "ns": namespace, "n": name},
                )
            ).first()
        return dict(row[0]) if row else None

    async def current_rv(self) -> int:
        async with self.connect() as conn:
            return int((await conn.execute(text("SELECT rv FROM rv_counter WHERE id = 1"))).scalar_one())

    async def list(
        self,
        resource: str,
        *,
        namespaces: list[str] | None,
        predicate: Callable[[Obj], bool] | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[Obj], int, str | None]:
        """Objects of one resource in (namespace, name) order, consistent as of the returned rv.

        namespaces=None means all namespaces (or a cluster-scoped resource).
        Pages after the first read the current state (Kubernetes serves them from the first
        page's snapshot; we document this difference in docs/api.md).
        """
        return await self._list(resource, namespaces, predicate, limit, continue_token, raw=False)

    async def list_json(
        self,
        resource: str,
        *,
        namespaces: builtins.list[str] | None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[builtins.list[str], int, str | None]:
        """`list` without a predicate, each object as the JSON text Postgres renders: nothing is
        decoded into Python objects or encoded again (a list of 10,000 Workloads spent most of
        its time doing that). For lists whose items the caller only passes on."""
        return await self._list(resource, namespaces, None, limit, continue_token, raw=True)

    async def _list(
        self,
        resource: str,
        namespaces: builtins.list[str] | None,
        predicate: Callable[[Obj], bool] | None,
        limit: int | None,
        continue_token: str | None,
        *,
        raw: bool,
    ) -> tuple[builtins.list[Any], int, str | None]:
        after: tuple[str, str] | None = None
        list_rv: int | None = None
        if continue_token:
            list_rv, ns_, name_ = decode_continue(continue_token)
            after = (ns_, name_)
        batch = max(limit or 0, 500)
        out: builtins.list[Any] = []
        next_token: str | None = None
        async with self.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                rv = int((await conn.execute(text("SELECT rv FROM rv_counter WHERE id = 1"))).scalar_one())
                while True:
                    column = "data::text" if raw else "data"
                    sql = f"SELECT namespace, name, {column} FROM objects WHERE resource = :r"
                    params: dict[str, Any] = {"r": resource, "lim": batch}
                    if namespaces is not None:
                        sql += " AND namespace = ANY(:nss)"
                        params["nss"] = list(namespaces)
                    if after is not None:
                        sql += " AND (namespace, name) > (:ans, :an)"
                        params["ans"], params["an"] = after
                    sql += " ORDER BY namespace, name LIMIT :lim"
                    rows = (await conn.execute(text(sql), params)).all()
                    for ns, name, data in rows:
                        after = (ns, name)
                        obj = data if raw else dict(data)
                        if predicate is None or predicate(obj):
                            out.append(obj)
                            if limit and len(out) >= limit:
                                break
                    if limit and len(out) >= limit and after is not None:
                        # Is there anything after this item? Only then hand out a continue token.
                        more_sql = "SELECT 1 FROM objects WHERE resource = :r AND (namespace, name) > (:ans, :an)"
                        more_params: dict[str, Any] = {"r": resource, "ans": after[0], "an": after[1]}
                        if namespaces is not None:
                            more_sql += " AND namespace = ANY(:nss)"
                            more_params["nss"] = list(namespaces)
                        if (await conn.execute(text(more_sql + " LIMIT 1"), more_params)).first():
                            next_token = encode_continue(list_rv or rv, after[0], after[1])
                        break
                    if len(rows) < batch:
                        break
        return out, rv, next_token

    async def events_after(self, rv: int, upto: int, resource: str | None = None) -> builtins.list[Event]:
        sql = "SELECT rv, resource, namespace, name, type, data, prev FROM events WHERE rv > :a AND rv <= :b"
        params: dict[str, Any] = {"a": rv, "b": upto}
        if resource:
            sql += " AND resource = :r"
            params["r"] = resource
        sql += " ORDER BY rv"
        async with self.connect() as conn:
            rows = (await conn.execute(text(sql), params)).all()
        return [Event(r[0], r[1], r[2], r[3], r[4], dict(r[5]), None if r[6] is None else dict(r[6])) for r in rows]

    async def poll_events(self, after_rv: int, limit: int = 2000) -> builtins.list[Event]:
        async with self.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT rv, resource, namespace, name, type, data, prev FROM events "
                        "WHERE rv > :a ORDER BY rv LIMIT :l"
                    ),
                    {"a": after_rv, "l": limit},
                )
            ).all()
        return [Event(r[0], r[1], r[2], r[3], r[4], dict(r[5]), None if r[6] is None else dict(r[6])) for r in rows]

    async def compacted_rv(self) -> int:
        async with self.connect() as conn:
            v = (await conn.execute(text("SELECT value FROM store_meta WHERE key = 'compacted_rv'"))).scalar_one()
        return int(v)

    async def compact(self, *, older_than_seconds: float | None = None, upto_rv: int | None = None) -> int:
        """Drop events at or below a floor; watches from below it get 410 Expired. Returns the floor."""
        async with self.begin() as conn:
            if upto_rv is None:
                found = (
                    await conn.execute(
                        text("SELECT max(rv) FROM events WHERE created_at < now() - make_interval(secs => :s)"),
                        {"s": older_than_seconds or 0},
                    )
                ).scalar_one()
                if found is None:
                    return int(
                        (await conn.execute(text("SELECT value FROM store_meta WHERE key='compacted_rv'"))).scalar_one()
                    )
                upto_rv = int(found)
            await conn.execute(text("DELETE FROM events WHERE rv <= :u"), {"u": upto_rv})
            await conn.execute(
                text(
                    "UPDATE store_meta SET value = GREATEST(CAST(value AS bigint), :u)::text WHERE key = 'compacted_rv'"
                ),
                {"u": upto_rv},
            )
            floor = (await conn.execute(text("SELECT value FROM store_meta WHERE key='compacted_rv'"))).scalar_one()
        return int(floor)


__all__ = ["Event", "Obj", "Store", "Tx", "now_rfc3339"]
