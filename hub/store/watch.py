"""Watch fan-out: ONE event-log poller per hub process feeding every watcher.

The poller reads `events WHERE rv > last ORDER BY rv`. Because resourceVersions are handed
out under the counter row lock (see schema.py), when rv N is visible every rv below N is
visible too, so the poller never skips an event. Local commits wake it at once; commits by
other hub replicas are picked up within `watch_poll_seconds`.

A watcher starting from resourceVersion X registers its queue first, then back-fills
(X, L] from the in-memory ring (or the database when the ring no longer reaches back), where
L is the last rv the poller had dispatched at registration; everything after L arrives through
the queue. asyncio runs registration and dispatch without interleaving, so nothing is lost or
repeated at the seam.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from hub.store.errors import ResourceVersionTooOld
from hub.store.store import Event, Store

log = logging.getLogger(__name__)


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


class WatchOverflow(Exception):
    """The watcher fell too far behind; the client must relist (410)."""


@dataclass(eq=False)
class Watcher:
    resource: str
    accept: Callable[[Event], bool]
    limit: int
    selective: bool = True  # does `accept` read the object (selectors, content scopes)?
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, ev: Event) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(ev)


class Broadcaster:
    def __init__(self, store: Store, *, poll_seconds: float = 0.1, ring_size: int = 20000, queue_limit: int = 50000):
        self.store = store
        self.poll_seconds = poll_seconds
        self.ring: deque[Event] = deque(maxlen=ring_size)
        self.queue_limit = queue_limit
        self.last_rv = 0
        self.watchers: set[Watcher] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.listeners: list[Callable[[Event], None]] = []
        store.on_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self.last_rv = await self.store.current_rv()
        self._ready.set()
        self._task = asyncio.create_task(self._run(), name="watch-poller")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for w in list(self.watchers):
            w.queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while True:
                    events = await self.store.poll_events(self.last_rv)
                    if not events:
                        break
                    self._dispatch(events)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may blip; keep the poller alive and retry
                log.exception("watch poller failed; retrying")
                await asyncio.sleep(min(1.0, self.poll_seconds * 10))

    def _dispatch(self, events: list[Event]) -> None:
        for ev in events:
            self.ring.append(ev)
            self.last_rv = ev.rv
            for w in self.watchers:
                if w.resource == ev.resource and (seen := as_seen_by(w.accept, ev, w.selective)) is not None:
                    w.offer(seen)
            for listener in self.listeners:
                listener(ev)

    async def subscribe(
        self, resource: str, accept: Callable[[Event], bool], from_rv: int | None, *, selective: bool = True
    ) -> tuple[Watcher, list[Event], int]:
        """Register a watcher. Returns it, the back-fill events after from_rv, and the seam rv L.

        from_rv=None means "from now": no back-fill.
        """
        await self._ready.wait()
        w = Watcher(resource, accept, self.queue_limit, selective)
        self.watchers.add(w)
        seam = self.last_rv
        backlog: list[Event] = []
        if from_rv is not None and from_rv < seam:
            try:
                backlog = await self._backfill(resource, accept, from_rv, seam, selective)
            except BaseException:
                self.watchers.discard(w)
                raise
        return w, backlog, seam

    async def _backfill(
        self, resource: str, accept: Callable[[Event], bool], from_rv: int, seam: int, selective: bool
    ) -> list[Event]:
        floor = await self.store.compacted_rv()
        if from_rv < floor:
            raise ResourceVersionTooOld(from_rv, floor)
        if self.ring and self.ring[0].rv <= from_rv + 1:
            evs = [e for e in self.ring if from_rv < e.rv <= seam and e.resource == resource]
        else:
            evs = await self.store.events_after(from_rv, seam, resource)
            # Compaction may have raced the read: re-check the floor after it.
            if from_rv < await self.store.compacted_rv():
                raise ResourceVersionTooOld(from_rv)
        return [seen for e in evs if (seen := as_seen_by(accept, e, selective)) is not None]

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers.discard(w)

    async def stream(self, w: Watcher, after_rv: int, idle: float) -> AsyncIterator[Event | None]:
        """Yield queued events with rv > after_rv; yields None after `idle` s without one."""
        while True:
            try:
                ev = await asyncio.wait_for(w.queue.get(), timeout=idle)
            except TimeoutError:
                yield None
                continue
            if ev is None:
                if w.overflowed:
                    raise WatchOverflow()
                return
            if ev.rv > after_rv:
                yield ev
