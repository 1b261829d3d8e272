"""The hub's REST API under /v1: submit and read workloads, cluster capacity, a fleet summary, what-if.

Owns the compact, task-shaped views a dashboard or script wants (documented at /docs and in
docs/rest.md). It adds no semantics of its own:

- Creating a Workload goes through the Kubernetes API's create path (`kube.do_create`), so
  validation, the namespace check, managedFields and the store transaction are the same code.
- Every read is scoped by `hub.auth.read_scope`, the one tenant filter: a team sees its own
  namespaces only (others answer 404) and, like on the Kubernetes API, every Cluster.
- What-if runs `placement.Engine` on the live snapshot minus in-flight reservations (the
  federation controller's own `reservations` rule) and writes nothing.

Errors are Kubernetes `Status` objects, as on the Kubernetes API, including the 422 FastAPI
would otherwise answer in its own shape (see `_StatusRoute`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from hub.api import kube
from hub.api.resources import BY_KIND, Resource
from hub.api.validation import validate_object
from hub.apis import v1alpha1 as v1
from hub.auth import ReadScope, Subject, read_scope
from hub.errors import ApiError, bad_request, forbidden, invalid, not_found
from hub.store.store import Obj

if TYPE_CHECKING:
    from hub.server import Hub

WORKLOAD: Resource = BY_KIND["Workload"]
CLUSTER: Resource = BY_KIND["Cluster"]
NAMESPACE: Resource = BY_KIND["Namespace"]
DATASET: Resource = BY_KIND["Dataset"]
TOPOLOGY: Resource = BY_KIND["Topology"]
ASSIGNMENT: Resource = BY_KIND["Assignment"]

#: Most workloads one what-if may carry. The engine is vectorised, but the explanation of every
#: decision lists every cluster, so the answer grows with workloads × clusters.
WHATIF_MAX_WORKLOADS = 500


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
                if request.method in ("POST", "PUT", "PATCH"):
                    await kube._read_body(request)  # 413 over the limit; the body stays cached for FastAPI
                return await handler(request)
            except RequestValidationError as exc:
                err = _validation_status(exc)
                return JSONResponse(err.status(), status_code=err.code)
            except ApiError as err:
                return JSONResponse(err.status(), status_code=err.code)

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


# ------------------------------------------------------------------ schemas


class _View(BaseModel):
    """camelCase on the wire, like the Kubernetes objects the views are built from."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StatusCause(_View):
    reason: str | None = None
    field: str | None = None
    message: str | None = None


class StatusDetails(_View):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    causes: list[StatusCause] | None = None


class Status(_View):
    """Every error: a Kubernetes Status whose `reason` says what kind of failure it is."""

    kind: str = "Status"
    api_version: str = "v1"
    status: str = "Failure"
    message: str
    reason: str = Field(description="NotFound, Invalid, BadRequest, Forbidden, Unauthorized, AlreadyExists, ...")
    code: int
    details: StatusDetails | None = None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {400: "Malformed body or unknown field (with fieldValidation=Strict)",
            401: "No or unknown bearer token", 403: "Not allowed for this subject",
            404: "Namespace or object not found (or not visible to this subject)",
            409: "Already exists", 413: "Body over the hub's size limit",
            422: "Invalid: one cause per field"}
    return {c: {"model": Status, "description": what[c]} for c in sorted({401, *codes})}


class ClusterShare(_View):
    name: str
    replicas: int
    capacity_type: str | None = None


class PlacementView(_View):
    clusters: list[ClusterShare] = Field(default_factory=list, description="Where the replicas run (empty while pending).")
    epoch: int | None = Field(default=None, description="Fencing epoch; +1 on every re-placement.")
    reason: str | None = Field(default=None, description='"placed on …", or why no cluster fits ("0/N clusters: …").')
    decided_at: str | None = None


class ClusterWorkloadView(_View):
    name: str
    phase: str | None = None
    message: str | None = None
    epoch: int | None = None


class WorkloadView(_View):
    """A Workload, compact: what it asks for, where it runs, and why."""

    name: str
    namespace: str
    phase: str = Field(description="Pending, Placed, Running, Succeeded or Failed.")
    message: str | None = None
    replicas: int
    gpus_per_replica: int
    gpus: int = Field(description="replicas × gpusPerReplica.")
    gpu_models: list[str] = Field(default_factory=list, description="Allowed models; empty means any.")
    placement_mode: str
    priority: int
    placement: PlacementView | None = None
    clusters: list[ClusterWorkloadView] | None = Field(default=None, description="Per-cluster status from the agents.")
    explanation: dict[str, Any] | None = Field(
        default=None,
        description="The engine's explanation (docs/placement.md, JSON output): every plugin's score and weight "
        "per cluster and the filter that removed each other cluster. Always on a single GET; in lists "
        "only with ?explain=true.",
    )
    deleting: bool = False
    created_at: str | None = None
    resource_version: str | None = None


class WorkloadList(_View):
    items: list[WorkloadView]
    resource_version: str = Field(description="Store resourceVersion the list is consistent with (watch from it).")
    continue_token: str | None = Field(default=None, serialization_alias="continue",
                                       description="Pass as ?continue= for the next page.")


class PoolView(_View):
    name: str | None = None
    model: str
    capacity_type: str
    price_per_gpu_hour: float | None = Field(
        default=None, description="USD per GPU-hour; the cluster's spec.prices default when the pool reports none.")
    memory_gi_b: int | None = None  # camelCase: memoryGiB
    total: int
    free: int
    nodes: int = Field(description="Nodes the agent reported in this pool.")


class ClusterView(_View):
    name: str
    ready: bool
    ready_reason: str | None = None
    region: str | None = None
    zone: str | None = None
    backend: str = Field(description="kubernetes, or simulated for a fake in-memory spoke.")
    simulated: bool = Field(description="True when the capacity is not real (backend simulated).")
    heartbeat_time: str | None = None
    total_gpus: int
    free_gpus: int = Field(description="As the agent reported; GPUs of in-flight placements may not be counted yet.")
    pools: list[PoolView]


class ClusterList(_View):
    items: list[ClusterView]


class SummaryRow(_View):
    model: str
    capacity_type: str
    region: str = Field(description='Empty when the cluster reports no region.')
    total: int
    free: int
    clusters: int = Field(description="Ready clusters contributing to this row.")
    simulated_clusters: int = Field(description="Of those, how many are simulated (their GPUs are not real).")


class NotReadyCount(_View):
    clusters: int
    gpus: int


class FleetSummary(_View):
    """GPUs of Ready clusters by model × capacity type × region; NotReady ones counted apart."""

    rows: list[SummaryRow]
    ready_clusters: int
    total_gpus: int
    free_gpus: int
    not_ready: NotReadyCount


class WhatIfRequest(_View):
    workloads: list[dict[str, Any]] = Field(
        min_length=1, max_length=WHATIF_MAX_WORKLOADS,
        description="Workload objects, as you would submit them (apiVersion/kind optional; metadata.namespace "
        "defaults to \"default\", or a team's first namespace).",
        json_schema_extra={"items": {"$ref": "#/components/schemas/Workload"}},
    )
    profile: str | None = Field(
        default=None, description="Scoring profile (default, spread, cheapest, data-local); default: the hub's own.")


class WhatIfSummary(_View):
    workloads: int
    placed: int
    pending: int


class WhatIfSnapshot(_View):
    clusters: int = Field(description="Clusters in the snapshot (those visible to the caller).")
    reservations: int = Field(description="In-flight placements whose GPUs were held back.")


class WhatIfReport(_View):
    """A PlacementReport, as `fleetplane place -o json` prints it, on the live fleet."""

    api_version: str = "fleetplane.io/v1alpha1"
    kind: str = "PlacementReport"
    profile: str
    summary: WhatIfSummary
    decisions: list[dict[str, Any]] = Field(
        description="One Decision.to_dict() per workload, highest priority first, every cluster explained.")
    snapshot: WhatIfSnapshot
    warnings: list[str] = Field(default_factory=list, description="Unknown fields dropped (fieldValidation=Warn).")


# ------------------------------------------------------------------ helpers

# The bearer scheme only documents the token for /docs ("Authorize"); the middleware in
# hub/server.py checks it (auto_error=False, so this never answers on its own).
router = APIRouter(prefix="/v1", route_class=_StatusRoute, dependencies=[Security(HTTPBearer(auto_error=False))])


def _hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def _subject(request: Request) -> Subject:
    return request.state.subject  # type: ignore[no-any-return]  # set by the auth middleware


def _get(o: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(o, dict):
            return None
        o = o.get(p)
    return o


async def _visible_namespace(request: Request, ns: str) -> None:
    """404 unless the namespace exists and the caller may see it (a team: only its own)."""
    obj = await _hub(request).store.get(NAMESPACE.key, "", ns)
    if obj is None or not read_scope(_subject(request), NAMESPACE).allows(obj):
        raise not_found(NAMESPACE.plural, NAMESPACE.group, ns)


async def _list(request: Request, res: Resource, *, namespaces: list[str] | None = None,
                limit: int | None = None, cont: str | None = None) -> tuple[list[Obj], int, str | None]:
    """Every read of a list goes through read_scope; `allows` is the final word on each object."""
    scope: ReadScope = read_scope(_subject(request), res)
    if not scope.visible:
        return [], await _hub(request).store.current_rv(), None
    if res.namespaced and scope.namespaces is not None:
        allowed = set(scope.namespaces)
        namespaces = [n for n in (namespaces if namespaces is not None else sorted(allowed)) if n in allowed]
        if not namespaces:
            return [], await _hub(request).store.current_rv(), None
    return await _hub(request).store.list(res.key, namespaces=namespaces, predicate=scope.allows,
                                          limit=limit, continue_token=cont)


def workload_view(obj: Obj, *, explain: bool) -> WorkloadView:
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    gpu = spec.get("gpu") or {}
    per, replicas = int(gpu.get("count") or 0), int(spec.get("replicas") or 1)
    placed = st.get("placement")
    placement = None
    if isinstance(placed, dict):
        placement = PlacementView(
            clusters=[ClusterShare(name=c.get("name", ""), replicas=int(c.get("replicas") or 0),
                                   capacity_type=c.get("capacityType")) for c in placed.get("clusters") or []],
            epoch=placed.get("epoch"), reason=placed.get("reason"), decided_at=placed.get("decidedAt"))
    return WorkloadView(
        name=meta.get("name", ""), namespace=meta.get("namespace", ""),
        phase=st.get("phase") or "Pending", message=st.get("message"),
        replicas=replicas, gpus_per_replica=per, gpus=replicas * per, gpu_models=list(gpu.get("models") or []),
        placement_mode=spec.get("placementMode") or "Gang", priority=int(spec.get("priority") or 0),
        placement=placement,
        clusters=[ClusterWorkloadView(**{k: c.get(k) for k in ("name", "phase", "message", "epoch")})
                  for c in st.get("clusters") or []] or None,
        explanation=(placed or {}).get("explanation") if explain and isinstance(placed, dict) else None,
        deleting=bool(meta.get("deletionTimestamp")),
        created_at=meta.get("creationTimestamp"), resource_version=meta.get("resourceVersion"),
    )


def _ready(cluster: Obj) -> tuple[bool, str | None]:
    for c in _get(cluster, "status", "conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True", c.get("reason")
    return False, "NoHeartbeat"  # an agent that never reported has no Ready condition


def cluster_view(obj: Obj) -> ClusterView:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    prices = spec.get("prices") or {}
    pools = []
    for p in st.get("gpuPools") or []:
        price = p.get("pricePerGpuHour")
        pools.append(PoolView(
            name=p.get("name"), model=p.get("model", ""), capacity_type=p.get("capacityType", ""),
            # The engine prices a pool without its own price at the cluster's default (docs/placement.md).
            price_per_gpu_hour=price if price is not None else prices.get(p.get("capacityType", "")),
            memory_gi_b=p.get("memoryGiB"), total=int(p.get("total") or 0), free=int(p.get("free") or 0),
            nodes=len(p.get("nodes") or [])))
    ready, reason = _ready(obj)
    backend = spec.get("backend") or "kubernetes"
    total = st.get("totalGpus")
    free = st.get("freeGpus")
    return ClusterView(
        name=_get(obj, "metadata", "name") or "", ready=ready, ready_reason=reason,
        region=st.get("region") or spec.get("region"), zone=st.get("zone") or spec.get("zone"),
        backend=backend, simulated=backend == "simulated", heartbeat_time=st.get("heartbeatTime"),
        total_gpus=int(total) if total is not None else sum(p.total for p in pools),
        free_gpus=int(free) if free is not None else sum(p.free for p in pools),
        pools=pools)


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
    "/namespaces/{namespace}/workloads", tags=["workloads"], status_code=201, response_model=v1.Workload,
    responses=_errors(400, 403, 404, 409, 413, 422), openapi_extra=_WORKLOAD_BODY,
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
    so a workload is valid here exactly when kubectl would accept it.
    """
    # field_validation and dry_run are read from the query by kube.do_create; declared for /docs.
    return await kube.do_create(request, kube.Target(WORKLOAD, namespace, None, ""))


@router.get("/workloads", tags=["workloads"], response_model=WorkloadList, response_model_exclude_none=True,
            responses=_errors(422), summary="List workloads in every namespace you may see")
async def list_all_workloads(
    request: Request,
    explain: bool = Query(False, description="Include each workload's placement explanation."),
    limit: int | None = Query(None, ge=1, le=5000),
    cont: str | None = Query(None, alias="continue"),
) -> WorkloadList:
    items, rv, nxt = await _list(request, WORKLOAD, limit=limit, cont=cont)
    return WorkloadList(items=[workload_view(o, explain=explain) for o in items], resource_version=str(rv),
                        continue_token=nxt)


@router.get("/namespaces/{namespace}/workloads", tags=["workloads"], response_model=WorkloadList,
            response_model_exclude_none=True, responses=_errors(404, 422), summary="List workloads in a namespace")
async def list_workloads(
    request: Request,
    namespace: str,
    explain: bool = Query(False, description="Include each workload's placement explanation."),
    limit: int | None = Query(None, ge=1, le=5000),
    cont: str | None = Query(None, alias="continue"),
) -> WorkloadList:
    await _visible_namespace(request, namespace)
    items, rv, nxt = await _list(request, WORKLOAD, namespaces=[namespace], limit=limit, cont=cont)
    return WorkloadList(items=[workload_view(o, explain=explain) for o in items], resource_version=str(rv),
                        continue_token=nxt)


@router.get("/namespaces/{namespace}/workloads/{name}", tags=["workloads"], response_model=WorkloadView,
            response_model_exclude_none=True, responses=_errors(404, 422),
            summary="Get a workload with its placement and full explanation")
async def get_workload(request: Request, namespace: str, name: str) -> WorkloadView:
    await _visible_namespace(request, namespace)
    obj = await _hub(request).store.get(WORKLOAD.key, namespace, name)
    if obj is None or not read_scope(_subject(request), WORKLOAD).allows(obj):
        raise not_found(WORKLOAD.plural, WORKLOAD.group, name)
    return workload_view(obj, explain=True)


# ------------------------------------------------------------------ clusters and the fleet


@router.get("/clusters", tags=["clusters"], response_model=ClusterList, responses=_errors(),
            summary="List member clusters with their GPU capacity")
async def list_clusters(request: Request) -> ClusterList:
    items, _, _ = await _list(request, CLUSTER)
    return ClusterList(items=[cluster_view(o) for o in items])


@router.get("/fleet/summary", tags=["fleet"], response_model=FleetSummary, responses=_errors(),
            summary="GPUs by model × capacity type × region (total and free)")
async def fleet_summary(request: Request) -> FleetSummary:
    """Sums pools of Ready clusters; NotReady clusters cannot take work, so they are counted apart."""
    from placement.catalogue import canonical_model

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
    out = [SummaryRow(model=m, capacity_type=t, region=r, total=v["total"], free=v["free"],
                      clusters=len(v["clusters"]), simulated_clusters=len(v["simulated"]))
           for (m, t, r), v in sorted(rows.items())]
    return FleetSummary(rows=out, ready_clusters=ready_n, total_gpus=sum(r.total for r in out),
                        free_gpus=sum(r.free for r in out), not_ready=NotReadyCount(clusters=nr_clusters, gpus=nr_gpus))


# ------------------------------------------------------------------ what-if


def _prefixed(err: ApiError, prefix: str) -> ApiError:
    """The same error with every cause's field under `prefix` (workloads[2].spec.gpu.count)."""
    causes = [dict(c, field=f"{prefix}.{c['field']}" if c.get("field") else prefix)
              for c in err.details.get("causes") or []]
    details = {k: v for k, v in err.details.items() if k != "causes"}
    return ApiError(err.code, err.reason, f"{prefix}: {err.message}", details=details, causes=causes or None)


def _whatif_objects(body: WhatIfRequest, subject: Subject, field_validation: str) -> tuple[list[Obj], list[str]]:
    """Validate each workload exactly as a create would; errors name workloads[i].<field>."""
    default_ns = subject.namespaces[0] if subject.kind == "team" and subject.namespaces else "default"
    out: list[Obj] = []
    warnings: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(body.workloads):
        prefix = f"workloads[{i}]"
        try:
            obj = kube._check_kind(WORKLOAD, copy.deepcopy(raw))
            meta = kube._meta(obj)
            meta.setdefault("namespace", default_ns)
            kube._strip_server_meta(obj)
            obj.pop("status", None)
            obj, warns = validate_object(WORKLOAD, obj, field_validation)
        except ApiError as err:
            raise _prefixed(err, prefix) from None
        warnings += [f"{prefix}: {w}" for w in warns]
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in seen:
            raise invalid(WORKLOAD.kind, WORKLOAD.group, key[1], [{
                "reason": "FieldValueDuplicate", "field": f"{prefix}.metadata.name",
                "message": f'Duplicate value: "{key[0]}/{key[1]}" is also workloads[{seen[key]}]'}])
        seen[key] = i
        out.append(obj)
    return out, warnings


@router.post("/whatif", tags=["what-if"], response_model=WhatIfReport, responses=_errors(400, 403, 413, 422),
             summary="Place workloads on the live fleet without committing anything")
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
    """
    from placement import Engine, PlacementInputError
    from placement.cli import report
    from placement.manifests import workload_from_api

    from hub.controllers.federation import build_snapshot, reservations

    hub, subject = _hub(request), _subject(request)
    if not read_scope(subject, WORKLOAD).visible:
        raise forbidden(f'{subject.kind} "{subject.name}" cannot run what-if: it may not submit workloads')
    objs, warnings = _whatif_objects(body, subject, field_validation)
    try:
        engine = Engine(body.profile or hub.settings.placement_profile)
    except PlacementInputError as exc:
        raise ApiError(422, "Invalid", f"profile: {exc.detail}",
                       causes=[{"reason": "FieldValueNotSupported", "field": "profile", "message": exc.detail}]) from None

    # The snapshot is what the caller may see (read_scope), so a team cannot probe another
    # team's datasets. Reservations are not the caller's to read, but they only lower free
    # capacity, which is what the real placement would see too.
    clusters, _, _ = await _list(request, CLUSTER)
    datasets, _, _ = await _list(request, DATASET)
    topologies, _, _ = await _list(request, TOPOLOGY)
    assignments, _, _ = await hub.store.list(ASSIGNMENT.key, namespaces=None)
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
                raise invalid(WORKLOAD.kind, WORKLOAD.group, o["metadata"]["name"],
                              [{"reason": "FieldValueInvalid", "field": field, "message": exc.detail}]) from None
        decisions = engine.place_batch(snapshot, requests, held)
        return report(decisions, engine.profile.name) | {
            "snapshot": {"clusters": len(snapshot.clusters), "reservations": len(held)}}

    out = await asyncio.to_thread(decide)
    return WhatIfReport.model_validate(out | {"warnings": warnings})
