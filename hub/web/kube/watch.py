"""WATCH: a chunked stream of {"type", "object"} lines, from "now" (list + changes) or from a
resourceVersion (changes after it; 410 Expired when compacted), with optional BOOKMARKs and
Table rows. The registry registers the watcher; this module only encodes and paces."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from hub import metrics
from hub.errors import ApiError, gone
from hub.registry.lifecycle import list_query
from hub.registry.objects import Obj
from hub.store.watch import WatchOverflow
from hub.web.context import hub_of, subject_of
from hub.web.inputs import query_int
from hub.web.kube.routing import Target, wants_table
from hub.web.kube.tables import table


async def do_watch(request: Request, t: Target) -> Response:
    res, hub = t.res, hub_of(request)
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

    start = await hub.registry.watch(res, query, from_rv)
    broadcaster = hub.registry.broadcaster
    headers_sent = [False]

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
        else:
            payload = obj
        metrics.WATCH_EVENTS_SENT.labels(res.plural).inc()
        return (json.dumps({"type": ev_type, "object": payload}) + "\n").encode()

    async def gen() -> AsyncIterator[bytes]:
        metrics.WATCHES.labels(res.plural).inc()
        deadline = time.monotonic() + timeout if timeout else None
        sent_rv = start.after
        try:
            for obj in start.initial:
                yield encode("ADDED", obj)
            for past in start.backlog:
                yield encode(past.type, past.object)
                sent_rv = max(sent_rv, past.rv)
            idle = min(hub.settings.bookmark_seconds, timeout) if timeout else hub.settings.bookmark_seconds
            async for ev in broadcaster.stream(start.watcher, start.after, idle):
                if deadline and time.monotonic() >= deadline:
                    return
                if ev is None:
                    if bookmarks:
                        brv = max(sent_rv, broadcaster.last_rv)
                        yield encode(
                            "BOOKMARK",
                            {
                                "kind": res.kind,
                                "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(brv)},
                            },
                        )
                    continue
                yield encode(ev.type, ev.object)
                sent_rv = ev.rv
        except WatchOverflow:
            yield encode("ERROR", gone("watch fell too far behind; relist").status())
        finally:
            broadcaster.unsubscribe(start.watcher)
            metrics.WATCHES.labels(res.plural).dec()

    return StreamingResponse(gen(), media_type="application/json", headers={"Cache-Control": "no-cache"})
