"""Watch fan-out: ONE event-log poller per hub process feeding every watcher.

The poller reads `events WHERE rv > last ORDER BY rv`. Because resourceVersions are handed
out under the counter row lock (see schema.py), when rv N is visible every rv below N is
visible too, so the poller never skips an event. Local commits wake it at once; commits by
other hub processes on the same database wake it through Postgres LISTEN on channel
`fleetplane_events` (every write transaction NOTIFYs its top rv at commit), on one dedicated
connection per process. The timed poll every `watch_poll_seconds` stays as the fallback for
while that connection is down (it reconnects with backoff).

A watcher starting from resourceVersion X registers first, then back-fills (X, L] from the
in-memory ring (or the database when the ring no longer reaches back), where L is the last rv
the poller had dispatched at registration; everything after L arrives through its queue.
asyncio runs registration and dispatch without interleaving, so nothing is lost or repeated
at the seam.

Delivery is cheap per event: dispatch appends to each matching watcher's deque and resolves
its one waiter (no task, no timer per event); a watcher that wakes takes everything queued at
once (`Watcher.take`), so a busy process sends many events per write instead of one write per
event, and waits with one timer only when its queue is empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from hub.store.errors import ResourceVersionTooOld
from hub.store.store import Event, Obj, Store

log = logging.getLogger(__name__)

CHANNEL = "fleetplane_events"
"""The Postgres NOTIFY channel every write transaction signals with its top resourceVersion."""

LISTEN_APPLICATION = "fleetplane-watch-listen"
"""application_name of the LISTEN connection, so pg_stat_activity shows which one it is."""

LISTEN_PROBE_SECONDS = 30.0
"""How long the LISTEN connection may stay silent before it is probed with a query: a peer that
vanished without closing the socket (a cut network) is noticed within this bound, not never."""

LISTEN_BACKOFF_MAX_SECONDS = 10.0
"""Longest wait between reconnection attempts of the LISTEN connection (doubling from 0.25 s).
The timed poll delivers meanwhile, so a longer wait only costs cross-process latency."""


def as_seen_by(accept: Callable[[Event], bool], ev: Event, selective: bool = True) -> Event | None:
    """The event as a watcher with this filter must see it, or None.

    As kube-apiserver's watch cache does with prevObject: an object that starts matching the
    watcher's selector arrives as ADDED, one that stops matching as DELETED (carrying its new
    state), and changes outside the selection are not sent. Without a known previous version
    (`ev.prev` None) only the new one is matched. A watcher that is not `selective` (its filter
    reads only the namespace, which never changes) skips the second evaluation."""
    now = accept(ev)
    if not selective or ev.prev is None or ev.type == "ADDED":
        return ev if now else None
    before = accept(replace(ev, object=ev.prev))
    if ev.type == "DELETED":
        return ev if now or before else None
    if now and before:
        return ev
    if now:
        return replace(ev, type="ADDED")
    if before:
        return replace(ev, type="DELETED")
    return None


POLL_LIMIT = 2000
"""Most events one poll reads (the poller reads again at once after a full page)."""

LISTENING_POLL_SECONDS = 2.0
"""How often the watch poller looks for events without being woken while its LISTEN connection
is up (see Broadcaster._run)."""


def field_value(obj: Obj | None, path: str) -> str:
    """The value a field selector compares at `path` ("spec.clusterName"): the field as a
    string, "" when it is missing (hub.registry.selectors compares the same way)."""
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


SPAN_KEEP_SECONDS = 30.0
"""How long a shared back-fill span (`_LogSpan`) is kept after it was last used."""


@dataclass
class _LogSpan:
    """The events (lo, hi] of one resource, read from the event log ONCE and shared by every
    indexed watcher that resumes from before this process started (after a hub restart: 1,000
    agents, each watching spec.clusterName=its own cluster). `buckets` holds them by the
    index field's value in the object and in its previous version, as `_dispatch` matches live
    events, in rv order. hi is the process's start rv: later events are in the ring."""

    lo: int
    hi: int
    buckets: dict[str, list[Event]]
    used: float

    def add(self, events: list[Event], path: str, *, before: bool) -> None:
        """Bucket `events` (rv order); `before`: they are older than everything held."""
        fresh: dict[str, list[Event]] = {}
        for ev in events:
            now = field_value(ev.object, path)
            was = field_value(ev.prev, path) if ev.prev is not None else now
            fresh.setdefault(now, []).append(ev)
            if was != now:
                fresh.setdefault(was, []).append(ev)
        for value, evs in fresh.items():
            held = self.buckets.get(value)
            if held is None:
                self.buckets[value] = evs
            elif before:
                self.buckets[value] = evs + held
            else:
                held.extend(evs)


class WatchOverflow(Exception):
    """The watcher fell too far behind; the client must relist (410)."""


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclass(eq=False)
class Watcher:
    resource: str
    accept: Callable[[Event], bool]
    limit: int
    selective: bool = True  # does `accept` read the object (selectors, content scopes)?
    index: tuple[str, str] | None = None
    """(field path, value) that every object this watcher accepts has (an equality field
    selector, e.g. an agent's spec.clusterName=east): the broadcaster offers it only events
    whose object — or previous version — has that value."""
    pending: deque[Event] = field(default_factory=deque)
    overflowed: bool = False
    closed: bool = False
    _waiter: asyncio.Future[None] | None = None

    def offer(self, ev: Event) -> None:
        if self.overflowed or self.closed:
            return
        if len(self.pending) >= self.limit:
            self.overflowed = True
        else:
            self.pending.append(ev)
        if self._waiter is not None:
            _resolve(self._waiter)

    def close(self) -> None:
        """End the stream after what is already queued (the hub is shutting down)."""
        self.closed = True
        if self._waiter is not None:
            _resolve(self._waiter)

    async def take(self, timeout: float) -> list[Event] | None:
        """Everything queued, waiting up to `timeout` s only when nothing is: [] after the
        timeout, None once closed and drained. Raises WatchOverflow (after what was queued
        before the overflow) when the watcher fell `limit` events behind."""
        if not self.pending and not self.overflowed and not self.closed and timeout > 0:
            loop = asyncio.get_running_loop()
            self._waiter = fut = loop.create_future()
            timer = loop.call_later(timeout, _resolve, fut)
            try:
                await fut
            finally:
                timer.cancel()
                self._waiter = None
        if self.pending:
            batch = list(self.pending)
            self.pending.clear()
            return batch
        if self.overflowed:
            raise WatchOverflow()
        return None if self.closed else []


class Broadcaster:
    def __init__(self, store: Store, *, poll_seconds: float = 0.1, ring_size: int = 2000, queue_limit: int = 50000):
        self.store = store
        self.poll_seconds = poll_seconds
        self.ring: deque[Event] = deque(maxlen=ring_size)
        self.queue_limit = queue_limit
        self.last_rv = 0
        self.watchers: set[Watcher] = set()
        self._by_resource: dict[str, set[Watcher]] = {}
        """Watchers without an index, by resource: offered every event of it."""
        self._by_value: dict[str, dict[str, dict[str, set[Watcher]]]] = {}
        """Indexed watchers: resource → field path → value → watchers. With 1,000 agents each
        watching its own cluster's Assignments, an Assignment event is matched against the one
        agent it concerns, not all 1,000."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self.listening = False
        """The LISTEN connection is up: other processes' commits wake the poller at once."""
        self.listeners: list[Callable[[Event], None]] = []
        self.start_rv = 0
        """last_rv when the process started: the ring holds nothing at or below it."""
        self._spans: dict[tuple[str, str], _LogSpan] = {}
        self._span_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.log_reads = 0
        """Event-log reads made by back-fills (the shared spans make one per gap, not one per watcher)."""
        store.on_commit(self._committed)

    def wake(self) -> None:
        self._wake.set()

    def _committed(self, events: list[Event]) -> None:
        """A local commit (Store.on_commit). When its events are the next ones (the first rv is
        last_rv + 1: resourceVersions are dense and handed out in commit order, so nothing
        committed before them is missing) they are dispatched now, without the poller's query:
        a watcher hears of a create before its response is even sent. Otherwise (another
        process committed in between, or the poller is behind) the poller reads them in order.
        A poll that returns them again is harmless: `_dispatch` skips what it already sent."""
        if not self._ready.is_set() or not events or events[0].rv != self.last_rv + 1:
            self.wake()
            return
        try:
            self._dispatch(events)
        except Exception:  # never fail the request that committed: the poller retries
            log.exception("dispatching committed events failed; the poller takes over")
            self.wake()

    async def start(self, *, listen: bool = True) -> None:
        self.last_rv = self.start_rv = await self.store.current_rv()
        self._ready.set()
        self._tasks.append(asyncio.create_task(self._run(), name="watch-poller"))
        if listen:
            self._tasks.append(asyncio.create_task(self._listen(), name="watch-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for w in list(self.watchers):
            w.close()

    async def _run(self) -> None:
        while True:
            # While LISTEN is up every commit of every process wakes the poller, so the timed
            # poll is only a safety net: every LISTENING_POLL_SECONDS instead of every
            # poll_seconds (ten idle queries a second per hub process, for nothing).
            wait = max(self.poll_seconds, LISTENING_POLL_SECONDS) if self.listening else self.poll_seconds
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while True:
                    events = await self.store.poll_events(self.last_rv, POLL_LIMIT)
                    self._dispatch(events)
                    # Fewer than a full page: that was everything committed when the poll ran.
                    # A commit since then set `_wake` again (a local one through on_commit,
                    # another process's through LISTEN), so the next turn reads it; polling
                    # again at once found nothing, one more query per write.
                    if len(events) < POLL_LIMIT:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may blip; keep the poller alive and retry
                log.exception("watch poller failed; retrying")
                await asyncio.sleep(min(1.0, self.poll_seconds * 10))

    def _dsn(self) -> str:
        """The store's database as a libpq URL (SQLAlchemy's has the driver in its scheme)."""
        url = self.store.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def _listen(self) -> None:
        """Wake the poller on every NOTIFY from any hub process; reconnect with backoff."""
        backoff = 0.25
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn(), autocommit=True, application_name=LISTEN_APPLICATION
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    backoff = 0.25
                    self.wake()  # catch up with what was committed while not listening
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_PROBE_SECONDS):
                            self._notified(note.payload)
                        await conn.execute("SELECT 1")  # silent for a while: is the peer still there?
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted or is unreachable: poll meanwhile
                if self.listening:
                    log.warning(
                        "watch LISTEN connection lost (%s); polling every %.2fs meanwhile", exc, self.poll_seconds
                    )
                self.listening = False
                await asyncio.sleep(backoff)
                backoff = min(LISTEN_BACKOFF_MAX_SECONDS, backoff * 2)

    def _notified(self, payload: str) -> None:
        try:
            top = int(payload)
        except ValueError:  # an unknown sender: poll to be safe
            top = self.last_rv + 1
        if top > self.last_rv:  # this process's own commits were mostly dispatched already
            self.wake()

    def _dispatch(self, events: list[Event]) -> None:
        for ev in events:
            if ev.rv <= self.last_rv:  # dispatched already (a local commit's, see _committed)
                continue
            self.ring.append(ev)
            self.last_rv = ev.rv
            for w in self._by_resource.get(ev.resource, ()):
                if (seen := as_seen_by(w.accept, ev, w.selective)) is not None:
                    w.offer(seen)
            for path, buckets in self._by_value.get(ev.resource, {}).items():
                now = field_value(ev.object, path)
                before = field_value(ev.prev, path) if ev.prev is not None else now
                for value in (now,) if before == now else (now, before):
                    for w in buckets.get(value, ()):
                        if (seen := as_seen_by(w.accept, ev, w.selective)) is not None:
                            w.offer(seen)
            for listener in self.listeners:
                listener(ev)

    async def subscribe(
        self,
        resource: str,
        accept: Callable[[Event], bool],
        from_rv: int | None,
        *,
        selective: bool = True,
        index: tuple[str, str] | None = None,
    ) -> tuple[Watcher, list[Event], int]:
        """Register a watcher. Returns it, the back-fill events after from_rv, and the seam rv L.

        from_rv=None means "from now": no back-fill. `index`: see Watcher.index (the field must
        be one the event log keeps of previous versions: a selectable field).
        """
        await self._ready.wait()
        w = Watcher(resource, accept, self.queue_limit, selective, index)
        self.watchers.add(w)
        if index is None:
            self._by_resource.setdefault(resource, set()).add(w)
        else:
            path, value = index
            self._by_value.setdefault(resource, {}).setdefault(path, {}).setdefault(value, set()).add(w)
        seam = self.last_rv
        backlog: list[Event] = []
        if from_rv is not None and from_rv < seam:
            try:
                backlog = await self._backfill(resource, accept, from_rv, seam, selective, index)
            except BaseException:
                self.unsubscribe(w)
                raise
        return w, backlog, seam

    async def _backfill(
        self,
        resource: str,
        accept: Callable[[Event], bool],
        from_rv: int,
        seam: int,
        selective: bool,
        index: tuple[str, str] | None = None,
    ) -> list[Event]:
        floor = await self.store.compacted_rv()
        if from_rv < floor:
            raise ResourceVersionTooOld(from_rv, floor)
        if self.ring and self.ring[0].rv <= from_rv + 1:
            evs = [e for e in self.ring if from_rv < e.rv <= seam and e.resource == resource]
        elif index is not None and from_rv < self.start_rv:
            # From before this process started (a restart): the part up to start_rv comes from a
            # span read once for all such watchers, the rest from the ring (or the log).
            evs = await self._from_span(resource, index, from_rv)
            if seam > self.start_rv:
                if self.ring and self.ring[0].rv <= self.start_rv + 1:
                    evs += [e for e in self.ring if self.start_rv < e.rv <= seam and e.resource == resource]
                else:
                    self.log_reads += 1
                    evs += await self.store.events_after(self.start_rv, seam, resource, field_eq=index)
            if from_rv < await self.store.compacted_rv():
                raise ResourceVersionTooOld(from_rv)
        else:
            # An indexed watcher (an agent's spec.clusterName=NAME) reads only the events that can
            # concern it: after a hub restart 1,000 agents resuming from before it each read and
            # decoded every Assignment event of the fleet, which kept the restarted hub busy.
            self.log_reads += 1
            evs = await self.store.events_after(from_rv, seam, resource, field_eq=index)
            # Compaction may have raced the read: re-check the floor after it.
            if from_rv < await self.store.compacted_rv():
                raise ResourceVersionTooOld(from_rv)
        return [seen for e in evs if (seen := as_seen_by(accept, e, selective)) is not None]

    async def _from_span(self, resource: str, index: tuple[str, str], from_rv: int) -> list[Event]:
        """The events in (from_rv, start_rv] that can concern watchers indexed by `index`, from
        the shared span of (resource, path), extended downward (one read of the missing range)
        when from_rv is older than what it holds. Concurrent resumers wait on one lock, so a
        stampede of 1,000 reads the log once instead of 1,000 times. A span that lost rows to a
        compaction racing its read is still exact above the new floor, and every caller is
        checked against the floor."""
        path, value = index
        key = (resource, path)
        loop = asyncio.get_running_loop()
        async with self._span_locks.setdefault(key, asyncio.Lock()):
            span = self._spans.get(key)
            if span is None:
                self.log_reads += 1
                events = await self.store.events_after(from_rv, self.start_rv, resource)
                span = _LogSpan(from_rv, self.start_rv, {}, loop.time())
                span.add(events, path, before=False)
                self._spans[key] = span
                loop.call_later(SPAN_KEEP_SECONDS, self._expire_span, key)
            elif from_rv < span.lo:
                self.log_reads += 1
                events = await self.store.events_after(from_rv, span.lo, resource)
                span.add(events, path, before=True)
                span.lo = from_rv
            span.used = loop.time()
        return [e for e in span.buckets.get(value, ()) if e.rv > from_rv]

    def _expire_span(self, key: tuple[str, str]) -> None:
        span = self._spans.get(key)
        if span is None:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - span.used
        if idle >= SPAN_KEEP_SECONDS:
            del self._spans[key]
        else:
            loop.call_later(SPAN_KEEP_SECONDS - idle, self._expire_span, key)

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers.discard(w)
        if w.index is None:
            group = self._by_resource.get(w.resource)
            if group is not None:
                group.discard(w)
                if not group:
                    del self._by_resource[w.resource]
            return
        path, value = w.index
        paths = self._by_value.get(w.resource, {})
        buckets = paths.get(path, {})
        bucket = buckets.get(value)
        if bucket is not None:
            bucket.discard(w)
            if not bucket:
                del buckets[value]
                if not buckets:
                    del paths[path]
                    if not paths:
                        del self._by_value[w.resource]

    async def stream(
        self, w: Watcher, after_rv: int, idle: float, deadline: float | None = None
    ) -> AsyncIterator[list[Event] | None]:
        """Yield batches of queued events with rv > after_rv (everything queued when the watcher
        wakes); None after `idle` s without one; stop at `deadline` (loop time) or when the
        broadcaster stops. Raises WatchOverflow when the watcher fell too far behind."""
        loop = asyncio.get_running_loop()
        while True:
            wait = idle
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return
                wait = min(wait, left)
            batch = await w.take(wait)
            if batch is None:
                return
            if batch:
                fresh = [ev for ev in batch if ev.rv > after_rv]
                if fresh:
                    yield fresh
            elif deadline is None or loop.time() < deadline:
                yield None
