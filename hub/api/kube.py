"""The Kubernetes-compatible API: discovery, OpenAPI, CRUD, patch, apply, watch, Tables.

Owns HTTP ↔ store translation with Kubernetes semantics. Every error is a `Status`.
Path shapes served:
  /api/v1/namespaces[/{name}[/status]]            core Namespaces
  /api/v1/namespaces/{ns}/events                  always empty (kubectl describe asks)
  /apis/{group}/{version}/{plural}[/{name}[/status]]               cluster-scoped, or all namespaces
  /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import jsonpatch
from sqlalchemy import text
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from hub import metrics
from hub.api import fieldmanager
from hub.api.openapi import group_version_document, group_versions, root_document
from hub.api.resources import RESOURCES, Resource, lookup
from hub.api.selectors import both, parse_field_selector, parse_label_selector
from hub.api.validation import check_metadata, parse_body, validate_object
from hub.apis.v1alpha1 import GROUP, VERSION
from hub.auth import ReadScope, Subject, check_change, check_write, read_scope
from hub.errors import (
    ApiError,
    bad_request,
    conflict,
    gone,
    method_not_allowed,
    not_found,
    too_large,
    unsupported_media,
)
from hub.store.store import Event, Obj, Tx, now_rfc3339
from hub.store.watch import WatchOverflow

router = APIRouter()

HUB_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-fleetplane",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-11-23T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def status_response(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(err.status(), status_code=err.code, headers=headers)


# ------------------------------------------------------------------ discovery


@router.get("/version")
async def version() -> dict[str, str]:
    return HUB_VERSION


@router.get("/api")
async def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def _api_resource_list(group: str, version: str) -> dict[str, Any]:
    items = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        items.append({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs, "shortNames": list(r.short_names), "categories": list(r.categories),
        })
        if r.has_status:
            items.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                          "kind": r.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version, "resources": items}


@router.get("/api/v1")
async def core_resources() -> dict[str, Any]:
    return _api_resource_list("", "v1")


def _group_doc() -> dict[str, Any]:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv], "preferredVersion": gv}


@router.get("/apis")
async def api_groups() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_doc()]}


@router.get(f"/apis/{GROUP}")
async def api_group() -> dict[str, Any]:
    return _group_doc()


@router.get(f"/apis/{GROUP}/{VERSION}")
async def group_resources() -> dict[str, Any]:
    return _api_resource_list(GROUP, VERSION)


@router.get("/openapi/v3")
async def openapi_root() -> dict[str, Any]:
    return root_document()


@router.get("/openapi/v3/{rest:path}")
async def openapi_gv(rest: str) -> Response:
    for g, v in group_versions():
        key = f"apis/{g}/{v}" if g else f"api/{v}"
        if rest.strip("/") == key:
            body, h = group_version_document(g, v)
            return Response(body, media_type="application/json", headers={"Cache-Control": "public, immutable", "Etag": f'"{h}"'})
    return status_response(ApiError(404, "NotFound", f"no OpenAPI document for {rest}"))


# ------------------------------------------------------------------ routing


@dataclass
class Target:
    res: Resource
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str | None
    subresource: str


def _require_json(request: Request) -> None:
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ct in ("application/vnd.kubernetes.protobuf", "application/cbor"):
        raise unsupported_media(f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (not "{ct}")')


def parse_target(path: str) -> Target | str:
    """Resolve a request path to a resource target, or 'events' for the empty events list."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts and parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise not_found("", "", path)
    namespace = None
    if group == "" and rest[:1] == ["namespaces"]:
        if len(rest) >= 3 and rest[2] == "events":
            return "events"
        res = lookup("", "v1", "namespaces")
        assert res
        if len(rest) > 3:
            raise not_found("", "", path)
        return Target(res, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else "")
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise not_found("", "", path)
    res = lookup(group, version, rest[0])
    if res is None:
        raise ApiError(404, "NotFound", f'the server could not find the requested resource ({rest[0]}.{group or "core"}/{version})')
    if namespace is not None and not res.namespaced:
        raise not_found(res.plural, res.group, rest[1] if len(rest) > 1 else "")
    if res.namespaced and namespace is None and len(rest) > 1:
        raise ApiError(404, "NotFound", f"{res.qualified} is namespaced: use /namespaces/{{namespace}}/{res.plural}/{{name}}")
    sub = rest[2] if len(rest) > 2 else ""
    if sub and (sub != "status" or not res.has_status or len(rest) > 3):
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({res.qualified}/{sub})")
    return Target(res, namespace, rest[1] if len(rest) > 1 else None, sub)


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first


# ------------------------------------------------------------------ object helpers


def _meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "selfLink", "managedFields")


def _strip_server_meta(obj: Obj) -> None:
    m = _meta(obj)
    for k in SERVER_META:
        m.pop(k, None)


def _carry_server_meta(old: Obj, new: Obj) -> None:
    om, nm = _meta(old), _meta(new)
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "managedFields"):
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)
    nm["name"] = om["name"]
    if om.get("namespace"):
        nm["namespace"] = om["namespace"]
    else:
        nm.pop("namespace", None)


def _bump_generation(old: Obj, new: Obj) -> None:
    def body(o: Obj) -> Obj:
        return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    if body(old) != body(new):
        _meta(new)["generation"] = int(_meta(old).get("generation") or 1) + 1


def _prepare_new(res: Resource, obj: Obj, t: Target) -> None:
    meta = _meta(obj)
    if res.namespaced:
        ns = meta.get("namespace")
        if ns and t.namespace and ns != t.namespace:
            raise bad_request(
                f"the namespace of the provided object ({ns}) does not match the namespace sent on the request ({t.namespace})"
            )
        meta["namespace"] = t.namespace
    else:
        meta.pop("namespace", None)


def _check_kind(res: Resource, obj: Any) -> Obj:
    if not isinstance(obj, dict):
        raise bad_request(f"{res.kind}: request body must be a JSON object")
    kind, av = obj.get("kind"), obj.get("apiVersion")
    if kind is not None and kind != res.kind:
        raise bad_request(f'kind "{kind}" does not match the resource {res.qualified} (expected kind "{res.kind}")')
    if av is not None and av != res.api_version:
        raise bad_request(f'apiVersion "{av}" is not served for {res.qualified} (expected "{res.api_version}")')
    obj["kind"], obj["apiVersion"] = res.kind, res.api_version
    if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), dict):
        raise ApiError(422, "Invalid", f"{res.kind}: metadata must be an object",
                       causes=[{"reason": "FieldValueInvalid", "field": "metadata", "message": "must be an object"}])
    return obj


def _stage_write(tx: Tx, res: Resource, obj: Obj) -> None:
    """Stage an update; an object being deleted whose last finalizer went away is removed for real."""
    meta = _meta(obj)
    if meta.get("deletionTimestamp") and not meta.get("finalizers"):
        tx.delete(res.key, obj)
    else:
        tx.update(res.key, obj)


# ------------------------------------------------------------------ Tables


def table(res: Resource, objs: list[Obj], rv: str | None, *, include: str = "Metadata", headers: bool = True,
          cont: str | None = None) -> Obj:
    cols = [{"name": c.name, "type": c.type, "format": c.format, "description": c.description, "priority": c.priority}
            for c in res.columns]
    rows = []
    for o in objs:
        if include == "Object":
            ro: Obj | None = o
        elif include == "None":
            ro = None
        else:
            ro = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        row: Obj = {"cells": [c.cell(o) for c in res.columns]}
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    meta: Obj = {"resourceVersion": rv or ""}
    if cont:
        meta["continue"] = cont
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    out["columnDefinitions"] = cols if headers else []
    return out


# ------------------------------------------------------------------ the handler


async def _subject(request: Request) -> Subject:
    return request.state.subject  # set by the auth middleware


def _visible_or_404(scope: ReadScope, res: Resource, name: str, obj: Obj | None) -> Obj:
    if obj is None or not scope.allows(obj):
        raise not_found(res.plural, res.group, name)
    return obj


def _ns_key(res: Resource, t: Target, name: str | None = None) -> tuple[str, str]:
    if res.kind == "Namespace":
        return "", name or t.name or ""
    return (t.namespace or "") if res.namespaced else "", name or t.name or ""


async def handle(request: Request, path: str) -> Response:
    started = time.perf_counter()
    verb = request.method.lower()
    resource_label = "unknown"
    code = 500
    try:
        target = parse_target(path)
        if target == "events":
            code = 200
            return JSONResponse({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []})
        assert isinstance(target, Target)
        resource_label = target.res.plural
        q = request.query_params
        if request.method == "GET" and target.name is None and q.get("watch") in ("true", "1"):
            verb = "watch"
            code = 200
            return await do_watch(request, target)
        if request.method == "GET":
            verb = "get" if target.name else "list"
            resp = await (do_get(request, target) if target.name else do_list(request, target))
        elif request.method == "POST" and target.name is None:
            verb = "create"
            resp = await do_create(request, target)
        elif request.method == "PUT" and target.name:
            verb = "update"
            resp = await do_update(request, target)
        elif request.method == "PATCH" and target.name:
            verb = "patch"
            resp = await do_patch(request, target)
        elif request.method == "DELETE" and target.name:
            verb = "delete"
            resp = await do_delete(request, target)
        else:
            raise method_not_allowed(f"{request.method} is not supported on {path}")
        code = resp.status_code
        return resp
    except ApiError as err:
        code = err.code
        return status_response(err)
    finally:
        metrics.REQUESTS.labels(verb, resource_label, str(code)).inc()
        if verb != "watch":
            metrics.REQUEST_SECONDS.labels(verb, resource_label).observe(time.perf_counter() - started)


def _json(obj: Any, status: int = 200, warnings: list[str] | None = None) -> JSONResponse:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings[:20])
    return JSONResponse(obj, status_code=status, headers=headers)


async def do_get(request: Request, t: Target) -> Response:
    res, app = t.res, request.app.state.hub
    subject = await _subject(request)
    ns, name = _ns_key(res, t)
    obj = _visible_or_404(read_scope(subject, res), res, name, await app.store.get(res.key, ns, name))
    if wants_table(request):
        return _json(table(res, [obj], _meta(obj).get("resourceVersion"), include=request.query_params.get("includeObject", "Metadata")))
    return _json(obj)


def _list_predicate(request: Request, res: Resource, scope: ReadScope) -> Any:
    q = request.query_params
    return both(
        scope.predicate,
        parse_label_selector(q.get("labelSelector")),
        parse_field_selector(q.get("fieldSelector"), res.field_selectors, res.kind),
    )


def _scope_namespaces(scope: ReadScope, t: Target) -> list[str] | None:
    if not scope.visible:
        return []
    if t.res.kind == "Namespace" or not t.res.namespaced:
        return None
    if t.namespace is not None:
        if scope.namespaces is not None and t.namespace not in scope.namespaces:
            return []
        return [t.namespace]
    return list(scope.namespaces) if scope.namespaces is not None else None


async def do_list(request: Request, t: Target) -> Response:
    res, app = t.res, request.app.state.hub
    q = request.query_params
    if q.get("sendInitialEvents") is not None:
        raise ApiError(422, "Invalid", "sendInitialEvents is only supported on watch requests, and not by this server")
    scope = read_scope(await _subject(request), res)
    limit = int(q["limit"]) if q.get("limit", "").isdigit() and int(q["limit"]) > 0 else None
    pred = _list_predicate(request, res, scope)
    nss = _scope_namespaces(scope, t)
    if nss == []:
        items, rv, cont = [], await app.store.current_rv(), None
    else:
        items, rv, cont = await app.store.list(res.key, namespaces=nss, predicate=pred, limit=limit, continue_token=q.get("continue"))
    if wants_table(request):
        return _json(table(res, items, str(rv), include=q.get("includeObject", "Metadata"), cont=cont))
    meta: Obj = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items})


async def _read_body(request: Request) -> bytes:
    limit = request.app.state.hub.settings.max_body_bytes
    cl = request.headers.get("content-length")
    if cl and cl.isdigit() and int(cl) > limit:
        raise too_large(f"request body of {cl} bytes exceeds the limit of {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise too_large(f"request body of {len(body)} bytes exceeds the limit of {limit} bytes")
    return body


def _dry_run(request: Request) -> bool:
    d = request.query_params.get("dryRun")
    if d and d != "All":
        raise bad_request(f'dryRun: unsupported value "{d}" (only "All")')
    return d == "All"


def _manager(request: Request, default: str) -> str:
    m = request.query_params.get("fieldManager") or ""
    if len(m) > 128:
        raise bad_request("fieldManager: must be at most 128 characters")
    if m:
        return m
    ua = request.headers.get("user-agent", "")
    return ua.split("/")[0] or default


async def do_create(request: Request, t: Target) -> Response:
    res, app = t.res, request.app.state.hub
    subject = await _subject(request)
    body = await _read_body(request)
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if res.kind == "Namespace" and ct == "application/vnd.kubernetes.protobuf":
        from hub.api.protobuf import decode_namespace

        try:
            obj = decode_namespace(body)
        except ValueError as exc:
            raise bad_request(f"Namespace: cannot decode protobuf body: {exc}") from exc
    else:
        _require_json(request)
        obj = _check_kind(res, parse_body(body, request.headers.get("content-type", "application/json"), f"{res.kind}"))
    if t.res.namespaced and t.namespace is None:
        raise method_not_allowed(f"create {res.plural} needs a namespace: POST /apis/{res.group}/{res.version}/namespaces/{{ns}}/{res.plural}")
    meta = _meta(obj)
    if not meta.get("name") and meta.get("generateName"):
        import secrets
        meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
    _prepare_new(res, obj, t)
    _strip_server_meta(obj)
    obj.pop("status", None) if res.kind != "Namespace" else None
    obj, warnings = validate_object(res, obj, request.query_params.get("fieldValidation", "Warn"))
    if res.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    check_write(subject, res, "create", t.namespace or "", obj, "")
    name = _meta(obj)["name"]
    manager = _manager(request, "unknown")
    dry = _dry_run(request)

    async def fn(tx: Tx) -> Obj:
        if res.namespaced:
            ns_obj = await tx.get("namespaces", "", t.namespace or "", lock=False)
            if ns_obj is None:
                raise not_found("namespaces", "", t.namespace or "")
            if _meta(ns_obj).get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f'unable to create new content in namespace {t.namespace} because it is being terminated')
        if await tx.get(res.key, t.namespace or "" if res.namespaced else "", name, lock=False) is not None:
            from hub.errors import already_exists
            raise already_exists(res.plural, res.group, name)
        fieldmanager.record_update(None, obj, manager, res.api_version)
        if dry:
            return obj
        return tx.create(res.key, obj)

    created = await app.store.transact(fn)
    return _json(created, 201, warnings)


async def _write_existing(
    request: Request, t: Target, mutate: Any, *, verb: str, create_if_missing: Any = None,
) -> Response:
    """Read-lock the object, let `mutate(old) -> (new, warnings)` build the new version, store it."""
    res, app = t.res, request.app.state.hub
    subject = await _subject(request)
    scope = read_scope(subject, res)
    ns, name = _ns_key(res, t)
    dry = _dry_run(request)
    result: dict[str, Any] = {}

    async def fn(tx: Tx) -> Obj:
        old = await tx.get(res.key, ns, name)
        if old is None or not scope.allows(old):
            if create_if_missing is not None and (old is None):
                new, warnings = create_if_missing()
                check_write(subject, res, "create", t.namespace or "", new, "")
                if res.namespaced and await tx.get("namespaces", "", t.namespace or "", lock=False) is None:
                    raise not_found("namespaces", "", t.namespace or "")
                if res.namespaced:
                    _meta(new)["namespace"] = t.namespace
                result["status"], result["warnings"] = 201, warnings
                if dry:
                    return new
                return tx.create(res.key, new)
            raise not_found(res.plural, res.group, name)
        check_write(subject, res, verb, ns, old, t.subresource)
        new, warnings = mutate(copy.deepcopy(old))
        check_change(subject, res, old, new, t.subresource)
        if not scope.allows(new):
            raise ApiError(403, "Forbidden", f'{res.qualified} "{name}": the change would move it out of your scope')
        result["status"], result["warnings"] = 200, warnings
        if new == old:
            return old
        if dry:
            return new
        _stage_write(tx, res, new)
        return new

    obj = await app.store.transact(fn)
    return _json(obj, result.get("status", 200), result.get("warnings"))


def _check_rv(res: Resource, old: Obj, new: Obj) -> None:
    want = _meta(new).get("resourceVersion")
    if want and want != _meta(old).get("resourceVersion"):
        raise conflict(res.plural, res.group, _meta(old)["name"])


def _merge_update(res: Resource, t: Target, old: Obj, incoming: Obj, field_validation: str, manager: str) -> tuple[Obj, list[str]]:
    """Build the next version of `old` from a full `incoming` object (PUT semantics)."""
    _check_rv(res, old, incoming)
    inc_meta = _meta(incoming)
    if inc_meta.get("name") and inc_meta["name"] != _meta(old)["name"]:
        raise bad_request(f'the name of the object ({inc_meta["name"]}) does not match the name on the URL ({_meta(old)["name"]})')
    inc_meta["name"] = _meta(old)["name"]
    if res.namespaced:
        if inc_meta.get("namespace") and inc_meta["namespace"] != _meta(old).get("namespace"):
            raise bad_request("metadata.namespace: the namespace of an object cannot change")
        inc_meta["namespace"] = _meta(old).get("namespace")
    if t.subresource == "status":
        new = copy.deepcopy(old)
        if "status" in incoming:
            new["status"] = incoming["status"]
        else:
            new.pop("status", None)
    else:
        new = incoming
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
        # A deleting object may only lose finalizers, never gain them (Kubernetes rule).
        if _meta(old).get("deletionTimestamp"):
            added = set(_meta(new).get("finalizers") or []) - set(_meta(old).get("finalizers") or [])
            if added:
                raise ApiError(422, "Invalid", f'{res.kind} "{_meta(old)["name"]}" is being deleted: metadata.finalizers: cannot add {sorted(added)}',
                               causes=[{"reason": "FieldValueForbidden", "field": "metadata.finalizers", "message": "no new finalizers can be added if the object is being deleted"}])
    _carry_server_meta(old, new)
    rv = _meta(old).get("resourceVersion")
    validated, warnings = validate_object(res, new, field_validation)
    _meta(validated).pop("resourceVersion", None)
    _carry_server_meta(old, validated)
    _meta(validated)["resourceVersion"] = rv
    if t.subresource != "status":
        _bump_generation(old, validated)
    fieldmanager.record_update(old, validated, manager, res.api_version, subresource=t.subresource)
    if _without_volatile(validated) == _without_volatile(old):
        return old, warnings
    return validated, warnings


def _without_volatile(o: Obj) -> Obj:
    c = copy.deepcopy(o)
    m = c.get("metadata", {})
    for e in m.get("managedFields") or []:
        e.pop("time", None)
    return c


async def do_update(request: Request, t: Target) -> Response:
    res = t.res
    _require_json(request)
    body = await _read_body(request)
    incoming = _check_kind(res, parse_body(body, request.headers.get("content-type", "application/json"), res.kind))
    fv = request.query_params.get("fieldValidation", "Warn")
    manager = _manager(request, "unknown")
    return await _write_existing(request, t, lambda old: _merge_update(res, t, old, incoming, fv, manager), verb="update")


def _strip_smp_directives(patch: Any) -> Any:
    if isinstance(patch, dict):
        return {k: _strip_smp_directives(v) for k, v in patch.items() if not k.startswith("$") and not k.startswith("$setElementOrder")}
    return patch


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge_patch(out.get(k), v)
    return out


async def do_patch(request: Request, t: Target) -> Response:
    res = t.res
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_body(request)
    q = request.query_params
    fv = q.get("fieldValidation", "Warn")
    if ct == "application/apply-patch+yaml":
        manager = q.get("fieldManager") or ""
        if not manager:
            raise bad_request("PATCH with application/apply-patch+yaml requires the fieldManager query parameter")
        force = q.get("force") in ("true", "1")
        applied = _check_kind(res, parse_body(body, ct, res.kind))
        _strip_server_meta(applied)
        am = _meta(applied)
        if am.get("name") and am["name"] != t.name:
            raise bad_request(f'the name of the object ({am["name"]}) does not match the name on the URL ({t.name})')
        am["name"] = t.name
        _prepare_new(res, applied, t)
        if t.subresource == "status":
            raise unsupported_media("server-side apply on the status subresource is not supported; use a merge patch")

        def create() -> tuple[Obj, list[str]]:
            new = fieldmanager.apply(None, copy.deepcopy(applied), manager, res.api_version, force=force, resource=res.plural)
            mf = _meta(new).pop("managedFields", None)
            new.pop("status", None)
            validated, warnings = validate_object(res, new, fv)
            _meta(validated)["managedFields"] = mf
            return validated, warnings

        def apply_mutate(old: Obj) -> tuple[Obj, list[str]]:
            new = fieldmanager.apply(old, applied, manager, res.api_version, force=force, resource=res.plural)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            mf = _meta(new).get("managedFields")
            rv = _meta(old).get("resourceVersion")
            validated, warnings = validate_object(res, new, fv)
            _carry_server_meta(old, validated)
            _meta(validated)["managedFields"] = mf
            _meta(validated)["resourceVersion"] = rv
            _bump_generation(old, validated)
            if _without_volatile(validated) == _without_volatile(old):
                return old, warnings
            return validated, warnings

        return await _write_existing(request, t, apply_mutate, verb="patch", create_if_missing=create)

    manager = _manager(request, "unknown")
    if ct == "application/merge-patch+json" or (ct == "application/strategic-merge-patch+json" and res.strategic_merge):
        patch = parse_body(body, "application/json", res.kind)
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        if ct == "application/strategic-merge-patch+json":
            patch = _strip_smp_directives(patch)

        def apply_patch(old: Obj) -> Obj:
            return json_merge_patch(old, patch)
    elif ct == "application/json-patch+json":
        ops = parse_body(body, "application/json", res.kind)
        if not isinstance(ops, list):
            raise bad_request("a JSON patch must be a JSON array of operations")

        def apply_patch(old: Obj) -> Obj:
            try:
                return jsonpatch.apply_patch(old, ops)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
                raise ApiError(422, "Invalid", f"the JSON patch could not be applied: {exc}") from exc
    elif ct == "application/strategic-merge-patch+json":
        raise unsupported_media(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({res.qualified} has no strategic merge patch)"
        )
    else:
        raise unsupported_media(f'unsupported patch content type "{ct}"')

    def mutate(old: Obj) -> tuple[Obj, list[str]]:
        patched = apply_patch(old)
        if not isinstance(patched, dict):
            raise bad_request("the patch result is not an object")
        _check_kind(res, patched)
        pm = _meta(patched)
        if pm.get("resourceVersion") and pm["resourceVersion"] != _meta(old).get("resourceVersion"):
            raise conflict(res.plural, res.group, _meta(old)["name"])
        pm["resourceVersion"] = None
        return _merge_update(res, t, old, patched, fv, manager)

    return await _write_existing(request, t, mutate, verb="patch")


async def do_delete(request: Request, t: Target) -> Response:
    res, app = t.res, request.app.state.hub
    subject = await _subject(request)
    scope = read_scope(subject, res)
    ns, name = _ns_key(res, t)
    if t.subresource:
        raise method_not_allowed("DELETE is not supported on a subresource")
    body = await request.body()
    opts: Obj = {}
    if body.strip():
        parsed = parse_body(body, request.headers.get("content-type", "application/json"), "DeleteOptions")
        if not isinstance(parsed, dict):
            raise bad_request("DeleteOptions must be an object")
        opts = parsed
    policy = opts.get("propagationPolicy") or request.query_params.get("propagationPolicy") or "Background"
    if policy not in ("Background", "Foreground", "Orphan"):
        raise bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"')
    pre = opts.get("preconditions") or {}
    dry = _dry_run(request)

    async def fn(tx: Tx) -> Obj:
        old = await tx.get(res.key, ns, name)
        if old is None or not scope.allows(old):
            raise not_found(res.plural, res.group, name)
        check_write(subject, res, "delete", ns, old, "")
        m = _meta(old)
        if pre.get("uid") and pre["uid"] != m.get("uid"):
            raise conflict(res.plural, res.group, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {m.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
            raise conflict(res.plural, res.group, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {m.get('resourceVersion')}")
        if dry:
            return old
        await _cascade(tx, res, old, policy)
        if m.get("finalizers"):
            if not m.get("deletionTimestamp"):
                m["deletionTimestamp"] = now_rfc3339()
                m["deletionGracePeriodSeconds"] = 0
                m["generation"] = int(m.get("generation") or 1) + 1
                tx.update(res.key, old)
            return old
        tx.delete(res.key, old)
        return old

    obj = await app.store.transact(fn)
    return _json(obj, 200)


async def _cascade(tx: Tx, res: Resource, owner: Obj, policy: str) -> None:
    """Owner-reference garbage collection, done in the owner's transaction."""
    from hub.api.resources import BY_KEY

    uid = _meta(owner).get("uid")
    if res.kind == "Namespace":
        # Deleting a namespace deletes its content (objects with finalizers get marked).
        rows = await tx.conn.execute(
            text("SELECT resource, data FROM objects WHERE namespace = :ns FOR UPDATE"),
            {"ns": _meta(owner)["name"]},
        )
        for resource, data in rows.all():
            await _delete_one(tx, resource, dict(data))
        return
    if not uid:
        return
    for resource, dep in await tx.dependents(uid):
        if policy == "Orphan":
            dm = _meta(dep)
            dm["ownerReferences"] = [r for r in dm.get("ownerReferences") or [] if r.get("uid") != uid]
            if not dm["ownerReferences"]:
                dm.pop("ownerReferences")
            tx.update(resource, dep)
        else:
            await _delete_one(tx, resource, dep)


async def _delete_one(tx: Tx, resource: str, obj: Obj) -> None:
    m = _meta(obj)
    if m.get("finalizers"):
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = now_rfc3339()
            tx.update(resource, obj)
    else:
        tx.delete(resource, obj)


# ------------------------------------------------------------------ watch


async def do_watch(request: Request, t: Target) -> Response:
    res, app = t.res, request.app.state.hub
    q = request.query_params
    if q.get("sendInitialEvents") is not None:
        # Rejecting (not ignoring) makes client-go reflectors fall back to LIST + WATCH.
        raise ApiError(422, "Invalid", "sendInitialEvents is not supported by this server; list, then watch")
    scope = read_scope(await _subject(request), res)
    pred = _list_predicate(request, res, scope)
    nss = _scope_namespaces(scope, t)
    rv_param = q.get("resourceVersion")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds", "").isdigit() else None
    as_table = wants_table(request)
    include = q.get("includeObject", "Metadata")

    if rv_param not in (None, "", "0"):
        if not rv_param.isdigit():
            raise bad_request(f'resourceVersion: invalid value "{rv_param}"')
        from_rv: int | None = int(rv_param)
    else:
        from_rv = None

    def accept(ev: Event) -> bool:
        if nss is not None and ev.namespace not in nss:
            return False
        return pred is None or pred(ev.object)

    bc = app.broadcaster
    try:
        watcher, backlog, seam = await bc.subscribe(res.key, accept, from_rv)
    except ApiError:
        raise
    initial: list[Obj] = []
    after = max(seam, from_rv or 0)
    if from_rv is None:
        if nss == []:
            items, snap = [], await app.store.current_rv()
        else:
            items, snap, _ = await app.store.list(res.key, namespaces=nss, predicate=pred)
        initial = items
        after = max(after, snap)

    headers_sent = [False]

    def encode(ev_type: str, obj: Obj) -> bytes:
        if as_table and ev_type != "BOOKMARK" and ev_type != "ERROR":
            payload = table(res, [obj], _meta(obj).get("resourceVersion"), include=include, headers=not headers_sent[0])
            headers_sent[0] = True
        else:
            payload = obj
        metrics.WATCH_EVENTS_SENT.labels(res.plural).inc()
        return (json.dumps({"type": ev_type, "object": payload}) + "\n").encode()

    async def gen() -> AsyncIterator[bytes]:
        metrics.WATCHES.labels(res.plural).inc()
        deadline = time.monotonic() + timeout if timeout else None
        sent_rv = after
        try:
            for obj in initial:
                yield encode("ADDED", obj)
            for ev in backlog:
                yield encode(ev.type, ev.object)
                sent_rv = max(sent_rv, ev.rv)
            idle = min(app.settings.bookmark_seconds, timeout) if timeout else app.settings.bookmark_seconds
            async for ev in bc.stream(watcher, after, idle):
                if deadline and time.monotonic() >= deadline:
                    return
                if ev is None:
                    if bookmarks:
                        brv = max(sent_rv, bc.last_rv)
                        yield encode("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                                  "metadata": {"resourceVersion": str(brv)}})
                    continue
                yield encode(ev.type, ev.object)
                sent_rv = ev.rv
        except WatchOverflow:
            yield encode("ERROR", gone("watch fell too far behind; relist").status())
        finally:
            bc.unsubscribe(watcher)
            metrics.WATCHES.labels(res.plural).dec()

    return StreamingResponse(gen(), media_type="application/json", headers={"Cache-Control": "no-cache"})
