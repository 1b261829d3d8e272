"""Serves the dashboard: `/ui` (the one HTML page) and `/ui/static/*` (its CSS and modules).

No build step and no third-party JavaScript: the files under `static/` are what the browser
runs, so `pip install` + `fleetplane up` serves the dashboard with no Node anywhere. Every
answer carries the security headers below; the HTML has no inline script or style, which is
what lets the policy forbid both."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/ui"
STATIC = resources.files("hub.web.ui") / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",  # the modules under /ui/static only: no inline script, no eval
        "style-src 'self'",  # app.css only; the scripts set styles through the CSSOM, which CSP allows
        "img-src 'self' data:",
        "connect-src 'self'",  # the hub's own APIs and watches
        "base-uri 'none'",
        "form-action 'none'",  # forms are handled by script, never submitted
        "frame-ancestors 'none'",
    ]
)
"""Strict on purpose: workload names, messages and events are written by tenants and shown to
admins, so the page must not be able to run anything but its own files even if a string ever
reached the DOM as markup (the scripts only ever set textContent)."""

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",  # revalidate (ETag) so an upgraded hub serves its new modules at once
}


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Serve the dashboard: `/ui/` is the page (its views are hash routes: #/fleet, #/workloads,
    …), `/ui` redirects there, `/ui/static/…` are its files (files only, never a listing). The
    page is open; its data needs a token (hub.web.authn)."""
    app.mount(PREFIX + "/static", _SecurityHeaders(StaticFiles(directory=str(STATIC))), name="ui-static")
    router = APIRouter(include_in_schema=False)

    @router.get(PREFIX)
    async def ui_redirect() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=308, headers=SECURITY_HEADERS)

    @router.get(PREFIX + "/")
    async def ui_page() -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    app.include_router(router)
