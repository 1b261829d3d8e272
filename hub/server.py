"""The hub process: builds every layer and wires them into one FastAPI app (the composition root).

`create_app(settings, url)` builds the app on an already-migrated database; hub.cli runs it with
uvicorn. Routes: the Kubernetes-compatible API (hub.web.kube), the join endpoint (hub.web.join),
the REST API under /v1 (hub.web.rest), /healthz, /readyz, /metrics. Background tasks: the watch
poller, event compaction, the federation controller (one active per database), and whatever
entry points add with `add_background` (the demo fleet).

`role` splits that for a multi-process hub (docs/scaling.md, "Processes and scale-out"): an
"api" worker serves every route with no background work but the watch poller; the "controller"
process serves only /healthz, /livez and /readyz and runs the compactor, the federation
controller and the entry points' background tasks; "all" (one process) does both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import metrics
from hub.controllers.federation import FederationController
from hub.errors import ApiError, from_store_error, http_status, internal_error
from hub.registry.lifecycle import Registry
from hub.settings import Settings
from hub.store.errors import StoreError
from hub.store.leader import LeaderLock
from hub.store.leases import RenewalBatcher
from hub.store.store import STORE_POOL_SIZE, Store
from hub.store.watch import Broadcaster
from hub.web import authn, docs, join, kube, ui
from hub.web.authn import Authenticator
from hub.web.context import HubContext
from hub.web.kube import authz
from hub.web.kube.fastpath import KubeFastPath
from hub.web.rest import routes as rest
from hub.web.rest.leases import RenewalFastPath

log = logging.getLogger(__name__)

Background = Callable[[HubContext], Awaitable[None]]

Role = Literal["all", "api", "controller"]

DEFAULT_POOL_SIZE = STORE_POOL_SIZE


def add_background(app: FastAPI, task: Background) -> None:
    """Run `task(hub)` for the life of the app (started after the hub's own tasks)."""
    app.state.background.append(task)


async def supervise(name: str, task: Callable[[], Awaitable[None]], *, max_backoff: float = 30.0) -> None:
    """Run `task` for the life of the hub: if it ever returns or raises, log and start it again
    after a backoff (1 s, doubling to `max_backoff`; reset after a minute of running)."""
    backoff = 1.0
    while True:
        started = time.monotonic()
        try:
            await task()
            log.warning("background task %s returned; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed; restarting in %.0fs", name, backoff)
        if time.monotonic() - started > 60:
            backoff = 1.0
        await asyncio.sleep(backoff)
        backoff = min(max_backoff, backoff * 2)


async def _compactor(hub: HubContext) -> None:
    interval = max(1.0, min(60.0, hub.settings.event_retention_seconds / 10))
    while True:
        await asyncio.sleep(interval)
        try:
            await hub.store.compact(older_than_seconds=hub.settings.event_retention_seconds)
        except Exception:  # a failed compaction is retried next round
            log.exception("event compaction failed")


async def drain(app: FastAPI) -> None:
    """Shutdown has begun: /readyz answers 503 and open watches end now, so the server's
    graceful shutdown finds its connections finishing instead of cancelling them."""
    hub: HubContext = app.state.hub
    hub.ready = False
    await hub.registry.broadcaster.stop()


def create_app(settings: Settings, database_url: str, role: Role = "all") -> FastAPI:
    store = Store(database_url, pool_size=settings.db_pool_size or DEFAULT_POOL_SIZE)
    broadcaster = Broadcaster(
        store,
        poll_seconds=settings.watch_poll_seconds,
        # The controller process serves no watches (its cache is fed by the broadcaster's listeners,
        # not the ring), so it keeps no ring: ~80 MiB of decoded objects at 2,000 events.
        ring_size=0 if role == "controller" else settings.watch_cache_events,
        queue_limit=settings.watch_queue_limit,
    )
    registry = Registry(store, broadcaster)
    hub = HubContext(settings=settings, registry=registry, authenticator=Authenticator(store, settings), store=store)
    tasks: list[asyncio.Task[Any]] = []
    runs_background = role != "api"
    controller = (
        FederationController(registry, settings, LeaderLock(store))
        if settings.controllers and runs_background
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broadcaster.start()
        background: list[tuple[str, Background]] = [("compactor", _compactor)] if runs_background else []
        if controller is not None:
            background.append(("federation", lambda _: controller.run()))
        if runs_background:
            background += [(getattr(t, "__name__", "background"), t) for t in app.state.background]
        elif app.state.background:
            raise RuntimeError("an API worker runs no background tasks: add them to the controller process")
        for name, task in background:
            tasks.append(asyncio.create_task(supervise(name, partial(task, hub)), name=name))
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
        docs_url=None,  # hub.web.docs serves /docs and /redoc with bundled assets (no CDN)
        redoc_url=None,
        openapi_url="/openapi.json",
        description="REST API under /v1; the Kubernetes-compatible API is served under /api and /apis.",
    )
    app.state.hub = hub
    app.state.background = []
    if role != "controller":  # inside authentication: object requests skip FastAPI's router (hub.web.kube.fastpath)
        app.add_middleware(KubeFastPath)
    app.add_middleware(authn.AuthMiddleware, auth=hub.authenticator)
    # Outside authentication: a well-formed agent lease renewal is answered by one batched
    # statement that checks the token too (hub.web.rest.leases.RenewalFastPath).
    app.add_middleware(RenewalFastPath, hub=hub, batcher=RenewalBatcher(store))

    @app.get("/healthz", include_in_schema=False)
    @app.get("/livez", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """ok, or what is wrong in a few words (no internals: this is served unauthenticated).
        `?verbose` lists each check, as kube-apiserver's /readyz?verbose does: the database, and
        the controller's role (leader / standby) with the age of its last successful pass."""
        if not hub.ready:
            return Response("not ready: starting or stopping", status_code=503, media_type="text/plain")
        database_ok = True
        try:
            await store.current_rv()
        except StoreError:  # the database is the hub's only dependency
            database_ok = False
        problem = None if database_ok else "database unavailable"
        if problem is None and controller is not None:
            problem = controller.health.problem()
        code = 503 if problem else 200
        if "verbose" in request.query_params:
            lines = [f"[{'+' if database_ok else '-'}]database {'ok' if database_ok else 'unavailable'}"]
            if controller is not None:
                health = controller.health.problem()
                lines.append(f"[{'-' if health else '+'}]controller {controller.health.summary()}")
            else:
                lines.append(f"[+]controller off in this process ({role} role)")
            lines.append(f"readyz check {'failed' if problem else 'passed'}")
            return Response("\n".join(lines) + "\n", status_code=code, media_type="text/plain")
        return Response(f"not ready: {problem}" if problem else "ok", status_code=code, media_type="text/plain")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> Response:
        return JSONResponse(err.status(), status_code=err.code, headers=err.headers())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own 404 (no route) and 405 (wrong method): a Status, like every other error.
        err = http_status(exc.status_code, str(exc.detail), request.method, request.url.path)
        return JSONResponse(err.status(), status_code=err.code, headers=dict(exc.headers or {}))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Response:
        err = from_store_error(exc)
        return JSONResponse(err.status(), status_code=err.code, headers=err.headers())

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        err = internal_error()
        return JSONResponse(err.status(), status_code=err.code)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.exposition()  # every process's, with --workers N (hub.metrics)
        return Response(body, media_type=content_type)

    if role == "controller":
        return app  # probes and /metrics only: the API is served by the worker processes

    docs.mount(app)
    ui.mount(app)  # the dashboard at /ui (hub.web.ui, docs/dashboard.md)
    app.include_router(join.router)
    app.include_router(rest.router)
    rest.document(app)  # the Workload schema the REST bodies refer to
    app.include_router(kube.router)
    app.include_router(authz.router)  # kubectl auth whoami / can-i

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @app.api_route("/api/{path:path}", methods=methods, include_in_schema=False)
    async def core_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/api/" + path)

    @app.api_route("/apis/{path:path}", methods=methods, include_in_schema=False)
    async def group_api(request: Request, path: str) -> Response:
        return await kube.handle(request, "/apis/" + path)

    return app
