"""The Kubernetes API verbs over HTTP: get, list, create, update (PUT), delete; and `handle`,
which routes every /api and /apis request to its verb. Semantics live in the registry
(hub.registry.lifecycle); these functions decode requests and encode answers."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import Request, Response

from hub import metrics
from hub.errors import ApiError, bad_request, internal_error, method_not_allowed
from hub.registry.lifecycle import list_query
from hub.registry.objects import Obj, check_kind
from hub.web.context import hub_of, subject_of
from hub.web.inputs import check_document, check_query, check_text, query_int
from hub.web.kube import patch, watch
from hub.web.kube.body import dry_run, parse_body, read_body, write_options
from hub.web.kube.protobuf import decode_namespace
from hub.web.kube.responses import json_response, status_response
from hub.web.kube.routing import Target, parse_target, require_json, wants_table
from hub.web.kube.tables import table

log = logging.getLogger(__name__)


async def handle(request: Request, path: str) -> Response:
    started = time.perf_counter()
    verb = request.method.lower()
    resource_label = "unknown"
    code = 500
    try:
        check_query(request)
        target = parse_target(path)
        resource_label = target.res.plural
        q = request.query_params
        if _verb_of(request, target) not in target.res.verbs:
            raise method_not_allowed(f"{request.method} is not supported on {target.res.qualified}: it is read-only")
        if request.method == "GET" and target.name is None and q.get("watch") in ("true", "1"):
            verb = "watch"
            code = 200
            return await watch.do_watch(request, target)
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
            resp = await patch.do_patch(request, target)
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
    except Exception:  # a bug: log it, answer a Status, never a bare 500
        log.exception("%s %s failed", request.method, path)
        code = 500
        return status_response(internal_error())
    finally:
        metrics.REQUESTS.labels(verb, resource_label, str(code)).inc()
        if verb != "watch":
            metrics.REQUEST_SECONDS.labels(verb, resource_label).observe(time.perf_counter() - started)


def _verb_of(request: Request, t: Target) -> str:
    """The Kubernetes verb of a request (what Resource.verbs lists)."""
    if request.method == "GET":
        if t.name:
            return "get"
        return "watch" if request.query_params.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(request.method, "")


def _name(t: Target) -> str:
    assert t.name is not None
    return t.name


async def do_get(request: Request, t: Target) -> Response:
    registry = hub_of(request).registry
    if not wants_table(request):  # the stored JSON as it is: nothing to decode or encode
        found = await registry.get_json(t.res, t.namespace, _name(t), subject_of(request))
        return Response(found.encode(), media_type="application/json")
    obj = await registry.get(t.res, t.namespace, _name(t), subject_of(request))
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return json_response(table(t.res, [obj], rv, include=request.query_params.get("includeObject", "Metadata")))


async def do_list(request: Request, t: Target) -> Response:
    res, q = t.res, request.query_params
    if q.get("sendInitialEvents") is not None:
        raise ApiError(422, "Invalid", "sendInitialEvents is only supported on watch requests, and not by this server")
    limit = query_int(request, "limit") or None
    query_int(request, "resourceVersion")  # a list is always served from the latest state; still, "²" is an error
    if q.get("resourceVersionMatch") not in (None, "", "NotOlderThan", "Exact"):
        raise bad_request(
            f'resourceVersionMatch: Unsupported value: "{q["resourceVersionMatch"][:40]}": supported values: "NotOlderThan", "Exact"'
        )
    if q.get("continue"):
        check_text(q["continue"], "continue", max_len=4096)
    query = list_query(res, subject_of(request), t.namespace, q.get("labelSelector"), q.get("fieldSelector"))
    registry = hub_of(request).registry
    if not wants_table(request):
        raw = await registry.list_json(res, query, limit=limit, continue_token=q.get("continue"))
        if raw is not None:  # nothing to look at inside the objects: pass the stored JSON through
            texts, rv, cont = raw
            meta: Obj = {"resourceVersion": str(rv)}
            if cont:
                meta["continue"] = cont
            head = json.dumps({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta})
            body = head[:-1] + ',"items":[' + ",".join(texts) + "]}"
            return Response(body.encode(), media_type="application/json")
    items, rv, cont = await registry.list_objects(res, query, limit=limit, continue_token=q.get("continue"))
    if wants_table(request):
        return json_response(table(res, items, str(rv), include=q.get("includeObject", "Metadata"), cont=cont))
    meta = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    return json_response({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items})


async def do_create(request: Request, t: Target) -> Response:
    created, warnings = await create_object(request, t)
    return json_response(created, 201, warnings)


async def create_object(request: Request, t: Target) -> tuple[Obj, list[str]]:
    """Decode the body of a create and store it: (the stored object, warnings). The REST API's
    POST uses this too, so both surfaces accept exactly the same objects."""
    res = t.res
    body = await read_body(request)
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if res.kind == "Namespace" and ct == "application/vnd.kubernetes.protobuf":
        try:
            obj: Any = decode_namespace(body)
        except ValueError as exc:
            raise bad_request(f"Namespace: cannot decode protobuf body: {exc}") from None
        check_document(obj, "Namespace")  # the same limits as a JSON body (NUL in a label value …)
    else:
        require_json(request)
        obj = check_kind(res, parse_body(body, request.headers.get("content-type", "application/json"), res.kind))
    if res.namespaced and t.namespace is None:
        raise method_not_allowed(
            f"create {res.plural} needs a namespace: POST /apis/{res.group}/{res.version}/namespaces/{{ns}}/{res.plural}"
        )
    return await hub_of(request).registry.create(res, t.namespace, obj, subject_of(request), write_options(request))


async def do_update(request: Request, t: Target) -> Response:
    res = t.res
    require_json(request)
    body = await read_body(request)
    incoming = check_kind(res, parse_body(body, request.headers.get("content-type", "application/json"), res.kind))
    obj, warnings = await hub_of(request).registry.replace(
        res, t.namespace, _name(t), incoming, subject_of(request), t.subresource, write_options(request)
    )
    return json_response(obj, 200, warnings)


async def do_delete(request: Request, t: Target) -> Response:
    if t.subresource:
        raise method_not_allowed("DELETE is not supported on a subresource")
    body = await read_body(request)
    opts: Obj = {}
    if body.strip():
        opts = delete_options(
            parse_body(body, request.headers.get("content-type", "application/json"), "DeleteOptions")
        )
    policy = opts.get("propagationPolicy") or request.query_params.get("propagationPolicy") or "Background"
    query_int(request, "gracePeriodSeconds")  # accepted (deletion is immediate or by finalizers), but checked
    obj = await hub_of(request).registry.delete(
        t.res,
        t.namespace,
        _name(t),
        subject_of(request),
        policy=policy,
        preconditions=opts.get("preconditions") or {},
        dry_run=dry_run(request) or opts.get("dryRun") == ["All"],
    )
    return json_response(obj, 200)


def delete_options(opts: Any) -> Obj:
    """A DeleteOptions body with the JSON types meta/v1 gives it: 400 naming the field otherwise,
    before anything reads it (a precondition uid that is a number must not become a 409)."""
    if not isinstance(opts, dict):
        raise bad_request("DeleteOptions: the body must be a JSON object")
    problems: list[str] = []
    kind = opts.get("kind")
    if kind is not None and kind != "DeleteOptions":
        problems.append(f'kind: must be "DeleteOptions", not {_json(kind)}')
    for key in ("apiVersion", "propagationPolicy"):
        if opts.get(key) is not None and not isinstance(opts[key], str):
            problems.append(f"{key}: must be a string, not {_json(opts[key])}")
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        problems.append(f"gracePeriodSeconds: must be a non-negative integer, not {_json(grace)}")
    orphan = opts.get("orphanDependents")
    if orphan is not None and not isinstance(orphan, bool):
        problems.append(f"orphanDependents: must be a boolean, not {_json(orphan)}")
    dry = opts.get("dryRun")
    if dry is not None and (not isinstance(dry, list) or any(d != "All" for d in dry)):
        problems.append(f'dryRun: must be a list whose only value is "All", not {_json(dry)}')
    pre = opts.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict):
            problems.append(f"preconditions: must be an object with uid and resourceVersion, not {_json(pre)}")
        else:
            for key in ("uid", "resourceVersion"):
                if pre.get(key) is not None and not isinstance(pre[key], str):
                    problems.append(f"preconditions.{key}: must be a string, not {_json(pre[key])}")
    if problems:
        raise bad_request("DeleteOptions: " + "; ".join(problems))
    return opts


def _json(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
