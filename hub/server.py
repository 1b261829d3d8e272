"""The hub process: FastAPI app, its lifecycle, auth middleware, health and metrics.

`create_app(settings, url)` builds the app on an already-migrated database; `serve()` runs it
with uvicorn. Routes: the Kubernetes-compatible API (hub.api.kube), the join endpoint, the
REST API under /v1 (hub.api.rest), /healthz, /readyz, /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api import kube
from hub.auth import Authenticator, create_token, redeem_join_token
from hub.config import Settings
from hub.errors import ApiError, bad_request, unauthorized
from hub.store.store import Store, Tx, now_rfc3339
from hub.store.watch import Broadcaster

log = logging.getLogger(__name__)

OPEN_PATHS = {"/healthz", "/readyz", "/livez", "/metrics", "/v1/clusters/join"}


@dataclass
class Hub:
    settings: Settings
    store: Store
    broadcaster: Broadcaster
    auth: Authenticator
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ready: bool = False


async def _compactor(hub: Hub) -> None:
    interval = max(1.0, min(60.0, hub.settings.event_retention_seconds / 10))
    while True:
        await asyncio.sleep(interval)
        try:
            await hub.store.compact(older_than_seconds=hub.settings.event_retention_seconds)
        except Exception:  # a failed compaction is retried next round
            log.exception("event compaction failed")


def create_app(settings: Settings, database_url: str) -> FastAPI:
    store = Store(database_url)
    hub = Hub(
        settings=settings,
        store=store,
        broadcaster=Broadcaster(store, poll_seconds=settings.watch_poll_seconds,
                                ring_size=settings.watch_cache_events, queue_limit=settings.watch_queue_limit),
        auth=Authenticator(store),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.broadcaster.start()
        hub.tasks.append(asyncio.create_task(_compactor(hub), name="compactor"))
        for starter in getattr(app.state, "controllers", []):
            hub.tasks.append(asyncio.create_task(starter(hub), name=getattr(starter, "__name__", "controller")))
        hub.ready = True
        try:
            yield
        finally:
            hub.ready = False
            for t in hub.tasks:
                t.cancel()
            await asyncio.gather(*hub.tasks, return_exceptions=True)
            await hub.broadcaster.stop()
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
    app.state.controllers = []

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path in OPEN_PATHS or path.startswith("/docs") or path == "/openapi.json":
            return await call_next(request)
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        subject = await hub.auth.subject(token) if token else None
        if subject is None:
            return JSONResponse(unauthorized().status(), status_code=401)
        request.state.subject = subject
        return await call_next(request)

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

    @app.post("/v1/clusters/join", tags=["clusters"])
    async def join(request: Request) -> JSONResponse:
        """Exchange a single-use join token for the cluster's own credential; registers the Cluster."""
        try:
            body = await request.json()
        except Exception:
            return JSONResponse(bad_request("join: body must be JSON {joinToken, clusterName}").status(), status_code=400)
        token, cluster = (body or {}).get("joinToken"), (body or {}).get("clusterName")
        if not isinstance(token, str) or not isinstance(cluster, str) or not cluster:
            return JSONResponse(bad_request("join: joinToken and clusterName are required strings").status(), status_code=400)
        if not await redeem_join_token(store, token, cluster):
            err = ApiError(401, "Unauthorized", f'join token for cluster "{cluster}" is invalid or already used')
            return JSONResponse(err.status(), status_code=401)
        credential = await create_token(store, "agent", cluster)

        async def ensure_cluster(tx: Tx) -> None:
            if await tx.get("fleetplane.io/clusters", "", cluster) is None:
                obj = {"apiVersion": "fleetplane.io/v1alpha1", "kind": "Cluster",
                       "metadata": {"name": cluster, "annotations": {"fleetplane.io/joined-at": now_rfc3339()}},
                       "spec": {"backend": "kubernetes"}}
                tx.create("fleetplane.io/clusters", obj)

        await store.transact(ensure_cluster)
        return JSONResponse({"clusterName": cluster, "token": credential})

    try:
        from hub.api import rest

        app.include_router(rest.router)
    except ImportError:  # the REST API module is optional while it is being built
        pass
    app.include_router(kube.router)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.api_route("/api/{path:path}", methods=methods, include_in_schema=False)
    async def core_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/api/" + path)

    @app.api_route("/apis/{path:path}", methods=methods, include_in_schema=False)
    async def group_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/apis/" + path)

    return app
