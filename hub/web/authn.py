"""Authentication: bearer token → Subject, with a short cache, and the middleware that sets it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.errors import from_store_error, unauthorized
from hub.registry.access import Subject
from hub.store.errors import StoreError
from hub.store.store import Store
from hub.store.tokens import lookup_token, token_hash

OPEN_PATHS = {"/healthz", "/readyz", "/livez", "/metrics", "/v1/clusters/join"}
"""Paths served without a token (probes, metrics, and the join endpoint that mints one)."""


class Authenticator:
    """Looks tokens up with a short cache so every request does not hit the database."""

    def __init__(self, store: Store, ttl_seconds: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Subject | None]] = {}

    async def subject(self, token: str) -> Subject | None:
        h = token_hash(token)
        hit = self._cache.get(h)
        now = time.monotonic()
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        rec = await lookup_token(self.store, token)
        subj = Subject(rec.kind, rec.subject, rec.namespaces) if rec else None
        self._cache[h] = (now, subj)
        return subj


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/docs") or path == "/openapi.json"


def middleware(
    auth: Authenticator,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def authenticate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if is_open(request.url.path):
            return await call_next(request)
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        try:
            subject = await auth.subject(token) if token else None
        except StoreError as exc:
            err = from_store_error(exc)
            return JSONResponse(err.status(), status_code=err.code, headers=err.headers())
        if subject is None:
            return JSONResponse(unauthorized().status(), status_code=401)
        request.state.subject = subject
        return await call_next(request)

    return authenticate
