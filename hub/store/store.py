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
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import psycopg
import psycopg.errors
import psycopg.types.json
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from hub import metrics
from hub.store.errors import AlreadyExistsError, InvalidContinueToken, translated

T = TypeVar("T")
Obj = dict[str, Any]

NOTIFY_CHANNEL = "fleetplane_events"

PIPELINE_MAX_BYTES = 256 * 1024
"""Largest write statement (its JSON parameter) that a locking transaction sends pipelined with
its COMMIT (Store._apply_and_commit); larger ones go without pipeline mode, which can hang on
them."""
"""Every write statement NOTIFYs its top resourceVersion (as text) on this channel; Postgres
delivers it at commit, so hub processes LISTENing on it (hub.store.watch) wake at once."""

APPLY_SQL = text(
    # One statement writes a whole transaction. `rv` takes the resourceVersions under the
    # counter row lock; every other step reads `w`, which reads `rv`, so the lock is taken
    # before any object row is written (lock order objects -> counter: the transaction's
    # locking reads came before). Write i (1-based, in staging order) gets base + i, set in
    # its stored JSON by jsonb_set. The writes come as ONE jsonb array parameter: psycopg
    # dumps a text[]/jsonb[] parameter in text format with per-element escaping, which cost
    # ~0.3 s for 50 status updates; one string is handed over as it is. A taken name fails the INSERT (no ON CONFLICT), which
    # aborts the whole statement. The NOTIFY is queued here and delivered at commit.
    #
    # `g` checks the transaction's requirements (Tx.require: objects that must exist and not be
    # deleting, e.g. the namespace of a create) in the same statement: when one fails, `rv`
    # takes no lock and hands out nothing, so nothing is written and no row comes back.
    """
    WITH g AS (
        SELECT count(*) = jsonb_array_length(CAST(:req AS jsonb)) AS ok
        FROM objects o JOIN jsonb_to_recordset(CAST(:req AS jsonb)) AS x(r text, ns text, n text)
        ON o.resource = x.r AND o.namespace = x.ns AND o.name = x.n
        WHERE COALESCE(o.data->'metadata'->>'deletionTimestamp', '') = ''
    ),
    rv AS (
        UPDATE rv_counter SET rv = rv + :n FROM g WHERE id = 1 AND g.ok RETURNING rv - :n AS base
    ),
    w AS MATERIALIZED (
        SELECT t.w->>'op' AS op, t.w->>'resource' AS resource, t.w->>'namespace' AS namespace,
               t.w->>'name' AS name, t.w->>'uid' AS uid, t.w->>'etype' AS etype,
               NULLIF(t.w->'prev', 'null'::jsonb) AS prev, rv.base + t.ord AS rv,
               jsonb_set(t.w->'data', '{metadata,resourceVersion}', to_jsonb((rv.base + t.ord)::text)) AS data
        FROM rv, jsonb_array_elements(CAST(:writes AS jsonb)) WITH ORDINALITY AS t(w, ord)
    ),
    ins AS (
        INSERT INTO objects (resource, namespace, name, uid, rv, data)
        SELECT resource, namespace, name, uid, rv, data FROM w WHERE op = 'insert'
    ),
    upd AS (
        UPDATE objects o SET rv = w.rv, data = w.data FROM w
        WHERE w.op = 'update' AND o.resource = w.resource AND o.namespace = w.namespace AND o.name = w.name
    ),
    del AS (
        DELETE FROM objects o USING w
        WHERE w.op = 'delete' AND o.resource = w.resource AND o.namespace = w.namespace AND o.name = w.name
    ),
    ev AS (
        INSERT INTO events (rv, resource, namespace, name, type, data, prev, created_at)
        SELECT rv, resource, namespace, name, etype, data, prev, statement_timestamp() FROM w
    )
    SELECT base, pg_notify(:channel, (base + :n)::text) FROM rv
    """
)

_APPLY_RAW: str | None = None
"""APPLY_SQL compiled for psycopg (Store._apply sends it past SQLAlchemy)."""


def _apply_raw() -> str:
    global _APPLY_RAW
    if _APPLY_RAW is None:
        _APPLY_RAW = str(APPLY_SQL.compile(dialect=psycopg_dialect.dialect()))
    return _APPLY_RAW


# The hot statements, built once (text() parses its bind parameters on every call).
CURRENT_RV_SQL = text("SELECT rv FROM rv_counter WHERE id = 1")

# The statements for psycopg itself (`_run`): one-statement reads and writes on the
# request path skip SQLAlchemy's execution machinery (compiled-statement cache look-up, an
# execution context, a result proxy per call), about a tenth of a get's CPU.
_RAW_WHERE = " FROM objects WHERE resource = %(r)s AND namespace = %(ns)s AND name = %(n)s"
GET_RAW = "SELECT data" + _RAW_WHERE
GET_LOCKED_RAW = GET_RAW + " FOR UPDATE"
GET_JSON_RAW = "SELECT data::text" + _RAW_WHERE
CURRENT_RV_RAW = "SELECT rv FROM rv_counter WHERE id = 1"
POLL_RAW = (
    "SELECT rv, resource, namespace, name, type, data, prev, EXTRACT(EPOCH FROM created_at)::float8 "
    "FROM events WHERE rv > %(a)s ORDER BY rv LIMIT %(l)s"
)
PREFETCH_RAW = (
    "SELECT o.resource, o.namespace, o.name, o.data FROM objects o "
    "JOIN jsonb_to_recordset(CAST(%(k)s AS jsonb)) AS x(r text, ns text, n text) "
    "ON o.resource = x.r AND o.namespace = x.ns AND o.name = x.n "
    "ORDER BY o.resource, o.namespace, o.name FOR UPDATE OF o"
)
DEPENDENTS_RAW = (
    "SELECT resource, data FROM objects WHERE data->'metadata'->'ownerReferences' @> CAST(%(ref)s AS jsonb) FOR UPDATE"
)
NAMESPACE_CONTENTS_RAW = "SELECT resource, data FROM objects WHERE namespace = %(ns)s FOR UPDATE"
EVERY_RAW = "SELECT data FROM objects WHERE resource = %(r)s"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _run(
    raw: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any] | None = None
) -> psycopg.AsyncCursor[Any]:
    """Run one statement (psycopg placeholders) on a driver connection, past SQLAlchemy. Driver
    errors come out as SQLAlchemy raises them (an IntegrityError, an OperationalError …), so
    `translated` and the callers' handlers see what they always saw."""
    try:
        return await raw.execute(sql, params)
    except psycopg.Error as exc:
        raise sa_exc.DBAPIError.instance(sql, params, exc, psycopg.Error) from exc


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
    committed_at: float = 0.0
    """Seconds since the epoch (database clock) of the statement that wrote it, just before its
    commit: the start of fleetplane_watch_lag_seconds. 0 when not read (back-fills)."""


class RequirementFailed(Exception):
    """An object the transaction required (`Tx.require`) was missing or being deleted when it
    wrote: nothing was written. Not a StoreError: the caller that asked for the check decides
    what to answer (hub.registry.lifecycle reads the object to say which)."""


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

    raw: psycopg.AsyncConnection[Any]
    """The driver connection every statement of the transaction runs on."""
    sa: AsyncConnection | None = None
    """The SQLAlchemy connection around `raw`, for callers that run their own statements in the
    transaction (`conn`); None in a `begin_on_lock` transaction (Store.transact)."""
    writes: list[_Write] = field(default_factory=list)
    _staged: dict[tuple[str, str, str], int] = field(default_factory=dict)
    project: Callable[[str, Obj], Obj] = field(default=lambda r, o: default_prev_projection(r, o))
    read: dict[tuple[str, str, str], Obj] = field(default_factory=dict)
    """A projection (`project`) of the stored version of every object this transaction read:
    the previous version of whatever it then writes, kept with its event."""
    in_transaction: bool = True
    """False while a `begin_on_lock` transaction (Store.transact) has taken no lock yet."""
    _prefetched: dict[tuple[str, str, str], Obj | None] = field(default_factory=dict)
    """Rows `prefetch` read and locked, each handed out once by `get` (None: not stored)."""
    requires: builtins.set[tuple[str, str, str]] = field(default_factory=set)
    """Objects that must exist and not be deleting when the writes are applied (`require`)."""
    applied: builtins.list[tuple[int, _Write, Obj | None]] = field(default_factory=list)
    """What `Store._apply` wrote: (resourceVersion, write, previous-version projection)."""

    def events(self) -> builtins.list[Event]:
        """The events of the applied writes, as the event log holds them: each object a copy of
        what was stored (JSON round trip: nothing shared with the caller, who may change its
        object), committed_at this process's clock at the time of the call."""
        now = time.time()
        out = []
        for rv, w, prev in self.applied:
            meta = w.obj["metadata"]
            obj = _loads(_dumps(w.obj))
            out.append(
                Event(
                    rv,
                    w.resource,
                    meta.get("namespace") or "",
                    meta["name"],
                    w.event_type,
                    obj,
                    None if prev is None else _loads(_dumps(prev)),
                    now,
                )
            )
        return out

    def require(self, resource: str, namespace: str, name: str) -> None:
        """Check that this object exists and has no deletionTimestamp in the write statement
        itself, instead of reading it first (one round trip fewer for a create, and checked
        at the moment of the write, not before it). When it does not hold, the commit writes
        nothing and raises RequirementFailed. Only checked if the transaction writes."""
        self.requires.add((resource, namespace, name))

    @property
    def conn(self) -> AsyncConnection:
        """The transaction's SQLAlchemy connection (hub.web.join runs its token statements on it)."""
        if self.sa is None:
            raise RuntimeError("a begin_on_lock transaction has no SQLAlchemy connection: use Tx's methods")
        return self.sa

    async def _locking(self) -> None:
        """A locking read follows: its locks must last until commit, so begin now if not yet."""
        if not self.in_transaction:
            await _run(self.raw, "BEGIN")
            self.in_transaction = True

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

    async def prefetch(self, keys: builtins.list[tuple[str, str, str]]) -> None:
        """Read and lock many objects (resource, namespace, name) in ONE statement; each is then
        handed out by the next `get` of its key with no round trip. For a batch that would
        otherwise lock its rows one `get` at a time (the controller's 50 placements per
        transaction: 100 round trips → 1). Rows are locked in key order, as one-at-a-time
        `get`s in sorted order would, so two batches cannot deadlock on each other."""
        if not keys:
            return
        await self._locking()
        wanted = sorted(set(keys))
        keys_json = _dumps([{"r": r, "ns": ns, "n": n} for r, ns, n in wanted])
        rows = await (await _run(self.raw, PREFETCH_RAW, {"k": keys_json})).fetchall()
        found = {(r[0], r[1], r[2]): dict(r[3]) for r in rows}
        for key in wanted:
            self._prefetched[key] = found.get(key)

    async def get(self, resource: str, namespace: str, name: str, *, lock: bool = True) -> Obj | None:
        key = (resource, namespace, name)
        if key in self._prefetched:  # read (and locked) by prefetch
            obj = self._prefetched.pop(key)
            return self._remember(resource, obj) if obj is not None else None
        if lock:
            await self._locking()
        cur = await _run(self.raw, GET_LOCKED_RAW if lock else GET_RAW, {"r": resource, "ns": namespace, "n": name})
        row = await cur.fetchone()
        return self._remember(resource, dict(row[0])) if row else None

    async def dependents(self, owner_uid: str) -> list[tuple[str, Obj]]:
        """Objects whose ownerReferences name owner_uid (locked), for cascading deletion."""
        await self._locking()
        cur = await _run(self.raw, DEPENDENTS_RAW, {"ref": json.dumps([{"uid": owner_uid}])})
        return [(r[0], self._remember(r[0], dict(r[1]))) for r in await cur.fetchall()]

    async def namespace_contents(self, namespace: str) -> list[tuple[str, Obj]]:
        """Every object in a namespace (locked), for deleting the namespace's content."""
        await self._locking()
        cur = await _run(self.raw, NAMESPACE_CONTENTS_RAW, {"ns": namespace})
        return [(r[0], self._remember(r[0], dict(r[1]))) for r in await cur.fetchall()]

    async def every(self, resource: str) -> list[Obj]:
        """Every object of one resource, unlocked (as of this statement), for the rules that
        compare an object with the others of its kind (two Queues' spec.defaultFor, the one
        global-default PriorityClass). For small kinds: it reads them all."""
        cur = await _run(self.raw, EVERY_RAW, {"r": resource})
        return [dict(r[0]) for r in await cur.fetchall()]

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


def _dumps(obj: Any) -> str:
    """JSON text of an object to store: orjson (several times faster), json for what orjson
    refuses (an integer beyond 64 bits), so nothing that was storable before fails now."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj)


def _loads(data: bytes | bytearray | memoryview | str) -> Any:
    """psycopg's decoder of json/jsonb values: orjson, and the standard library for what orjson
    refuses (an integer beyond 64 bits: JSONB spells the float 1e24 as 1000000000000000000000000).
    Every object a locked read or a watch poll returns is decoded here; with json.loads that
    was an eighth of the controller's CPU per placement."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data) if isinstance(data, memoryview | bytearray) else data)


psycopg.types.json.set_json_loads(_loads)


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


STORE_POOL_SIZE = 25
"""Connections a hub.store.store.Store keeps open once it has used them (its pool_size)."""

STORE_MAX_OVERFLOW = 5
"""Connections a Store opens beyond its pool_size under load (its max_overflow). Few on purpose:
SQLAlchemy closes an overflow connection when it is returned, so a process that often has more
requests in flight than pool_size connects to Postgres and disconnects again per request (at 16
lease renewals in flight with pool 10 + overflow 20, connection set-up and teardown were ~5 % of
the hub's CPU)."""


class Store:
    def __init__(self, url: str, *, pool_size: int = STORE_POOL_SIZE) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=STORE_MAX_OVERFLOW, pool_recycle=3600
        )
        self._priority: AsyncEngine = create_async_engine(url, pool_size=1, max_overflow=1, pool_recycle=3600)
        """Connections outside the main pool for liveness (lease renewals): a process whose pool
        is taken by requests waiting on row locks must still renew leases, or its clusters all
        miss their heartbeats at once and fail over — the cascade a 1,000-cluster burst caused
        when renewals queued for the pool (as Kubernetes gives node leases their own priority
        level in API Priority and Fairness)."""
        self._on_commit: list[Callable[[builtins.list[Event]], None]] = []
        self.prev_projection: Callable[[str, Obj], Obj] = default_prev_projection
        """What events keep of an object's previous version: what watch selectors read. The
        registry sets one that knows each resource's selectable fields."""

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; driver errors come out as store errors (hub.store.errors)."""
        async with translated(), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection in autocommit, for one-statement reads and writes (each commits by
        itself: no BEGIN/COMMIT round trips; the pool resets it when it is returned).

        Autocommit is switched on inside `async with`, not by an engine-level isolation_level
        option: SQLAlchemy applies that one while `connect()` is still checking the connection
        out, psycopg may yield to the event loop there, and a task cancelled at that moment (the
        watch poller when the hub stops) left its connection checked out, never returned
        (SQLAlchemy's "garbage collector is trying to clean up non-checked-in connection")."""
        async with translated(), self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled driver connection in autocommit for one-statement reads, taken from the pool
        itself rather than through a SQLAlchemy Connection (`autocommit`): no Connection and
        execution-options machinery on check-out and return, half the CPU of `autocommit` per
        read (~0.1 ms, of a get's ~0.9 ms). Statements go through `_run` (driver errors as
        SQLAlchemy's, for `translated`).

        The connection goes back to the pool in the mode it came in: autocommit is switched off
        again when the read finished cleanly, and a connection that did not (cancelled mid-query,
        an error, cancelled while switching) is invalidated instead — closed, never handed to a
        later transaction in autocommit."""
        async with translated():
            try:
                fairy = await self.engine.raw_connection()
            except psycopg.Error as exc:  # the pool connects without SQLAlchemy's wrapping
                raise sa_exc.DBAPIError.instance(None, None, exc, psycopg.Error) from exc
            clean = False
            try:
                raw: psycopg.AsyncConnection[Any] = fairy.driver_connection  # type: ignore[assignment]
                try:
                    await raw.set_autocommit(True)
                except psycopg.Error as exc:
                    raise sa_exc.DBAPIError.instance(None, None, exc, psycopg.Error) from exc
                try:
                    yield raw
                finally:
                    if not raw.closed and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                        await raw.set_autocommit(False)
                        clean = True
                    elif raw.closed or raw.info.status == psycopg.pq.ConnStatus.BAD:
                        # The server went away: so did the pool's other connections to it. As
                        # SQLAlchemy does on a disconnect, every connection checked out before
                        # now is replaced when next used, rather than each failing one request.
                        self.engine.sync_engine.pool._invalidate(fairy, _checkin=False)
            finally:
                # invalidate() returns the (closed) connection record to the pool as well
                await greenlet_spawn(fairy.close if clean else fairy.invalidate)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction committed on exit; driver errors as store errors."""
        async with translated(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def priority(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection from the small liveness pool (see `_priority`)."""
        async with translated(), self._priority.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
        await self._priority.dispose()

    def on_commit(self, callback: Callable[[builtins.list[Event]], None]) -> None:
        """Called after every local commit that wrote something, with its events (rv order, the
        objects as stored, `committed_at` this process's clock): the watch broadcaster dispatches
        them at once when they are the next ones it expects, else wakes its poller."""
        self._on_commit.append(callback)

    # ------------------------------------------------------------------ writes

    async def transact(self, fn: Callable[[Tx], Awaitable[T]], *, begin_on_lock: bool = False) -> T:
        """Run `fn` in one transaction, then write what it staged in ONE statement (`_apply`).

        `begin_on_lock`: the connection runs in autocommit until the first locking read
        (`Tx.get(lock=True)`, `dependents`, `namespace_contents`), which starts the
        transaction. A transaction that never locks (a create: the namespace is read without
        a lock) is then just its reads plus the one write statement, which is atomic by
        itself, instead of BEGIN + reads + write + COMMIT: two round trips fewer. Unlocked
        reads see the same thing either way (READ COMMITTED takes a snapshot per statement).
        Only for `fn`s that go through `Tx`'s methods: one that uses `tx.conn` directly
        (hub.web.join) needs the default, a transaction from the start."""
        started = time.perf_counter()
        if begin_on_lock:
            async with self.reader() as raw:
                tx = Tx(raw, project=self.prev_projection, in_transaction=False)
                try:
                    result = await fn(tx)
                    if tx.writes:
                        await self._apply(tx)
                    if tx.in_transaction:
                        await _run(raw, "COMMIT")
                        tx.in_transaction = False
                finally:
                    if tx.in_transaction:  # fn or the write failed inside the transaction
                        with suppress(Exception):  # a lost connection: `reader` discards it
                            await _run(raw, "ROLLBACK")
        else:
            async with self.begin() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None  # a checked-out connection has its driver connection
                tx = Tx(driver, sa=conn, project=self.prev_projection)
                result = await fn(tx)
                if tx.writes:
                    await self._apply(tx)
        if tx.writes:
            metrics.STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
            if self._on_commit:
                events = tx.events()
                for cb in self._on_commit:
                    cb(events)
        return result

    async def _apply(self, tx: Tx) -> None:
        """Write every staged change in ONE statement (`APPLY_SQL`), then set the
        resourceVersions it handed out on the staged objects (what the callers return).

        One statement means the rv_counter row lock, taken by its first step, is held for one
        round trip plus the commit, not for 1 + 2n statements each waiting its turn on the
        event loop. A name that is taken makes the whole statement fail (a unique violation
        aborts it), so nothing of the transaction is stored; AlreadyExistsError names it."""
        tx.writes = [w for w in tx.writes if w.op != "noop"]
        n = len(tx.writes)
        if n == 0:
            return
        rows: builtins.list[Obj] = []
        for w in tx.writes:
            meta = w.obj["metadata"]
            ns = meta.get("namespace") or ""
            prev = None if w.op == "insert" else tx.read.get((w.resource, ns, meta["name"]))
            rows.append(
                {
                    "op": w.op,
                    "resource": w.resource,
                    "namespace": ns,
                    "name": meta["name"],
                    "uid": meta.get("uid") or "",
                    "data": w.obj,
                    "prev": prev,
                    "etype": w.event_type,
                }
            )
        req = [{"r": r, "ns": ns, "n": name} for r, ns, name in sorted(tx.requires)]
        params = {"n": n, "channel": NOTIFY_CHANNEL, "writes": _dumps(rows), "req": _dumps(req)}
        if tx.in_transaction:
            found = await self._apply_and_commit(tx, params)
        else:
            try:
                found = await (await _run(tx.raw, _apply_raw(), params)).fetchone()
            except sa_exc.IntegrityError as exc:
                raise self._already_exists(tx.writes, exc) from None
        if found is None:  # a requirement failed: nothing was written
            raise RequirementFailed(sorted(tx.requires))
        base = int(found[0])
        for i, w in enumerate(tx.writes, start=1):
            w.obj["metadata"]["resourceVersion"] = str(base + i)
        tx.applied = [
            (base + i, w, row["prev"]) for i, (w, row) in enumerate(zip(tx.writes, rows, strict=True), start=1)
        ]

    async def _apply_and_commit(self, tx: Tx, params: dict[str, Any]) -> Any:
        """APPLY_SQL and COMMIT sent together (psycopg pipeline mode) in a transaction that took
        locks: the statement takes the rv_counter row lock, which every writer of every hub
        process needs, and it is now released by a COMMIT the server already has, instead of
        one the client sends after hearing back — a round trip through this process's event
        loop, tens of milliseconds when the machine is busy, during which all writes waited.
        The transaction is committed when this returns (`tx.in_transaction` is False; the
        commit SQLAlchemy makes afterwards finds nothing to do)."""
        sql = _apply_raw()
        raw = tx.raw
        try:
            if len(params["writes"]) > PIPELINE_MAX_BYTES:
                # psycopg's pipeline mode can leave part of a large statement unsent and then
                # wait forever (the server in ClientRead, the client in epoll_wait; seen from
                # ~1.5 MB, psycopg 3.3.9): a large write sends its statement, then COMMIT.
                cur = await raw.execute(sql, params)
                row = await cur.fetchone()
                await raw.execute("COMMIT")
            else:
                async with raw.pipeline() as pipeline:
                    cur = raw.cursor()
                    await cur.execute(sql, params)
                    await raw.execute("COMMIT")
                    await pipeline.sync()
                    row = await cur.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise self._already_exists(tx.writes, exc) from None
        except psycopg.Error as exc:  # as SQLAlchemy raises driver errors, for `translated`
            raise sa_exc.DBAPIError.instance(sql, params, exc, psycopg.Error) from exc
        tx.in_transaction = False
        return row  # None: a requirement failed (the COMMIT then committed nothing of this statement)

    @staticmethod
    def _already_exists(writes: builtins.list[_Write], exc: Exception) -> Exception:
        """The AlreadyExistsError of the insert that hit a taken name (Postgres says which in
        the error's detail: "Key (resource, namespace, name)=(r, ns, n) already exists.")."""
        diag = getattr(getattr(exc, "orig", None) or exc, "diag", None)
        if getattr(diag, "table_name", None) != "objects":
            return exc  # not a taken name: a bug, let it show
        detail = getattr(diag, "message_detail", None) or ""
        inserts = [w for w in writes if w.op == "insert"]
        for w in inserts:
            meta = w.obj["metadata"]
            if f"=({w.resource}, {meta.get('namespace') or ''}, {meta['name']})" in detail:
                break
        else:
            w = inserts[0]
        meta = w.obj["metadata"]
        return AlreadyExistsError(w.resource, meta.get("namespace") or "", meta["name"])

    # ------------------------------------------------------------------ reads

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        async with self.reader() as raw:
            row = await (await _run(raw, GET_RAW, {"r": resource, "ns": namespace, "n": name})).fetchone()
        return dict(row[0]) if row else None

    async def get_json(self, resource: str, namespace: str, name: str) -> str | None:
        """`get` as the JSON text Postgres renders, for a caller that passes it on: the object
        is neither decoded into Python nor encoded again."""
        async with self.reader() as raw:
            row = await (await _run(raw, GET_JSON_RAW, {"r": resource, "ns": namespace, "n": name})).fetchone()
        return str(row[0]) if row else None

    async def current_rv(self) -> int:
        async with self.reader() as raw:
            row = await (await _run(raw, CURRENT_RV_RAW)).fetchone()
        assert row is not None  # the counter row always exists (schema.py)
        return int(row[0])

    async def list(
        self,
        resource: str,
        *,
        namespaces: list[str] | None,
        predicate: Callable[[Obj], bool] | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        field_eq: tuple[str, str] | None = None,
    ) -> tuple[list[Obj], int, str | None]:
        """Objects of one resource in (namespace, name) order, consistent as of the returned rv.

        namespaces=None means all namespaces (or a cluster-scoped resource).
        Pages after the first read the current state (Kubernetes serves them from the first
        page's snapshot; we document this difference in docs/api.md).
        `field_eq` (path, value): a requirement every match meets (an equality field selector,
        which `predicate` also checks); rows whose field is a different string are left in
        Postgres instead of being decoded and filtered here — an agent's list of its own
        cluster's Assignments decoded all 10,000 of the fleet's.
        """
        return await self._list(resource, namespaces, predicate, limit, continue_token, raw=False, field_eq=field_eq)

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
        field_eq: tuple[str, str] | None = None,
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
                rv = int((await conn.execute(CURRENT_RV_SQL)).scalar_one())
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
                    if field_eq is not None:
                        # Only rows whose field is a JSON string other than the value are left
                        # out: whatever else (missing, null, a number) the predicate decides.
                        sql += (
                            " AND (jsonb_typeof(data #> CAST(:fpath AS text[])) IS DISTINCT FROM 'string'"
                            " OR data #>> CAST(:fpath AS text[]) = :fval)"
                        )
                        params["fpath"], params["fval"] = field_eq[0].split("."), field_eq[1]
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

    async def events_after(
        self, rv: int, upto: int, resource: str | None = None, *, field_eq: tuple[str, str] | None = None
    ) -> builtins.list[Event]:
        """The events in (rv, upto], oldest first. `field_eq` (path, value): leave out, in SQL,
        the events that cannot concern a watcher whose objects all have that value there — those
        whose object AND previous version (when known) have the field as a JSON string that is a
        different value. Everything else is returned for the watcher's own predicate to decide,
        as `list(field_eq=…)` does."""
        sql = "SELECT rv, resource, namespace, name, type, data, prev FROM events WHERE rv > :a AND rv <= :b"
        params: dict[str, Any] = {"a": rv, "b": upto}
        if resource:
            sql += " AND resource = :r"
            params["r"] = resource
        if field_eq is not None:
            sql += (
                " AND ((jsonb_typeof(data #> CAST(:fpath AS text[])) IS DISTINCT FROM 'string'"
                " OR data #>> CAST(:fpath AS text[]) = :fval)"
                " OR (prev IS NOT NULL AND (jsonb_typeof(prev #> CAST(:fpath AS text[])) IS DISTINCT FROM 'string'"
                " OR prev #>> CAST(:fpath AS text[]) = :fval)))"
            )
            params["fpath"], params["fval"] = field_eq[0].split("."), field_eq[1]
        sql += " ORDER BY rv"
        async with self.autocommit() as conn:
            rows = (await conn.execute(text(sql), params)).all()
        return [Event(r[0], r[1], r[2], r[3], r[4], dict(r[5]), None if r[6] is None else dict(r[6])) for r in rows]

    async def poll_events(self, after_rv: int, limit: int = 2000) -> builtins.list[Event]:
        async with self.reader() as raw:
            rows = await (await _run(raw, POLL_RAW, {"a": after_rv, "l": limit})).fetchall()
        return [
            Event(r[0], r[1], r[2], r[3], r[4], dict(r[5]), None if r[6] is None else dict(r[6]), r[7]) for r in rows
        ]

    async def compacted_rv(self) -> int:
        async with self.autocommit() as conn:
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


__all__ = ["Event", "Obj", "RequirementFailed", "Store", "Tx", "now_rfc3339"]
