"""Cluster leases on the REST API: `PUT /v1/clusters/{name}/lease` (the agent renews),
`GET /v1/clusters/{name}/lease` and `GET /v1/leases` (liveness, for admins and the agent).

Why a REST path and not `coordination.k8s.io/v1` Leases on the Kubernetes API: a lease here is
not an object — it has no resourceVersion, no watch, no managedFields, and renewing it must
not go through the object store (that is the point: docs/scaling.md). Serving it as a Kubernetes
kind would promise kubectl semantics (watch, apply, list by rv) it does not have. The body is
the two fields that matter, named as in a Lease's spec (holderIdentity, leaseDurationSeconds).

Who may do what is hub.registry.access.check_lease; the rows are hub.store.leases.
The routes are added to the REST router by `register` (hub.web.rest.routes), so they answer
errors as Kubernetes `Status` like every /v1 route.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import metrics
from hub.errors import ApiError, from_store_error, invalid, not_found
from hub.registry.access import check_lease
from hub.store import leases
from hub.store.errors import StoreError
from hub.store.tokens import token_hash
from hub.web.context import HubContext, hub_of, subject_of
from hub.web.inputs import decode
from hub.web.kube.body import read_body
from hub.web.rest.views import error_responses

MAX_LEASE_SECONDS = 3600.0
"""Longest lease an agent may ask for: an agent that may stay silent an hour without fencing
its workloads is a misconfiguration, not a choice."""


class _LeaseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class LeaseRenewal(_LeaseModel):
    """What the agent sends each heartbeat."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    holder_identity: str = Field(
        min_length=1, max_length=253, pattern=r"^[\x21-\x7e]+$", description="Who renews: the agent's identity."
    )
    lease_duration_seconds: float = Field(
        gt=0,
        le=MAX_LEASE_SECONDS,
        description="The agent's T: it stops its failover: Replace workloads when it could not renew for this long.",
    )


class LeaseView(_LeaseModel):
    cluster: str
    holder_identity: str
    renew_time: str = Field(description="RFC 3339 (microseconds), the hub database's clock.")
    lease_duration_seconds: float
    cluster_timeout_seconds: float = Field(
        description="The hub marks the cluster NotReady (and re-places its failover: Replace work) after this many "
        "seconds without a renewal or status report; it must be at least leaseDurationSeconds plus the grace "
        "the agent needs to stop its workloads."
    )
    cluster_ready: bool | None = Field(
        default=None,
        description="On a renewal: whether the stored Cluster says Ready=True (false: send a status report).",
    )


class LeaseList(_LeaseModel):
    items: list[LeaseView]


def _view(request: Request, lease: leases.Lease) -> LeaseView:
    return LeaseView(
        cluster=lease.cluster,
        holder_identity=lease.holder,
        renew_time=_rfc3339(lease.renew_time),
        lease_duration_seconds=lease.duration_seconds,
        cluster_timeout_seconds=hub_of(request).settings.cluster_timeout_seconds,
        cluster_ready=lease.cluster_ready,
    )


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _renewal(name: str, body: object) -> LeaseRenewal:
    try:
        return LeaseRenewal.model_validate(body)
    except ValidationError as exc:
        causes = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e.get("loc", ())) or "body"
            causes.append({"reason": "FieldValueInvalid", "field": field, "message": str(e.get("msg", "invalid"))})
        raise invalid("Lease", "", name, causes) from None


_RENEW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LeaseRenewal.model_json_schema(by_alias=True)}},
    }
}


def register(router: APIRouter) -> None:
    """Add the lease routes to the REST router (so they share its Status error handling)."""

    @router.put(
        "/clusters/{name}/lease",
        tags=["clusters"],
        response_model=LeaseView,
        response_model_exclude_none=True,
        responses=error_responses(403, 404, 413, 422),
        openapi_extra=_RENEW_BODY,
        summary="Renew a cluster's lease (its agent, every heartbeat)",
    )
    async def renew_lease(request: Request, name: str = Path(description="The Cluster's name.")) -> LeaseView:
        """One small UPDATE of the lease row: the Cluster object, its resourceVersion and its
        watchers are untouched. Only the cluster's own agent credential may renew; anyone else
        gets 404 as for a Cluster outside their scope (an admin: 403)."""
        check_lease(subject_of(request), name, "update")
        raw = await read_body(request)
        renewal = _renewal(name, decode(raw, "application/json", f'lease of cluster "{name}"'))
        lease = await leases.renew(hub_of(request).store, name, renewal.holder_identity, renewal.lease_duration_seconds)
        if lease is None:
            raise not_found("clusters", "fleetplane.io", name)
        return _view(request, lease)

    @router.get(
        "/clusters/{name}/lease",
        tags=["clusters"],
        response_model=LeaseView,
        response_model_exclude_none=True,
        responses=error_responses(404, 422),
        summary="Read a cluster's lease: who renewed it last, and when",
    )
    async def get_lease(request: Request, name: str = Path(description="The Cluster's name.")) -> LeaseView:
        check_lease(subject_of(request), name, "get")
        lease = await leases.get(hub_of(request).store, name)
        if lease is None:
            raise ApiError(404, "NotFound", f'cluster "{name}" has no lease (its agent has not renewed one)')
        return _view(request, lease)

    @router.get(
        "/leases",
        tags=["clusters"],
        response_model=LeaseList,
        response_model_exclude_none=True,
        responses=error_responses(),
        summary="Every cluster lease you may read (admins: all; an agent: its own)",
    )
    async def list_leases(request: Request) -> LeaseList:
        subject = subject_of(request)
        rows = await leases.list_leases(hub_of(request).store)
        visible = []
        for lease in rows:
            try:
                check_lease(subject, lease.cluster, "get")
            except ApiError:
                continue
            visible.append(_view(request, lease))
        return LeaseList(items=visible)


# ------------------------------------------------------------------ the renewal fast path

FAST_BODY_BYTES = 1024
"""Largest renewal body the fast path reads; anything bigger goes the ordinary way (which
answers 413 / 422 as it should). A renewal is ~70 bytes."""

_HOLDER = re.compile(r"[\x21-\x7e]{1,253}")


def _lease_path(path: str) -> str | None:
    """The cluster name of `/v1/clusters/{name}/lease`, else None."""
    if not (path.startswith("/v1/clusters/") and path.endswith("/lease")):
        return None
    name = path[len("/v1/clusters/") : -len("/lease")]
    return name if name and "/" not in name else None


def _fast_renewal(raw: bytes) -> tuple[str, float] | None:
    """(holderIdentity, leaseDurationSeconds) of a body the pydantic model would accept as is,
    else None (the ordinary path then explains what is wrong)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or set(body) != {"holderIdentity", "leaseDurationSeconds"}:
        return None
    holder, duration = body["holderIdentity"], body["leaseDurationSeconds"]
    if not isinstance(holder, str) or not _HOLDER.fullmatch(holder):
        return None
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        return None
    if not 0 < duration <= MAX_LEASE_SECONDS:
        return None
    return holder, float(duration)


class RenewalFastPath:
    """Pure ASGI, outside authentication: answers a well-formed `PUT /v1/clusters/NAME/lease`
    from that cluster's agent with ONE batched statement (hub.store.leases.RenewalBatcher)
    that checks the token and renews together — no FastAPI routing, no pydantic, no separate
    token look-up. Everything else passes through untouched, and so does a renewal the fast path
    does not take (another content type, an odd body, a token that is not this cluster's live
    agent credential, a caller already refused for failed authentications): the app sees the
    request exactly as sent and answers it with the ordinary checks and errors.

    Why it exists: heartbeats are the hub's steadiest load (100 a second at 1,000 clusters and
    10 s heartbeats); through the routed path each cost ~5 ms of the API process's CPU, so an
    idle 1,000-cluster hub spent most of a core on them (docs/scaling.md)."""

    def __init__(self, app: ASGIApp, hub: HubContext, batcher: leases.RenewalBatcher) -> None:
        self.app = app
        self.hub = hub
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _lease_path(scope["path"]) if scope["type"] == "http" and scope.get("method") == "PUT" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        token, content_type, length = "", "", None
        for key, value in scope["headers"]:
            if key == b"authorization":
                v = value.decode("latin-1")
                token = v[7:].strip() if v[:7].lower() == "bearer " else ""
            elif key == b"content-type":
                content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
            elif key == b"content-length":
                length = value
        auth = self.hub.authenticator
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if (
            not token
            or content_type != "application/json"
            or length is None
            or not length.isdigit()
            or int(length) > FAST_BODY_BYTES
            or auth.known_bad(token)
            or auth.failures.retry_after(address) is not None
        ):
            metrics.LEASE_RENEWALS.labels("routed").inc()
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= FAST_BODY_BYTES:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        raw = b"".join(chunks)
        parsed = _fast_renewal(raw) if size == int(length) else None
        lease = None
        if parsed is not None:
            try:
                lease = await self.batcher.renew(name, token_hash(token), parsed[0], parsed[1])
            except StoreError as exc:
                err = from_store_error(exc)
                await _json(err.status(), err.code, err.headers())(scope, receive, send)
                return
        if lease is None:
            metrics.LEASE_RENEWALS.labels("routed").inc()
            await self.app(scope, _replay(raw, more, receive), send)
            return
        metrics.LEASE_RENEWALS.labels("batched").inc()
        view = {
            "cluster": lease.cluster,
            "holderIdentity": lease.holder,
            "renewTime": _rfc3339(lease.renew_time),
            "leaseDurationSeconds": lease.duration_seconds,
            "clusterTimeoutSeconds": self.hub.settings.cluster_timeout_seconds,
            "clusterReady": lease.cluster_ready,
        }
        await _json(view)(scope, receive, send)


def _replay(raw: bytes, more: bool, receive: Receive) -> Receive:
    """A `receive` that hands the app the body the fast path already read, then the rest."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": more}
        return await receive()

    return replay


def _json(body: object, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=code, headers=headers, media_type="application/json")
