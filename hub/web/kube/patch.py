"""PATCH: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch for the
built-in kinds that have it, and server-side apply (application/apply-patch+yaml)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from fastapi import Request, Response

from hub.errors import ApiError, bad_request, unsupported_media
from hub.registry.objects import Obj
from hub.web.context import hub_of, subject_of
from hub.web.kube.body import parse_body, read_body, write_options
from hub.web.kube.responses import json_response
from hub.web.kube.routing import Target


def strip_smp_directives(patch: Any) -> Any:
    if isinstance(patch, dict):
        return {k: strip_smp_directives(v) for k, v in patch.items() if not k.startswith("$")}
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
    res, registry, subject = t.res, hub_of(request).registry, subject_of(request)
    assert t.name is not None
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    q = request.query_params
    if ct == "application/apply-patch+yaml":
        field_manager = q.get("fieldManager") or ""
        if not field_manager:
            raise bad_request("PATCH with application/apply-patch+yaml requires the fieldManager query parameter")
        applied = parse_body(body, ct, res.kind)
        if t.subresource == "status":
            raise unsupported_media("server-side apply on the status subresource is not supported; use a merge patch")
        obj, warnings, created = await registry.apply(
            res,
            t.namespace,
            t.name,
            applied,
            subject,
            force=q.get("force") in ("true", "1"),
            opts=write_options(request, field_manager=field_manager),
        )
        return json_response(obj, 201 if created else 200, warnings)

    if ct == "application/merge-patch+json" or (ct == "application/strategic-merge-patch+json" and res.strategic_merge):
        merge = parse_body(body, "application/json", res.kind)
        if not isinstance(merge, dict):
            raise bad_request("a merge patch must be a JSON object")
        if ct == "application/strategic-merge-patch+json":
            merge = strip_smp_directives(merge)

        def apply_patch(old: Obj) -> Any:
            return json_merge_patch(old, merge)
    elif ct == "application/json-patch+json":
        ops = parse_body(body, "application/json", res.kind)
        if not isinstance(ops, list):
            raise bad_request("a JSON patch must be a JSON array of operations")

        def apply_patch(old: Obj) -> Any:
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

    opts = write_options(request)
    obj, warnings = await registry.mutate(res, t.namespace, t.name, apply_patch, subject, t.subresource, opts)
    return json_response(obj, 200, warnings)
