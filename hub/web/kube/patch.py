"""PATCH: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch for the
built-in kinds that have it, and server-side apply (application/apply-patch+yaml).

A patch's result goes through the same input limits as a body (hub.web.inputs.check_document):
a JSON patch can `copy` a subtree into itself and double the object with every operation, so
copies are counted against the node budget while the patch is applied, not after."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer
from fastapi import Request, Response

from hub.errors import ApiError, bad_request, unsupported_media
from hub.registry.objects import Obj, check_metadata_types
from hub.registry.resources import Resource
from hub.web import inputs
from hub.web.context import hub_of, subject_of
from hub.web.kube.body import field_manager_param, parse_body, read_body, write_options
from hub.web.kube.responses import json_response
from hub.web.kube.routing import Target

_OPS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


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


# ------------------------------------------------------------------ JSON patch (RFC 6902)


def _shown(value: Any) -> str:
    """A JSON value as an error quotes it: JSON, not a Python repr, and never long."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _pointer_problem(pointer: Any) -> str | None:
    if not isinstance(pointer, str):
        return f"must be a string (a JSON pointer such as /spec/replicas), not {_shown(pointer)}"
    if pointer and not pointer.startswith("/"):
        return f'"{pointer[:60]}" is not a JSON pointer: it must start with "/"'
    if "~" in pointer.replace("~0", "").replace("~1", ""):
        return f'"{pointer[:60]}" is not a JSON pointer: "~" must be written "~0" and "/" inside a key "~1"'
    return None


def _field(pointer: str) -> str:
    """A JSON pointer as the dotted field name a Status cause carries (/spec/gpu/count → spec.gpu.count)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return ".".join(parts)


def check_json_patch(ops: Any) -> list[dict[str, Any]]:
    """The operations, each checked for its shape before any is applied (400 naming the operation)."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a JSON array of operations")
    for i, op in enumerate(ops):
        where = f"JSON patch operation {i}"
        if not isinstance(op, dict):
            raise bad_request(f"{where}: must be an object with op and path, not {_shown(op)}")
        name = op.get("op")
        if name not in _OPS:
            raise bad_request(f"{where}: op: must be one of {', '.join(_OPS)}, not {_shown(name)}")
        keys = ("path", "from") if name in ("move", "copy") else ("path",)
        for key in keys:
            if key not in op:
                raise bad_request(f"{where} ({name}): {key} is required")
            if (why := _pointer_problem(op[key])) is not None:
                raise bad_request(f"{where} ({name}): {key}: {why}")
        if name in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"{where} ({name} {op['path']}): value is required")
    return ops


def _count(value: Any, budget: int) -> int:
    """Values in `value`, counting no further than `budget` + 1."""
    n, stack = 0, [value]
    while stack and n <= budget:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return n


def apply_json_patch(doc: Obj, ops: list[dict[str, Any]], what: str) -> Any:
    """Apply checked operations one by one; a failure names the operation and its path, in the
    words kube-apiserver uses, without Python reprs of the document."""
    out: Any = copy.deepcopy(doc)
    budget = inputs.MAX_NODES - _count(out, inputs.MAX_NODES)
    for i, op in enumerate(ops):
        name, path = op["op"], op["path"]

        def fail(why: str, *, i: int = i, name: str = name, path: str = path) -> ApiError:
            return ApiError(
                422,
                "Invalid",
                f"the JSON patch could not be applied: operation {i} ({name} {path or '/'}): {why}",
                causes=[{"reason": "FieldValueInvalid", "field": _field(path), "message": why}],
            )

        if name == "copy":
            source = jsonpointer.resolve_pointer(out, op["from"], _MISSING)
            if source is _MISSING:
                raise fail(f'the "from" path {op["from"] or "/"} does not exist')
            budget -= _count(source, budget)
            if budget < 0:
                raise bad_request(
                    f"{what}: the JSON patch would make the object hold more than {inputs.MAX_NODES} values"
                )
        try:
            out = jsonpatch.JsonPatch([op]).apply(out, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            current = jsonpointer.resolve_pointer(out, path, _MISSING)
            if current is _MISSING or isinstance(current, jsonpointer.EndOfList):  # "/-": past the end
                raise fail("test failed: the path does not exist") from None
            raise fail(f"test failed: the value is {_shown(current)}, not {_shown(op['value'])}") from None
        except jsonpatch.JsonPatchConflict as exc:
            if "own children" in str(exc):
                raise fail("cannot move a value into one of its own children") from None
            if "outside of list" in str(exc):
                raise fail("the array index is out of range") from None
            raise fail("the path does not exist") from None
        except jsonpatch.InvalidJsonPatch as exc:  # e.g. "-" (end of array) on replace/remove
            raise fail(str(exc).replace("'", '"')) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
            raise fail("the path does not exist, or a part of it is not an object or array") from None
    return out


# ------------------------------------------------------------------ the verb


def _checked(res: Resource, result: Any) -> Any:
    """A patch's result: within the body limits, and with metadata of the right JSON types —
    also on the status subresource, whose update reads only the status but must not be handed
    an object that could not be decoded (as kube-apiserver decodes the patched object first)."""
    inputs.check_document(result, res.kind)
    if isinstance(result, dict):
        check_metadata_types(res, result)
    return result


async def do_patch(request: Request, t: Target) -> Response:
    res, registry, subject = t.res, hub_of(request).registry, subject_of(request)
    assert t.name is not None
    ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    if ct == "application/apply-patch+yaml":
        field_manager = field_manager_param(request)
        if not field_manager:
            raise bad_request("fieldManager: required for server-side apply (PATCH with application/apply-patch+yaml)")
        force = inputs.query_bool(request, "force")
        applied = parse_body(body, ct, res.kind)
        if t.subresource == "status":
            raise unsupported_media("server-side apply on the status subresource is not supported; use a merge patch")
        obj, warnings, created = await registry.apply(
            res,
            t.namespace,
            t.name,
            applied,
            subject,
            force=force,
            opts=write_options(request, field_manager=field_manager),
        )
        return json_response(obj, 201 if created else 200, warnings)

    if ct == "application/merge-patch+json" or (ct == "application/strategic-merge-patch+json" and res.strategic_merge):
        merge = parse_body(body, "application/json", res.kind)
        if not isinstance(merge, dict):
            raise bad_request(f"{res.kind}: a merge patch must be a JSON object")
        if ct == "application/strategic-merge-patch+json":
            merge = strip_smp_directives(merge)

        def apply_patch(old: Obj) -> Any:
            return _checked(res, json_merge_patch(old, merge))
    elif ct == "application/json-patch+json":
        ops = check_json_patch(parse_body(body, "application/json", res.kind))

        def apply_patch(old: Obj) -> Any:
            return _checked(res, apply_json_patch(old, ops, res.kind))
    elif ct == "application/strategic-merge-patch+json":
        raise unsupported_media(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({res.qualified} has no strategic merge patch)"
        )
    else:
        raise unsupported_media(
            f'unsupported patch content type "{ct[:80]}": use application/merge-patch+json, '
            "application/json-patch+json or application/apply-patch+yaml"
        )

    opts = write_options(request)
    obj, warnings = await registry.mutate(res, t.namespace, t.name, apply_patch, subject, t.subresource, opts)
    return json_response(obj, 200, warnings)
