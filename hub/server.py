"""The hub process: builds every layer and wires them into one FastAPI app (the composition root).

`create_app(settings, url)` builds the app on an already-migrated database; hub.cli runs it with
uvicorn. Routes: the Kubernetes-compatible API (hub.web.kube), the join endpoint (hub.web.join),
the REST API under /v1 (hub.web.rest), /healthz, /readyz, /metrics. Background tasks: the watch
poller, event compaction, the federation controller (one active per database), and whatever
entry points add with `add_background` (the demo fleet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.controllers.federation import run_federation
from hub.registry.lifecycle import Registry
from hub.settings import Settings
from hub.store.leader import LeaderLock
from hub.store.store import Store
from hub.store.watch import Broadcaster
from hub.web import authn, join, kube
from hub.web.authn import Authenticator
from hub.web.context import HubContext
from hub.web.rest import routes as rest

log = logging.getLogger(__name__)

Background = Callable[[HubContext], Awaitable[None]]


def add_background(app: FastAPI, task: Background) -> None:
    """Run `task(hub)` for the life of the app (started after the hub's own tasks)."""
    app.state.background.append(task)


async def _compactor(hub: HubContext) -> None:
    interval = max(1.0, min(60.0, hub.settings.event_retention_seconds / 10))
    while True:
        await asyncio.sleep(interval)
        try:
            await hub.store.compact(older_than_seconds=hub.settings.event_retention_seconds)
        except Exception:  # a failed compaction is retried next round
            log.exception("event compaction failed")


def create_app(settings: Settings, database_url: str) -> FastAPI:
    store = Store(database_url)
    broadcaster = Broadcaster(
        store,
        poll_seconds=settings.watch_poll_seconds,
        ring_size=settings.watch_cache_events,
        queue_limit=settings.watch_queue_limit,
    )
    registry = Registry(store, broadcaster)
    hub = HubContext(settings=settings, registry=registry, authenticator=Authenticator(store), store=store)
    tasks: list[asyncio.Task[Any]] = []

    async def federation(_: HubContext) -> None:
        await run_federation(registry, settings, LeaderLock(store))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broadcaster.start()
        tasks.append(asyncio.create_task(_compactor(hub), name="compactor"))
        for task in [federation, *app.state.background]:
            tasks.append(asyncio.create_task(task(hub), name=getattr(task, "__name__", "background")))
        hub.ready = True
        try:
            yield
        finally:
            hub.ready = False
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await broadcaster.stop()
            await store.close()

    app = FastAPI(
        title="Fleetplane hub",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        description="REST API under /v1; the Kubernetes-compatible API is served under /api and /apis.",
    )
    app.state.hub = hub
    app.state.background = []
    app.middleware("http")(authn.middleware(hub.authenticator))

    @app.get("/healthz", include_in_schema=False)
    @app.get("/livez", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not hub.ready:
            return Response("not ready", status_code=503, media_type="text/plain")
        try:
            await store.current_rv()
        except Exception as exc:  # the database is the hub's only dependency
            return Response(f"database unavailable: {exc}", status_code=503, media_type="text/plain")
        return Response("ok", media_type="text/plain")

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(join.router)
    app.include_router(rest.router)
    app.include_router(kube.router)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.api_route("/api/{path:path}", methods=methods, include_in_schema=False)
    async def core_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/api/" + path)

    @app.api_route("/apis/{path:path}", methods=methods, include_in_schema=False)
    async def group_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/apis/" + path)

    return app
