"""Authentication: bearer token → Subject (with a short, bounded cache), the middleware that sets
it (`AuthMiddleware`, pure ASGI), and the per-address limits on failed authentication and on
the join endpoint.

Revocation bound: a token revoked in the database keeps working in a hub process for at most
`auth_cache_seconds` (default 5 s), because that process may have it cached; a process that
revokes a credential itself (a re-join rotating an agent's credential) drops it from its cache
at once. Other replicas and `fleetplane token revoke` cannot tell a process, hence the bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.errors import ApiError, forbidden, from_store_error, too_many_requests, unauthorized
from hub.registry.access import Subject
from hub.settings import Settings
from hub.store.errors import StoreError
from hub.store.store import Store
from hub.store.tokens import lookup_token, token_hash
from hub.web.ratelimit import RateLimiter

OPEN_PATHS = {"/healthz", "/readyz", "/livez", "/v1/clusters/join"}
"""Paths served without a token (probes, and the join endpoint that mints one). /metrics needs an
admin or metrics token."""

METRICS_PATH = "/metrics"
METRICS_KINDS = ("admin", "metrics")

CACHE_ENTRIES = 10_000
"""Most token lookups cached per process (valid and invalid): bounds the memory a client sending
random tokens can make the cache take. Least recently used entries go first."""


def client_address(request: Request) -> str:
    """The TCP peer's address (forwarded headers are not trusted: see hub.cli)."""
    return request.client.host if request.client else "unknown"


class Authenticator:
    """Looks tokens up with a short cache so every request does not hit the database."""

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self.store = store
        self.ttl = settings.auth_cache_seconds
        self._cache: OrderedDict[str, tuple[float, Subject | None, datetime | None]] = OrderedDict()
        """Valid tokens looked up recently. Unknown ones live in `_misses`, so a client sending
        random tokens cannot evict the valid ones and push every user back onto the database."""
        self._misses: OrderedDict[str, float] = OrderedDict()
        self.failures = RateLimiter(settings.auth_failure_burst, settings.auth_failure_per_second)
        """Failed authentications (bearer tokens and join tokens) per client address."""
        self.joins = RateLimiter(settings.join_burst, settings.join_per_second)
        """Requests to the join endpoint per client address."""

    def cached(self, token: str) -> Subject | None:
        """The subject of a token this process validated less than `ttl` seconds ago, else None."""
        h = token_hash(token)
        hit = self._cache.get(h)
        if hit is None or time.monotonic() - hit[0] >= self.ttl:
            return None
        _, subj, expires = hit
        if subj is None or (expires is not None and expires <= datetime.now(UTC)):
            return None
        self._cache.move_to_end(h)
        return subj

    async def subject(self, token: str) -> Subject | None:
        h = token_hash(token)
        hit = self._cache.get(h)
        now = time.monotonic()
        if hit and now - hit[0] < self.ttl and (hit[2] is None or hit[2] > datetime.now(UTC)):
            self._cache.move_to_end(h)
            return hit[1]
        if self.known_bad(token):
            return None
        rec = await lookup_token(self.store, token)
        subj = Subject(rec.kind, rec.subject, rec.namespaces) if rec else None
        if self.ttl > 0:
            table: OrderedDict[str, Any] = self._cache if subj is not None else self._misses
            table[h] = (now, subj, rec.expires_at) if rec and subj is not None else now
            table.move_to_end(h)
            while len(table) > CACHE_ENTRIES:
                table.popitem(last=False)
        return subj

    def known_bad(self, token: str) -> bool:
        """This process looked the token up less than `ttl` seconds ago and it was not valid."""
        seen = self._misses.get(token_hash(token))
        return seen is not None and time.monotonic() - seen < self.ttl

    def forget(self, kind: str, name: str) -> None:
        """Drop cached credentials of one subject (after this process revoked them)."""
        for h in [h for h, (_, s, _) in self._cache.items() if s is not None and (s.kind, s.name) == (kind, name)]:
            del self._cache[h]

    def check_failures(self, request: Request) -> None:
        """429 when the caller's address has used up its failed-authentication budget."""
        wait = self.failures.retry_after(client_address(request))
        if wait is not None:
            raise too_many_requests(
                f"too many failed authentications from {client_address(request)}; retry in {wait}s", wait
            )

    def failed(self, request: Request) -> None:
        """Count one failed authentication against the caller's address."""
        self.failures.spend(client_address(request))


def is_open(path: str) -> bool:
    # The dashboard's page and files are public like /docs; the data they show needs a token.
    return (
        path in OPEN_PATHS
        or path.startswith("/docs")
        or path == "/openapi.json"
        or path == "/ui"
        or path.startswith("/ui/")
    )


def _answer(err: ApiError) -> Response:
    return JSONResponse(err.status(), status_code=err.code, headers=err.headers())


class AuthMiddleware:
    """Pure ASGI authentication: sets the caller on the request's state (`subject_of` reads it)
    or answers 401 / 403 / 429 with a Status itself. Unlike Starlette's BaseHTTPMiddleware it
    hands the app the server's own `send`, so a watch's streamed chunks are not copied through
    memory streams and an extra task per request."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = await self.refusal(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def refusal(self, request: Request) -> Response | None:
        """The answer to a request that may not pass, or None after setting its subject."""
        auth = self.auth
        path = request.url.path
        if is_open(path):
            return None
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:  # nothing guessed, nothing looked up: not counted as a failure
            return _answer(unauthorized())
        subject = auth.cached(token)
        if subject is None:
            try:
                if auth.known_bad(token):  # refused again without a database look-up
                    auth.check_failures(request)
                    auth.failed(request)
                    return _answer(unauthorized())
                subject = await auth.subject(token)
                if subject is None:
                    # A valid token is served even from a limited address (users behind one NAT
                    # as an attacker keep working; tokens are 192 random bits, so the limit is
                    # about making failing clients back off, not about guessing): only failures
                    # are answered 429 once the address has used up its budget.
                    auth.check_failures(request)
                    auth.failed(request)
                    return _answer(unauthorized())
            except ApiError as err:
                return _answer(err)
            except StoreError as exc:
                return _answer(from_store_error(exc))
        if path == METRICS_PATH and subject.kind not in METRICS_KINDS:
            return _answer(
                forbidden(f'{subject.kind} "{subject.name}" cannot read metrics: use an admin or metrics token')
            )
        if subject.kind == "metrics" and path != METRICS_PATH:
            return _answer(forbidden(f'metrics token "{subject.name}" may only read {METRICS_PATH}'))
        request.state.subject = subject  # scope["state"]: every later Request of this scope sees it
        return None
