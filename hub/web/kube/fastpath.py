"""The Kubernetes API's object requests straight to `hub.web.kube.handle`, before FastAPI.

Every /api/... and /apis/... request that no explicit route serves (discovery, /version, the
authorization reviews) ends up in the app's catch-all routes, which only call `handle`. On the
way there FastAPI matches it against every route of the app (the REST API, the dashboard, the
docs: 43 routes, the catch-alls last), solves the catch-all's parameters and wraps it in three
more middleware layers — about a tenth of a get's CPU in the hub process. This middleware sits inside authentication
(`hub.web.authn.AuthMiddleware` has set the caller, or answered 401/403/429 itself) and hands
such a request to `handle` at once; everything after that is the same code: target parsing,
verbs, authorization and tenancy in the registry, validation, limits (the body limit is read by
`handle`), Status errors, and the request metrics `handle` records.

What it leaves to the app: any path an explicit route could match (`serves`: only paths below
a group version the registry serves, where the app has no explicit route; discovery and the
authorization reviews are above or beside them), other methods (405 from the router, as
before), and watches (a stream whose errors after the headers go through the app's handlers as
they always did).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.registry.resources import RESOURCES
from hub.web.kube.verbs import handle

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
"""The methods of the catch-all routes (hub.server `core_api` / `group_api`)."""

GROUP_VERSIONS = frozenset((r.group, r.version) for r in RESOURCES if r.group)
"""The API groups the registry serves under /apis. The explicit routes there are discovery
(/apis/{group}/{version} and shorter) and other groups (authorization.k8s.io, …)."""


def serves(path: str) -> bool:
    """Whether `path` is below a served group version (/api/v1/x…, /apis/{group}/{version}/x…):
    a path no explicit route of the app serves, only the catch-alls."""
    parts = path.split("/", 5)  # "", "api(s)", …
    if parts[1] == "api":
        return len(parts) > 3 and parts[2] == "v1" and parts[3] != ""
    return parts[1] == "apis" and len(parts) > 4 and parts[4] != "" and (parts[2], parts[3]) in GROUP_VERSIONS


class KubeFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in METHODS:
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(("/api/", "/apis/")) and serves(path) and b"watch=" not in scope["query_string"]:
                response = await handle(Request(scope, receive), path)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
