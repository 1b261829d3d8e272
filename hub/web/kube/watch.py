"""WATCH: a chunked stream of {"type", "object"} lines, from "now" (list + changes) or from a
resourceVersion (changes after it; 410 Expired when compacted), with optional BOOKMARKs and
Table rows. The registry registers the watcher; this module only encodes and paces.

Limits: at most `max_watches_per_subject` open watches per subject in a process (429 beyond),
and `timeoutSeconds` ends the stream on time whatever arrives meanwhile — also for a watch from
a resourceVersion in the future, whose skipped events used to keep it open past its timeout.

Cost per event: an event's JSON line is encoded once per process (`EventLines`) and the same
bytes go to every watcher that sends it unchanged; only Table watchers encode their own. A
watcher that wakes sends everything queued for it as one chunk (one body write)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from hub import metrics
from hub.errors import ApiError, gone, too_many_requests, unavailable
from hub.registry.access import Subject
from hub.registry.lifecycle import list_query
from hub.registry.objects import Obj
from hub.store.store import Event
from hub.store.watch import WatchOverflow
from hub.web.context import hub_of, subject_of
from hub.web.inputs import query_int
from hub.web.kube.routing import Target, wants_table
from hub.web.kube.tables import table

CHUNK_EVENTS = 500
"""Most events in one body write when sending a watch's initial list or back-fill, so a watch
of 100,000 objects does not first build one huge buffer."""


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes; orjson, or the standard library for what orjson refuses (integers
    beyond 64 bits, which stored JSON may hold)."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return json.dumps(doc, separators=(",", ":")).encode()


def line(ev_type: str, obj: Obj) -> bytes:
    return dumps({"type": ev_type, "object": obj}) + b"\n"


class EventLines:
    """The watch line of each recent event, encoded once per process and shared by every watcher
    that sends it as is. Keyed by (resourceVersion, type): one rv is one object version, and a
    selector transition rewrites only the type. Oldest entries go first past `size`; all
    watchers of an event ask for it within moments, so a small cache serves them."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lines: dict[tuple[int, str], bytes] = {}

    def __call__(self, ev: Event) -> bytes:
        key = (ev.rv, ev.type)
        found = self._lines.get(key)
        if found is None:
            found = self._lines[key] = line(ev.type, ev.object)
            if len(self._lines) > self.size:
                del self._lines[next(iter(self._lines))]
        return found


def event_lines(request: Request) -> EventLines:
    state = request.app.state
    lines: EventLines | None = getattr(state, "watch_lines", None)
    if lines is None:
        lines = state.watch_lines = EventLines()
    return lines


class WatchSlots:
    """Open watches per subject in this process, capped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[tuple[str, str]] = Counter()

    def take(self, subject: Subject) -> Callable[[], None]:
        """Take a slot (429 when the subject has none left); returns its idempotent release."""
        key = (subject.kind, subject.name)
        if self.open[key] >= self.limit:
            raise too_many_requests(
                f'{subject.kind} "{subject.name}" already has {self.open[key]} open watches '
                f"(the limit is {self.limit}); close some, or retry later",
                5,
            )
        self.open[key] += 1
        released = [False]

        def release() -> None:
            if not released[0]:
                released[0] = True
                self.open[key] -= 1
                if self.open[key] <= 0:
                    del self.open[key]

        return release


def watch_slots(request: Request) -> WatchSlots:
    state = request.app.state
    slots: WatchSlots | None = getattr(state, "watch_slots", None)
    if slots is None:
        slots = state.watch_slots = WatchSlots(hub_of(request).settings.max_watches_per_subject)
    return slots


class WatchResponse(StreamingResponse):
    """A streaming response that runs `on_close` however it ends — also when the client left
    before the stream started, when the generator's own `finally` never runs."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def do_watch(request: Request, t: Target) -> Response:
    res, hub = t.res, hub_of(request)
    if not hub.ready:
        raise unavailable("the hub is starting or shutting down; retry the watch")
    q = request.query_params
    if q.get("sendInitialEvents") is not None:
        # Rejecting (not ignoring) makes client-go reflectors fall back to LIST + WATCH.
        raise ApiError(422, "Invalid", "sendInitialEvents is not supported by this server; list, then watch")
    query = list_query(res, subject_of(request), t.namespace, q.get("labelSelector"), q.get("fieldSelector"))
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    timeout_param = query_int(request, "timeoutSeconds")
    timeout = float(timeout_param) if timeout_param else None
    as_table = wants_table(request)
    include = q.get("includeObject", "Metadata")

    from_rv = query_int(request, "resourceVersion") or None  # "0" and absent: from now

    release_slot = watch_slots(request).take(subject_of(request))
    try:
        start = await hub.registry.watch(res, query, from_rv)
    except BaseException:
        release_slot()
        raise
    broadcaster = hub.registry.broadcaster

    def close() -> None:
        broadcaster.unsubscribe(start.watcher)
        release_slot()

    headers_sent = [False]
    shared = event_lines(request)
    sent_counter = metrics.WATCH_EVENTS_SENT.labels(res.plural)
    lag = metrics.WATCH_LAG_SECONDS.labels(res.plural)

    def encode(ev_type: str, obj: Obj) -> bytes:
        if as_table and ev_type != "BOOKMARK" and ev_type != "ERROR":
            payload = table(
                res,
                [obj],
                (obj.get("metadata") or {}).get("resourceVersion"),
                include=include,
                headers=not headers_sent[0],
            )
            headers_sent[0] = True
            return line(ev_type, payload)
        return line(ev_type, obj)

    def encode_events(events: Iterable[Event]) -> bytes:
        if as_table:
            out = b"".join(encode(ev.type, ev.object) for ev in events)
        else:
            out = b"".join(shared(ev) for ev in events)
        return out

    async def gen() -> AsyncIterator[bytes]:
        metrics.WATCHES.labels(res.plural).inc()
        loop = asyncio.get_running_loop()
        # The deadline bounds every wait, so events the stream skips (at or below a future
        # resourceVersion) or a bookmark interval longer than the timeout cannot hold the
        # watch open past timeoutSeconds.
        deadline = loop.time() + timeout if timeout else None
        sent_rv = start.after
        events = broadcaster.stream(start.watcher, start.after, hub.settings.bookmark_seconds, deadline)
        try:
            for i in range(0, len(start.initial), CHUNK_EVENTS):
                part = start.initial[i : i + CHUNK_EVENTS]
                sent_counter.inc(len(part))
                yield b"".join(encode("ADDED", obj) for obj in part)
            for i in range(0, len(start.backlog), CHUNK_EVENTS):
                past = start.backlog[i : i + CHUNK_EVENTS]
                sent_counter.inc(len(past))
                yield encode_events(past)
                sent_rv = max(sent_rv, past[-1].rv)
            async for batch in events:
                if batch is None:
                    if bookmarks:
                        brv = max(sent_rv, broadcaster.last_rv)
                        sent_counter.inc()
                        yield encode(
                            "BOOKMARK",
                            {
                                "kind": res.kind,
                                "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(brv)},
                            },
                        )
                    continue
                sent_counter.inc(len(batch))
                yield encode_events(batch)
                sent_rv = batch[-1].rv
                if batch[0].committed_at:  # commit → written, for the oldest event of the write
                    lag.observe(metrics.lag_seconds(batch[0].committed_at, time.time()))
        except WatchOverflow:
            sent_counter.inc()
            yield encode("ERROR", gone("watch fell too far behind; relist").status())
        finally:
            if isinstance(events, AsyncGenerator):
                await events.aclose()
            close()
            metrics.WATCHES.labels(res.plural).dec()

    return WatchResponse(gen(), close, media_type="application/json", headers={"Cache-Control": "no-cache"})
