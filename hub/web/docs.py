"""The REST API's interactive docs (/docs, Swagger UI) served entirely by the hub: the
JavaScript and CSS come from the PyPI package `fastapi-offline` (which vendors swagger-ui-dist
5, needed for OpenAPI 3.1), so the page works on machines without internet access, where
FastAPI's default (a CDN) leaves a blank page."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
"""Where the bundled assets are served (under /docs, which is open like the docs themselves)."""


def mount(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    static = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — REST API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    app.include_router(router)
