"""The hub's REST API under /v1: submit and read workloads, cluster capacity, a fleet summary, what-if.

Owns the compact, task-shaped views a dashboard or script wants (documented at /docs and in
docs/rest.md). It adds no semantics of its own:

- Creating a Workload goes through the Kubernetes API's create path (`hub.web.kube.verbs.create_object`,
  then the registry), so validation, the namespace check and managedFields are the same code.
- Every read is scoped by `hub.registry.access.read_scope` (through the registry), the one tenant filter: a team sees its own
  namespaces only (others answer 404) and, like on the Kubernetes API, every Cluster.
- What-if runs `placement.Engine` on the live snapshot minus in-flight reservations (the
  federation controller's own `reservations` rule) and writes nothing.

Errors are Kubernetes `Status` objects, as on the Kubernetes API, including the 422 FastAPI
would otherwise answer in its own shape (see `_StatusRoute`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic.json_schema import models_json_schema

from fleetplane_types import v1alpha1 as v1
from hub.controllers import queueing
from hub.controllers.cache import workload_key_of
from hub.controllers.snapshot import build_snapshot, reservations
from hub.errors import ApiError, bad_request, forbidden, internal_error, invalid
from hub.registry import queues as queue_rules
from hub.registry.access import Subject, read_scope
from hub.registry.lifecycle import list_query
from hub.registry.objects import Obj, check_kind, meta, strip_server_meta
from hub.registry.resources import BY_KIND, Resource
from hub.registry.validation import field_validation_mode, validate_object
from hub.web.context import hub_of, subject_of
from hub.web.inputs import check_query, check_text, decode
from hub.web.kube.body import read_body
from hub.web.kube.responses import json_response
from hub.web.kube.routing import Target
from hub.web.kube.verbs import create_object
from hub.web.rest import leases
from hub.web.rest.views import (
    WHATIF_MAX_WORKLOADS,
    ClusterList,
    FleetSummary,
    NotReadyCount,
    QueueLine,
    QueueList,
    QueueView,
    SummaryRow,
    WhatIfReport,
    WhatIfRequest,
    WorkloadList,
    WorkloadPosition,
    WorkloadView,
    cluster_view,
    error_responses,
    position_view,
    queue_entry_view,
    queue_view,
    workload_view,
)
from placement import Engine, PlacementInputError
from placement.catalogue import canonical_model
from placement.cli import report
from placement.manifests import workload_from_api
from placement.model import FleetSnapshot, Reservation
from placement.queueing import Admission, AdmittedWorkload, QueuedWorkload
from placement.queueing.convert import (
    priority_classes_from_api,
    queue_from_api,
    queued_from_api,
)

__all__ = ["WHATIF_MAX_WORKLOADS", "document", "router"]

log = logging.getLogger(__name__)

WORKLOAD: Resource = BY_KIND["Workload"]
CLUSTER: Resource = BY_KIND["Cluster"]
NAMESPACE: Resource = BY_KIND["Namespace"]
DATASET: Resource = BY_KIND["Dataset"]
TOPOLOGY: Resource = BY_KIND["Topology"]
ASSIGNMENT: Resource = BY_KIND["Assignment"]
QUEUE: Resource = BY_KIND["Queue"]
PRIORITY_CLASS: Resource = BY_KIND["PriorityClass"]


# ------------------------------------------------------------------ errors as Status


class _StatusRoute(APIRoute):
    """Answers every error on /v1 as a Kubernetes `Status`, as the Kubernetes API does.

    FastAPI's own 422 body (`{"detail": [...]}`) would give clients two error shapes on one
    server; this turns request-validation errors and `ApiError`s into `Status` here, so the
    app's exception handlers (hub/server.py) stay untouched. It also enforces the hub's body
    size limit before FastAPI parses a body.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def status_handler(request: Request) -> Response:
            try:
                # NUL and unpaired surrogates in a path or query value would reach Postgres.
                check_query(request)
                for key, value in request.path_params.items():
                    check_text(value, key, max_len=512)
                if request.method in ("POST", "PUT", "PATCH"):
                    # 413 over the limit, 400 for what the input boundary refuses (depth, NUL,
                    # huge numbers); the body stays cached for FastAPI to parse again.
                    body = await read_body(request)
                    ctype = request.headers.get("content-type", "application/json")
                    if body.strip() and "json" in ctype:  # other types: FastAPI's 422 says "send JSON"
                        decode(body, "application/json", "request")
                return await handler(request)
            except RequestValidationError as exc:
                invalid_request = _validation_status(exc)
                return JSONResponse(invalid_request.status(), status_code=invalid_request.code)
            except ApiError as err:
                return JSONResponse(err.status(), status_code=err.code, headers=err.headers())
            except Exception:  # a bug: log it, answer a Status, never a bare 500
                log.exception("%s %s failed", request.method, request.url.path)
                bug = internal_error()
                return JSONResponse(bug.status(), status_code=bug.code)

        return status_handler


def _validation_status(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return bad_request("request body is not valid JSON")
    causes = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        field = ""
        for p in loc:
            field += f"[{p}]" if isinstance(p, int) else ("." if field else "") + str(p)
        msg = str(e.get("msg", "invalid"))
        if not field and e.get("loc", ())[:1] == ("body",):
            # The body was not JSON at all (curl -d sends form encoding unless told otherwise).
            msg = "request body must be a JSON object; send it with Content-Type: application/json"
        causes.append({"reason": "FieldValueInvalid", "field": field, "message": msg})
    parts = "; ".join(f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in causes)
    return ApiError(422, "Invalid", f"request is invalid: {parts}", causes=causes)


def document(app: FastAPI) -> None:
    """Put the Workload, Queue and PriorityClass schemas (and what they reference) into the
    app's OpenAPI components.

    Submitting and what-if take these objects, but their bodies are decoded by the hub's
    input boundary rather than by FastAPI, so no route declares the model and FastAPI would
    leave `#/components/schemas/Workload` dangling."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            _, defs = models_json_schema(
                [(m, "validation") for m in (v1.Workload, v1.Queue, v1.PriorityClass)],
                ref_template="#/components/schemas/{model}",
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in defs.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# ------------------------------------------------------------------ helpers

# The bearer scheme only documents the token for /docs ("Authorize"); the middleware in
# hub.web.authn checks it (auto_error=False, so this never answers on its own).
router = APIRouter(prefix="/v1", route_class=_StatusRoute, dependencies=[Security(HTTPBearer(auto_error=False))])
leases.register(router)  # PUT/GET /v1/clusters/{name}/lease, GET /v1/leases (hub.web.rest.leases)


async def _visible_namespace(request: Request, ns: str) -> None:
    """404 unless the namespace exists and the caller may see it (a team: only its own)."""
    await hub_of(request).registry.get(NAMESPACE, None, ns, subject_of(request))


async def _list(
    request: Request, res: Resource, *, namespace: str | None = None, limit: int | None = None, cont: str | None = None
) -> tuple[list[Obj], int, str | None]:
    """Every read of a list is scoped by the registry's list_query (hub.registry.access.read_scope)."""
    query = list_query(res, subject_of(request), namespace)
    return await hub_of(request).registry.list_objects(res, query, limit=limit, continue_token=cont)


async def _queue_index(request: Request) -> queue_rules.QueueIndex:
    """The stored Queues and PriorityClasses (every team may read both), to resolve workloads."""
    registry = hub_of(request).registry
    return queue_rules.QueueIndex.of(await registry.list_all(QUEUE), await registry.list_all(PRIORITY_CLASS))


# ------------------------------------------------------------------ workloads

_WORKLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Workload (fleetplane.io/v1alpha1), as `kubectl create` sends it; apiVersion and kind "
        "may be omitted. Unknown fields are dropped with a Warning header (fieldValidation=Warn) "
        "or rejected with 400 (fieldValidation=Strict).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Workload"}}},
    }
}


@router.post(
    "/namespaces/{namespace}/workloads",
    tags=["workloads"],
    status_code=201,
    response_model=WorkloadView,
    response_model_exclude_none=True,
    responses=error_responses(400, 403, 404, 409, 413, 422),
    openapi_extra=_WORKLOAD_BODY,
    summary="Submit a workload",
)
async def create_workload(
    request: Request,
    namespace: str = Path(description="Namespace to create the workload in; it must exist."),
    field_validation: str = Query("Warn", alias="fieldValidation", description="Strict, Warn or Ignore."),
    dry_run: str | None = Query(None, alias="dryRun", description="All: validate only, store nothing."),
) -> Response:
    """Store a Workload; the federation controller places it shortly after (GET it to see where).

    The same code path as `POST /apis/fleetplane.io/v1alpha1/namespaces/{namespace}/workloads`,
    so a workload is valid here exactly when kubectl would accept it. Answers the same view as
    `GET /v1/namespaces/{namespace}/workloads/{name}`; unknown fields that were dropped come
    back as `Warning` headers.
    """
    # field_validation and dry_run are read from the query by create_object; declared for /docs.
    created, warnings = await create_object(request, Target(WORKLOAD, namespace, None, ""))
    index = await _queue_index(request)
    view = workload_view(created, explain=True, queues=index).model_dump(mode="json", by_alias=True, exclude_none=True)
    return json_response(view, 201, warnings)


@router.get(
    "/workloads",
    tags=["workloads"],
    response_model=WorkloadList,
    response_model_exclude_none=True,
    responses=error_responses(422),
    summary="List workloads in every namespace you may see",
)
async def list_all_workloads(
    request: Request,
    explain: bool = Query(False, description="Include each workload's placement explanation."),
    limit: int | None = Query(None, ge=1, le=5000),
    cont: str | None = Query(None, alias="continue"),
) -> WorkloadList:
    items, rv, nxt = await _list(request, WORKLOAD, limit=limit, cont=cont)
    index = await _queue_index(request)
    return WorkloadList(
        items=[workload_view(o, explain=explain, queues=index) for o in items],
        resource_version=str(rv),
        continue_token=nxt,
    )


@router.get(
    "/namespaces/{namespace}/workloads",
    tags=["workloads"],
    response_model=WorkloadList,
    response_model_exclude_none=True,
    responses=error_responses(404, 422),
    summary="List workloads in a namespace",
)
async def list_workloads(
    request: Request,
    namespace: str,
    explain: bool = Query(False, description="Include each workload's placement explanation."),
    limit: int | None = Query(None, ge=1, le=5000),
    cont: str | None = Query(None, alias="continue"),
) -> WorkloadList:
    await _visible_namespace(request, namespace)
    items, rv, nxt = await _list(request, WORKLOAD, namespace=namespace, limit=limit, cont=cont)
    index = await _queue_index(request)
    return WorkloadList(
        items=[workload_view(o, explain=explain, queues=index) for o in items],
        resource_version=str(rv),
        continue_token=nxt,
    )


@router.get(
    "/namespaces/{namespace}/workloads/{name}",
    tags=["workloads"],
    response_model=WorkloadView,
    response_model_exclude_none=True,
    responses=error_responses(404, 422),
    summary="Get a workload with its placement and full explanation",
)
async def get_workload(request: Request, namespace: str, name: str) -> WorkloadView:
    await _visible_namespace(request, namespace)
    obj = await hub_of(request).registry.get(WORKLOAD, namespace, name, subject_of(request))
    return workload_view(obj, explain=True, queues=await _queue_index(request))


@router.get(
    "/namespaces/{namespace}/workloads/{name}/position",
    tags=["queues"],
    response_model=WorkloadPosition,
    response_model_exclude_none=True,
    responses=error_responses(404, 422),
    summary="Where a workload stands in its queue",
)
async def workload_position(request: Request, namespace: str, name: str) -> WorkloadPosition:
    """Its state (Waiting, Admitted, Finished, Deleting, NoQueue or Inadmissible) and why; for a
    waiting one its 1-based position in the queue's line, counted over every namespace's
    waiting workloads, the number of those ahead with a higher priority, and the admission
    pass's message. Always 200 for a workload you may see: a workload that does not wait is
    an answer, not an error."""
    await _visible_namespace(request, namespace)
    registry = hub_of(request).registry
    obj = await registry.get(WORKLOAD, namespace, name, subject_of(request))
    index = await _queue_index(request)
    state, queue, reason = index.state(obj)
    entry, of = None, 0
    if state == "Waiting" and queue is not None:
        entries = queue_rules.line(queue, await registry.list_all(WORKLOAD), index)
        of = len(entries)
        entry = next((e for e in entries if (e.namespace, e.name) == (namespace, name)), None)
    return position_view(obj, state, queue, reason, entry, of, index)


# ------------------------------------------------------------------ queues


@router.get(
    "/queues",
    tags=["queues"],
    response_model=QueueList,
    response_model_exclude_none=True,
    responses=error_responses(),
    summary="List queues with their quotas and usage per flavor",
)
async def list_queues(request: Request) -> QueueList:
    items, _, _ = await _list(request, QUEUE)
    return QueueList(items=[queue_view(o) for o in items])


@router.get(
    "/queues/{name}",
    tags=["queues"],
    response_model=QueueView,
    response_model_exclude_none=True,
    responses=error_responses(404, 422),
    summary="Get a queue: quotas, usage per flavor (used/nominal/borrowed/available), pending, admitted",
)
async def get_queue(request: Request, name: str) -> QueueView:
    return queue_view(await hub_of(request).registry.get(QUEUE, None, name, subject_of(request)))


@router.get(
    "/queues/{name}/workloads",
    tags=["queues"],
    response_model=QueueLine,
    response_model_exclude_none=True,
    responses=error_responses(404, 422),
    summary="The queue's waiting workloads in admission order, with positions",
)
async def queue_workloads(request: Request, name: str) -> QueueLine:
    """Computed from the store on request: the workloads whose queue is this one (spec.queue,
    else the namespace's default queue) that are not admitted, finished or being deleted,
    ordered by priority (highest first), creation, then namespace/name — the admission pass's
    order. Positions count every namespace's waiting workloads; a team sees only its own
    entries (`hidden` counts the others)."""
    hub, subject = hub_of(request), subject_of(request)
    await hub.registry.get(QUEUE, None, name, subject)
    entries = queue_rules.line(name, await hub.registry.list_all(WORKLOAD), await _queue_index(request))
    scope = read_scope(subject, WORKLOAD)
    shown = [e for e in entries if scope.covers(e.namespace, e.name) is True]
    return QueueLine(
        queue=name, waiting=len(entries), items=[queue_entry_view(e) for e in shown], hidden=len(entries) - len(shown)
    )


# ------------------------------------------------------------------ clusters and the fleet


@router.get(
    "/clusters",
    tags=["clusters"],
    response_model=ClusterList,
    responses=error_responses(),
    summary="List member clusters with their GPU capacity",
)
async def list_clusters(request: Request) -> ClusterList:
    items, _, _ = await _list(request, CLUSTER)
    return ClusterList(items=[cluster_view(o) for o in items])


@router.get(
    "/fleet/summary",
    tags=["fleet"],
    response_model=FleetSummary,
    responses=error_responses(),
    summary="GPUs by model × capacity type × region (total and free)",
)
async def fleet_summary(request: Request) -> FleetSummary:
    """Sums pools of Ready clusters; NotReady clusters cannot take work, so they are counted apart."""
    items, _, _ = await _list(request, CLUSTER)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    ready_n = nr_clusters = nr_gpus = 0
    for c in map(cluster_view, items):
        if not c.ready:
            nr_clusters += 1
            nr_gpus += c.total_gpus
            continue
        ready_n += 1
        for p in c.pools:
            # Model names compare case-insensitively, as in the engine ("h100" is "H100").
            key = (canonical_model(p.model), p.capacity_type, c.region or "")
            row = rows.setdefault(key, {"total": 0, "free": 0, "clusters": set(), "simulated": set()})
            row["total"] += p.total
            row["free"] += p.free
            row["clusters"].add(c.name)
            if c.simulated:
                row["simulated"].add(c.name)
    out = [
        SummaryRow(
            model=m,
            capacity_type=t,
            region=r,
            total=v["total"],
            free=v["free"],
            clusters=len(v["clusters"]),
            simulated_clusters=len(v["simulated"]),
        )
        for (m, t, r), v in sorted(rows.items())
    ]
    return FleetSummary(
        rows=out,
        ready_clusters=ready_n,
        total_gpus=sum(r.total for r in out),
        free_gpus=sum(r.free for r in out),
        not_ready=NotReadyCount(clusters=nr_clusters, gpus=nr_gpus),
    )


# ------------------------------------------------------------------ what-if


def _prefixed(err: ApiError, prefix: str) -> ApiError:
    """The same error with every cause's field under `prefix` (workloads[2].spec.gpu.count)."""
    causes = [
        dict(c, field=f"{prefix}.{c['field']}" if c.get("field") else prefix) for c in err.details.get("causes") or []
    ]
    details = {k: v for k, v in err.details.items() if k != "causes"}
    return ApiError(err.code, err.reason, f"{prefix}: {err.message}", details=details, causes=causes or None)


def _whatif_objects(body: WhatIfRequest, subject: Subject, field_validation: str) -> tuple[list[Obj], list[str]]:
    """Validate each workload exactly as a create would; errors name workloads[i].<field>."""
    field_validation_mode(field_validation)  # a bad mode is the request's fault, not workloads[0]'s
    default_ns = subject.namespaces[0] if subject.kind == "team" and subject.namespaces else "default"
    out: list[Obj] = []
    warnings: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(body.workloads):
        prefix = f"workloads[{i}]"
        try:
            obj = check_kind(WORKLOAD, copy.deepcopy(raw))
            meta(obj).setdefault("namespace", default_ns)
            strip_server_meta(obj)
            obj.pop("status", None)
            obj, warns = validate_object(WORKLOAD, obj, field_validation)
        except ApiError as err:
            raise _prefixed(err, prefix) from None
        warnings += [f"{prefix}: {w}" for w in warns]
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in seen:
            raise invalid(
                WORKLOAD.kind,
                WORKLOAD.group,
                key[1],
                [
                    {
                        "reason": "FieldValueDuplicate",
                        "field": f"{prefix}.metadata.name",
                        "message": f'Duplicate value: "{key[0]}/{key[1]}" is also workloads[{seen[key]}]',
                    }
                ],
            )
        seen[key] = i
        out.append(obj)
    return out, warnings


def _whatif_queue_objects(
    items: list[dict[str, Any]], res: Resource, field_validation: str
) -> tuple[list[Obj], list[str]]:
    """Validate the body's Queues / PriorityClasses as a create would; errors name queues[i].<field>."""
    prefix_of = "queues" if res.kind == "Queue" else "priorityClasses"
    out: list[Obj] = []
    warnings: list[str] = []
    for i, raw in enumerate(items):
        prefix = f"{prefix_of}[{i}]"
        try:
            obj = check_kind(res, copy.deepcopy(raw))
            strip_server_meta(obj)
            obj.pop("status", None)
            obj, warns = validate_object(res, obj, field_validation)
            causes = queue_rules.queue_causes(obj) if res.kind == "Queue" else []
            if causes:
                raise invalid(res.kind, res.group, meta(obj)["name"], causes)
        except ApiError as err:
            raise _prefixed(err, prefix) from None
        warnings += [f"{prefix}: {w}" for w in warns]
        out.append(obj)
    return out, warnings


def _whatif_admission(
    profile: str,
    snapshot: FleetSnapshot,
    requests: list[Any],
    objs: list[Obj],
    body_queues: list[Obj] | None,
    body_classes: list[Obj] | None,
    stored: StoredQueueing,
    held: list[Reservation],
    subject: Subject,
) -> dict[str, Any] | None:
    """The admission report of `fleetplane place` with Queues, on the live fleet and as the
    admission controller would decide now: the body's queued workloads are pending, the stored
    workloads holding quota (hub.controllers.queueing.holding) are admitted. Stored Queues and
    PriorityClasses are read as the controller reads them (`build_config`: one that no longer
    validates is left out); the body's must be valid (422 naming queues[i] / priorityClasses[i]).
    None when there is no queue at all."""
    config = queueing.build_config(stored.queues, stored.classes, profile)
    try:
        classes = (
            priority_classes_from_api([v1.PriorityClass.model_validate(o) for o in body_classes])
            if body_classes is not None
            else config.classes
        )
        queues = (
            [queue_from_api(v1.Queue.model_validate(q)) for q in body_queues]
            if body_queues is not None
            else list(config.queues.values())
        )
        if not queues:
            return None
        admission = Admission(queues, profile)
    except PlacementInputError as exc:
        field = "queues" if exc.kind == "Queue" else "priorityClasses"
        raise invalid(
            exc.kind,
            "fleetplane.io",
            exc.name or "",
            [
                {
                    "reason": "FieldValueInvalid",
                    "field": f"{field}.{exc.field}",
                    "message": f'"{exc.name}": {exc.detail}',
                }
            ],
        ) from None
    pending: list[QueuedWorkload] = []
    for i, (o, req) in enumerate(zip(objs, requests, strict=True)):
        if not (o["spec"].get("queue") or admission.default_for.get(o["metadata"]["namespace"])):
            continue  # not queued: placed as before queues existed (the placement report has it)
        try:
            pending.append(queued_from_api(v1.Workload.model_validate(o), req, classes, i))
        except PlacementInputError as exc:
            raise invalid(
                WORKLOAD.kind,
                WORKLOAD.group,
                o["metadata"]["name"],
                [{"reason": "FieldValueNotFound", "field": f"workloads[{i}].{exc.field}", "message": exc.detail}],
            ) from None
    by_workload: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for a in stored.assignments:
        by_workload[workload_key_of(a)].append(a)
    admitted: list[AdmittedWorkload] = []
    for w in stored.workloads:
        if queueing.holding(w):
            held_quota = queueing.admitted_workload(w, by_workload[(meta(w).get("namespace", ""), meta(w)["name"])])
            if held_quota is not None:
                admitted.append(held_quota)
    doc = admission.decide(snapshot, pending, admitted, held).to_dict()
    # Victims of other namespaces are counted, not named, to a team.
    scope = read_scope(subject, WORKLOAD)

    def shown(key: str) -> str:
        ns, _, name = key.partition("/")
        return key if scope.covers(ns, name) is True else "(a workload of another namespace)"

    for d in doc["decisions"]:
        d["victims"] = [shown(v) for v in d["victims"]]
    for e in doc["evictions"]:
        e["workload"] = shown(e["workload"])
    return dict(doc)


@dataclass(frozen=True)
class StoredQueueing:
    """What the what-if's admission reads from the store (every namespace: quota is shared)."""

    queues: list[Obj]
    classes: list[Obj]
    workloads: list[Obj]
    assignments: list[Obj]


@router.post(
    "/whatif",
    tags=["what-if"],
    response_model=WhatIfReport,
    responses=error_responses(400, 403, 413, 422),
    summary="Place workloads on the live fleet without committing anything",
)
async def whatif(
    request: Request,
    body: WhatIfRequest,
    field_validation: str = Query("Warn", alias="fieldValidation", description="Strict, Warn or Ignore."),
) -> WhatIfReport:
    """Where would these workloads go right now, and why?

    Runs the placement engine on the clusters, datasets and topologies in the store, with
    the GPUs of in-flight placements held back exactly as the federation controller holds
    them. Stores nothing: no Workload, Assignment or reservation. Other pending workloads are
    not part of the batch, so the answer is "if these were submitted alone, now".

    With Queues — the body's `queues`, else the hub's stored ones — the answer also has
    `admission`: the admission report of `fleetplane place` with queue manifests
    (docs/queues.md), where the workloads that hold quota now count against their queues.
    `"queues": []` asks for placement only.
    """
    hub, subject = hub_of(request), subject_of(request)
    if not read_scope(subject, WORKLOAD).visible:
        raise forbidden(f'{subject.kind} "{subject.name}" cannot run what-if: it may not submit workloads')
    objs, warnings = _whatif_objects(body, subject, field_validation)
    queues_from = "request" if body.queues is not None else "store"
    body_queues = body_classes = None
    if body.queues is not None:
        body_queues, warns = _whatif_queue_objects(body.queues, QUEUE, field_validation)
        warnings += warns
    if body.priority_classes is not None:
        body_classes, warns = _whatif_queue_objects(body.priority_classes, PRIORITY_CLASS, field_validation)
        warnings += warns
    stored_queues = await hub.registry.list_all(QUEUE) if body_queues is None else []
    stored: StoredQueueing | None = None
    if body_queues or stored_queues:
        stored = StoredQueueing(
            stored_queues,
            await hub.registry.list_all(PRIORITY_CLASS) if body_classes is None else [],
            await hub.registry.list_all(WORKLOAD),
            [],  # the assignments, read below for the reservations too
        )
    try:
        engine = Engine(body.profile or hub.settings.placement_profile)
    except PlacementInputError as exc:
        raise ApiError(
            422,
            "Invalid",
            f"profile: {exc.detail}",
            causes=[{"reason": "FieldValueNotSupported", "field": "profile", "message": exc.detail}],
        ) from None

    # The snapshot is what the caller may see (read_scope), so a team cannot probe another
    # team's datasets. Reservations are not the caller's to read, but they only lower free
    # capacity, which is what the real placement would see too.
    clusters, _, _ = await _list(request, CLUSTER)
    datasets, _, _ = await _list(request, DATASET)
    topologies, _, _ = await _list(request, TOPOLOGY)
    assignments = await hub.registry.list_all(ASSIGNMENT)
    if stored is not None:
        stored = replace(stored, assignments=assignments)
    held = reservations(assignments, {c["metadata"]["name"]: c for c in clusters})

    def decide() -> dict[str, Any]:
        # Off the event loop: a big fleet takes the engine a while, and the loop also serves
        # the API, watches and the controllers.
        snapshot, _problems = build_snapshot(clusters, datasets, topologies)
        requests = []
        for i, o in enumerate(objs):
            try:
                requests.append(workload_from_api(v1.Workload.model_validate(o), snapshot))
            except PlacementInputError as exc:
                field = f"workloads[{i}].{exc.field}" if exc.field else f"workloads[{i}]"
                raise invalid(
                    WORKLOAD.kind,
                    WORKLOAD.group,
                    o["metadata"]["name"],
                    [{"reason": "FieldValueInvalid", "field": field, "message": exc.detail}],
                ) from None
        decisions = engine.place_batch(snapshot, requests, held)
        out = report(decisions, engine.profile.name) | {
            "snapshot": {"clusters": len(snapshot.clusters), "reservations": len(held)}
        }
        if stored is not None:
            doc = _whatif_admission(
                engine.profile.name, snapshot, requests, objs, body_queues, body_classes, stored, held, subject
            )
            if doc is not None:
                out["admission"] = doc | {"queuesFrom": queues_from}
        return out

    out = await asyncio.to_thread(decide)
    return WhatIfReport.model_validate(out | {"warnings": warnings})
